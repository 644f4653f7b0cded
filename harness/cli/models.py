"""``tinyharness models``: list, fetch, verify and convert the benchmarks' reference models.

Only click is imported here; the commands import the rest, so ``tinyharness --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import UsageError

_STORE_HELP = """Where models are looked for, first hit wins: the embedded benchmarks' files, each folder
of TINYHARNESS_MODEL_MIRROR (os.pathsep-separated, <mirror>/<store_dir>/<file>), the per-user
cache (TINYHARNESS_CACHE_DIR), then the pinned upstream URL (TINYHARNESS_MODEL_BASE_URL replaces
its host). Every copy is checked against the rule set's sha256."""


def _entries(ids: tuple[str, ...], fmt: str | None = None, only_default: bool = False) -> list:
    """The model entries of the benchmarks named (all benchmarks when none), in rule-set order."""
    from ..benchmark import load_benchmarks

    known = load_benchmarks()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UsageError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(sorted(known))}")
    chosen = [known[i] for i in dict.fromkeys(ids)] if ids else list(known.values())
    return [e for b in chosen for e in b.models
            if (fmt is None or e.format == fmt) and (e.default or not only_default)]


def _print_table(columns: tuple[str, ...], rows: list[tuple], fold: tuple[str, ...]) -> None:
    """A borderless rich table; the ``fold`` columns (paths) wrap and keep some width. Cells are
    plain text (a file name is never read as markup) or rich renderables."""
    from rich import box
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    table = Table(*(Column(c, overflow="fold") if c in fold else Column(c)
                    for c in columns), box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row))
    Console().print(table)


def _source(row: dict):
    """Where a model comes from, short: upstream repo@commit as a terminal link to the full URL
    (which --json prints), the model it was converted from, or "embedded"."""
    from rich.text import Text

    if row["url"]:
        return Text(f"{row['source']['repo']}@{row['source']['commit'][:7]}", style=f"link {row['url']}")
    return f"converted from {row['converted_from']}" if row["converted_from"] else "embedded"


@click.group(help=f"List, fetch, verify and convert the benchmarks' reference models.\n\n{_STORE_HELP}")
def models() -> None:
    pass


@models.command("list")
@click.option("--benchmark", "benchmark", metavar="ID", help="Only this benchmark's models.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_models(benchmark, as_json) -> None:
    """List every model of every benchmark: format, precision, checksum, where a local copy is
    (embedded, mirror, cache, missing, or a copy with a bad checksum) and where it comes from."""
    from ..model_store import ModelStore

    store, rows = ModelStore(), []
    for e in _entries(() if benchmark is None else (benchmark,)):  # "" is no benchmark, not all
        copies = store.copies(e)
        first = copies[0] if copies else None  # the copy a run would use (or fail on)
        found = "missing" if first is None else "bad checksum" if first.problem else first.where
        rows.append({"benchmark": e.benchmark, "file": e.file, "format": e.format,
                     "precision": e.precision, "default": e.default, "size": e.size,
                     "sha256": e.sha256, "found": found, "path": str(first.path) if first else None,
                     "problem": first.problem if first else None, "url": e.url(store.base_url),
                     "source": e.source, "converted_from": e.converted_from})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    _print_table(("benchmark", "file", "format", "precision", "default", "size", "sha256", "local",
                  "source"),
                 [(r["benchmark"], r["file"], r["format"], r["precision"], "yes" if r["default"] else "",
                   f"{r['size']:,}", r["sha256"][:8],
                   f"bad checksum: {r['path']}" if r["found"] == "bad checksum" else r["found"],
                   _source(r)) for r in rows],
                 fold=("local", "source"))


@models.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_models", is_flag=True,
              help="Every model of each benchmark, not only its default ones.")
@click.option("--format", "fmt", type=click.Choice(["tflite", "onnx"]), help="Only models of this format.")
@click.option("--force", is_flag=True, help="Download again into the cache even when a local copy "
              "exists (models with an upstream URL).")
