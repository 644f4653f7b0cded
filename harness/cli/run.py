"""``tinyharness run``: one benchmark on one SUT, written to a run directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import UsageError, canonical, did_you_mean
from ..heartbeat import DEFAULT_QUERY_TIMEOUT_S
from ..plugins import DEFAULT_SUTS
from ..settings import Mode, Scenario
from .types import choice, count, finite, registered_sut


def parse_sut_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--sut-option {pair!r} is not KEY=VALUE (e.g. --sut-option threads=2)")
        options[key.strip()] = value.strip()
    return options


def sut_name(name: str | None) -> str:
    """The SUT as registered (any case), or without --sut the first installed of DEFAULT_SUTS;
    else a one-line UsageError (the closest names, or the extras to install)."""
    from ..plugins import default_sut

    return default_sut() if name is None else registered_sut(None, None, name)


def benchmark_id(text: str | None) -> str | None:
    """The benchmark id as the rule set spells it (any case); an unknown one is a UsageError
    naming the closest ids. None and blank ids go on to get_benchmark as they are (the default,
    and its own error for an empty id)."""
    if text is None or not text.strip():
        return text
    from ..benchmark import load_benchmarks

    known = sorted(load_benchmarks())
    found = canonical(text, known)
    if found is None:
        raise UsageError(f"unknown benchmark {text!r}{did_you_mean(text, known)}; known: "
                         f"{', '.join(known)} (see 'tinyharness benchmarks')")
    return found


@click.command()
@click.option("--benchmark", "benchmark", metavar="ID", help="Benchmark to run (default: digits01, "
              "embedded). See 'tinyharness benchmarks'.")
@click.option("--sut", metavar="NAME", help="System under test (default: the first installed of "
              f"{', '.join(DEFAULT_SUTS)}). See 'tinyharness suts'.")
@click.option("--scenario", type=choice(*(s.value for s in Scenario)), default="single-stream",
              show_default=True, help="single-stream: one query in flight, latency percentiles and the "
              "MLPerf Tiny windows; offline: all samples as one query, samples per second.")
@click.option("--mode", type=choice(*(m.value for m in Mode)), default="all",
              show_default=True, help="performance: the timed run; accuracy: every sample once, "
              "checked against the quality target; all: both.")
@click.option("--model", type=click.Path(path_type=Path), metavar="PATH",
              help="Model file instead of the benchmark's reference model.")
@click.option("--dataset", type=click.Path(path_type=Path), metavar="PATH",
              help="Dataset folder in the EEMBC layout (y_labels.csv beside the sample files), or its "
              "parent.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              metavar="DIR", help="Where run directories are created.")
@click.option("--min-duration", type=finite(0, 86400), metavar="S", help="Minimum run length in seconds; less "
              "than the rule set makes the result INVALID.")
@click.option("--min-queries", type=count(1), metavar="N", help="Minimum query count (offline: samples); "
              "less than the rule set makes the result INVALID.")
@click.option("--expected-qps", type=finite(0, 1e9, min_open=True), metavar="X", help="Offline: expected samples per second, "
              "which sizes the query (default: measured by a short probe).")
@click.option("--seed", type=count(0, 2**63 - 1), default=0, show_default=True, help="Seed for the performance set "
              "and the per-query sample choice (both recorded).")
@click.option("--sut-option", "sut_options", multiple=True, metavar="K=V",
              help="Option for the SUT, repeatable (e.g. threads=1). Each SUT lists its options in "
              "'tinyharness suts'.")
@click.option("--repeat", type=count(1, 100), default=1, show_default=True, metavar="K",
              help="Run the performance scenario K times (each from a fresh warm-up) and report "
              "each repetition and their spread; the headline figures are repetition 1's.")
@click.option("--query-timeout", type=finite(0, 86400, min_open=True),
              default=DEFAULT_QUERY_TIMEOUT_S, show_default=True, metavar="S",
              help="Fail the run when it makes no progress for S seconds: a query, an accuracy "
              "sample, a window or the offline query beyond its expected length (loading the "
              "model gets 10 times as long). The run happens in a child process that this one "
              "watches, so a hang, a crash or SIGTERM still leaves a marked run directory "
              "(TINYHARNESS_SUPERVISE=0 runs it in-process, without the watchdog).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Another quality metric for the accuracy pass, repeatable: a registered name "
              "(auc_ovr; classifiers always get top1, top5, macro_f1 and confusion) or "
              "evaluate:PATH, a Hugging Face Evaluate module in a local folder or script. The rule "
              "set's metric alone decides VALID.")
@click.option("--db", "db", type=click.Path(path_type=Path), metavar="PATH",
              help="Results database the run is indexed in (default: $TINYHARNESS_DB, else "
              "results.db in the user data directory; TINYHARNESS_DB=none: no index). The run "
              "directory stays the source of truth: 'tinyharness results index' rebuilds it.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
@click.option("--quiet", is_flag=True, help="No progress display and no text summary.")
def run(benchmark, sut, scenario, mode, model, dataset, output, min_duration, min_queries,
        expected_qps, seed, sut_options, repeat, query_timeout, metrics, db, as_json,
        quiet) -> None:
    """Run a benchmark on a SUT and write a run directory of schema-validated logs.

    The run directory (OUTPUT/<time>-<tag>_<benchmark>_<sut>_<scenario>, the tag random so
    that no two runs share a name) holds summary.json, summary.txt (with the test parameters,
    load time and first inference), detail.txt (:::MLLOG events), accuracy.json, latencies.npy
    and status.json. The rules behind it: 'tinyharness docs mlperf-tiny-rules'.
    A short window or offline query is recalibrated and re-run before a result is called
    INVALID; every performance result says how steady it was (warnings, not INVALID).

    Exit codes: 0 VALID, 1 INVALID, 2 usage or input error, 3 run failed (SUT, device or
    runtime error, a crash or a hang; the run directory says so), 130 interrupted (Ctrl-C or
    SIGTERM).
    """
    from .. import supervisor
    from ..runner import RunRequest

    benchmark, sut = benchmark_id(benchmark), sut_name(sut)
    request = RunRequest(benchmark=benchmark, sut=sut, scenario=scenario, mode=mode, model=model,
                         dataset=dataset, output=output, min_duration_s=min_duration,
                         min_query_count=min_queries, expected_qps=expected_qps, seed=seed,
                         sut_options=parse_sut_options(sut_options), repeat=repeat,
                         metrics=tuple(metrics))
    supervisor.last_run_dir = None
    if not supervisor.enabled():
        try:
            _run(request, as_json, quiet)
        finally:
            index_run(supervisor.last_run_dir, db)
    from .exits import handled

    code = supervisor.supervise(lambda: handled(lambda: _run(request, as_json, quiet)), query_timeout)
    index_run(supervisor.last_run_dir, db)
    sys.exit(code)


def index_run(run_dir: Path | None, db: Path | None) -> None:
    """Index the finished, failed or interrupted run in the results database; a database that
    cannot take it costs a warning, never the run's result or exit code."""
    import os

    if run_dir is None or (db is None and os.environ.get("TINYHARNESS_DB", "").lower() == "none"):
        return
    try:
        from ..db import ResultsDB

        with ResultsDB(db) as store:
            store.index_run(run_dir)
    except Exception as exc:  # noqa: BLE001 - the index is a convenience; the run directory is the record
        click.echo(f"warning: run not indexed in the results database ({type(exc).__name__}: "
                   f"{exc}); 'tinyharness results index {run_dir}' adds it later", err=True)


def _run(request, as_json: bool, quiet: bool) -> None:
    """The run itself (in the supervised child): exits 0 VALID, 1 INVALID, or raises."""
    from ..progress import Progress
    from ..runner import Run

    prepared = Run(request)
    with Progress(enabled=not quiet) as progress:
        summary, run_dir = prepared.execute(progress)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=1))
    elif not quiet:
        from ..results.render import text

        click.echo(text(summary), nl=False)
    click.echo(f"results: {run_dir.path}", err=True)
    sys.exit(0 if summary.valid else 1)


