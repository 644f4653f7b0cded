"""Published MLPerf Tiny results: the trees of the MLCommons result repositories
(``mlcommons/tiny_results_v1.x``), read into one record per (version, division, submitter,
system, benchmark).

A tree is ``<closed|open>/<submitter>/{systems/<id>.json, results/<id>/<model>/<test>/results.txt}``
(docs/mlperf-tiny-rules.md §9.1). Published trees stray from it, and are read as they are: results one
folder deeper (OctoML's ``results/<implementation>/<board>/<model>``), a variant folder between
the model and the test (hls4ml's ``ic/RN08/performance``), long model names
(``keyword_spotting``), misspelt test folders (``enegy``), missing or broken system descriptions,
macOS ``._`` files. The version comes from the path: the nearest folder named ``v1.0`` or
``tiny_results_v1.0`` (an archive's own name counts), else "?".

Reading is bounded: links are never followed (a linked file or folder is skipped and said so),
only ``results.txt``, ``systems/*.json`` and ``model_mapping.json`` are read, each at most
:data:`FILE_LIMIT` bytes, :data:`MAX_FILES` of them in all; ``code/`` and ``.git/`` folders are not
entered. An archive (.tar.gz) is extracted by :func:`tinyharness.submission.archive.opened`, under
its limits, into a temporary folder removed before this returns; paths then read ``ARCHIVE:member``.
Every file that cannot be read, or lacks its figure, is listed in ``unreadable`` with the reason.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import UsageError
from ..fileio import loads_json, read_bounded
from ..submission.layout import BENCHMARK_OF
from .lines import TEST_FOLDERS, TESTS, Lines, parse as parse_lines
from .systems import SystemInfo, match as match_system, parse as parse_system

FILE_LIMIT = 1 << 20  # a results.txt is a few KB, a description about 2 KB
MAX_FILES = 20_000  # files read from one path (the four published repositories hold about 2 000)
MAX_DEPTH = 12  # folders below a division folder's results/
DIVISIONS = ("closed", "open")
VERSION = re.compile(r"^(?:tiny_results_)?v(\d+(?:\.\d+)+)(?:[-_.][A-Za-z0-9_.-]*)?$", re.I)
MODELS = {"kws": "kws", "keyword_spotting": "kws", "vww": "vww", "visual_wake_words": "vww",
          "ic": "ic", "image_classification": "ic", "ic2": "ic2", "ad": "ad",
          "anomaly_detection": "ad", "sww": "sww", "streaming_wakeword": "sww"}
SKIPPED_DIRS = {"code", ".git", ".github", "__pycache__"}
# Archive violations after which the archive was not read to its end: its tree would be partial.
FATAL = {"archive-not-tar", "archive-corrupt", "archive-count", "archive-size", "archive-total-size",
         "archive-ratio", "archive-extract"}


@dataclass(frozen=True)
class PublishedResult:
    """One published result: a system's figures for one benchmark. Figures are None where the
    submitter published none (or its file is unreadable); ``sources`` names the file of each
    (figure -> path): throughput, accuracy, energy, system."""

    version: str  # "v1.0" ... from the path, "?" when it names none
    division: str  # "closed" or "open"
    submitter: str
    system: str  # the results folder ("a/b" when nested one deeper)
    benchmark: str  # MLPerf short name: kws, vww, ic, ic2, ad, sww
    variant: str = ""  # a folder between the model and the test folder (hls4ml's RN08)
    throughput_ips: float | None = None  # median throughput, inf./s
    accuracy: float | None = None  # top-1 in percent (kws, vww, ic, ic2) or AUC (ad)
    accuracy_metric: str | None = None  # "top1" or "auc"
    energy_uj: float | None = None  # median energy per inference, µJ
    board: str = ""
    processor: str = ""
    frequency: str = ""
    accelerator: str = ""
    framework: str = ""
    software: str = ""
    windows: tuple[float, ...] = ()  # the performance log's window throughputs
    sources: tuple[tuple[str, str], ...] = ()
    formats: tuple[tuple[str, str], ...] = ()  # test -> results.txt variant (lines.VARIANTS)
    notes: tuple[str, ...] = ()

    @property
    def latency_ms(self) -> float | None:
        """1000 / median throughput, as MLCommons' final report derives it."""
        return 1000.0 / self.throughput_ips if self.throughput_ips else None

    @property
    def benchmark_id(self) -> str:
        """The tinyharness benchmark id (kws01 ...), or the short name where there is none."""
        return BENCHMARK_OF.get(self.benchmark, self.benchmark)

    @property
    def name(self) -> str:
        """``submitter/system`` (and `` variant``): how tables and charts name it."""
        return f"{self.submitter}/{self.system}" + (f" {self.variant}" if self.variant else "")

    def source(self, figure: str) -> str | None:
        return dict(self.sources).get(figure)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(benchmark_id=self.benchmark_id, latency_ms=self.latency_ms, name=self.name,
                   windows=list(self.windows), sources=dict(self.sources), formats=dict(self.formats),
                   notes=list(self.notes))
        return out


