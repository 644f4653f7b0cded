"""``tinyharness dut qemu`` and ``dut boards``: the project's firmware on an emulated board.

Only click is imported here; the commands import the rest, so ``tinyharness --help`` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from tinyharness.cli.types import count, finite
from tinyharness.errors import UsageError

from .config import DEFAULT_BOARD, DEFAULT_SHIFT, MAX_SHIFT, board_name, icount_shift, memory_size


def _parsed(parse, what: str):
    def convert(value):
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise UsageError(f"{what} {value!r}: {exc}") from None
    return convert


@click.command("qemu")
@click.option("--benchmark", required=True, metavar="ID",
              help="kws01, vww01, ic01, ic02 or ad01: its int8 reference model is compiled in.")
@click.option("--board", default=DEFAULT_BOARD, show_default=True, metavar="NAME",
              help="Emulated board ('tinyharness dut boards').")
@click.option("--icount", default=str(DEFAULT_SHIFT), show_default=True, metavar="SHIFT",
              help=f"Device clock: 2^SHIFT ns of virtual time per guest instruction (0..{MAX_SHIFT}), "
              "deterministic but not cycle-accurate; 'off' follows the host clock.")
@click.option("--ram-limit", metavar="SIZE", help="Link against this much RAM (e.g. 320K) to "
              "emulate a smaller MCU.")
@click.option("--rom-limit", metavar="SIZE", help="Link against this much flash (e.g. 1M).")
@click.option("--model", type=click.Path(path_type=Path), metavar="MODEL.tflite",
              help="A full-integer model instead of the benchmark's reference model.")
@click.option("--mode", type=click.Choice(["performance", "accuracy", "all"]), default="all",
              show_default=True, help="As for 'tinyharness run'.")
@click.option("--dataset", type=click.Path(path_type=Path), metavar="PATH",
              help="Dataset folder in the EEMBC layout, or its parent.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, metavar="DIR", help="Where run directories are created.")
@click.option("--min-duration", type=finite(0, 86400), metavar="S",
              help="Minimum run length in seconds (device time).")
@click.option("--seed", type=count(0, 2**63 - 1), default=0, show_default=True)
@click.option("--repeat", type=count(1, 100), default=1, show_default=True, metavar="K")
@click.option("--sut-option", "sut_options", multiple=True, metavar="K=V",
              help="More options of the qemu SUT (timeout, verify, ...: 'tinyharness suts').")
@click.option("--build-only", is_flag=True, help="Build (or find in the cache) the firmware, "
              "print what was built as JSON, and stop.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
@click.option("--quiet", is_flag=True, help="No progress display and no text summary.")
@click.pass_context
def qemu(ctx, benchmark, board, icount, ram_limit, rom_limit, model, mode, dataset, output,
         min_duration, seed, repeat, sut_options, build_only, as_json, quiet) -> None:
    """Run a benchmark on the project's firmware in an emulated Cortex-M board.

    Compiles the int8 model to C, builds the firmware with arm-none-eabi-gcc (cached by a hash
    of sources, model, board and toolchain), starts qemu-system-arm with the UART on a local
    socket, and runs the benchmark over the MLPerf Tiny serial protocol: the same as
    'tinyharness run --sut qemu --sut-option board=... --sut-option icount=...'. Latency is
    virtual time (2^SHIFT ns per instruction), deterministic and not cycle-accurate.

    Needs the Debian packages qemu-system-arm, gcc-arm-none-eabi, libnewlib-arm-none-eabi and
    libstdc++-arm-none-eabi-newlib. Exit codes as for 'tinyharness run'.
    """
    from tinyharness.cli.run import benchmark_id, run

    board = _parsed(board_name, "--board")(board)
    shift = _parsed(icount_shift, "--icount")(icount)
    limits = {k: _parsed(memory_size, f"--{k.replace('_', '-')}")(v)
              for k, v in (("ram_limit", ram_limit), ("rom_limit", rom_limit))}
    benchmark = benchmark_id(benchmark)
    if build_only:
        _build_only(benchmark, board, model, limits)
        return
    options = (f"board={board}", f"icount={'off' if shift is None else shift}",
               *(f"{k}={v}" for k, v in limits.items() if v is not None), *sut_options)
    ctx.invoke(run, benchmark=benchmark, sut="qemu", mode=mode, model=model, dataset=dataset,
               output=output, min_duration=min_duration, seed=seed, sut_options=options,
               repeat=repeat, as_json=as_json, quiet=quiet)


def _build_only(benchmark: str, board: str, model: Path | None, limits: dict) -> None:
    from tinyharness.benchmark import get_benchmark
    from tinyharness.firmware.build import build_firmware
    from tinyharness.model_store import ModelStore

    if model is None:
        model = ModelStore().resolve(get_benchmark(benchmark).default_entry(("tflite",))).path
    fw = build_firmware(benchmark, board, Path(model), **limits)
    click.echo(json.dumps(fw.to_dict(), indent=1))


@click.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def boards(as_json) -> None:
    """The emulated boards 'dut qemu' builds for, with their core and memories."""
    from tinyharness.firmware.boards import BOARDS

    rows = [b for _, b in sorted(BOARDS.items())]
    if as_json:
        click.echo(json.dumps([{"name": b.name, "core": b.core, "rom_bytes": b.rom[1],
                                "ram_bytes": b.ram[1], "description": b.description}
                               for b in rows], indent=1))
        return
    for b in rows:
        click.echo(f"{b.name:12s} {b.core:11s} ROM {b.rom[1] // 1024:>6} KiB  "
                   f"RAM {b.ram[1] // 1024:>6} KiB  {b.description}")
