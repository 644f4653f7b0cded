"""The query sample library (QSL): a dataset's samples turned into model-ready inputs, untimed.

Samples are read and transformed into the SUT's input dtype and shape before any timing starts, so a
query only copies a ready array into the SUT. The performance set is chosen LoadGen-style: indices
shuffled with ``qsl_rng_seed``, the first ``performance_sample_count`` loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .dataset import Dataset
from .errors import UsageError
from .sut import TensorSpec


def round_half_away(v: np.ndarray) -> np.ndarray:
    """C's round(): halves away from zero (numpy's round goes to even); as the reference DUT does."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def transform(raw: np.ndarray, kind: str | dict[str, Any], spec: TensorSpec) -> np.ndarray:
    """Turn one raw dataset sample into the model input described by ``spec``.

    Kinds: ``identity``; ``minus128`` (uint8 -> int8, exact for the image models' quantization);
    ``float``; ``scale`` (float times ``factor``); ``dequantize`` (``(q - zero_point) * scale`` with
    the dataset's own quantization); ``quantize`` (float -> the model's integer input with its
    scale and zero point, rounding halves away from zero and clamping, as the AD reference DUT).
    """
    params = {"kind": kind} if isinstance(kind, str) else kind
    kind = params["kind"]
    if kind == "identity":
        x = raw
    elif kind == "minus128":
        x = (raw.astype(np.int16) - 128).astype(np.int8)
    elif kind == "float":
        x = raw.astype(np.float32)
    elif kind == "scale":
        x = (raw.astype(np.float64) * params["factor"]).astype(np.float32)
    elif kind == "dequantize":
        x = ((raw.astype(np.float64) - params["zero_point"]) * params["scale"]).astype(np.float32)
    elif kind == "quantize":
        if not spec.quantized:
            raise UsageError(f"model input {spec.name!r} is {spec.dtype} without quantization "
                             "parameters; cannot quantize the dataset for it")
        info = np.iinfo(spec.dtype)
        q = round_half_away(raw.astype(np.float64) / spec.scale) + spec.zero_point
        x = np.clip(q, info.min, info.max).astype(spec.dtype)
    else:
        raise UsageError(f"unknown input transform {kind!r}")
    if not spec.shape:  # a SUT that takes any input (the null SUT)
        return np.ascontiguousarray(x[np.newaxis])
    if int(np.prod(spec.shape)) != x.size:
        raise UsageError(f"model input {spec.name!r} has shape {list(spec.shape)} but a dataset "
                         f"sample has {x.size} values ({list(raw.shape)}): wrong model for this benchmark?")
    return np.ascontiguousarray(x.reshape(spec.shape), dtype=spec.dtype)


@dataclass(frozen=True)
class Seeds:
    """LoadGen's seed model: which samples form the performance set, and which each query uses."""

    qsl_rng_seed: int
    sample_index_rng_seed: int

    @classmethod
    def from_seed(cls, seed: int) -> "Seeds":
        qsl, index = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint32)
        return cls(int(qsl), int(index))

    def to_dict(self) -> dict[str, int]:
        return {"qsl_rng_seed": self.qsl_rng_seed, "sample_index_rng_seed": self.sample_index_rng_seed}


class QSL:
    """Loads samples on request and keeps them as model-ready arrays."""

    def __init__(self, dataset: Dataset, transform_kind: str | dict[str, Any], spec: TensorSpec) -> None:
        self.dataset = dataset
        self.transform_kind = transform_kind
        self.spec = spec
        self.loaded: dict[int, np.ndarray] = {}

    @property
    def total_count(self) -> int:
        return len(self.dataset)

    def load(self, indices) -> None:
        for i in indices:
            i = int(i)
            if i not in self.loaded:
                self.loaded[i] = transform(self.dataset.read(i), self.transform_kind, self.spec)

    def unload(self) -> None:
        self.loaded.clear()

    def sample(self, index: int) -> np.ndarray:
        return self.loaded[index]

    def performance_set(self, count: int, seeds: Seeds) -> np.ndarray:
        """The performance sample set: the first ``count`` indices after a seeded shuffle."""
        order = np.random.Generator(np.random.MT19937(seeds.qsl_rng_seed)).permutation(self.total_count)
        return order[: min(count, self.total_count)]
