"""``--metric evaluate:PATH``: a Hugging Face Evaluate module from a local folder or script, as a
classification :class:`~tinyharness.metrics.base.Metric`.

The module is loaded with ``evaluate.load(PATH)`` and computed with ``predictions`` = the argmax
of each output row and ``references`` = the labels. Never the Hugging Face Hub: PATH must be an
existing local ``.py`` script or a folder holding ``<folder name>.py``, and loading and computing
happen with ``HF_HUB_OFFLINE``, ``HF_EVALUATE_OFFLINE`` and ``HF_DATASETS_OFFLINE`` set (a module
that reaches for the network fails instead of downloading). ``evaluate`` is the optional extra
``tinyharness[evaluate]``.

What it records: the returned dict's numeric entries in ``detail.values``; ``value`` is the one numeric
entry where there is exactly one, as the module returns it (``accuracy`` is a fraction 0..1,
where tinyharness's ``top1`` is a percentage).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError, first_line
from .base import CLASSIFICATION, Metric, MetricValue

PREFIX = "evaluate:"
HINT = "pip install 'tinyharness[evaluate]'"
OFFLINE = ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE")


@contextlib.contextmanager
def offline() -> Iterator[Any]:
    """The ``evaluate`` module, imported and used with every Hugging Face library offline: the
    variables are set for the block (read by a first import) and the flags already read are set
    too (a process that imported them before); both are restored after."""
    saved_env = {key: os.environ.get(key) for key in OFFLINE}
    os.environ.update({key: "1" for key in OFFLINE})
    flags: list[tuple[Any, str, Any]] = []
    try:
        try:
            import evaluate
        except ImportError as exc:
            raise UsageError(f"--metric {PREFIX}PATH needs Hugging Face Evaluate "
                             f"({first_line(exc)}): {HINT}") from None
        for module, attribute in (("evaluate.config", "HF_EVALUATE_OFFLINE"),
                                  ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
                                  ("datasets.config", "HF_DATASETS_OFFLINE")):
            with contextlib.suppress(ImportError, AttributeError):
                owner = __import__(module, fromlist=[attribute])
                flags.append((owner, attribute, getattr(owner, attribute)))
                setattr(owner, attribute, True)
        yield evaluate
    finally:
        for owner, attribute, value in flags:
            setattr(owner, attribute, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def local_module(text: str) -> Path:
    """The local script or folder ``evaluate:PATH`` names, or a one-line UsageError: the Hub's
    names (``accuracy``, ``user/metric``) are refused, nothing is downloaded at run time."""
    given = text[len(PREFIX):].strip()
    if not given:
        raise UsageError(f"--metric {text!r} names no module; give evaluate:PATH, the local folder "
                         "or .py script of a Hugging Face Evaluate metric")
    path = Path(given).expanduser()
    if path.is_file() and path.suffix == ".py":
        return path.resolve()
    if path.is_dir():
        if not (path / f"{path.resolve().name}.py").is_file():
            raise UsageError(f"--metric {text}: the folder {path} holds no {path.resolve().name}.py "
                             "(an Evaluate module folder holds a script of its own name)")
        return path.resolve()
    what = "is not a .py script" if path.exists() else "is not an existing local file or folder"
    raise UsageError(f"--metric {text}: {given} {what}; give the local folder or .py script of a "
                     "Hugging Face Evaluate metric (tinyharness never loads one from the Hub)")


def _numbers(result: Any) -> dict[str, float]:
    """The finite real numbers of a module's result dict (bools, arrays and text left out)."""
    if not isinstance(result, dict):
        return {}
    out = {}
    for key, value in result.items():
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()  # a numpy scalar
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[str(key)] = float(value)
    return out


def evaluate_metric(text: str) -> Metric:
    """The Metric of ``evaluate:PATH``, its module loaded now (a load error is a one-line
    UsageError naming the path); named ``evaluate:<module name>``."""
    path = local_module(text)
    with offline() as evaluate:
        try:
            module = evaluate.load(str(path))
        except Exception as exc:
            raise UsageError(f"--metric {text}: cannot load it: {type(exc).__name__}: "
                             f"{first_line(exc)}") from None
    name = f"{PREFIX}{path.stem if path.is_file() else path.name}"

    def compute(outputs, labels, **_) -> MetricValue:
        predictions = outputs.reshape(len(outputs), -1).argmax(axis=1)
        with offline():
            result = module.compute(predictions=predictions.tolist(), references=labels.tolist())
        numbers = _numbers(result)
        detail = {"path": str(path), "values": numbers}
        if len(numbers) == 1:
            return MetricValue(next(iter(numbers.values())), detail=detail)
        returned = ", ".join(numbers) or "none"
        return MetricValue(None, f"the module returned {len(numbers)} numbers ({returned}), not "
                           "one; see detail", detail)

    lines = [ln.strip() for ln in str(getattr(module, "description", "") or "").splitlines() if ln.strip()]
    description = lines[0] if lines else "a Hugging Face Evaluate module"
    return Metric(name, f"{description} (Hugging Face Evaluate, {path})", CLASSIFICATION, None, compute)
