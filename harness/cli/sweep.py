"""``tinyharness sweep``: a matrix of runs, each cell a ``tinyharness run`` of its own."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, UsageError
from .types import count, finite

RUN_OPTIONS = ("min_duration", "min_queries", "dataset", "seed", "repeat", "query_timeout",
               "expected_qps", "metric")
MATRIX_FLAGS = ("benchmark", "sut", "scenario", "mode", "model", "sut_option", "board", "name")


def _listed(values: tuple[str, ...]) -> list[str]:
    """Repeated flags, each also a comma list: ``--sut a,b --sut c`` is [a, b, c]."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def matrix_document(flags: dict) -> dict:
    """The TOML document the matrix flags stand for (validated as the file would be)."""
    matrix: dict = {}
    for axis in ("benchmark", "sut", "scenario", "mode", "board"):
        if flags[axis]:
            matrix[axis] = _listed(flags[axis])
    if flags["model"]:
        matrix["model"] = [str(Path(m).absolute()) for m in flags["model"]]
    options: dict[str, list[str]] = {}
    for pair in flags["sut_option"]:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip() or not _listed((values,)):
            raise UsageError(f"--sut-option {pair!r} is not KEY=VALUE[,VALUE...] (e.g. --sut-option "
                             "threads=1,2)")
        options.setdefault(key.strip(), []).extend(_listed((values,)))
    if options:
        matrix["sut_options"] = options
    if not matrix.get("sut"):
        raise UsageError("give a sweep spec (SWEEP.toml) or at least one --sut")
    return {"name": flags["name"] or "sweep", "matrix": matrix}


def run_document(flags: dict) -> dict:
    """The ``[run]`` table the run flags stand for (a dataset as an absolute path)."""
    run = {k: flags[k] for k in RUN_OPTIONS if flags[k] not in (None, ())}
    if "metric" in run:
        run["metric"] = list(run["metric"])
    if "dataset" in run:
        run["dataset"] = str(Path(run["dataset"]).absolute())
    return run


def build_spec(spec_file: Path | None, flags: dict):
    from ..sweep.spec import load_spec, spec_from_document

    run, given = run_document(flags), [f for f in MATRIX_FLAGS if flags[f]]
    if spec_file is not None:
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')}: give the matrix in {spec_file} or by "
                             "flags, not both")
        spec = load_spec(spec_file, run=run, timeout_s=flags["timeout"])
    else:
        document = matrix_document(flags)
        document["run"] = run
        if flags["timeout"] is not None:
            document["timeout_s"] = flags["timeout"]
        spec = spec_from_document(document, base=Path.cwd())
    if flags["board_port"]:
        from dataclasses import replace

        spec = replace(spec, boards={**spec.boards, **board_ports(flags["board_port"])})
    return spec


def board_ports(pairs: tuple[str, ...]) -> dict[str, str]:
    boards: dict[str, str] = {}
    for pair in pairs:
        board, sep, port = (p.strip() for p in pair.partition("="))
        if not sep or not board or not port:
            raise UsageError(f"--board-port {pair!r}: expected ID=PORT, e.g. kws-a=/dev/ttyACM0")
        boards[board] = port
    return boards


