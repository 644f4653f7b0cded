"""``tinyharness package``: run directories into an MLPerf Tiny submission tree (a folder or a
deterministic tar.gz). The result lines are :mod:`.result_lines`, the rules a run must meet
:mod:`.eligibility`; the package is checked by :mod:`.check` before it is written.

Layout::

    manifest.json                                         sha256 and size of every other file
    <division>/<submitter>/systems/<system>.json
    <division>/<submitter>/results/<system>/<model>/{accuracy,performance}/
        log.txt  results.txt  results.json                exactly these three
    <division>/<submitter>/tinyharness/<system>/<model>/<run>/   the run directories themselves

The run directories sit in the submitter folder beside results/ and systems/ (a top-level folder
other than closed/ or open/ is an error for the MLCommons checker; it does not look elsewhere).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..fileio import umask
from ..results.read import read_summary
from ..results.summary import RunSummary
from . import archive, check, eligibility, outputs, result_lines, system_json
from .layout import EMBEDDED, NAME, SHORT, TESTS
from .runfiles import read_run


# -- what goes into a test folder ---------------------------------------------------------------
# results.json is the list of steps the MLCommons runner writes (mlcommons/tiny benchmark/runner:
# main.py dumps the list script.py's loop returns; docs/mlperf-tiny-rules.md §9.1). One step per
# inference: the label-file row its download step read (strings, as csv.DictReader gives them;
# bytes_to_send and stride only for AD), total_length (AD: the file's windows, 1 in performance
# mode; else null), the infer step's results and the runner's mode letter. The runner's
# start_time and end_time (the device timer's m-lap-us readings) are not recorded by tinyharness
# and are left out; the run folder beside results/ holds everything else (attempts, short runs).
MODE = {"accuracy": "a", "performance": "p"}  # the runner's --mode letters


def _step(entry_file: str, label: int | None, classes: int, test: str, infer: dict,
          window: tuple[str, str | None, int] | None = None) -> dict[str, Any]:
    """One step of the runner's results.json; ``window``: (bytes_to_send, stride, total_length)."""
    bytes_to_send, stride, total_length = window or (None, None, None)
    return {"file": entry_file, "classes": str(classes), "class": None if label is None else str(label),
            "bytes_to_send": bytes_to_send, "stride": stride, "total_length": total_length,
            "infer": infer, "mode": MODE[test]}


def _accuracy_log(run: Path) -> list[dict[str, Any]]:
    """accuracy.json in dataset order (label-file rows; an AD file's windows in file order)."""
    if not (run / "accuracy.json").is_file():
        return []
    return sorted(json.loads((run / "accuracy.json").read_text()), key=lambda e: e["qsl_idx"])


