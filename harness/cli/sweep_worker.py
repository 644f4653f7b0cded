"""``tinyharness sweep-scheduler`` and ``tinyharness sweep-worker``: the nodes of a sweep cluster
(Dask distributed). ``tinyharness sweep SWEEP.toml --cluster ADDRESS`` runs its cells there."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UsageError

STARTUP_HELP = "Seconds to wait for the scheduler when starting (and after losing it) before exiting."


@click.command("sweep-scheduler")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on: 0.0.0.0 or this machine's LAN address to accept nodes "
              "from other machines. Anyone who reaches the port can run code on the nodes: keep it "
              "on a trusted network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8786, show_default=True,
              help="TCP port (0: any free port).")
@click.option("--verbose", is_flag=True, help="Log Dask's INFO messages (joins, leaves).")
def sweep_scheduler(host: str, port: int, verbose: bool) -> None:
    """Start the scheduler of a sweep cluster.

    Prints its address (one line, e.g. tcp://192.168.1.5:8786), then serves until Ctrl-C or
    SIGTERM. Nodes join with 'tinyharness sweep-worker ADDRESS'; sweeps use it with
    'tinyharness sweep SWEEP.toml --cluster ADDRESS'. 'dask scheduler' works as well.
    """
    import asyncio

    _need_distributed("sweep-scheduler")
    _quiet_dask(verbose)
    from distributed import Scheduler

    async def serve() -> None:
        # Dask serves /health on an HTTP port even without a dashboard: any free one
        scheduler = Scheduler(host=host, port=port, dashboard=False, dashboard_address=f"{host}:0")
        failure = await _start(scheduler, 60.0)
        if failure is not None:
            raise UsageError(f"cannot listen on {host}:{port} ({failure}); choose another --port "
                             "or --host")
        click.echo(scheduler.address)
        sys.stdout.flush()
        _stop_on_signals(scheduler)
        await scheduler.finished()

    asyncio.run(serve())


@click.command("sweep-worker")
@click.argument("address", metavar="SCHEDULER_ADDRESS")
@click.option("--board", "boards", multiple=True, metavar="ID=PORT",
              help="A DUT board attached to this node, repeatable: cells with 'board = ID' run here "
              "with --sut-option port=PORT.")
@click.option("--timing-slots", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Host-timed cells that may run here at once. 0: this node runs board cells only.")
@click.option("--name", default=None, help="Node name in results (default: the host name); unique "
              "in the cluster.")
@click.option("--nthreads", type=click.IntRange(1, 256), default=None,
              help="Cells running at once at most (default: boards + CPUs); the timing slots and "
              "boards limit them further.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where cells write their run directories before they travel to the machine "
              "that started the sweep (default: a temporary folder).")
@click.option("--keep-runs", is_flag=True, help="Keep the run directories in --workdir after "
              "they were sent.")
@click.option("--host", default=None, help="Interface to listen on (default: the one that "
              "reaches the scheduler).")
@click.option("--startup-timeout", type=click.FloatRange(1, 3600), default=30.0,
              show_default=True, help=STARTUP_HELP)
@click.option("--verbose", is_flag=True, help="Log Dask's INFO messages.")
def sweep_worker(address, boards, timing_slots, name, nthreads, workdir, keep_runs, host,
                 startup_timeout, verbose) -> None:
    """Join a sweep cluster as a node: run the cells it is given, each in its own child process.

    The node declares its resources: 'timing' (--timing-slots; a host-timed cell takes a whole
    slot, so two timed cells never share a node; an untimed host cell takes a share) and
    'board:ID' for each --board. Prints one line once joined (NAME ADDRESS RESOURCES), then serves
    until Ctrl-C or SIGTERM, which interrupts its running cells (they run again elsewhere).
    """
    import os
    import tempfile

    from ..sweep.worker import NodeConfig, default_node_name, parse_boards, scheduler_address

    _need_distributed("sweep-worker")
    board_map = parse_boards(boards)
    folder = workdir or Path(tempfile.mkdtemp(prefix="tinyharness-worker-"))
    config = NodeConfig(name=name or default_node_name(), boards=board_map,
                        timing_slots=timing_slots, workdir=folder.resolve(), keep_runs=keep_runs)
    threads = nthreads or len(board_map) + (os.cpu_count() or 1)
    _quiet_dask(verbose)
    try:
        _serve_worker(scheduler_address(address), config, threads, host, startup_timeout)
    finally:
        _end_children()
        if workdir is None and not keep_runs:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _serve_worker(address: str, config, nthreads: int, host: str | None, timeout: float) -> None:
    import asyncio

    from distributed import Worker

    from ..sweep.worker import node_plugin

    plugin = node_plugin(config)

    async def serve() -> None:
        worker = Worker(address, name=config.name, nthreads=nthreads, resources=config.resources(),
                        plugins=(plugin,), host=host, dashboard=False,
                        memory_limit=0, death_timeout=timeout, validate=False)
        failure = await _start(worker, timeout + 5)
        if failure is not None and "name taken" in failure:
            raise UsageError(f"the cluster at {address} already has a node named {config.name!r}: "
                             "choose another --name")
        if failure is not None:
            raise UsageError(f"no scheduler answered at {address} within {timeout:g} s ({failure}); "
                             "start one with 'tinyharness sweep-scheduler' and check the address")
        resources = " ".join(f"{k}={v:g}" for k, v in sorted(config.resources().items()))
        click.echo(f"{config.name} {worker.address} {resources or '(none)'}")
        sys.stdout.flush()
        _stop_on_signals(worker, before=plugin.state.leave)
        await worker.finished()

    asyncio.run(serve())


async def _start(server, timeout: float) -> str | None:
    """Start a Dask server with its own error logs muted: None, or why it failed (one line; Dask
    wraps the cause in 'RuntimeError: ... failed to start')."""
    import asyncio
    import logging

    logging.disable(logging.CRITICAL)
    try:
        await asyncio.wait_for(server.start(), timeout)
        return None
    except (OSError, RuntimeError, ValueError, asyncio.TimeoutError) as exc:
        cause = exc.__cause__ or exc
        await server.close(timeout=5)
        return " ".join(str(cause).split())[:200] or "timed out"
    finally:
        logging.disable(logging.NOTSET)


def _stop_on_signals(server, before=None) -> None:
    """SIGINT/SIGTERM close the server (gracefully: a node that leaves has its cells rescheduled)."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()

    def close() -> None:
        if before is not None:
            before()
        loop.create_task(server.close(timeout=10))

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, close)
        except (NotImplementedError, RuntimeError):  # not the main thread / Windows
            pass


def _end_children() -> None:
    """No cell's child outlives its node (its guard also asks the kernel for that)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass


def _need_distributed(command: str) -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(f"{command} needs Dask distributed: pip install 'tinyharness[cluster]'") from None


def _quiet_dask(verbose: bool) -> None:
    import logging

    level = logging.INFO if verbose else logging.WARNING
    for name in ("distributed", "distributed.scheduler", "distributed.worker", "distributed.core"):
        logging.getLogger(name).setLevel(level)
    import dask

    dask.config.set({"logging": {"distributed": "info" if verbose else "warning"}})
