"""The MLPerf Tiny rule sets ``tinyharness check`` applies, one per round (v1.0 to v1.4), as the
MLCommons checker (``mlcommons/tiny`` ``tools/submission/submission_checker.py``) and the result
trees of each round define them; and which round a tree follows when ``--version`` is not given.

What changes between rounds:

- the model folders: ad, ic, kws, vww; v1.0 also maps the long task names (anomaly_detection,
  ...); sww from v1.3; ic2 (which needs ic beside it) from v1.4;
- the runner whose files a test folder holds: up to v1.2 only the EEMBC runner existed (log.txt,
  results.txt, script.async); from v1.3 the MLCommons runner (log.txt, results.txt, results.json)
  unless a file named ``EEMBC_RUNNER`` in the model folder says the EEMBC runner made them;
- sww's results: from energy/ when it exists, else performance/; v1.4 also wants the runner's
  ``energy_inf_000.png`` in energy/.

What does not: the quality targets, the tolerated files, and the one system field the checker
requires (``Status``; the ones it copies into its results table are optional).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

EEMBC, MLC = "eembc", "mlc"
RUNNER_FILES = {  # what each runner writes into a test folder
    EEMBC: ("log.txt", "results.txt", "script.async"),
    MLC: ("log.txt", "results.json", "results.txt"),
}
RUNNER_NAMES = {EEMBC: "EEMBC runner", MLC: "MLCommons runner"}
EEMBC_FLAG = "EEMBC_RUNNER"  # a file in the model folder: the EEMBC runner made its results
TOLERATED = ("results.json", "mlperf_log_trace.json", ".gitkeep")  # never a file-list mismatch
DIVISIONS = ("closed", "open")
IGNORED_TOP = (".git", ".github", "assets", ".vscode")  # top-level folders the checker passes over
MODEL_MAPPING = "model_mapping.json"  # open/<submitter>/model_mapping.json: {folder: model}
STATUSES = ("available", "preview", "rdi")
SYSTEM_REQUIRED = ("Status",)  # the checker reads it unguarded: a missing Status crashes it
SYSTEM_TABLE = (  # copied into the checker's results table: optional (an empty cell when absent)
    "Board Name", "Processor(s) Name", "Processor(s) Frequencies", "Processor memory type and capacity",
    "Accelerator", "Accelerator(s) Frequencies", "Accelerator memory type and capacity",
    "Hardware Notes", "Inference Framework", "Software Libraries", "Software Notes",
)
WINDOWS, WINDOW_MIN_S = 5, 10.0  # MLPerf Tiny performance: 5 windows of at least 10 s each
SWW_POSITIVES = 50  # the sww test set holds 50 wake words: TP + FN
TOP1, AUC, SWW = "top-1", "auc", "fps_fns"
TARGETS = {"ad": (AUC, 0.85), "ic": (TOP1, 85.0), "ic2": (TOP1, 91.0), "kws": (TOP1, 90.0),
           "vww": (TOP1, 80.0), "sww": (SWW, (8, 8))}  # sww: at most 8 FP and 8 FN (closed)


@dataclass(frozen=True)
class RuleSet:
    name: str
    models: tuple[str, ...]
    runner: str  # the runner a test folder is from when no EEMBC_RUNNER file says otherwise
    mapping: dict[str, str] = field(default_factory=dict)  # folder names the round itself maps
    requires: dict[str, tuple[str, ...]] = field(default_factory=dict)  # model -> models needed beside
    sww_plot: bool = False  # energy/energy_inf_000.png required for sww's energy results

    def model(self, folder: str, division: str, extra: dict | None = None) -> str | None:
        """The official model a results folder name stands for (the checker's order: the name
        itself, the round's mapping, then model_mapping.json, read in the open division only)."""
        if folder in self.models:
            return folder
        named = self.mapping.get(folder)
        if named is None and division == "open" and extra:
            named = extra.get(folder)
        return named if isinstance(named, str) and named in self.models else None

    def required_tests(self, model: str) -> tuple[str, ...]:
        return () if model == "sww" else ("accuracy", "performance")

    def target(self, model: str):
        return TARGETS[model]


_LONG_NAMES = {"anomaly_detection": "ad", "image_classification": "ic", "keyword_spotting": "kws",
               "visual_wake_words": "vww", "streaming_wakeword_detection": "sww"}
VERSIONS: dict[str, RuleSet] = {r.name: r for r in (
    RuleSet("v1.0", ("ad", "ic", "kws", "vww"), EEMBC, mapping=_LONG_NAMES),
    RuleSet("v1.1", ("ad", "ic", "kws", "vww"), EEMBC),
    RuleSet("v1.2", ("ad", "ic", "kws", "vww"), EEMBC),
    RuleSet("v1.3", ("ad", "ic", "kws", "vww", "sww"), MLC),
    RuleSet("v1.4", ("ad", "ic", "ic2", "kws", "vww", "sww"), MLC, requires={"ic2": ("ic",)}, sww_plot=True),
)}
NEWEST = "v1.4"
_IN_NAME = re.compile(r"(?:^|[^0-9A-Za-z.])v?(1\.[0-4])$")


def named_in(path: PurePath) -> tuple[str, str] | None:
    """(the round, the path component naming it), innermost first: 'v1.1', 'tiny_results_v1.1',
    an archive 'tiny_results_v1.1.tar.gz'; None when no component names one."""
    for part in reversed(PurePath(path).parts):
        name = re.sub(r"\.(tar\.gz|tgz|tar)$", "", part, flags=re.IGNORECASE)
        if m := _IN_NAME.search(name):
            return f"v{m.group(1)}", part
    return None


def from_path(path: PurePath) -> str | None:
    """The round a path names (see :func:`named_in`), or None."""
    named = named_in(path)
    return named[0] if named else None


def misfits(rules: RuleSet, files: list[str], mappings: dict[str, dict]) -> int:
    """How badly a tree's results fit ``rules``: model folders the round does not know, plus
    the files each accuracy/performance folder lacks or has beyond the round's runner (``files``:
    every file, relative; ``mappings``: each open submitter's model_mapping.json by 'open/<sub>')."""
    tests: dict[str, set[str]] = {}
    models: dict[str, tuple[str, str]] = {}  # model folder -> (division/submitter, its name)
    flagged = set()
    for rel in files:
        parts = rel.split("/")
        if len(parts) < 6 or parts[0] not in DIVISIONS or parts[2] != "results":
            continue
        model = "/".join(parts[:5])
        models[model] = ("/".join(parts[:2]), parts[4])
        if len(parts) == 6 and parts[5] == EEMBC_FLAG:
            flagged.add(model)
        elif len(parts) == 7 and parts[5] in ("accuracy", "performance"):
            tests.setdefault("/".join(parts[:6]), set()).add(parts[6])
    count = sum(rules.model(name, base.split("/")[0], mappings.get(base)) is None
                for base, name in models.values())
    for folder, names in tests.items():
        runner = EEMBC if folder.rsplit("/", 1)[0] in flagged else rules.runner
        count += len((set(names) ^ set(RUNNER_FILES[runner])) - set(TOLERATED))
    return count


def detect(files: list[str], mappings: dict[str, dict]) -> str:
    """The newest round whose rules fit the tree best (fewest misfits)."""
    return min(reversed(list(VERSIONS)), key=lambda v: misfits(VERSIONS[v], files, mappings))
