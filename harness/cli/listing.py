"""``tinyharness suts`` and ``tinyharness benchmarks``: what can be run, and what is present."""

from __future__ import annotations

import json

import click

from ..errors import UsageError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def suts(as_json) -> None:
    """List the SUTs from all plugins: runtime version, model formats, devices, scenarios, options."""
    from ..plugins import registry

    reg = registry()
    rows = []
    for name, cls in sorted(reg.suts.items()):
        rows.append({"name": name, "summary": cls.summary, "plugin": reg.origin[name],
                     "runtime": cls.runtime, "version": cls.runtime_version(),
                     "install": f"pip install 'tinyharness[{cls.extra}]'" if cls.extra else None,
                     "model_formats": list(cls.model_formats), "devices": list(cls.devices),
                     "scenarios": [str(s) for s in cls.scenarios], "timing": str(cls.timing),
                     "options": cls.options()})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from ..tables import Col, print_table

    print_table((Col("SUT", key=True), "runtime", "version", "formats", "devices",
                 "scenarios", "options"),
                [(r["name"], r["runtime"], r["version"] or f"not installed: {r['install']}",
                  ", ".join(r["model_formats"]), ", ".join(r["devices"]), ", ".join(r["scenarios"]),
                  ", ".join(r["options"]) or "-") for r in rows])


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def benchmarks(as_json) -> None:
    """List the benchmarks: task, quality target, run rules and whether their data is present."""
    from ..benchmark import load_benchmarks
    from ..model_store import ModelStore

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
                     **_dataset_state(b),
                     "min_duration_s": b.single_stream.min_duration_s,
                     "windows": b.single_stream.windows, "window_min_s": b.single_stream.window_min_s})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from ..tables import Col, print_table

    print_table((Col("benchmark", key=True), "task", "target", "models", "dataset",
                 Col("windows", nowrap=True)),
                [(r["id"], r["task"], f"{r['metric']} >= {r['target']:g}",
                  ", ".join(f"{k}{'' if v else ' (missing)'}" for k, v in r["model_formats"].items()),
                  r["dataset"], f"{r['windows']} x {r['window_min_s']:g} s") for r in rows])


def _dataset_state(benchmark) -> dict:
    """Whether the default dataset can be run: ``present`` only when it opens (every file its
    labels name is there, of the right size), else ``missing`` (no labels file) or
    ``incomplete: <why>``."""
    from ..dataset import Dataset

    if not (benchmark.default_dataset() / benchmark.label_file).is_file():
        return {"dataset_present": False, "dataset": "missing"}
    try:
        dataset = Dataset.for_benchmark(benchmark)
    except UsageError as exc:
        return {"dataset_present": False, "dataset": f"incomplete: {exc}"}
    files = len({entry.file for entry in dataset.entries})
    return {"dataset_present": True, "dataset": f"present ({files:,} files)", "dataset_files": files}