def fetch(ids, all_models, fmt, force) -> None:
    """Resolve the default models of the benchmarks given (all benchmarks when none), downloading
    what is not local, and print where each one came from.

    Models without an upstream URL (the ONNX conversions) must be in a mirror or the cache; those
    missing are reported and make the exit code 2, after the others are fetched."""
    from ..model_store import Found, ModelStore

    store, failed = ModelStore(), 0
    entries = _entries(ids, fmt, only_default=not all_models)
    for e in entries:
        try:
            if force and e.url() is not None:
                found = Found(store.download(e), "download")
            else:
                found = store.resolve(e)
        except UsageError as exc:
            failed += 1
            click.echo(f"{e.benchmark} {e.file}: {exc}", err=True)
            continue
        where = "downloaded to" if found.where == "download" else f"{found.where}:"
        click.echo(f"{e.benchmark} {e.file}: {where} {found.path}")
    if failed:
        raise UsageError(f"{failed} of {len(entries)} models could not be fetched (see above)")


@models.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def verify(ids, as_json) -> None:
    """Check every local copy (embedded, mirror, cache) of the models of the benchmarks given (all
    when none) against the rule set's size and sha256: OK, MISMATCH or missing. Exit code 1 when
    any copy mismatches."""
    from ..model_store import ModelStore

    store, rows = ModelStore(), []
    for e in _entries(ids):
        copies = store.copies(e)
        for c in copies:
            rows.append({"benchmark": e.benchmark, "file": e.file,
                         "status": "MISMATCH" if c.problem else "OK", "where": c.where,
                         "path": str(c.path), "problem": c.problem})
        if not copies:
            rows.append({"benchmark": e.benchmark, "file": e.file, "status": "missing", "where": None,
                         "path": None, "problem": None})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    else:
        _print_table(("benchmark", "file", "status", "where", "path"),
                     [(r["benchmark"], r["file"], r["status"], r["where"] or "-",
                       f"{r['path']} ({r['problem']})" if r["problem"] else r["path"] or "-")
                      for r in rows], fold=("path",))
    bad = sum(r["status"] == "MISMATCH" for r in rows)
    if bad:
        click.echo(f"tinyharness: {bad} local model file(s) do not match the rule set", err=True)
        sys.exit(1)


@models.command()
@click.argument("target", metavar="BENCHMARK|MODEL.tflite")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder for the .onnx files (default: the model cache's converted/<store_dir>/, "
              "or converted/local/ for a MODEL.tflite path).")
@click.option("--opset", type=click.IntRange(min=1), default=17, show_default=True,
              help="ONNX opset (the pinned ONNX models use 17).")
@click.option("--python", "python", metavar="PATH", envvar="TINYHARNESS_CONVERT_PYTHON",
              show_envvar=True, help="Python that has tf2onnx and TensorFlow (the 'convert' extra); "
              "default: this one.")
def convert(target, output, opset, python) -> None:
    """Convert a benchmark's .tflite models to ONNX with tf2onnx (each ONNX model the rule set says
    is converted from a .tflite), or one MODEL.tflite file to <stem>.onnx.

    tf2onnx runs in a child process, so TensorFlow is never loaded here. The NHWC layout is kept and
    int8 models become QDQ graphs; the converter's versions, the opset and the source's sha256 go
    into the model's metadata. tf2onnx's output differs byte-wise from run to run, so the sha256
    rarely equals the rule set's pinned one: run the result with --model PATH."""
    from ..convert import convert as convert_model
    from ..convert import converter_versions, plan
    from ..model_store import ModelStore

    python = python or sys.executable
    store = ModelStore()
    jobs, notes = plan(target, output, store)  # checks the target; downloads nothing yet
    versions = converter_versions(python)
    for job in jobs:
        done = convert_model(job, python, opset, versions, store)
        if job.pinned is None:
            pinned = "no pinned ONNX checksum for this source"
        elif done.sha256 == job.pinned.sha256:
            pinned = f"equals the pinned {job.pinned.file}"
        else:
            pinned = (f"differs from the pinned {job.pinned.file} ({job.pinned.sha256[:16]}...; "
                      "expected, tf2onnx output is not byte-reproducible)")
        click.echo(f"{done.source.name} -> {job.output}\n  sha256 {done.sha256}: {pinned}")
    click.echo(f"converted with tf2onnx {versions['tf2onnx']} (tensorflow {versions['tensorflow']}), "
               f"opset {opset}; use a file with --model PATH")
    for note in notes:  # after the work, so that an error stays the only line on failure
        click.echo(note, err=True)
