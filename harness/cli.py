"""The ``tinyharness`` command line. Help texts here are the reference documentation.

Exit codes: 0 valid result, 1 invalid or failed run, 2 usage or input error.
Imports stay inside the commands so that ``tinyharness --help`` loads no runtime.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import RunFailed, UsageError


def _parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--sut-option {pair!r} is not KEY=VALUE (e.g. --sut-option threads=2)")
        options[key.strip()] = value.strip()
    return options


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tinyharness")
def cli() -> None:
    """Benchmark tiny ML models with MLPerf semantics: latency, throughput and accuracy of a
    reference model on a system under test (SUT).

    \b
    Quick start (no download; the embedded digits01 benchmark):
      tinyharness run --scenario single-stream --sut openvino-cpu
    """


@cli.command()
@click.option("--benchmark", "benchmark", metavar="ID", help="Benchmark to run (default: digits01, "
              "embedded). See 'tinyharness benchmarks'.")
@click.option("--sut", default="onnxruntime-cpu", show_default=True, metavar="NAME",
              help="System under test. See 'tinyharness suts'.")
@click.option("--scenario", type=click.Choice(["single-stream", "offline"]), default="single-stream",
              show_default=True, help="single-stream: one query in flight, latency percentiles and the "
              "MLPerf Tiny windows; offline: all samples as one query, samples per second.")
@click.option("--mode", type=click.Choice(["performance", "accuracy", "all"]), default="all",
              show_default=True, help="performance: the timed run; accuracy: every sample once, "
              "checked against the quality target; all: both.")
@click.option("--model", type=click.Path(path_type=Path), metavar="PATH",
              help="Model file instead of the benchmark's reference model.")
@click.option("--dataset", type=click.Path(path_type=Path), metavar="PATH",
              help="Dataset folder in the EEMBC layout (y_labels.csv beside the sample files), or its "
              "parent.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              metavar="DIR", help="Where run directories are created.")
@click.option("--min-duration", type=float, metavar="S", help="Minimum run length in seconds; less "
              "than the rule set makes the result INVALID.")
@click.option("--min-queries", type=int, metavar="N", help="Minimum query count (offline: samples); "
              "less than the rule set makes the result INVALID.")
@click.option("--expected-qps", type=float, metavar="X", help="Offline: expected samples per second, "
              "which sizes the query (default: measured by a short probe).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the performance set "
              "and the per-query sample choice (both recorded).")
@click.option("--sut-option", "sut_options", multiple=True, metavar="K=V",
              help="Option for the SUT, repeatable (e.g. threads=1). Each SUT lists its options in "
              "'tinyharness suts'.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
@click.option("--quiet", is_flag=True, help="No progress display and no text summary.")
def run(benchmark, sut, scenario, mode, model, dataset, output, min_duration, min_queries,
        expected_qps, seed, sut_options, as_json, quiet) -> None:
    """Run a benchmark on a SUT and write a run directory of schema-validated logs.

    The run directory (OUTPUT/<time>_<benchmark>_<sut>_<scenario>) holds summary.json,
    summary.txt, detail.txt (:::MLLOG events), accuracy.json, latencies.npy and status.json.
    """
    from .progress import Progress
    from .runner import Run, RunRequest

    request = RunRequest(benchmark=benchmark, sut=sut, scenario=scenario, mode=mode, model=model,
                         dataset=dataset, output=output, min_duration_s=min_duration,
                         min_query_count=min_queries, expected_qps=expected_qps, seed=seed,
                         sut_options=_parse_options(sut_options))
    prepared = Run(request)
    with Progress(enabled=not quiet) as progress:
        summary, run_dir = prepared.execute(progress)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    elif not quiet:
        click.echo((run_dir.path / "summary.txt").read_text(), nl=False)
    click.echo(f"results: {run_dir.path}", err=True)
    sys.exit(0 if summary["valid"] else 1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def suts(as_json) -> None:
    """List the SUTs from all plugins: runtime version, model formats, devices, scenarios, options."""
    from .plugins import registry

    reg = registry()
    rows = []
    for name, cls in sorted(reg.suts.items()):
        rows.append({"name": name, "summary": cls.summary, "plugin": reg.origin[name],
                     "runtime": cls.runtime, "version": cls.runtime_version(),
                     "install": f"pip install 'tinyharness[{cls.extra}]'" if cls.extra else None,
                     "model_formats": list(cls.model_formats), "devices": list(cls.devices),
                     "scenarios": list(cls.scenarios),
                     "options": {o.name: o.help for o in cls.options}})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("SUT", "runtime", "version", "formats", "devices", "scenarios", "options")
    for r in rows:
        table.add_row(r["name"], r["runtime"], r["version"] or f"not installed: {r['install']}",
                      ", ".join(r["model_formats"]), ", ".join(r["devices"]),
                      ", ".join(r["scenarios"]), ", ".join(r["options"]) or "-")
    Console().print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def benchmarks(as_json) -> None:
    """List the benchmarks: task, quality target, run rules and whether their data is present."""
    from .benchmark import load_benchmarks
    from .model_store import ModelStore

    store, rows = ModelStore(), []
    for b in load_benchmarks().values():
        models = {}  # format -> is a verified copy of its default model present locally?
        for entry in b.models:
            if entry.default:
                try:
                    models[entry.format] = store.locate(entry) is not None
                except UsageError:  # a copy with the wrong checksum
                    models[entry.format] = False
        rows.append({"id": b.id, "title": b.title, "task": b.task, "metric": b.metric,
                     "target": b.target, "embedded": b.embedded, "model_formats": models,
                     "requires": list(b.requires),
                     "dataset_present": (b.default_dataset() / b.label_file).is_file(),
                     "min_duration_s": b.single_stream.min_duration_s,
                     "windows": b.single_stream.windows, "window_min_s": b.single_stream.window_min_s})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("benchmark", "task", "target", "models", "dataset", "windows")
    for r in rows:
        table.add_row(r["id"], r["task"], f"{r['metric']} >= {r['target']:g}",
                      ", ".join(f"{k}{'' if v else ' (missing)'}" for k, v in r["model_formats"].items()),
                      "present" if r["dataset_present"] else "missing",
                      f"{r['windows']} x {r['window_min_s']:g} s")
    Console().print(table)


from .cli_models import models  # noqa: E402 (imports only click; its commands import the rest)

cli.add_command(models)
from .cli_dut import dut  # noqa: E402 (imports only click)
cli.add_command(dut)
from .compare import compare_command  # noqa: E402 (imports only click)
cli.add_command(compare_command)
from .report import report_command  # noqa: E402 (imports only click)
cli.add_command(report_command)
from .submission import check_cmd, package_cmd, system  # noqa: E402 (imports only click)
cli.add_command(package_cmd)
cli.add_command(check_cmd)
cli.add_command(system)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="tinyharness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("tinyharness: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except UsageError as exc:
        click.echo(f"tinyharness: error: {exc}", err=True)
        sys.exit(2)
    except RunFailed as exc:
        click.echo(f"tinyharness: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("tinyharness: interrupted", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
