"""The MLCommons rules ``tinyharness check`` applies to ANY MLPerf Tiny results tree, tinyharness
made or not: the tree as the MLCommons checker walks it, the files of each test folder, the system
descriptions, and the result lines of results.txt in every form the published trees hold
(:mod:`.result_lines`), under the rules of one round (:mod:`.versions`).

Severity follows the checker: what it logs as an error is a violation (a file-list mismatch
included, although the checker does not void a result for it alone), what it logs as a warning or
passes over silently is a note. Beyond the checker, the MLPerf Tiny performance rule is applied
wherever a results.txt shows its window blocks: five windows, each of at least 10 s, each
throughput its inferences over its runtime, and the median line the median of the windows.

:class:`TreeRules` is a mixin: the checker (:mod:`.check`) supplies the file access (``root``,
``files``, ``fileset``, ``text``, ``json``, ``add``, ``note``), the rule set (``rules``), whether
the tree is a tinyharness package (``package``: then tinyharness's stricter layout applies) and
the hooks for the embedded runs, which do nothing here.
"""

from __future__ import annotations

import statistics
from typing import Any

from . import system_json
from .inventory import is_dir, listing
from .layout import BENCHMARK_OF, EMBEDDED, TEST_FILES
from .result_lines import (AUC, ENERGY, MEDIAN, SWW_COUNTS, SWW_THROUGHPUT, TOP1, half_unit, last_search,
                           last_value, number, read_windows)
from .versions import (EEMBC, EEMBC_FLAG, MODEL_MAPPING, RUNNER_FILES, RUNNER_NAMES, SWW_POSITIVES,
                       TOLERATED, WINDOW_MIN_S, WINDOWS)
from .versions import AUC as AUC_METRIC

SUBMITTER_PARTS = ("systems", "results", EMBEDDED, "code")  # a package's submitter folder
MODEL_PARTS = ("accuracy", "performance", "energy", EEMBC_FLAG)


