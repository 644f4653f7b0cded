"""``tinyharness models``: list, fetch, verify and convert the benchmarks' reference models.

Only click is imported here; the commands import the rest, so ``tinyharness --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import UsageError, canonical, did_you_mean
from .types import choice

_STORE_HELP = """Where models are looked for, first hit wins: the embedded benchmarks' files, each folder
of TINYHARNESS_MODEL_MIRROR (os.pathsep-separated, <mirror>/<store_dir>/<file>), the per-user
cache (TINYHARNESS_CACHE_DIR), then the pinned upstream URL (TINYHARNESS_MODEL_BASE_URL replaces
its host). Every copy is checked against the rule set's sha256."""


def _entries(ids: tuple[str, ...], fmt: str | None = None, only_default: bool = False) -> list:
    """The model entries of the benchmarks named (all benchmarks when none), in rule-set order."""
    from ..benchmark import load_benchmarks

    known = load_benchmarks()
    ids = tuple(canonical(i, known) or i for i in ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UsageError(f"unknown benchmark {unknown[0]!r}{did_you_mean(unknown[0], sorted(known))}; "
                         f"known: {', '.join(sorted(known))}")
    chosen = [known[i] for i in dict.fromkeys(ids)] if ids else list(known.values())
    return [e for b in chosen for e in b.models
            if (fmt is None or e.format == fmt) and (e.default or not only_default)]


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
    from rich.text import Text

    from ..tables import Col, console, plain, print_table

    out = console()
    whole = plain(out)  # one line a record: the bad copy's path in its row; else below the table
    print_table((Col("benchmark", key=True), Col("file", key=True), "format", "precision", "default",
                 Col("size", nowrap=True, justify="right"), Col("sha256", nowrap=True), "local",
                 "source"),
                [(r["benchmark"], r["file"], r["format"], r["precision"], "yes" if r["default"] else "",
                  f"{r['size']:,}", r["sha256"][:8],
                  (f"bad checksum: {r['path']}" if whole else "bad checksum (below)")
                  if r["found"] == "bad checksum" else r["found"],
                  _source(r)) for r in rows], out=out)
    for r in rows if not whole else ():
        if r["found"] == "bad checksum":  # the path on a line of its own, never wrapped
            out.print(Text(f"{r['benchmark']} {r['file']}: bad checksum: {r['problem']}"))
            out.print(Text(f"  {r['path']}"), soft_wrap=True)


@models.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_models", is_flag=True,
              help="Every model of each benchmark, not only its default ones.")
@click.option("--format", "fmt", type=choice("tflite", "onnx"), help="Only models of this format.")
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
        _print_verify(rows)
    bad = sum(r["status"] == "MISMATCH" for r in rows)
    if bad:
        click.echo(f"tinyharness: {bad} local model file(s) do not match the rule set", err=True)
        sys.exit(1)


def _print_verify(rows: list[dict]) -> None:
    """One line a copy: benchmark, status, where, then its path, whole (a missing model: its file
    name); a mismatch's reason in a last column. On a terminal too narrow for that line, the path
    goes on a line of its own below the rest, and the reason below it."""
    from rich.cells import cell_len
    from rich.padding import Padding
    from rich.text import Text

    from ..tables import Col, column_widths, console, plain, print_table

    styles = {"OK": "green", "MISMATCH": "bold red", "missing": "yellow"}
    columns = [Col("benchmark", nowrap=True), Col("status", nowrap=True), Col("where", nowrap=True),
               Col("path", key=True)]
    problems = any(r["problem"] for r in rows)
    cells = [(r["benchmark"], Text(r["status"], styles[r["status"]]), r["where"] or "-",
              r["path"] or r["file"], *[r["problem"] or ""] * problems) for r in rows]
    columns += [Col("problem")] * problems
    out = console()
    if plain(out) or column_widths(columns, cells, out.width) is not None:
        print_table(columns, cells, out=out)
        return
    leads = [[Text(b), status.copy(), Text(where)] for b, status, where, *_ in cells]
    widths = [max(cell_len(lead[i].plain) for lead in leads) for i in range(3)]
    for lead, row in zip(leads, cells):
        for text, width in zip(lead[:-1], widths):
            text.pad_right(width - cell_len(text.plain))
        out.print(Text("  ").join(lead), soft_wrap=True)
        out.print(Text(f"  {row[3]}"), soft_wrap=True)
        if problems and row[4]:
            out.print(Padding(Text(row[4]), (0, 0, 0, 2), expand=False))


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


models.add_command(__import__("tinyharness.cli.export", fromlist=["export"]).export)  # click only