@click.command("sweep")
@click.argument("spec_file", required=False, type=click.Path(path_type=Path), metavar="[SWEEP.toml]")
@click.option("--benchmark", multiple=True, metavar="ID[,ID]", help="Matrix: benchmarks (without SWEEP.toml).")
@click.option("--sut", multiple=True, metavar="NAME[,NAME]", help="Matrix: SUTs.")
@click.option("--scenario", multiple=True, metavar="NAME[,NAME]", help="Matrix: single-stream, offline.")
@click.option("--mode", multiple=True, metavar="NAME[,NAME]", help="Matrix: performance, accuracy, all.")
@click.option("--model", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Matrix: model files (repeatable).")
@click.option("--sut-option", "sut_option", multiple=True, metavar="K=V[,V]",
              help="Matrix: a SUT option's values, e.g. threads=1,2 (applies to the SUTs that accept it).")
@click.option("--board", multiple=True, metavar="ID[,ID]", help="Matrix: DUT board ids (for SUTs that take a port).")
@click.option("--name", metavar="TEXT", help="The sweep's name (default: the spec file's stem, or 'sweep').")
@click.option("--board-port", "board_port", multiple=True, metavar="ID=PORT",
              help="Where a board is attached here (adds to the spec's [boards]).")
@click.option("--timeout", type=finite(0, 604800, min_open=True), metavar="S",
              help="Per-cell timeout in seconds (default: the spec's timeout_s, else 1800).")
@click.option("--min-duration", type=finite(0, 86400), metavar="S", help="Run flag for every cell.")
@click.option("--min-queries", type=count(1), metavar="N", help="Run flag for every cell.")
@click.option("--dataset", type=click.Path(path_type=Path), metavar="PATH", help="Run flag for every cell.")
@click.option("--seed", type=count(0, 2**63 - 1), metavar="N", help="Run flag for every cell.")
@click.option("--repeat", type=count(1, 100), metavar="K", help="Run flag for every cell.")
@click.option("--query-timeout", type=finite(0, 86400, min_open=True), metavar="S", help="Run flag for every cell.")
@click.option("--expected-qps", type=finite(0, 1e9, min_open=True), metavar="X", help="Run flag for every cell.")
@click.option("--metric", multiple=True, metavar="NAME", help="Run flag for every cell (repeatable).")
@click.option("--output", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              metavar="DIR", help="Where run directories (and sweeps/<sweep id>/sweep.json) go.")
@click.option("--db", type=click.Path(path_type=Path), metavar="PATH",
              help="Results database (default: $TINYHARNESS_DB, else the user data directory).")
@click.option("--parallel", type=count(1, 64), default=1, show_default=True, metavar="N",
              help="Untimed cells (accuracy-only, device-timed) that may run at once on a host (here, "
                   "or per node with --cluster); a timed cell always runs alone.")
@click.option("--cluster", metavar="ADDRESS", help="Run the cells on a cluster (its scheduler's address, "
              "e.g. tcp://head:8786; nodes join with 'tinyharness sweep-worker').")
@click.option("--csv", "csv_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Also write the table as CSV (columns in docs/sweeps.md).")
@click.option("--fail-under", multiple=True, metavar="METRIC=VALUE",
              help="Exit 1 when a finished cell's METRIC (accuracy, throughput_ips) is below VALUE.")
@click.option("--fail-over", multiple=True, metavar="METRIC=VALUE",
              help="Exit 1 when a finished cell's METRIC (p50_us, p90_us, latency_us) is above VALUE.")
@click.option("--fail-invalid", is_flag=True, help="Exit 1 when a cell is INVALID.")
@click.option("--retry-failed", is_flag=True, help="Run failed and crashed cells of an earlier run "
              "of this sweep again (timed-out and interrupted cells always are).")
@click.option("--dry-run", is_flag=True, help="List the cells (id, timed or not) and run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON instead.")
def sweep(spec_file, output, db, parallel, cluster, csv_file, fail_under, fail_over, fail_invalid,
          retry_failed, dry_run, as_json, **flags) -> None:
    """Run a matrix of benchmarks x SUTs x SUT options x scenarios x modes x models x boards,
    each cell a 'tinyharness run' in a child process of its own with a timeout, so a crash, a
    hang or a segfault is a row with a status and a reason, never an aborted sweep.

    \b
    The matrix is SWEEP.toml (docs/sweeps.md), or the same from flags:
      tinyharness sweep --sut onnxruntime-cpu,openvino-cpu --sut-option threads=1,2 \\
          --scenario single-stream,offline --min-duration 1
    Timed cells never run two at a time; --parallel lets untimed ones. Rerunning the same
    sweep skips the cells an earlier run finished (ok, invalid, failed, crashed). Results go to
    the results database and OUTPUT/sweeps/<sweep id>/sweep.json as each cell finishes.

    \b
    Exit codes: 0 every cell ran (INVALID ones too, unless --fail-invalid), 1 a --fail-under
    or --fail-over gate missed (or an INVALID cell with --fail-invalid), 2 usage or input
    error, 3 a cell failed, crashed, timed out or was lost, 130 interrupted (Ctrl-C or SIGTERM;
    rerun to resume).
    """
    from ..sweep.table import Gate

    gates = [Gate.parse(g, True) for g in fail_under] + [Gate.parse(g, False) for g in fail_over]
    spec = build_spec(spec_file, flags)
    if dry_run:
        return _list_cells(spec, as_json)
    sys.exit(_run(spec, output, db, parallel, cluster, retry_failed, csv_file, gates, fail_invalid, as_json))


def _run(spec, output: Path, db_path: Path | None, parallel: int, cluster: str | None,
         retry_failed: bool, csv_file: Path | None, gates, fail_invalid: bool, as_json: bool) -> int:
    from ..db import ResultsDB
    from ..sweep.driver import Sweep

    with ResultsDB(db_path) as db:
        executor = _executor(spec, output, db.path, parallel, cluster)
        outcome = Sweep(spec, output=output, db=db, executor=executor, retry_failed=retry_failed,
                        on_row=_progress).run()
    return _report(outcome, csv_file, gates, fail_invalid, as_json)


def _executor(spec, output: Path, db_path: Path, parallel: int, cluster: str | None):
    if cluster:
        try:
            from ..sweep.dask_engine import DaskExecutor
        except ImportError as exc:
            raise UsageError(f"--cluster needs the distributed engine ({exc}); install the cluster "
                             "extra: pip install 'tinyharness[cluster]'") from None
        return DaskExecutor(cluster, output=output, parallel=parallel)  # each node runs its own tinyharness
    missing = sorted({c.board for c in spec.cells if c.board and c.board not in spec.boards})
    if missing:
        raise UsageError(f"board {missing[0]!r} has no port here: add it under [boards] in the spec "
                         f"or give --board-port {missing[0]}=PORT (or run on a --cluster)")
    from ..sweep.local import LocalExecutor

    env = {**os.environ, "TINYHARNESS_DB": str(db_path)}  # a cell's own indexing lands here too
    return LocalExecutor(output, spec.boards, parallel, env=env)


def _progress(row, done: int, total: int) -> None:
    from ..sweep.table import from_row, status_text

    line = from_row("", row)
    took = f"  {line.wall_s:.1f} s" if line.wall_s and not line.resumed else ""
    why = f"  {line.reason}" if line.reason and line.status not in ("ok", "invalid") else ""
    click.echo(f"[{done}/{total}] {status_text(line)}  {row.cell.label()}{took}{why}", err=True)


def _report(outcome, csv_file: Path | None, gates, fail_invalid: bool, as_json: bool) -> int:
    from dataclasses import asdict

    from ..fileio import atomic_write
    from ..sweep.table import csv_text, from_row, gate_misses, print_sweep_table

    rows = [from_row(outcome.spec.id, r) for r in outcome.rows]
    misses = gate_misses(rows, gates)
    code = _exit_code(outcome, rows, misses, fail_invalid)
    if csv_file is not None:
        atomic_write(csv_file, csv_text(rows).encode())
    if as_json:
        click.echo(json.dumps({"sweep_id": outcome.spec.id, "name": outcome.spec.name,
                               "folder": str(outcome.folder), "interrupted": outcome.interrupted,
                               "error": outcome.error, "gates_missed": misses, "exit_code": code,
                               "rows": [asdict(r) for r in rows]}, indent=1))
    else:
        print_sweep_table(rows, title=f"sweep {outcome.spec.name} ({outcome.spec.id}): "
                          f"{len(rows)} cells; state in {outcome.folder}")
    for miss in misses:
        click.echo(f"tinyharness: gate missed: {miss}", err=True)
    if outcome.error:
        click.echo(f"tinyharness: {outcome.error}", err=True)
    if outcome.interrupted:
        click.echo("tinyharness: sweep interrupted; run it again to resume", err=True)
    return code


def _exit_code(outcome, rows, misses: list[str], fail_invalid: bool) -> int:
    from ..sweep.cell_run import BROKEN

    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.error or any(r.status in {s.value for s in BROKEN} for r in rows):
        return EXIT_FAILED
    if misses or (fail_invalid and any(r.status == "invalid" for r in rows)):
        return EXIT_INVALID
    return 0


def _list_cells(spec, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**spec.to_dict(), "timed": {c.id: c.timed for c in spec.cells}}, indent=1))
        return
    from ..tables import Col, print_table

    print_table([Col("cell", key=True), Col("cell label"), Col("timed", nowrap=True),
                 Col("timeout s", nowrap=True)],
                [[c.id, c.label(), "yes" if c.timed else "no", f"{c.timeout_s:g}"] for c in spec.cells],
                title=f"sweep {spec.name} ({spec.id}): {len(spec.cells)} cells")
