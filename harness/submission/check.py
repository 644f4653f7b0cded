"""``tinyharness check``: the MLPerf Tiny rules on any results tree, and tinyharness's own on a
package it made.

Each broken rule is one :class:`Violation` (``path-in-tree: rule: message``); all of them are
collected, never only the first. What the MLCommons checker would only warn about, or passes over,
is a note, never a violation. The rules:

- the MLCommons ones, of the round the tree follows (:mod:`.versions`: ``--version``, else the
  round a folder of the path names, else the newest whose layout fits), on the tree, the test
  folders, the system descriptions and the result lines (:mod:`.mlcommons_rules`);
- on a tinyharness package (a tree with ``manifest.json``): the manifest, tinyharness's stricter
  layout and system description schema, and the embedded runs under ``tinyharness/``, read
  through the run model, judged by the rules the packager applies (:mod:`.eligibility`) and
  every figure they report recomputed from their records (:mod:`.recompute`). A tree without
  them is "not a tinyharness package": a note, and nothing of it is recomputed.

Nothing in a tree is trusted: whatever it holds becomes violations, never an exception; only
regular files are opened, read bounded (:mod:`.runfiles`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fileio import read_bounded
from ..results.summary import RunSummary
from . import eligibility, recompute, system_json, versions
from .archive import FILE_LIMIT, MANIFEST, Limits, Violation, opened
from .inventory import inventory, is_dir, listing, verify_manifest
from .layout import EMBEDDED
from .mlcommons_rules import TreeRules
from .runfiles import parse_json, read_run

Provider = tuple[str, RunSummary]  # (embedded run folder, relative to the package; its summary)


def _close(a: float, b: float, tolerance: float) -> bool:
    """Within ``tolerance``; never for a NaN (JSON as Python reads it allows one in a summary)."""
    return abs(a - b) <= tolerance


@dataclass
class Report:
    found: list[Violation]
    notes: list[Violation] = field(default_factory=list)
    version: str = versions.NEWEST
    version_from: str = ""  # why that round: "--version", the path, or detected
    package: bool = False  # a tinyharness package (manifest.json at the top)


def check_tree(path: Path, limits: Limits = Limits(), version: str | None = None,
               submitter: str | None = None) -> Report:
    """Every violation and note of a tree, folder or archive (an archive is never trusted: see
    archive.py), under ``version``'s rules (None: see :meth:`Checker.resolve_version`)."""
    path, division = Path(path), None
    if path.is_dir() and not any(os.path.lexists(path / n) for n in (MANIFEST, *versions.DIVISIONS)):
        # a division or a submitter folder: checked in the tree around it, alone
        if path.name in versions.DIVISIONS:
            path, division = path.parent, path.name
        elif path.parent.name in versions.DIVISIONS and path.parent.parent != path.parent:
            path, division, submitter = path.parent.parent, path.parent.name, path.name
    with opened(path, limits) as (root, found):
        if root is None:
            if not found:
                found.append(Violation(path.name, "layout", "the archive holds no files"))
            return Report(found, version=version or versions.from_path(path) or versions.NEWEST)
        checker = Checker(root, version=version, submitter=submitter, named=path, division=division)
        found += checker.run()
        return Report(found, checker.notes, checker.rules.name, checker.version_from, checker.package)


def check_package(path: Path, limits: Limits = Limits(), version: str | None = None) -> list[Violation]:
    """Every violation of a tree, folder or archive (the notes are in :func:`check_tree`)."""
    return check_tree(path, limits, version).found


