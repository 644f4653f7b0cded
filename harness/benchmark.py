"""Benchmark definitions: the rule sets in ``rules/benchmarks/*.json``, validated and typed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .resources import data_dir
from .schemas import validate


_DESCRIPTIVE = ("input", "output", "notes")


def sample_bytes(shape, dtype: str) -> int:
    """Bytes of one sample of ``shape`` and numpy ``dtype`` (numpy is imported only here)."""
    import numpy as np

    return int(np.prod(shape)) * np.dtype(dtype).itemsize  # documented in the rule set, read from the model itself


@dataclass(frozen=True)
class ModelEntry:
    """One reference model file of a benchmark, with where it comes from and its checksum.

    ``store_dir`` is the benchmark's folder in a model mirror or cache (``<root>/<store_dir>/<file>``)
    and, for an embedded benchmark, under ``reference_models/``. ``source`` pins an upstream file
    (repository, commit, path) that can be downloaded; converted models (ONNX) have none and name the
    file they were converted from instead.
    """

    benchmark: str
    store_dir: str
    file: str
    format: str
    precision: str
    sha256: str
    size: int
    default: bool = False
    embedded: bool = False
    source: dict[str, str] | None = None
    converted_from: str | None = None
    converter: str | None = None

    @property
    def relative_path(self) -> str:
        return f"{self.store_dir}/{self.file}"

    def url(self, base: str = "https://raw.githubusercontent.com") -> str | None:
        if not self.source:
            return None
        s = self.source
        return f"{base.rstrip('/')}/{s['repo']}/{s['commit']}/{s['path']}"


@dataclass(frozen=True)
class SingleStreamRules:
    min_duration_s: float
    min_query_count: int
    windows: int
    window_min_s: float
    performance_sample_count: int | None = None  # None: every sample


@dataclass(frozen=True)
class OfflineRules:
    min_duration_s: float
    min_query_count: int
    performance_sample_count: int | None = None


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its dataset, default models, input transform, quality target and run rules."""

    id: str
    title: str
    task: str
    embedded: bool
    labels: tuple[str, ...]
    store_dir: str
    dataset_id: str
    dataset_path: str
    label_file: str
    sample_shape: tuple[int, ...]
    sample_dtype: str
    windowed: bool  # AD: each label row is cut into windows (bytes to send, stride)
    transform: dict[str, dict[str, Any]]  # model input dtype -> {"kind": ..., parameters}
    models: tuple[ModelEntry, ...]
    metric: str
    target: float
    single_stream: SingleStreamRules
    offline: OfflineRules
    requires: tuple[str, ...]
    source: Path
    file_bytes: int | None = None  # a windowed dataset's file size, where the rule set states it

    @classmethod
    def from_file(cls, path: Path) -> "Benchmark":
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read rule set {path}: {exc}") from None
        validate(raw, "benchmark", where=str(path))
        ds = raw["dataset"]
        embedded = raw.get("embedded", False)
        models = tuple(ModelEntry(benchmark=raw["id"], store_dir=raw["store_dir"], embedded=embedded,
                                  **{k: v for k, v in m.items() if k not in _DESCRIPTIVE})
                       for m in raw["models"])
        transform = {dtype: ({"kind": t} if isinstance(t, str) else dict(t))
                     for dtype, t in raw["transform"].items()}
        return cls(
            id=raw["id"], title=raw["title"], task=raw["task"], embedded=embedded,
            labels=tuple(raw["labels"]), store_dir=raw["store_dir"], dataset_id=ds["id"],
            dataset_path=ds["path"], label_file=ds["label_file"],
            sample_shape=tuple(ds["sample_shape"]), sample_dtype=ds["sample_dtype"],
            windowed=ds.get("windowed", False), transform=transform, models=models,
            metric=raw["quality"]["metric"], target=float(raw["quality"]["target"]),
            single_stream=SingleStreamRules(**raw["single_stream"]),
            offline=OfflineRules(**raw["offline"]), requires=tuple(raw.get("requires", ())),
            source=path, file_bytes=ds.get("file_bytes"),
        )

    def rules_for(self, scenario: str) -> "SingleStreamRules | OfflineRules":
        """The run rules of a scenario ('single-stream' or 'offline'; anything else: UsageError)."""
        rules = {"single-stream": self.single_stream, "offline": self.offline}
        if scenario not in rules:
            raise UsageError(f"unknown scenario {scenario!r}; use one of {', '.join(rules)}")
        return rules[scenario]

    @property
    def sample_bytes(self) -> int:
        """Bytes of one raw dataset sample (one window of a windowed dataset)."""
        return sample_bytes(self.sample_shape, self.sample_dtype)

    @property
    def classes(self) -> int:
        """The classes a label of this benchmark's dataset may take: 0 to ``classes - 1``."""
        return len(self.labels)

    @property
    def output_count(self) -> int:
        """Values a model of this benchmark outputs: one score (AD) or one per label."""
        return 1 if self.metric == "auc" else len(self.labels)

    def default_dataset(self) -> Path:
        """The dataset shipped with the project (embedded benchmarks) or named by
        ``TINYHARNESS_DATASETS`` (a root holding ``<dataset id>/``)."""
        root = os.environ.get("TINYHARNESS_DATASETS")
        if self.embedded or not root:
            return data_dir("datasets") / self.dataset_path
        return Path(root) / self.dataset_id

    def default_entry(self, model_formats: tuple[str, ...]) -> ModelEntry:
        """The default reference model for the first of a SUT's formats this benchmark provides."""
        for fmt in model_formats:
            for entry in self.models:
                if entry.format == fmt and entry.default:
                    return entry
        raise UsageError(f"benchmark {self.id!r} has no reference model in a format this SUT reads "
                         f"({', '.join(model_formats)}); give one with --model PATH")

    def entry_for(self, path: Path) -> ModelEntry | None:
        """The reference model entry whose file name matches ``path``, if any."""
        return next((e for e in self.models if e.file == Path(path).name), None)


def load_benchmarks() -> dict[str, Benchmark]:
    folder = data_dir("rules") / "benchmarks"
    found = [Benchmark.from_file(p) for p in sorted(folder.glob("*.json"))]
    return {b.id: b for b in found}


DEFAULT_BENCHMARK = "digits01"


def get_benchmark(benchmark_id: str | None) -> Benchmark:
    """The benchmark ``benchmark_id``; None (not given) is the default one. An empty or blank id
    is a usage error, never the default: ``--benchmark "$UNSET_VARIABLE"`` must not run digits01."""
    known = load_benchmarks()
    if benchmark_id is not None and not benchmark_id.strip():
        raise UsageError(f"the benchmark id is empty; give one of {', '.join(sorted(known))} "
                         "(see 'tinyharness benchmarks'), or leave --benchmark out for "
                         f"{DEFAULT_BENCHMARK}")
    chosen = DEFAULT_BENCHMARK if benchmark_id is None else benchmark_id
    if chosen not in known:
        raise UsageError(f"unknown benchmark {chosen!r}; known: {', '.join(sorted(known))} "
                         f"(see 'tinyharness benchmarks')")
    return known[chosen]