@dataclass
class Published:
    """What a set of paths holds: the results, the files that could not be read (path, reason),
    and each results.txt's variant (path -> variant), for counting."""

    results: list[PublishedResult] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    variants: dict[str, str] = field(default_factory=dict)

    def extend(self, other: "Published") -> None:
        self.results += other.results
        self.unreadable += other.unreadable
        self.variants.update(other.variants)


# -- finding trees -----------------------------------------------------------------------------

def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)  # a link to a folder is not one here
    except OSError:
        return False


def _division_folders(root: Path, depth: int = 4) -> list[Path]:
    """Folders named closed/open at ``root`` or up to ``depth`` below it (links not followed)
    that hold a submitter folder with results/ or systems/."""
    def holds_submitters(folder: Path) -> bool:
        try:
            return any(_is_dir(s / "results") or _is_dir(s / "systems")
                       for s in folder.iterdir() if _is_dir(s))
        except OSError:
            return False

    found, level = [], [root]
    for _ in range(depth + 1):
        below = []
        for folder in level:
            if folder.name in DIVISIONS and holds_submitters(folder):
                found.append(folder)
                continue
            try:
                below += sorted(c for c in folder.iterdir() if _is_dir(c) and c.name not in SKIPPED_DIRS)
            except OSError:
                continue
        level = below
    return sorted(found)


def is_tree(path: Path) -> bool:
    """Whether the folder ``path`` is (or holds, a few folders down) an MLPerf Tiny results tree."""
    return _is_dir(Path(path)) and bool(_division_folders(Path(path)))


def version_of(parts) -> str:
    """"v1.0" from the nearest path part named like ``v1.0`` or ``tiny_results_v1.0``; else "?"."""
    for part in reversed(list(parts)):
        if m := VERSION.match(str(part)):
            return f"v{m.group(1)}"
    return "?"


# -- reading -----------------------------------------------------------------------------------

