"""A third-party SUT plugin found through the entry-point group, as a user would ship one.

The plugin is a real distribution on sys.path (a module plus a ``.dist-info`` with
``entry_points.txt``), discovered by importlib.metadata in a fresh ``tinyharness`` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent('''
    """A SUT that classifies a digit by the brightness of its image: a real, if poor, model."""
    from dataclasses import dataclass
    from pathlib import Path

    import numpy as np

    from tinyharness.hookspecs import hookimpl
    from tinyharness.sut import SUT, SUTDescription, TensorSpec
    from tinyharness.sut_config import HostConfig, option, positive_int


    @dataclass(frozen=True)
    class BrightnessConfig(HostConfig):
        bucket: int = option("pixel sum per class bucket (default 40)", positive_int, 40)


    class BrightnessSUT(SUT):
        name = "example-brightness"
        summary = "toy classifier from a third-party plugin"
        runtime = "numpy"
        model_formats = ("onnx",)
        config_class = BrightnessConfig

        def load(self, model: Path) -> None:
            self.x = np.zeros((1, 8, 8, 1), np.float32)
            self.y = np.zeros((1, 10), np.float32)

        def input_spec(self):
            return TensorSpec("input", (1, 8, 8, 1), "float32")

        def output_spec(self):
            return TensorSpec("out", (1, 10), "float32")

        def prepare(self, sample):
            np.copyto(self.x, sample)

        def infer(self):
            self.y[:] = 0.0
            self.y[0, int(self.x.sum()) // self.config.bucket % 10] = 1.0

        def output(self):
            return self.y.copy()

        def describe(self):
            return SUTDescription(self.name, "numpy", np.__version__, "cpu", "onnx", "float32",
                                  self.threads())


    @hookimpl
    def register_suts(register):
        register(BrightnessSUT)
''')


def _distribution(root: Path, name: str, module: str, source: str, entry: str) -> None:
    (root / f"{module}.py").write_text(source)
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[tinyharness]\n{entry} = {module}\n")


def _tinyharness(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=str(root), **env)
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *args], capture_output=True,
                          text=True, env=environ, timeout=300, cwd=root)


def test_third_party_sut_is_listed_and_runs(tmp_path):
    _distribution(tmp_path, "example_plugin", "example_sut", PLUGIN, "example-brightness")
    listed = _tinyharness(tmp_path, "suts", "--json")
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["example-brightness"]["plugin"] == "example-brightness"
    assert rows["example-brightness"]["version"]  # numpy's version
    assert set(rows["example-brightness"]["options"]) == {"threads", "bucket"}

    done = _tinyharness(tmp_path, "run", "--sut", "example-brightness", "--mode", "accuracy",
                        "--sut-option", "bucket=41", "--json", "--quiet", "--output", str(tmp_path / "out"))
    summary = json.loads(done.stdout)
    assert summary["sut"] == "example-brightness" and summary["system"]["runtime"] == "numpy"
    assert summary["settings"]["sut_config"] == {"threads": None, "bucket": 41}
    assert summary["accuracy"]["count"] == 360
    assert summary["accuracy"]["passed"] is False and done.returncode == 1  # a poor model: INVALID
    assert summary["invalid_reasons"][0]["code"] == "accuracy-target"

    refused = _tinyharness(tmp_path, "run", "--sut", "example-brightness", "--sut-option", "bucket=0",
                           "--output", str(tmp_path / "refused"))
    assert refused.returncode == 2 and not (tmp_path / "refused").exists()
    assert refused.stderr.count("\n") == 1 and "bucket=0" in refused.stderr


def test_broken_plugin_is_skipped_with_a_warning_and_the_allow_list_silences_it(tmp_path):
    _distribution(tmp_path, "broken_plugin", "broken_sut", "raise ImportError('missing libfoo.so')\n",
                  "broken")
    listed = _tinyharness(tmp_path, "suts", "--json")
    assert listed.returncode == 0
    assert "plugin 'broken' (broken_sut) failed to load: missing libfoo.so" in listed.stderr
    assert "onnxruntime-cpu" in {r["name"] for r in json.loads(listed.stdout)}

    allowed = _tinyharness(tmp_path, "suts", "--json", TINYHARNESS_PLUGINS="null,onnxruntime-cpu")
    assert allowed.stderr == ""
    assert sorted(r["name"] for r in json.loads(allowed.stdout)) == ["null", "onnxruntime-cpu"]
