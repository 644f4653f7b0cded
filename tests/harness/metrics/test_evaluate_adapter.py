"""``--metric evaluate:PATH``: a Hugging Face Evaluate module the tests write into a temporary
folder (a metric script subclassing evaluate.Metric), loaded offline, computed over a real
digits01 accuracy pass.

The tests that need ``evaluate`` skip with the pip hint where it is missing; the refusals (a Hub
name, a missing script) and the missing-package message always run."""

from __future__ import annotations

import importlib.util
import json
import os
import textwrap

import numpy as np
import pytest

from tinyharness.errors import UsageError
from tinyharness.metrics.evaluate_adapter import evaluate_metric
from tinyharness.sut import TensorSpec

HINT = "pip install 'tinyharness[evaluate]'"
needs_evaluate = pytest.mark.skipif(importlib.util.find_spec("evaluate") is None,
                                    reason=f"evaluate not installed ({HINT})")
SCRIPT = '''
import os

import datasets
import evaluate


class {cls}(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="{description}", citation="", inputs_description="",
            features=datasets.Features({{"predictions": datasets.Value("int64"),
                                        "references": datasets.Value("int64")}}))

    def _compute(self, predictions, references):
{body}
'''
# top-1 as a fraction, as Hugging Face's own "accuracy" module computes it
ACCURACY_LIKE = ("        right = sum(p == r for p, r in zip(predictions, references))\n"
                 "        return {'accuracy': right / len(references)}")


def module(folder, name: str, body: str, description: str = "fraction right") -> str:
    """A metric module folder ``folder/name/name.py``; returns the folder."""
    where = folder / name
    where.mkdir(parents=True)
    cls = "".join(part.title() for part in name.split("_"))
    (where / f"{name}.py").write_text(SCRIPT.format(cls=cls, description=description, body=body))
    return str(where)


def compute(metric, outputs, labels):
    outputs, labels = np.asarray(outputs, dtype=np.float32), np.asarray(labels)
    return metric.compute(outputs, labels, spec=TensorSpec("out", (1, outputs.shape[1]), "float32"),
                          groups=np.arange(len(labels)), classes=())


# -- refusals: nothing is loaded ---------------------------------------------------------------------
@pytest.mark.parametrize("given, message", [
    ("evaluate:accuracy", "--metric evaluate:accuracy: accuracy is not an existing local file or "
                          "folder; give the local folder or .py script of a Hugging Face Evaluate "
                          "metric (tinyharness never loads one from the Hub)"),
    ("evaluate: ", "--metric 'evaluate: ' names no module; give evaluate:PATH, the local folder or "
                   ".py script of a Hugging Face Evaluate metric"),
])
def test_a_hub_name_or_nothing_is_refused_before_anything_loads(given, message, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ./accuracy here
    with pytest.raises(UsageError) as caught:
        evaluate_metric(given)
    assert str(caught.value) == message


def test_a_folder_without_its_script_and_a_file_that_is_no_script_are_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(UsageError, match=r"the folder .*mine holds no mine\.py \(an Evaluate module "):
        evaluate_metric(f"evaluate:{tmp_path / 'mine'}")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match=r"notes\.txt is not a \.py script; give the local folder"):
        evaluate_metric(f"evaluate:{tmp_path / 'notes.txt'}")


def test_without_evaluate_the_message_is_the_pip_hint(tmp_path, monkeypatch):
    folder = tmp_path / "accuracy_like"
    folder.mkdir()
    (folder / "accuracy_like.py").write_text("")
    monkeypatch.setitem(__import__("sys").modules, "evaluate", None)  # what a missing package raises
    with pytest.raises(UsageError) as caught:
        evaluate_metric(f"evaluate:{folder}")
    assert str(caught.value).startswith("--metric evaluate:PATH needs Hugging Face Evaluate (")
    assert str(caught.value).endswith(f"): {HINT}") and "\n" not in str(caught.value)


# -- with evaluate ----------------------------------------------------------------------------------
@needs_evaluate
def test_an_accuracy_like_module_gives_the_builtin_top1_over_a_digits01_run(tmp_path):
    from tinyharness.progress import Progress
    from tinyharness.runner import Run, RunRequest

    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime not installed (pip install 'tinyharness[onnxruntime]')")
    path = module(tmp_path / "modules", "accuracy_like", ACCURACY_LIKE)
    run = Run(RunRequest(benchmark="digits01", sut="onnxruntime-cpu", mode="accuracy",
                         output=tmp_path / "runs", metrics=(f"evaluate:{path}",)))
    _, run_dir = run.execute(Progress(enabled=False))
    metrics = json.loads((run_dir.path / "summary.json").read_text())["accuracy"]["metrics"]
    got = metrics["evaluate:accuracy_like"]
    assert got["value"] == pytest.approx(354 / 360, abs=1e-6)  # a fraction, as the module returns it
    assert got["value"] * 100 == pytest.approx(metrics["top1"]["value"], abs=1e-4)
    assert got["detail"] == {"path": str(tmp_path / "modules" / "accuracy_like"),
                             "values": {"accuracy": 354 / 360}}  # unrounded, as returned
    assert got["unit"] == "" and got["higher_is_better"] is None  # a module does not say


@needs_evaluate
def test_a_script_path_works_and_the_name_is_its_stem(tmp_path):
    folder = module(tmp_path, "accuracy_like", ACCURACY_LIKE)
    metric = evaluate_metric(f"evaluate:{folder}/accuracy_like.py")
    assert metric.name == "evaluate:accuracy_like" and metric.kind == "classification"
    assert metric.description.startswith("fraction right (Hugging Face Evaluate, ")
    # rows 0 and 2 right, row 1 wrong: 2/3
    assert compute(metric, [[1, 0], [1, 0], [0, 1]], [0, 1, 1]).value == pytest.approx(2 / 3)


@needs_evaluate
def test_several_numbers_go_to_detail_and_no_single_value(tmp_path):
    body = ("        right = sum(p == r for p, r in zip(predictions, references))\n"
            "        return {'right': right, 'wrong': len(references) - right, 'note': 'text'}")
    metric = evaluate_metric(f"evaluate:{module(tmp_path, 'counts', body)}")
    got = compute(metric, [[1, 0], [1, 0], [0, 1]], [0, 1, 1])
    assert got.value is None
    assert got.reason == "the module returned 2 numbers (right, wrong), not one; see detail"
    assert got.detail["values"] == {"right": 2.0, "wrong": 1.0}


@needs_evaluate
def test_the_module_runs_offline_and_the_environment_is_restored(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "0")
    body = ("        import huggingface_hub.constants as hub\n"
            "        return {'offline': float(os.environ['HF_HUB_OFFLINE'] == '1' and "
            "os.environ['HF_EVALUATE_OFFLINE'] == '1' and hub.HF_HUB_OFFLINE)}")
    metric = evaluate_metric(f"evaluate:{module(tmp_path, 'offline_probe', body)}")
    assert compute(metric, [[1, 0]], [0]).value == 1.0
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["HF_EVALUATE_OFFLINE"] == "0"


@needs_evaluate
def test_a_module_that_fails_to_load_is_a_one_line_usage_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "broken.py").write_text(textwrap.dedent("""
        import evaluate
        raise RuntimeError("this metric is broken\\nsecond line")
    """))
    with pytest.raises(UsageError) as caught:
        evaluate_metric(f"evaluate:{folder}")
    assert str(caught.value).startswith(f"--metric evaluate:{folder}: cannot load it: ")
    assert "\n" not in str(caught.value)