class _Reader:
    def __init__(self, shown) -> None:
        self.shown = shown  # Path -> the path as records and messages name it
        self.out = Published()
        self.files = 0

    def read(self, path: Path, what: str) -> bytes | None:
        """A file's bytes, or None (listed as unreadable) when it is a link, not a regular file,
        too large or cannot be read."""
        self.files += 1
        if self.files > MAX_FILES:
            raise UsageError(f"{self.shown(path)}: more than {MAX_FILES:,} result files under one path; "
                             "give a smaller tree")
        if os.path.islink(path):
            self.out.unreadable.append((self.shown(path), "a symbolic link; links are not followed"))
            return None
        try:
            return read_bounded(path, FILE_LIMIT, what)
        except UsageError as exc:
            self.out.unreadable.append((self.shown(path), str(exc).replace(str(path), self.shown(path))))
            return None

    def submitter(self, folder: Path, division: str, version: str) -> None:
        descriptions: dict[str, SystemInfo] = {}
        sysdir = folder / "systems"
        if _is_dir(sysdir):
            for file in sorted(sysdir.iterdir()):
                if not file.name.endswith(".json"):
                    continue
                if file.name.startswith("._"):
                    self.out.unreadable.append((self.shown(file), "macOS metadata ('._' file), "
                                                "not a system description; skipped"))
                    continue
                data = self.read(file, "system description")
                if data is not None:
                    try:
                        descriptions[file.name[:-5]] = parse_system(data, file.name[:-5], self.shown(file))
                    except UsageError as exc:
                        self.out.unreadable.append((self.shown(file), str(exc).removeprefix(
                            self.shown(file) + ": ")))
        mapping = self._mapping(folder / "model_mapping.json")
        results = folder / "results"
        if not _is_dir(results):
            return
        groups: dict[tuple[str, str, str], dict[str, tuple[Lines, str, str]]] = {}
        for here, dirs, names in os.walk(results):
            here_path = Path(here)
            rel = here_path.relative_to(results).parts
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and len(rel) < MAX_DEPTH
                             and not os.path.islink(here_path / d))
            if "results.txt" not in names:
                continue
            self._file(here_path / "results.txt", rel, mapping, groups)
        for (system, model, variant), tests in groups.items():
            self.out.results.append(_record(version, division, folder.name, system, model, variant,
                                            tests, descriptions, self.shown))

    def _mapping(self, path: Path) -> dict[str, str]:
        """An open-division model_mapping.json: folder name -> official model name."""
        if not os.path.lexists(path):
            return {}
        data = self.read(path, "model mapping")
        try:
            doc = loads_json(data, self.shown(path)) if data is not None else {}
        except UsageError as exc:
            self.out.unreadable.append((self.shown(path), str(exc)))
            return {}
        return {str(k): MODELS[str(v).casefold()] for k, v in doc.items()
                if str(v).casefold() in MODELS} if isinstance(doc, dict) else {}

    def _file(self, file: Path, rel: tuple[str, ...], mapping: dict[str, str], groups) -> None:
        shown = self.shown(file)
        test, note = TEST_FOLDERS.get(rel[-1].casefold(), (None, "")) if rel else (None, "")
        at = next((i for i in range(len(rel) - 2, -1, -1)
                   if rel[i].casefold() in MODELS or rel[i] in mapping), None)
        if test is None:
            self.out.unreadable.append((shown, f"in a folder named {rel[-1] if rel else 'results'!r}, "
                                        "not accuracy, performance or energy"))
            return
        if at is None or at == 0:
            self.out.unreadable.append((shown, "no system and model folder (kws, vww, ic, ic2, ad, sww) "
                                        "in its path under results/"))
            return
        data = self.read(file, "results.txt")
        if data is None:
            return
        parsed = parse_lines(data.decode("utf-8", "replace"), test)
        if note:
            parsed = replace(parsed, notes=(*parsed.notes, note))
        self.out.variants[shown] = parsed.variant
        if parsed.problem:
            self.out.unreadable.append((shown, parsed.problem))
        model = mapping.get(rel[at]) or MODELS[rel[at].casefold()]
        key = ("/".join(rel[:at]), model, "/".join(rel[at + 1:-1]))
        groups.setdefault(key, {})[test] = (parsed, shown, rel[-1])