class Checker(TreeRules):
    def __init__(self, root: Path, version: str | None = None, submitter: str | None = None,
                 named: Path | None = None, division: str | None = None) -> None:
        self.root = root
        self.named = Path(named) if named is not None else root  # for the round a path names
        self.version = version
        self.only = submitter  # check this submitter folder alone (the MLCommons --submitter)
        self.only_division = division  # ... in this division alone
        self.found: list[Violation] = []
        self.notes: list[Violation] = []
        self.files: list[str] = []  # every regular file, relative POSIX path
        self.fileset: set[str] = set()
        self.texts: dict[str, str | None] = {}
        self.judged: set[str] = set()  # embedded runs already judged by the eligibility rules
        self.figures: dict[str, recompute.Figures] = {}  # run folder -> what its records give
        self.mappings: dict[str, dict] = {}
        self.rules = versions.VERSIONS[version or versions.NEWEST]
        self.version_from = "--version" if version else ""
        self.package = os.path.lexists(root / MANIFEST)  # whatever it is, verify_manifest says
        from ..benchmark import load_benchmarks

        self.benchmarks = load_benchmarks()

    def add(self, path: str, rule: str, message: str) -> None:
        self.found.append(Violation(path, rule, message))

    def note(self, path: str, message: str) -> None:
        self.notes.append(Violation(path, "note", message))

    def run(self) -> list[Violation]:
        self.walk()
        self.mappings = self.model_mappings()
        self.resolve_version()
        top = listing(self.root)
        if self.package or not self.recognizable(top):
            self.manifest()  # a tree that is neither a package nor an MLPerf Tiny tree: both missing
        else:
            self.note(".", "not a tinyharness package (no manifest.json): checked by the MLCommons rules "
                           "alone; no checksums to verify, no embedded runs to recompute")
        for name in top:
            if name == MANIFEST and self.package:
                continue
            if self.only_division is not None and name != self.only_division:
                continue
            if name in versions.DIVISIONS and is_dir(self.root / name):
                for submitter in listing(self.root / name):
                    if self.only is not None and submitter != self.only:
                        continue
                    if is_dir(self.root / name / submitter):
                        self.submitter(name, submitter)
                    else:
                        self.add(f"{name}/{submitter}", "layout", "expected a submitter folder")
            elif self.package:
                self.add(name, "layout", "only closed/, open/ and manifest.json belong at the top")
            elif is_dir(self.root / name) and name not in versions.IGNORED_TOP:
                self.add(name, "layout", "not a division folder: only closed/ and open/ hold results (the "
                                         "MLCommons checker reports an invalid division)")
        if not any(n in versions.DIVISIONS for n in top):
            self.add(".", "layout", "no closed/ or open/ division folder")
        elif self.only is not None and not any(is_dir(self.root / d / self.only) for d in top
                                               if d in versions.DIVISIONS):
            self.add(".", "layout", f"no submitter folder {self.only!r} in closed/ or open/")
        if self.only is not None or self.only_division is not None:
            self.found = [v for v in self.found if self.mine(v.path)]
            self.notes = [v for v in self.notes if self.mine(v.path)]
        return self.found

    def mine(self, path: str) -> bool:
        """A path a check of one division or submitter reports: theirs, or the tree's own."""
        parts = path.split("/")
        if parts[0] not in versions.DIVISIONS:
            return self.only_division is None or path == "."
        return (self.only_division in (None, parts[0])
                and (self.only is None or len(parts) < 2 or parts[1] == self.only))

    def recognizable(self, top: list[str]) -> bool:
        """An MLPerf Tiny tree: a division folder holding a submitter with results/ or systems/."""
        return any(is_dir(self.root / d / s / part) for d in top if d in versions.DIVISIONS
                   for s in listing(self.root / d) for part in ("results", "systems"))

    def resolve_version(self) -> None:
        """``--version``; else the round a folder of the path names; else the newest that fits."""
        if self.version:
            return
        named = versions.named_in(self.named.absolute())
        if named:
            self.rules, self.version_from = versions.VERSIONS[named[0]], f"named by {named[1]!r} in the path"
            return
        self.rules = versions.VERSIONS[versions.detect(self.files, self.mappings)]
        self.version_from = "detected: the newest round whose layout fits the tree"

    # -- files ------------------------------------------------------------------------------
    def walk(self) -> None:
        self.files, found = inventory(self.root, () if self.package else versions.IGNORED_TOP)
        self.fileset = set(self.files)
        self.found += found

    def manifest(self) -> None:
        self.found += verify_manifest(self.root, self.files)

    def text(self, rel: str) -> str | None:
        """A regular file's UTF-8 text (a violation and None when it is not one); a file over
        the per-file limit is never read (inventory reports it)."""
        if rel not in self.texts:
            self.texts[rel] = None
            if rel not in self.fileset:
                return None
            try:
                self.texts[rel] = read_bounded(self.root / rel, FILE_LIMIT, rel).decode("utf-8")
            except UnicodeDecodeError as exc:
                self.add(rel, "utf8", f"not UTF-8 text (byte {exc.start})")
            except UsageError as exc:
                self.add(rel, "layout", str(exc).removeprefix(f"{rel} {self.root / rel}").lstrip(": "))
        return self.texts[rel]

    def json(self, rel: str) -> Any:
        text = self.text(rel)
        if text is None:
            return None
        doc, problem = parse_json(text, rel)
        if problem:
            self.add(rel, "json", problem)
        return doc

    # -- a package's system descriptions: every one, by tinyharness's schema ----------------------
    def package_systems(self, division: str, submitter: str) -> set[str]:
        base = f"{division}/{submitter}/systems"
        found = set()
        for rel in self.files:
            if not rel.startswith(base + "/") or "/" in rel[len(base) + 1:] or not rel.endswith(".json"):
                continue
            found.add(rel[len(base) + 1:-5])
            doc = self.json(rel)
            if doc is None:
                continue
            for rule, message in system_json.problems(doc, division):
                self.add(rel, rule, message)
            value = doc.get("Division") if isinstance(doc, dict) else None  # the packager writes it
            if isinstance(value, str) and value and value.lower() != division.lower():
                self.add(rel, "system-json", f"Division says {value!r} but the package puts it under "
                                             f"{division!r}")
        return found

    # -- embedded runs (the TreeRules hooks) ------------------------------------------------------
    def embedded(self, division: str, submitter: str, system: str) -> dict[str, dict[str, RunSummary | None]] | None:
        """{model folder: {run folder rel path: summary (None when unusable)}}, each run checked;
        None when the submitter has no tinyharness/ folder (a note says so, once)."""
        top = self.root / division / submitter / EMBEDDED
        if not is_dir(top):
            where = f"{division}/{submitter}"
            if self.package and not any(n.path == where and EMBEDDED in n.message for n in self.notes):
                self.note(where, f"no embedded runs ({EMBEDDED}/): the results are checked by the MLCommons "
                                 "rules alone, nothing is recomputed")
            return None
        base = top / system
        found: dict[str, dict[str, RunSummary | None]] = {}
        if not is_dir(base):
            return found
        for model in listing(base):
            for run in listing(base / model) if is_dir(base / model) else []:
                rel = (base / model / run).relative_to(self.root).as_posix()
                found.setdefault(model, {})[rel] = self.embedded_run(rel)
        return found

    def leftover_runs(self, division, submitter, system, runs, present) -> None:
        for model in sorted(set(runs) - set(present.values())):
            self.add(f"{division}/{submitter}/{EMBEDDED}/{system}/{model}", "layout",
                     f"embedded runs for {model!r}, which has no results/{system}/{model}/ folder")

    def embedded_run(self, rel: str) -> RunSummary | None:
        """The run's typed summary when the run folder is sound, else None (and violations);
        every figure it reports is then recomputed from its records."""
        from ..logs import check_run_directory

        path = self.root / rel
        if not is_dir(path):
            self.add(rel, "layout", "expected an embedded run folder")
            return None
        files = read_run(path)  # first: the run checker would block on a FIFO, follow a link
        problems = list(files.problems)
        if not problems:
            try:
                problems = check_run_directory(path)
            except Exception as exc:  # a hostile summary can break the run checker's assumptions
                problems = [f"summary.json: cannot be checked ({type(exc).__name__}: {exc})"]
        for problem in problems:
            self.run_dir(rel, problem)
        status = files.docs.get("status.json")
        if isinstance(status, dict) and isinstance(status.get("files"), list):
            known = {"status.json", *map(str, status["files"])}
            for name in listing(path):
                if name not in known:
                    self.add(f"{rel}/{name}", "run-dir", "not one of the run's files (status.json)")
        doc = files.docs.get("summary.json")
        if problems or not isinstance(doc, dict):
            return None
        try:
            summary = RunSummary.from_dict(doc, "summary.json")
        except UsageError as exc:  # schema-valid, yet not a summary this tinyharness reads
            self.run_dir(rel, str(exc))
            return None
        except Exception as exc:  # never crash on a package: anything else is a violation too
            self.run_dir(rel, f"summary.json: cannot be read ({type(exc).__name__}: {exc})")
            return None
        bench = self.benchmarks.get(summary.benchmark)
        self.figures[rel], found = recompute.recompute(summary, files, bench.metric if bench else None)
        for name, rule, message in found:
            self.add(f"{rel}/{name}", rule, message)
        return summary

    def run_dir(self, rel: str, problem: str) -> None:
        """A 'file: message' problem of the run folder ``rel`` as a violation at that file."""
        name, _, message = problem.partition(": ")
        self.add(f"{rel}/{name}", "run-dir", message)

    def provider(self, where: str, test: str, runs: dict[str, RunSummary | None], bench,
                 division: str) -> Provider | None:
        """(run rel path, summary) of the one sound embedded run that provides ``test``, else None."""
        fits = [(rel, s) for rel, s in runs.items() if s is not None and test in s.tests]
        if not fits:
            if is_dir(self.root / where) and not any(s is None for s in runs.values()):
                self.add(where, "run-missing", f"no sound embedded run provides these {test} results")
            return None
        if len(fits) > 1:
            self.add(where, "run-ambiguous", f"{len(fits)} embedded runs provide {test} results: "
                                             + ", ".join(rel.rsplit("/", 1)[1] for rel, _ in fits))
            return None
        rel, summary = fits[0]
        at = f"{rel}/summary.json"
        if summary.benchmark != bench.id:
            self.add(at, "benchmark", f"a {summary.benchmark} run filed under {bench.id} results")
            return None
        if rel not in self.judged:  # a mode-all run provides both tests: judge it once
            self.judged.add(rel)
            try:
                problems = eligibility.problems(summary, division)
            except Exception as exc:  # a schema-valid yet hostile summary: a violation, not a crash
                problems = [("run-dir", f"cannot be judged ({type(exc).__name__}: {exc})")]
            for rule, message in problems:
                self.add(at, rule, message)
        return rel, summary

    def same_model(self, rel: str, acc: RunSummary, perf: RunSummary) -> None:
        if acc.model.sha256 != perf.model.sha256:
            self.add(rel, "model-mismatch", "the accuracy and performance runs used different "
                     f"models (sha256 {str(acc.model.sha256)[:12]}... and {str(perf.model.sha256)[:12]}...)")
        if acc.sut != perf.sut:
            self.add(rel, "model-mismatch", f"accuracy from SUT {acc.sut!r}, performance from SUT "
                                            f"{perf.sut!r}")

    def compare_accuracy(self, where: str, raw: str | None, value: float | None, bench,
                         provider: Provider | None) -> None:
        """results.txt's accuracy against the embedded run's, recomputed from its outputs."""
        if provider is None:
            return
        rel, (run, summary) = f"{where}/results.txt", provider
        label = "Top 1%" if bench.metric == "top1" else "AUC"
        acc, at = summary.accuracy, f"{run}/summary.json"
        if acc is None or acc.value is None:
            return  # 'result-missing' (eligibility): nothing to compare with
        tolerance = (0.05 if bench.metric == "top1" else 5e-4) + 1e-9  # half the printed digit
        figure = self.figures[run].accuracy if run in self.figures else None
        if value is not None and figure is not None and not _close(value, figure, tolerance):
            source = "outputs" if bench.metric == "top1" else "window scores"
            self.add(rel, "accuracy-mismatch", f"{label} = {raw} but the embedded run's accuracy.json "
                                               f"{source} give {figure:g}")
        elif value is not None and figure is None and not _close(value, acc.value, tolerance):
            self.add(rel, "accuracy-mismatch", f"{label} = {raw} but the embedded run measured {acc.value}")
        if acc.count != summary.dataset.count:
            self.add(at, "accuracy-coverage", f"the accuracy pass covered {acc.count} of the "
                     f"{summary.dataset.count} samples of the label file; it must cover all")

    def compare_performance(self, where: str, text: str, windows: list[dict], median: float | None,
                            raw: str | None, bench, provider: Provider | None) -> None:
        """results.txt's windows and median against the embedded run's records."""
        if provider is None:
            return
        rel, (run, summary) = f"{where}/results.txt", provider
        shown = summary.windows  # None: reported as 'result-missing' (eligibility)
        details = [{"number": i, "inferences": d.inferences, "runtime_s": d.runtime_s}
                   for i, d in enumerate(shown.details if shown else [], start=1)]
        if shown is not None:
            self.window_rules(f"{run}/summary.json", details, bench)
        if len(windows) != len(details) or any(
                w.get("inferences") != d["inferences"] or w.get("runtime_s") is None
                or not _close(w["runtime_s"], d["runtime_s"], 1e-6) for w, d in zip(windows, details)):
            self.add(rel, "window-mismatch", "the windows differ from the embedded run's summary.json")
        fig = self.figures.get(run)  # the median recomputed from the window records, if it could be
        if fig is None or fig.median is None:
            fig = recompute.Figures(median=shown.median_throughput_ips if shown else None, tolerance=1e-3)
        if median is None:
            return  # 'results-txt' already
        if fig.median is None or not _close(fig.median, median, fig.tolerance + 5e-4):
            self.add(rel, "median-mismatch", f"median throughput {raw} but the embedded run's windows "
                     f"give {fig.median if fig.median is None else round(fig.median, 3)}")

