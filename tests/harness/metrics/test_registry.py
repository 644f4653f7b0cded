"""Quality metrics as plugins: the register_metrics hook (a third-party plugin's metric computed in
a real run), the errors a plugin or a user can make, and the built-ins always present and light."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyharness.benchmark import get_benchmark
from tinyharness.errors import UsageError
from tinyharness.hookspecs import hookimpl
from tinyharness.metrics import Metric, MetricValue
from tinyharness.metrics.select import resolve
from tinyharness.plugins import metric_registry


def balanced_accuracy(outputs, labels, **_) -> MetricValue:
    """Mean per-class recall, in percent."""
    predictions = outputs.reshape(len(outputs), -1).argmax(axis=1)
    recalls = [np.mean(predictions[labels == k] == k) for k in np.unique(labels)]
    return MetricValue(float(np.mean(recalls)) * 100.0, detail={"classes": len(recalls)})


BALANCED = Metric("balanced_accuracy", "mean per-class recall", "classification", True,
                  balanced_accuracy, "%")


class ThirdParty:
    @hookimpl
    def register_metrics(self, register):
        register(BALANCED)


class Registers:
    """A plugin that registers whatever it is given."""

    def __init__(self, *metrics) -> None:
        self.metrics = metrics

    @hookimpl
    def register_metrics(self, register):
        for metric in self.metrics:
            register(metric)


@pytest.fixture
def third_party():
    metric_registry().add(ThirdParty(), "third-party")
    yield
    metric_registry().remove("third-party")


def test_the_builtins_are_registered_through_the_hook():
    reg = metric_registry()
    assert {"top1", "top5", "macro_f1", "confusion", "auc_ovr", "auc"} <= set(reg.metrics)
    assert {reg.origin[name] for name in ("top1", "auc")} <= {"metrics", "tinyharness.metrics.builtin"}
    assert reg.names("anomaly") == ["auc"]


def test_a_third_party_metric_is_resolved_and_computed_in_a_run(third_party, tmp_path):
    from tinyharness.progress import Progress
    from tinyharness.runner import Run, RunRequest

    assert [m.name for m in resolve(get_benchmark("digits01"), ["balanced_accuracy"])] == [
        "top1", "top5", "macro_f1", "confusion", "balanced_accuracy"]
    run = Run(RunRequest(benchmark="digits01", sut="null", mode="accuracy", output=tmp_path,
                         metrics=("balanced_accuracy",)))
    summary, run_dir = run.execute(Progress(enabled=False))
    written = json.loads((run_dir.path / "summary.json").read_text())
    got = written["accuracy"]["metrics"]["balanced_accuracy"]
    # the null SUT predicts class 0 for every file: recall 1 for class 0, 0 for the other nine
    assert got == {"value": 10.0, "unit": "%", "higher_is_better": True, "reason": None,
                   "detail": {"classes": 10}}
    assert written["settings"]["metrics"] == ["balanced_accuracy"]
    assert "balanced_accuracy : 10.00 %" in (run_dir.path / "summary.txt").read_text()


def test_removing_the_plugin_forgets_its_metrics(third_party):
    metric_registry().remove("third-party")
    assert "balanced_accuracy" not in metric_registry().metrics
    with pytest.raises(UsageError, match="unknown metric 'balanced_accuracy'"):
        resolve(get_benchmark("digits01"), ["balanced_accuracy"])


def test_a_duplicate_name_names_both_plugins_and_registers_nothing():
    clash = Metric("top1", "another top-1", "classification", True, balanced_accuracy)
    with pytest.raises(UsageError) as caught:
        metric_registry().add(Registers(clash), "clashing")
    owner = metric_registry().origin["top1"]
    assert str(caught.value) == (f"metric name 'top1' is registered by both plugin {owner!r} and plugin "
                                 "'clashing'; set TINYHARNESS_PLUGINS to load only one of them")
    assert metric_registry().metrics["top1"] is not clash
    assert metric_registry().pm.get_plugin("clashing") is None


@pytest.mark.parametrize("registered, message", [
    ("top7", "plugin 'odd' registered 'top7', which is not a tinyharness.metrics.Metric"),
    (Metric("Top-7", "", "classification", True, balanced_accuracy),
     "plugin 'odd' registered metric name 'Top-7' must be lower case letters, digits and '_' "
     "(at most 40, a letter first)"),
])
def test_what_a_plugin_registers_is_checked(registered, message):
    with pytest.raises(UsageError) as caught:
        metric_registry().add(Registers(registered), "odd")
    assert str(caught.value) == message


def test_a_plugin_that_raises_in_the_hook_is_named():
    class Broken:
        @hookimpl
        def register_metrics(self, register):
            raise ImportError("No module named 'mylib'")

    with pytest.raises(UsageError, match=r"^plugin 'broken' failed in register_metrics: ImportError: "
                                         r"No module named 'mylib'; set TINYHARNESS_PLUGINS to skip it$"):
        metric_registry().add(Broken(), "broken")


def test_a_metric_must_have_a_known_kind():
    with pytest.raises(ValueError, match="kind 'regression' is not one of classification, anomaly"):
        Metric("mse", "", "regression", False, balanced_accuracy)


@pytest.mark.parametrize("benchmark, asked, message", [
    ("digits01", "top6", "unknown metric 'top6' (did you mean 'top5'?); available: auc, auc_ovr, "
                         "confusion, macro_f1, top1, top5, or evaluate:PATH (a Hugging Face "
                         "Evaluate module in a local folder)"),
    ("digits01", "auc", "metric 'auc' applies to anomaly benchmarks; digits01 is a classification "
                        "benchmark (its metrics: auc_ovr, confusion, macro_f1, top1, top5)"),
    ("ad01", "top1", "metric 'top1' applies to classification benchmarks; ad01 is an anomaly "
                     "benchmark (its metrics: auc)"),
])
def test_a_wrong_metric_is_a_one_line_usage_error(benchmark, asked, message):
    with pytest.raises(UsageError) as caught:
        resolve(get_benchmark(benchmark), [asked])
    assert str(caught.value) == message


def test_defaults_per_kind_and_none_without_an_accuracy_pass():
    assert [m.name for m in resolve(get_benchmark("ad01"))] == ["auc"]
    assert [m.name for m in resolve(get_benchmark("kws01"), ["top1", "auc_ovr"])] == [
        "top1", "top5", "macro_f1", "confusion", "auc_ovr"]  # each once
    assert resolve(get_benchmark("kws01"), runs_accuracy=False) == ()
    with pytest.raises(UsageError, match=r"^--metric top5 needs the accuracy pass; use --mode accuracy "):
        resolve(get_benchmark("kws01"), ["top5"], runs_accuracy=False)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *args], capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=120)


def test_an_unknown_metric_on_the_command_line_is_one_line_exit_2_and_no_run_directory(tmp_path):
    done = _cli("run", "--sut", "null", "--mode", "accuracy", "--metric", "macro-f1",
                "--output", str(tmp_path), "--quiet")
    assert done.returncode == 2
    assert done.stderr.strip() == ("tinyharness: error: unknown metric 'macro-f1' (did you mean "
                                   "'macro_f1'?); available: auc, auc_ovr, confusion, macro_f1, top1, "
                                   "top5, or evaluate:PATH (a Hugging Face Evaluate module in a local "
                                   "folder)")
    assert list(tmp_path.iterdir()) == []


def test_the_builtins_are_there_when_plugins_are_restricted(tmp_path):
    # TINYHARNESS_PLUGINS=null leaves every other entry point out, the metrics' one too
    done = _cli("run", "--sut", "null", "--mode", "accuracy", "--output", str(tmp_path), "--json",
                TINYHARNESS_PLUGINS="null")
    assert done.returncode in (0, 1), done.stderr
    assert list(json.loads(done.stdout)["accuracy"]["metrics"]) == ["top1", "top5", "macro_f1", "confusion"]


def test_the_entry_point_module_is_light():
    code = ("import sys, tinyharness.metrics.builtin; "
            "print(sorted(m for m in ('numpy', 'tinyharness.scoring', 'evaluate') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