class TreeRules:
    # -- hooks (the checker's embedded runs) ---------------------------------------------------
    def embedded(self, division: str, submitter: str, system: str) -> dict | None:
        return None

    def provider(self, where, test, runs, bench, division):
        return None

    def compare_accuracy(self, where, raw, value, bench, provider) -> None:
        pass

    def compare_performance(self, where, text, windows, median, raw, bench, provider) -> None:
        pass

    def same_model(self, rel, acc, perf) -> None:
        pass

    def leftover_runs(self, division, submitter, system, runs, present) -> None:
        pass

    def package_systems(self, division: str, submitter: str) -> set[str]:
        return set()

    # -- a submitter folder --------------------------------------------------------------------
    def submitter(self, division: str, submitter: str) -> None:
        base = f"{division}/{submitter}"
        folder = self.root / division / submitter
        if self.package:
            for name in listing(folder):
                allowed = name in SUBMITTER_PARTS or (division == "open" and name == MODEL_MAPPING)
                if not allowed:
                    self.add(f"{base}/{name}", "layout", "not part of an MLPerf Tiny submitter folder "
                                                         "(systems/, results/, code/, tinyharness/)")
        else:
            self.name_warnings(base)
        mapping = self.mappings.get(base, {})
        if not is_dir(folder / "results"):
            if self.package:
                self.add(f"{base}/results", "layout", "missing results/ folder")
            else:
                self.note(base, "no results/ folder: the MLCommons checker passes over this submitter")
            return
        if self.package:
            described = self.package_systems(division, submitter)
        else:
            described = self.foreign_systems(division, submitter)
        for system in listing(folder / "results"):
            rel = f"{base}/results/{system}"
            if not is_dir(self.root / rel):
                if self.package:
                    self.add(rel, "layout", "expected a system folder")
                else:
                    self.note(rel, "not a folder: the MLCommons checker reads only the system folders here")
                continue
            if system not in described:  # the MLCommons checker stops here; its results are checked still
                self.add(rel, "system-json", f"no systems/{system}.json describes this system")
            elif not self.package:
                self.foreign_system(f"{base}/systems/{system}.json", division)
            self.system_results(division, submitter, system, mapping)

    def name_warnings(self, base: str) -> None:
        """The checker's warnings: names that start with '.' (git unfriendly) or hold spaces."""
        names = set()
        for rel in self.files:
            if rel.startswith(base + "/"):
                parts = rel[len(base) + 1:].split("/")
                names.update("/".join([base, *parts[:i + 1]]) for i in range(len(parts))
                             if parts[i].startswith(".") or " " in parts[i])
        if names:
            shown = sorted(names)
            self.note(base, f"{len(shown)} name{'s' if len(shown) > 1 else ''} starting with '.' or holding "
                      f"a space (the MLCommons checker warns): {', '.join(shown[:3])}"
                      + (", ..." if len(shown) > 3 else ""))

    def model_mappings(self) -> dict[str, dict]:
        """Each open submitter's model_mapping.json, {'open/<submitter>': {folder: model}}."""
        found = {}
        for rel in self.files:
            parts = rel.split("/")
            if len(parts) == 3 and parts[0] == "open" and parts[2] == MODEL_MAPPING:
                doc = self.json(rel)
                if doc is not None and not (isinstance(doc, dict) and all(isinstance(v, str) for v in doc.values())):
                    self.add(rel, "json", "expected a JSON object of folder name -> official model name")
                found[f"open/{parts[1]}"] = doc if isinstance(doc, dict) else {}
        return found

    # -- system descriptions (a tree tinyharness did not make) -----------------------------------
    def foreign_systems(self, division: str, submitter: str) -> set[str]:
        """The system ids systems/ describes; a description no results/ system names is not read."""
        base = f"{division}/{submitter}/systems"
        names = {rel[len(base) + 1:-5] for rel in self.files if rel.startswith(base + "/")
                 and "/" not in rel[len(base) + 1:] and rel.endswith(".json")}
        results = self.root / division / submitter / "results"
        used = {s for s in listing(results) if is_dir(results / s)}
        for name in sorted(names - used):
            self.note(f"{base}/{name}.json", "describes no results/ system: the MLCommons checker does not "
                                             "read it")
        return names

    def foreign_system(self, rel: str, division: str) -> None:
        doc = self.json(rel)
        if doc is None:
            return
        found, notes = system_json.mlcommons_problems(doc)
        for rule, message in found:
            self.add(rel, rule, message)
        for message in notes:
            self.note(rel, message)
        if isinstance(doc, dict):
            _, said = system_json.lookup(doc, "Division")
            if isinstance(said, str) and said.strip() and said.strip().lower() != division:
                self.note(rel, f"Division says {said!r} but the tree files it under {division}/ (the folder "
                               "decides; the MLCommons checker does not read the field)")

    # -- results of one system -----------------------------------------------------------------
    def system_results(self, division: str, submitter: str, system: str, mapping: dict) -> None:
        base = f"{division}/{submitter}/results/{system}"
        runs = self.embedded(division, submitter, system)
        present: dict[str, str] = {}  # official model -> its folder
        for model in listing(self.root / base):
            rel = f"{base}/{model}"
            if not is_dir(self.root / rel):
                if self.package:
                    self.add(rel, "layout", "expected a model folder")
                else:
                    self.note(rel, "not a folder: the MLCommons checker reads only the model folders here")
                continue
            official = self.rules.model(model, division, mapping)
            if official is None:
                self.add(rel, "model-name", f"{model!r} is not an MLPerf Tiny {self.rules.name} model folder "
                         f"({', '.join(sorted(self.rules.models))}"
                         + "".join(f"; {name} maps to {to}" for name, to in sorted(self.rules.mapping.items())
                                   if to in self.rules.models)
                         + ")" + (" and model_mapping.json does not map it to one" if division == "open" else ""))
                continue
            present[official] = model
            self.model_results(rel, official, division, None if runs is None else runs.get(model, {}))
        for official, model in present.items():
            for needed in self.rules.requires.get(official, ()):
                if needed not in present:
                    self.add(f"{base}/{model}", "requires", f"{official} results need {needed} results for the "
                                                            "same system")
        if runs is not None:
            self.leftover_runs(division, submitter, system, runs, present)

    def model_results(self, rel: str, model: str, division: str, runs: dict | None) -> None:
        """One model folder: its test folders and their result lines (and, in a tinyharness
        package, each test against the embedded run that provides it)."""
        for name in listing(self.root / rel):
            if name not in MODEL_PARTS:
                if self.package:
                    self.add(f"{rel}/{name}", "layout", "unexpected: a model folder holds accuracy/ "
                                                        "and performance/")
                else:
                    self.note(f"{rel}/{name}", "not read by the MLCommons checker (a model folder holds "
                                               "accuracy/, performance/ and energy/)")
        runner = EEMBC if f"{rel}/{EEMBC_FLAG}" in self.fileset else self.rules.runner
        if model == "sww":
            self.sww(rel, division)
            return
        bench = self.benchmarks.get(BENCHMARK_OF.get(model, ""))
        providers: dict[str, Any] = {}
        for test in self.rules.required_tests(model):
            where = f"{rel}/{test}"
            provider = providers[test] = (self.provider(where, test, runs, bench, division)
                                          if runs is not None and bench is not None else None)
            if not is_dir(self.root / where):
                self.add(where, "required-tests", f"missing: MLPerf Tiny requires {test} results "
                                                  f"for {rel.rsplit('/', 1)[1]}")
                continue
            self.test_folder(where, runner)
            if f"{where}/results.txt" not in self.fileset:
                continue
            text = self.text(f"{where}/results.txt")
            if text is None:
                continue
            if test == "accuracy":
                raw, value = self.accuracy_lines(where, text, model, division)
                self.compare_accuracy(where, raw, value, bench, provider)
            else:
                windows, raw, median = self.performance_lines(where, text, bench)
                self.compare_performance(where, text, windows, median, raw, bench, provider)
        if is_dir(self.root / rel / "energy"):
            self.energy(f"{rel}/energy")
        acc, perf = providers.get("accuracy"), providers.get("performance")
        if acc is not None and perf is not None:
            self.same_model(rel, acc[1], perf[1])

    # -- the files of a test folder ------------------------------------------------------------
    def test_folder(self, where: str, runner: str) -> None:
        names = listing(self.root / where)
        if self.package:
            self.package_test_files(where, names)
            return
        wanted = RUNNER_FILES[runner]
        says = f"the {RUNNER_NAMES[runner]} writes {', '.join(wanted)}"
        for name in wanted:
            rel = f"{where}/{name}"
            if name in TOLERATED:
                continue
            if name not in names:
                self.add(rel, "required-files", f"missing: {says} (the MLCommons checker reports a file-list "
                                                "mismatch)")
            elif rel not in self.fileset:
                self.add(rel, "required-files", "is a folder (or not a regular file), not a file")
        for name in names:
            rel = f"{where}/{name}"
            if name in wanted or name in TOLERATED:
                continue
            if rel in self.fileset:
                self.add(rel, "required-files", f"unexpected: {says} (the MLCommons checker reports a "
                                                "file-list mismatch)")
            else:
                self.note(rel, "not a file: the MLCommons checker lists only the files of a test folder")

    def package_test_files(self, where: str, names: list[str]) -> None:
        """A tinyharness package's test folder holds exactly log.txt, results.txt, results.json."""
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
        if f"{where}/log.txt" in self.fileset:
            self.text(f"{where}/log.txt")
        if f"{where}/results.json" in self.fileset:
            doc = self.json(f"{where}/results.json")
            if doc is not None and not (isinstance(doc, list) and all(isinstance(d, dict) for d in doc)):
                self.add(f"{where}/results.json", "results-json", "expected a JSON list of step objects")

    # -- result lines --------------------------------------------------------------------------
    def accuracy_lines(self, where: str, text: str, model: str, division: str) -> tuple[str | None, float | None]:
        """(the accuracy as printed, as a number) by the checker's pattern; the closed target."""
        rel = f"{where}/results.txt"
        metric, target = self.rules.target(model)
        label, pattern = ("AUC", AUC) if metric == AUC_METRIC else ("Top 1%", TOP1)
        raw = last_value(pattern, text)
        value = number(raw) if raw is not None else None
        if value is None:
            message = (f"no line the MLCommons checker reads as {label} "
                       + (f"(found {raw!r})" if raw else "(e.g. 'MMDD.HHMMSS ulp-mlperf: Top 1% = 90.2')"))
            if division == "closed" or self.package:
                self.add(rel, "results-txt", message)
            else:
                self.note(rel, message + "; the open division accepts it")
        elif division == "closed" and value < target:
            self.add(rel, "quality-target", f"{label} = {raw} is below the closed-division target {target:g}")
        return raw, value

    def performance_lines(self, where: str, text: str, bench) -> tuple[list[dict], str | None, float | None]:
        """(the windows, the median as printed, as a number): the checker's median line, and the
        MLPerf Tiny window rules wherever window blocks are shown."""
        rel = f"{where}/results.txt"
        windows, problems = read_windows(text)
        for problem in problems:
            self.add(rel, "results-txt", problem)
        if windows:
            self.window_rules(rel, windows, bench)
        for w in windows:
            n, runtime, tp = w.get("inferences"), w.get("runtime_s"), w.get("throughput_ips")
            if None in (n, runtime, tp) or runtime <= 0:
                continue
            # the printed runtime and throughput are rounded: allow for both roundings
            tolerance = max(1e-3 + 1e-4 * tp, half_unit(w.get("throughput_raw"))
                            + n * half_unit(w.get("runtime_raw")) / (runtime * runtime) * 1.001 + 1e-9)
            if abs(tp - n / runtime) > tolerance:
                self.add(rel, "window-arithmetic", f"window {w['number']}: {n} inferences in {runtime} s is "
                                                   f"not {tp} inf./sec.")
        raw = last_value(MEDIAN, text)
        median = number(raw) if raw is not None else None
        if median is None:
            self.add(rel, "results-txt", "no line the MLCommons checker reads as 'Median throughput is"
                                         " %10.3f inf./sec.'" + (f" (found {raw!r})" if raw else ""))
            return windows, raw, None
        shown = [w for w in windows if w.get("throughput_ips") is not None]
        if shown:
            middle = statistics.median(w["throughput_ips"] for w in shown)
            tolerance = max(1.5e-3, half_unit(raw) + max(half_unit(w.get("throughput_raw")) for w in shown) + 1e-9)
            if abs(middle - median) > tolerance:
                self.add(rel, "median-mismatch", f"median throughput {raw} is not the median of the "
                                                 f"windows ({middle:.3f})")
        return windows, raw, median

    def window_rules(self, path: str, windows: list[dict[str, Any]], bench) -> None:
        """MLPerf Tiny's window rules (count, 10 s each) on windows read from ``path``."""
        count = bench.single_stream.windows if bench is not None else WINDOWS
        least = bench.single_stream.window_min_s if bench is not None else WINDOW_MIN_S
        if len(windows) != count:
            self.add(path, "windows-count", f"{len(windows)} performance windows; MLPerf Tiny "
                                            f"requires exactly {count}")
        for w in windows:
            runtime = w.get("runtime_s")
            if runtime is not None and runtime < least:
                self.add(path, "window-duration", f"window {w['number']} ran "
                         f"{runtime:.6f} s; each window must run at least {least:g} s")

    def energy(self, where: str) -> float | None:
        """energy/results.txt's median energy: without it the checker voids the whole result."""
        rel = f"{where}/results.txt"
        if rel not in self.fileset:
            self.add(rel, "required-files", "missing: an energy/ folder needs results.txt with 'Median "
                                            "energy cost is N uJ/inf.' (without it the MLCommons checker "
                                            "voids the result)")
            return None
        text = self.text(rel)
        if text is None:
            return None
        found = last_search(ENERGY, text)
        value = number(found[0]) if found else None
        if value is None:
            self.add(rel, "results-txt", "no line the MLCommons checker reads as 'Median energy cost is N "
                     "uJ/inf.'" + (f" (found {found[0]!r})" if found else "") + "; energy/ without it voids "
                     "the result")
        return value

    def sww(self, rel: str, division: str) -> None:
        """Streaming wake word: its results from energy/ when it exists, else performance/."""
        source = next((f"{rel}/{t}" for t in ("energy", "performance") if is_dir(self.root / rel / t)), None)
        if source is None:
            self.add(rel, "required-tests", "missing: sww results come from energy/ or performance/")
            return
        if source.endswith("/energy"):
            self.energy(source)
            plot = f"{source}/energy_inf_000.png"
            if self.rules.sww_plot and plot not in self.fileset:
                self.add(plot, "required-files", f"missing: the {self.rules.name} checker wants the runner's "
                                                 "energy plot beside sww's energy results")
        results = f"{source}/results.txt"
        if results not in self.fileset:
            if not source.endswith("/energy"):  # energy() said so already
                self.add(results, "required-files", "missing: sww's results are read from results.txt")
            return
        text = self.text(results)
        if text is None:
            return
        throughput = last_search(SWW_THROUGHPUT, text)
        if throughput is None or number(throughput[0]) is None:
            self.add(results, "results-txt", "no line the MLCommons checker reads as 'Estimated throughput: "
                                             "N inf./sec.'")
        counts = last_search(SWW_COUNTS, text)
        if counts is None:
            self.add(results, "results-txt", "no line the MLCommons checker reads as 'Accuracy: N True "
                                             "positives, N False negatives, N False positives'")
            return
        tp, fn, fp = (int(c) if len(c) <= 9 else -1 for c in counts)
        if tp + fn != SWW_POSITIVES:
            self.add(results, "sww-count", f"{tp} true positives and {fn} false negatives make {tp + fn}; "
                                           f"the sww test holds {SWW_POSITIVES} wake words")
        most_fp, most_fn = self.rules.target("sww")[1]
        if division == "closed" and (fp > most_fp or fn > most_fn):
            self.add(results, "quality-target", f"{fp} false positives and {fn} false negatives; the "
                     f"closed division allows at most {most_fp} and {most_fn}")
