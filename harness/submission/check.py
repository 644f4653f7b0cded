"""``tinyharness check``: every rule a tinyharness MLPerf Tiny submission package must follow.

Each broken rule is one :class:`Violation` (``path-in-package: rule: message``); all of them are
collected, never only the first. The result lines are read with the patterns of the MLCommons
checker (:mod:`.result_lines`); the embedded runs are read through the run model and judged by
the rules the packager applies (:mod:`.eligibility`), every figure they report recomputed from
their records (:mod:`.recompute`). Nothing in a package is trusted: whatever it holds becomes
violations, never an exception; only regular files are opened, read bounded (:mod:`.runfiles`).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fileio import read_bounded
from ..results.summary import RunSummary
from . import eligibility, recompute, system_json
from .archive import FILE_LIMIT, MANIFEST, Limits, Violation, opened
from .inventory import inventory, is_dir, listing, verify_manifest
from .layout import BENCHMARK_OF, EMBEDDED, SHORT, TEST_FILES, TESTS
from .result_lines import AUC, MEDIAN, TOP1, last_value, number, parse_windows
from .runfiles import parse_json, read_run

Provider = tuple[str, RunSummary]  # (embedded run folder, relative to the package; its summary)


def _close(a: float, b: float, tolerance: float) -> bool:
    """Within ``tolerance``; never for a NaN (JSON as Python reads it allows one in a summary)."""
    return abs(a - b) <= tolerance


def check_package(path: Path, limits: Limits = Limits()) -> list[Violation]:
    """Every violation of a package folder or archive (an archive is never trusted: see archive.py)."""
    with opened(Path(path), limits) as (root, found):
        if root is not None:
            found += Checker(root).run()
        elif not found:
            found.append(Violation(Path(path).name, "layout", "the archive holds no files"))
    return found


class Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.found: list[Violation] = []
        self.files: list[str] = []  # every regular file, relative POSIX path
        self.fileset: set[str] = set()
        self.texts: dict[str, str | None] = {}
        self.judged: set[str] = set()  # embedded runs already judged by the eligibility rules
        self.figures: dict[str, recompute.Figures] = {}  # run folder -> what its records give
        from ..benchmark import load_benchmarks

        self.benchmarks = load_benchmarks()

    def add(self, path: str, rule: str, message: str) -> None:
        self.found.append(Violation(path, rule, message))

    def run(self) -> list[Violation]:
        self.walk()
        self.manifest()
        top = listing(self.root)
        for name in top:
            if name == MANIFEST:
                continue
            if name not in ("closed", "open") or not is_dir(self.root / name):
                self.add(name, "layout", "only closed/, open/ and manifest.json belong at the top")
                continue
            for submitter in listing(self.root / name):
                if is_dir(self.root / name / submitter):
                    self.submitter(name, submitter)
                else:
                    self.add(f"{name}/{submitter}", "layout", "expected a submitter folder")
        if not any(n in ("closed", "open") for n in top):
            self.add(".", "layout", "no closed/ or open/ division folder")
        return self.found

    # -- files ------------------------------------------------------------------------------
    def walk(self) -> None:
        self.files, found = inventory(self.root)
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

    # -- the submitter tree -----------------------------------------------------------------
    def submitter(self, division: str, submitter: str) -> None:
        base = f"{division}/{submitter}"
        folder = self.root / division / submitter
        for name in listing(folder):
            allowed = name in ("systems", "results", EMBEDDED, "code") or \
                (division == "open" and name == "model_mapping.json")
            if not allowed:
                self.add(f"{base}/{name}", "layout", "not part of an MLPerf Tiny submitter folder "
                                                     "(systems/, results/, code/, tinyharness/)")
        mapping = self.json(f"{base}/model_mapping.json") if f"{base}/model_mapping.json" in self.fileset else {}
        mapping = mapping if isinstance(mapping, dict) else {}
        systems = self.systems(division, submitter)
        results = folder / "results"
        if not is_dir(results):
            self.add(f"{base}/results", "layout", "missing results/ folder")
            return
        for system in listing(results):
            if not is_dir(results / system):
                self.add(f"{base}/results/{system}", "layout", "expected a system folder")
                continue
            if system not in systems:
                self.add(f"{base}/results/{system}", "system-json",
                         f"no systems/{system}.json describes this system")
            self.system_results(division, submitter, system, mapping)

    def systems(self, division: str, submitter: str) -> set[str]:
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
            if isinstance(doc, dict):
                for key, want in (("Division", division), ("Submitter", submitter)):
                    value = doc.get(key)
                    if isinstance(value, str) and value and value.lower() != want.lower():
                        self.add(rel, "system-json", f"{key} says {value!r} but the package puts it "
                                                     f"under {want!r}")
        return found

    # -- results of one system ----------------------------------------------------------------
    def system_results(self, division: str, submitter: str, system: str, mapping: dict) -> None:
        base = f"{division}/{submitter}/results/{system}"
        runs = self.embedded(division, submitter, system)
        present: dict[str, str] = {}  # benchmark id -> model folder
        for model in listing(self.root / base):
            rel = f"{base}/{model}"
            if not is_dir(self.root / rel):
                self.add(rel, "layout", "expected a model folder")
                continue
            official = model if model in BENCHMARK_OF else mapping.get(model) if division == "open" else None
            if not isinstance(official, str) or official not in BENCHMARK_OF:
                self.add(rel, "model-name", f"{model!r} is not an MLPerf Tiny model folder "
                         f"({', '.join(sorted(BENCHMARK_OF))})"
                         + (" and model_mapping.json does not map it to one" if division == "open" else ""))
                continue
            bench = self.benchmarks[BENCHMARK_OF[official]]
            present[bench.id] = model
            self.model_results(rel, bench, runs.get(model, {}), division)
        for bench_id, model in present.items():
            for needed in self.benchmarks[bench_id].requires:
                if needed not in present:
                    self.add(f"{base}/{model}", "requires", f"{SHORT[bench_id]} results need {SHORT[needed]} "
                                                            "results for the same system")
        for model in sorted(set(runs) - set(present.values())):
            self.add(f"{division}/{submitter}/{EMBEDDED}/{system}/{model}", "layout",
                     f"embedded runs for {model!r}, which has no results/{system}/{model}/ folder")

    def model_results(self, rel: str, bench, runs: dict[str, RunSummary | None], division: str) -> None:
        """One model folder: its test folders, each against the embedded run that provides it."""
        for name in listing(self.root / rel):
            if name not in TESTS:
                self.add(f"{rel}/{name}", "layout", "unexpected: a model folder holds accuracy/ "
                                                    "and performance/")
        providers: dict[str, Provider | None] = {}
        for test in TESTS:
            where = f"{rel}/{test}"
            provider = providers[test] = self.provider(where, test, runs, bench, division)
            if not is_dir(self.root / where):
                self.add(where, "required-tests", f"missing: MLPerf Tiny requires {test} results "
                                                  f"for {rel.rsplit('/', 1)[1]}")
                continue
            self.test_folder(where)
            if f"{where}/results.txt" in self.fileset and provider is not None:
                text = self.text(f"{where}/results.txt")
                if text is not None:
                    (self.accuracy if test == "accuracy" else self.performance)(
                        where, text, bench, division, provider)
        acc, perf = providers["accuracy"], providers["performance"]
        if acc is not None and perf is not None:
            self.same_model(rel, acc[1], perf[1])

    def same_model(self, rel: str, acc: RunSummary, perf: RunSummary) -> None:
        if acc.model.sha256 != perf.model.sha256:
            self.add(rel, "model-mismatch", "the accuracy and performance runs used different "
                     f"models (sha256 {str(acc.model.sha256)[:12]}... and {str(perf.model.sha256)[:12]}...)")
        if acc.sut != perf.sut:
            self.add(rel, "model-mismatch", f"accuracy from SUT {acc.sut!r}, performance from SUT "
                                            f"{perf.sut!r}")

    def embedded(self, division: str, submitter: str, system: str) -> dict[str, dict[str, RunSummary | None]]:
        """{model folder: {run folder rel path: summary (None when unusable)}}, each run checked."""
        base = self.root / division / submitter / EMBEDDED / system
        found: dict[str, dict[str, RunSummary | None]] = {}
        if not is_dir(base):
            return found
        for model in listing(base):
            for run in listing(base / model) if is_dir(base / model) else []:
                rel = (base / model / run).relative_to(self.root).as_posix()
                found.setdefault(model, {})[rel] = self.embedded_run(rel)
        return found

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

    def test_folder(self, where: str) -> None:
        names = listing(self.root / where)
        for name in TEST_FILES:
            rel = f"{where}/{name}"
            if name not in names:
                self.add(rel, "required-files", "missing: a test folder holds log.txt, results.txt "
                                                "and results.json")
            elif rel not in self.fileset:
                self.add(rel, "required-files", "is a folder (or not a regular file), not a file")
        for name in names:
            if name not in TEST_FILES:
                self.add(f"{where}/{name}", "required-files", "unexpected: a test folder holds exactly "
                                                              "log.txt, results.txt and results.json")
        for name in ("log.txt", "results.txt"):
            if f"{where}/{name}" in self.fileset:
                self.text(f"{where}/{name}")
        if f"{where}/results.json" in self.fileset:
            doc = self.json(f"{where}/results.json")
            if doc is not None and not (isinstance(doc, list) and all(isinstance(d, dict) for d in doc)):
                self.add(f"{where}/results.json", "results-json", "expected a JSON list of step objects")

    def accuracy(self, where: str, text: str, bench, division: str, provider: Provider) -> None:
        rel, (run, summary) = f"{where}/results.txt", provider
        label, pattern = ("Top 1%", TOP1) if bench.metric == "top1" else ("AUC", AUC)
        raw = last_value(pattern, text)
        value = number(raw) if raw is not None else None
        if value is None:
            self.add(rel, "results-txt", f"no line the MLCommons checker reads as {label} "
                     + (f"(found {raw!r})" if raw else "(e.g. 'MMDD.HHMMSS ulp-mlperf: Top 1% = 90.2')"))
        elif division == "closed" and value < bench.target:
            self.add(rel, "quality-target", f"{label} = {raw} is below the closed-division target "
                                            f"{bench.target:g}")
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

    def performance(self, where: str, text: str, bench, division: str, provider: Provider) -> None:
        rel, (run, summary) = f"{where}/results.txt", provider
        windows, problems = parse_windows(text)
        for problem in problems:
            self.add(rel, "results-txt", problem)
        shown = summary.windows  # None: reported as 'result-missing' (eligibility)
        details = [{"number": i, "inferences": d.inferences, "runtime_s": d.runtime_s}
                   for i, d in enumerate(shown.details if shown else [], start=1)]
        self.window_rules(rel, windows, bench)
        if shown is not None:
            self.window_rules(f"{run}/summary.json", details, bench)
        for w in windows:
            n, runtime, tp = w.get("inferences"), w.get("runtime_s"), w.get("throughput_ips")
            if None not in (n, runtime, tp) and runtime > 0 and abs(tp - n / runtime) > 1e-3 + 1e-4 * tp:
                self.add(rel, "window-arithmetic", f"window {w['number']}: {n} inferences in "
                                                   f"{runtime} s is not {tp} inf./sec.")
        if len(windows) != len(details) or any(
                w.get("inferences") != d["inferences"] or w.get("runtime_s") is None
                or not _close(w["runtime_s"], d["runtime_s"], 1e-6) for w, d in zip(windows, details)):
            self.add(rel, "window-mismatch", "the windows differ from the embedded run's summary.json")
        fig = self.figures.get(run)  # the median recomputed from the window records, if it could be
        if fig is None or fig.median is None:
            fig = recompute.Figures(median=shown.median_throughput_ips if shown else None, tolerance=1e-3)
        self.median(rel, text, windows, fig.median, fig.tolerance + 5e-4)

    def window_rules(self, path: str, windows: list[dict[str, Any]], bench) -> None:
        """MLPerf Tiny's window rules (count, 10 s each) on windows read from ``path``."""
        rules = bench.single_stream
        if len(windows) != rules.windows:
            self.add(path, "windows-count", f"{len(windows)} performance windows; MLPerf Tiny "
                                            f"requires exactly {rules.windows}")
        for w in windows:
            runtime = w.get("runtime_s")
            if runtime is not None and runtime < rules.window_min_s:
                self.add(path, "window-duration", f"window {w['number']} ran "
                         f"{runtime:.6f} s; each window must run at least {rules.window_min_s:g} s")

    def median(self, rel: str, text: str, windows: list[dict[str, Any]], recorded: float | None,
               tolerance: float) -> None:
        """The median line: present, the median of the windows, and the run's own median."""
        raw = last_value(MEDIAN, text)
        median = number(raw) if raw is not None else None
        if median is None:
            self.add(rel, "results-txt", "no line the MLCommons checker reads as 'Median throughput is"
                                         " %10.3f inf./sec.'" + (f" (found {raw!r})" if raw else ""))
            return
        tps = [w["throughput_ips"] for w in windows if w.get("throughput_ips") is not None]
        if tps and abs(statistics.median(tps) - median) > 1.5e-3:
            self.add(rel, "median-mismatch", f"median throughput {raw} is not the median of the "
                                             f"windows ({statistics.median(tps):.3f})")
        if recorded is None or not _close(recorded, median, tolerance):
            self.add(rel, "median-mismatch", f"median throughput {raw} but the embedded run's windows "
                     f"give {recorded if recorded is None else round(recorded, 3)}")