def _record(version, division, submitter, system, model, variant, tests, descriptions, shown) -> PublishedResult:
    notes: list[str] = []
    sources, formats = [], []
    figures: dict = {}
    for test in TESTS:
        if test not in tests:
            continue
        parsed, path, _ = tests[test]
        formats.append((test, parsed.variant))
        notes += [f"{test}: {n}" for n in parsed.notes]
        if parsed.problem:
            notes.append(f"{test}: unreadable: {parsed.problem}")
            continue
        if test == "performance":
            figures.update(throughput_ips=parsed.throughput_ips, windows=parsed.windows)
            sources.append(("throughput", path))
        elif test == "energy":
            figures["energy_uj"] = parsed.energy_uj
            sources.append(("energy", path))
        else:
            metric = "auc" if model == "ad" else "top1"
            value = parsed.auc if metric == "auc" else parsed.top1
            if value is None:
                notes.append(f"accuracy: no {'AUC' if metric == 'auc' else 'Top-1'} line (the "
                             f"{model} figure)")
            else:
                figures.update(accuracy=value, accuracy_metric=metric)
                sources.append(("accuracy", path))
    info, how = match_system(system, descriptions)
    if info is None:
        notes.append(f"no system description systems/{system.split('/')[-1]}.json")
    else:
        sources.append(("system", info.path))
        notes += [n for n in (how, *info.notes) if n]
    fields = {k: info.get(k) for k in ("board", "processor", "frequency", "accelerator", "framework",
                                       "software")} if info else {}
    return PublishedResult(version, division, submitter, system, model, variant, **figures, **fields,
                           sources=tuple(sources), formats=tuple(formats), notes=tuple(notes))


def _read_folder(root: Path, shown, extra_parts=()) -> Published:
    reader = _Reader(shown)
    for division in _division_folders(root):
        parts = ([*extra_parts, *division.relative_to(root).parts] if extra_parts
                 else Path(os.path.abspath(division)).parts)
        version = version_of(parts[:-1])
        for submitter in sorted(division.iterdir()):
            if _is_dir(submitter) and submitter.name not in SKIPPED_DIRS:
                reader.submitter(submitter, division.name, version)
    return reader.out


def read_tree(path) -> Published | None:
    """The published results under ``path`` (a folder, or a tar/.tar.gz archive of one), or None
    when it holds no MLPerf Tiny results tree. A one-line UsageError for what cannot be read at all."""
    from ..submission.archive import opened

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        if not _division_folders(path):
            return None
        return _read_folder(path, str)
    with opened(path) as (root, violations):
        fatal = [v for v in violations if v.rule in FATAL]
        if fatal or (root is None and violations):
            raise UsageError(f"{path}: {(fatal or violations)[0]}")
        if root is None:
            return None
        if not _division_folders(root):
            return None
        out = _read_folder(root, lambda p: f"{path}:{Path(p).relative_to(root).as_posix()}",
                           extra_parts=(re.sub(r"\.(tar\.gz|tgz|tar)$", "", path.name),))
        out.unreadable += [(f"{path}:{v.path}", f"{v.rule}: {v.message}") for v in violations]
        return out


def read_published(paths) -> Published:
    """:func:`read_tree` of every path; a UsageError naming a path that holds no tree."""
    out = Published()
    for path in paths:
        found = read_tree(path)
        if found is None:
            raise UsageError(f"{path}: no MLPerf Tiny results tree (closed/ or open/ folders of "
                             "<submitter>/results/) in it; give a checkout or archive of "
                             "mlcommons/tiny_results_v1.x, or its closed/ or open/ folder")
        out.extend(found)
    return out


TREE_WARNINGS = 10  # unreadable published files named through ``warn``; the rest counted


def collect(path, published: list | None, warn) -> bool:
    """For :func:`tinyharness.results.read.load_runs`, given a path that holds no runs: whether it
    is an MLPerf Tiny results tree. Its results go into ``published`` (its unreadable files
    through ``warn``); a tree where the caller takes none (``published`` None) is a one-line
    UsageError that says which commands read published results."""
    found = read_tree(path)
    if found is None:
        return False
    if published is None:
        raise UsageError(f"{path} is an MLPerf Tiny results tree (published results, no tinyharness "
                         f"runs); rank a run among them with 'tinyharness published --results {path} "
                         f"--mine RUN', or compare with 'tinyharness compare --published "
                         f"{path}[:SUBMITTER/SYSTEM] RUN'")
    for where, why in found.unreadable[:TREE_WARNINGS]:
        warn(f"{where}: {why}")
    if len(found.unreadable) > TREE_WARNINGS:
        warn(f"... and {len(found.unreadable) - TREE_WARNINGS} more unreadable files under {path}")
    published += found.results
    return True