def _stride(bench, windows: int) -> str | None:
    """An AD file's window stride in bytes, as its label-file row states it: from the rule set's
    file size and the file's window count (None where they do not determine it)."""
    span = (bench.file_bytes or 0) - bench.sample_bytes
    if windows > 1 and span > 0 and span % (windows - 1) == 0:
        return str(span // (windows - 1))
    return None


def accuracy_json(run: Path, summary: RunSummary, bench) -> list[dict[str, Any]]:
    """One step per inference of the accuracy pass (``infer 1 0``), in label-file order: its
    (dequantized) outputs or, for AD, one step per window with its score (the runner averages a
    file's windows itself)."""
    log = _accuracy_log(run)
    spec = summary.accuracy.output
    dtype = np.dtype(spec.dtype).newbyteorder("<")
    windows: dict[str, int] = {}
    for entry in log:
        windows[entry["file"]] = windows.get(entry["file"], 0) + 1
    steps = []
    for entry in log:
        if "score" in entry:
            results = [float(entry["score"])]
        else:
            raw = np.frombuffer(bytes.fromhex(entry["data"]), dtype=dtype).astype(np.float64)
            results = [float(v) for v in ((raw - spec.zero_point) * spec.scale if spec.scale else raw)]
        count = windows[entry["file"]]
        window = (str(bench.sample_bytes), _stride(bench, count), count) if bench.windowed else None
        steps.append(_step(entry["file"], entry.get("label"), len(bench.labels), "accuracy",
                           {"results": results, "total_inferences": 1, "iterations": 1, "warmups": 0},
                           window))
    return steps


def performance_json(run: Path, summary: RunSummary, bench,
                     labels_from: Path | None = None) -> list[dict[str, Any]]:
    """One step per window (``infer N W``): N iterations after W warm-ups, elapsed_time in whole
    microseconds and throughput N / elapsed seconds, as the runner computes them. The results of
    the window's last inference are not recorded (``results`` empty, ``total_inferences`` 0).
    Labels (and the AD stride) come from the accuracy log of ``labels_from`` (default: ``run``)."""
    from ..scenarios.base import WARMUP

    log = _accuracy_log(labels_from or run)
    labels = {e["file"]: e.get("label") for e in log}
    counts: dict[str, int] = {}
    for entry in log:
        counts[entry["file"]] = counts.get(entry["file"], 0) + 1
    steps = []
    for w in summary.windows.details:
        elapsed_us = round(w.runtime_s * 1e6)
        infer = {"results": [], "elapsed_time": elapsed_us, "total_inferences": 0,
                 "iterations": w.inferences, "warmups": WARMUP,
                 "throughput": w.inferences / (elapsed_us / 1_000_000) if elapsed_us > 0 else 0}
        window = (str(bench.sample_bytes), _stride(bench, counts.get(w.file, 0)), 1) if bench.windowed \
            else None
        steps.append(_step(w.file, labels.get(w.file), len(bench.labels), "performance", infer, window))
    return steps


def classifier_auc(steps: list[dict[str, Any]]) -> float | None:
    """The AUC the runner prints beside a classifier's top-1, from the accuracy steps as its
    ``summarize_result`` reads them (one output row per file: :func:`scoring.multiclass_roc_auc`;
    a file inferred more than once: its rows normalized and averaged first). None where it has
    none (a class without files, outputs that sum to 0)."""
    from ..scoring import multiclass_roc_auc

    files: dict[str, tuple[int, list[list[float]]]] = {}
    for step in steps:
        if step["class"] is None:
            return None
        files.setdefault(step["file"], (int(step["class"]), []))[1].append(step["infer"]["results"])
    rows = []
    for _, outputs in files.values():
        if len(outputs) > 1 and any(sum(row) == 0 for row in outputs):
            return None
        rows.append(outputs[0] if len(outputs) == 1 else
                    np.mean([[v / sum(row) for v in row] for row in outputs], axis=0))
    try:
        return multiclass_roc_auc([label for label, _ in files.values()], rows)
    except ValueError:
        return None


def log_txt(run: Path, summary: RunSummary, results_txt: str) -> str:
    head = (f"tinyharness run {run.name}: {summary.benchmark} on {summary.sut}, "
            f"{summary.scenario}, mode {summary.mode}\n")
    parts = [head] + [f"==> {name} <==\n{(run / name).read_text(encoding='utf-8')}"
                      for name in ("summary.txt", "detail.txt")]
    return "\n".join(parts) + f"\n==> results.txt <==\n{results_txt}"


def write_test_folder(folder: Path, test: str, run: Path, summary: RunSummary, bench,
                      labels_from: Path | None = None) -> None:
    """log.txt, results.txt and results.json of ``test``; ``labels_from``: the run whose accuracy
    log labels the performance windows' files (default: ``run``, a mode-all run)."""
    if test == "accuracy":
        steps = accuracy_json(run, summary, bench)
        auc = classifier_auc(steps) if bench.metric == "top1" else None
    else:
        steps, auc = performance_json(run, summary, bench, labels_from), None
    txt = result_lines.render(summary, test, auc=auc)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.txt").write_text(txt, encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(steps), encoding="utf-8")  # as the runner dumps it
    (folder / "log.txt").write_text(log_txt(run, summary, txt), encoding="utf-8")


# -- building a package -----------------------------------------------------------------------
@dataclass
class LoadedRun:
    path: Path
    summary: RunSummary
    files: list[str]  # what is copied into the package: status.json and the files it lists


def _one_line(path: Path, problems: list[str]) -> UsageError:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return UsageError(f"run {path.name}: {problems[0]}{more}")


def load_run(path: Path, division: str) -> LoadedRun:
    """A finished, sound MLPerf Tiny run directory that can stand as a result in ``division``,
    or a one-line UsageError naming it."""
    from ..logs import check_run_directory

    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"run {path}: not a run directory")
    problems = read_run(path).problems  # first: no FIFO, link, oversized or hostile file is opened
    problems = problems or check_run_directory(path)
    if problems:
        raise _one_line(path, problems)
    summary = read_summary(path)
    problems = [message for _, message in eligibility.problems(summary, division)]
    if problems:
        raise _one_line(path, problems)
    status = json.loads((path / "status.json").read_text(encoding="utf-8"))
    files = ["status.json", *status["files"]]
    for name in files:
        if "/" in name or "\\" in name or name in ("", ".", ".."):  # the copy must stay in the run folder
            raise UsageError(f"run {path.name}: status.json lists {name[:100]!r}, not a file of the run folder")
        if not (path / name).is_file() or (path / name).is_symlink():
            raise UsageError(f"run {path.name}: {name} is missing or not a regular file")
    return LoadedRun(path, summary, files)


