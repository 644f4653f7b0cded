"""Benchmark definitions: the rule sets in ``rules/benchmarks/*.json``, validated and typed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .resources import data_dir
from .schemas import validate


@dataclass(frozen=True)
class SingleStreamRules:
    min_duration_s: float
    min_query_count: int
    windows: int
    window_min_s: float


@dataclass(frozen=True)
class OfflineRules:
    min_duration_s: float
    min_query_count: int


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its dataset, default models, input transform, quality target and run rules."""

    id: str
    title: str
    task: str
    embedded: bool
    labels: tuple[str, ...]
    dataset_id: str
    dataset_path: str
    label_file: str
    sample_shape: tuple[int, ...]
    sample_dtype: str
    transform: dict[str, str]
    models: dict[str, str]
    metric: str
    target: float
    single_stream: SingleStreamRules
    offline: OfflineRules
    source: Path

    @classmethod
    def from_file(cls, path: Path) -> "Benchmark":
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read rule set {path}: {exc}") from None
        validate(raw, "benchmark", where=str(path))
        ds = raw["dataset"]
        return cls(
            id=raw["id"], title=raw["title"], task=raw["task"], embedded=raw.get("embedded", False),
            labels=tuple(raw["labels"]), dataset_id=ds["id"], dataset_path=ds["path"],
            label_file=ds["label_file"], sample_shape=tuple(ds["sample_shape"]),
            sample_dtype=ds["sample_dtype"], transform=dict(raw["transform"]),
            models=dict(raw["models"]), metric=raw["quality"]["metric"],
            target=float(raw["quality"]["target"]),
            single_stream=SingleStreamRules(**raw["single_stream"]),
            offline=OfflineRules(**raw["offline"]), source=path,
        )

    def default_dataset(self) -> Path:
        return data_dir("datasets") / self.dataset_path

    def default_model(self, model_formats: tuple[str, ...]) -> Path:
        """The reference model for the first of a SUT's formats that this benchmark provides."""
        for fmt in model_formats:
            if fmt in self.models:
                return data_dir("reference_models") / self.models[fmt]
        raise UsageError(f"benchmark {self.id!r} has no reference model in a format this SUT reads "
                         f"({', '.join(model_formats)}); give one with --model PATH")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "task": self.task, "metric": self.metric,
                "target": self.target, "rules": str(self.source.name)}


def load_benchmarks() -> dict[str, Benchmark]:
    folder = data_dir("rules") / "benchmarks"
    found = [Benchmark.from_file(p) for p in sorted(folder.glob("*.json"))]
    return {b.id: b for b in found}


DEFAULT_BENCHMARK = "digits01"


def get_benchmark(benchmark_id: str | None) -> Benchmark:
    known = load_benchmarks()
    chosen = benchmark_id or DEFAULT_BENCHMARK
    if chosen not in known:
        raise UsageError(f"unknown benchmark {chosen!r}; known: {', '.join(sorted(known))} "
                         f"(see 'tinyharness benchmarks')")
    return known[chosen]