def _free(target: Path) -> Path:
    """Make and return ``target``, or ``target-2``, ``-3``... when a run of the same name (made in
    the same second in another --output folder) is already there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, len(os.listdir(target.parent)) + 2):
        path = target if n == 1 else target.with_name(f"{target.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable: one of n+1 names is free among n folders")


def plan(runs: list[LoadedRun], systems: dict[str, Path]) -> dict[tuple[str, str], dict[str, LoadedRun]]:
    """{(system id, benchmark): {test: run}}: each SUT's runs under its system, accuracy and
    performance of one benchmark from one run (mode all) or two (same model)."""
    owners: dict[str, str] = {}
    for sut, file in systems.items():
        other = owners.setdefault(file.stem, sut)
        if other != sut:
            raise UsageError(f"runs from SUTs {other!r} and {sut!r} would share system {file.stem!r}; "
                             "give one --system SUT=FILE per SUT")
    groups: dict[tuple[str, str], dict[str, LoadedRun]] = {}
    for run in runs:
        key = (systems[run.summary.sut].stem, run.summary.benchmark)
        for test in run.summary.tests:
            other = groups.setdefault(key, {}).get(test)
            if other is not None:
                raise UsageError(f"run {run.path.name}: {key[1]} {test} results on {run.summary.sut} "
                                 f"also come from run {other.path.name}; give only one")
            groups[key][test] = run
    for (system, bench), tests in groups.items():
        for test in TESTS:
            if test not in tests:
                given = next(iter(tests.values()))
                raise UsageError(f"run {given.path.name}: {bench} has no {test} run on "
                                 f"{given.summary.sut}; MLPerf Tiny needs accuracy and performance")
        acc, perf = tests["accuracy"], tests["performance"]
        if acc.summary.model.sha256 != perf.summary.model.sha256:
            raise UsageError(f"run {perf.path.name}: its model differs from the one of accuracy run "
                             f"{acc.path.name} (sha256); both must run the same model")
    return groups


def build(run_paths: list[Path], submitter: str, division: str, system_files: list[tuple[str | None, Path]],
          output: Path) -> Path:
    """Build the package at ``output`` (a folder, or a tar.gz when the name ends so), after
    checking it with the same rules as ``tinyharness check``."""
    division = division.lower()
    if division not in ("closed", "open"):
        raise UsageError(f"--division must be closed or open, not {division!r}")
    if not NAME.match(submitter):
        raise UsageError(f"--submitter {submitter!r}: use letters, digits, '.', '_' and '-' only")
    output = outputs.prepare(Path(output))  # before any work: /proc, a file's child, a folder
    runs = [load_run(p, division) for p in run_paths]
    if not runs:
        raise UsageError("give at least one run directory")
    seen: dict[Path, Path] = {}
    for run in runs:  # the same run twice is a mistake; two runs that share a name are not
        first = seen.setdefault(run.path.resolve(), run.path)
        if first is not run.path:
            raise UsageError(f"run {run.path} is given twice (also as {first}); give each run once")
    systems = assign_systems(runs, system_files)
    docs = {file.stem: system_doc(file, submitter, division) for file in systems.values()}
    groups = plan(runs, systems)
    with outputs.writing(output):
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name[:64]}.", dir=output.parent))
        try:
            stage(staging / division / submitter, docs, groups)
            archive.write_manifest(staging)
            found = check.Checker(staging).run()
            if found:  # a bug here, not in the runs: they passed the same rules above
                more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
                raise UsageError(f"the package would not pass 'tinyharness check': {found[0]}{more}")
            if archive.is_archive_name(output):
                archive.write_tar_gz(staging, output)
            else:
                os.chmod(staging, 0o777 & ~umask())  # mkdtemp makes it 0700
                os.rename(staging, output)
        finally:  # on any exception, KeyboardInterrupt included: no partial package is left
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return output


def assign_systems(runs: list[LoadedRun], system_files: list[tuple[str | None, Path]]) -> dict[str, Path]:
    """{SUT: system description file}: the file given for the SUT, else the plain --system one."""
    systems = {}
    default = next((f for sut, f in system_files if sut is None), None)
    for run in runs:
        sut = run.summary.sut
        file = next((f for s, f in system_files if s == sut), default)
        if file is None:
            raise UsageError(f"run {run.path.name}: no --system for SUT {sut!r}; give --system {sut}=FILE")
        if not NAME.match(Path(file).stem):
            raise UsageError(f"system file {file}: its name (the system id) may hold letters, digits, "
                             "'.', '_' and '-' only")
        systems[sut] = Path(file)
    return systems


def system_doc(file: Path, submitter: str, division: str) -> dict[str, Any]:
    """The system description as packaged: Submitter and Division filled in from the options
    (a file that says otherwise is refused)."""
    doc = dict(system_json.load(file, division))
    for key, value in (("Submitter", submitter), ("Division", system_json.DIVISIONS[division])):
        if doc.get(key) and doc[key].lower() != value.lower():
            raise UsageError(f"system description {file}: {key} is {doc[key]!r}, the package says {value!r}")
        doc[key] = value
    return doc


def stage(top: Path, docs: dict[str, dict[str, Any]],
          groups: dict[tuple[str, str], dict[str, LoadedRun]]) -> None:
    """Write the submitter folder ``top``: system descriptions, test folders and the runs."""
    from ..benchmark import load_benchmarks

    benchmarks = load_benchmarks()
    for system, doc in docs.items():
        (top / "systems").mkdir(parents=True, exist_ok=True)
        (top / "systems" / f"{system}.json").write_bytes(system_json.render(doc))
    for (system, bench_id), tests in sorted(groups.items()):
        short, bench = SHORT[bench_id], benchmarks[bench_id]
        for test, run in tests.items():
            write_test_folder(top / "results" / system / short / test, test, run.path, run.summary, bench,
                              tests["accuracy"].path)
        for run in {id(r): r for r in tests.values()}.values():  # a mode-all run once
            target = _free(top / EMBEDDED / system / short / run.path.name)
            for name in run.files:
                shutil.copyfile(run.path / name, target / name, follow_symlinks=False)
