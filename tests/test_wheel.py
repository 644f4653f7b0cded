"""A built wheel carries everything a run needs (rules, reference models, the embedded dataset).

Builds the wheel, installs it into a fresh virtual environment (its dependencies come from the
package index), and runs `tinyharness` from there, outside the source tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_runs_the_embedded_benchmark(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("tinyharness-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("tinyharness/rules/summary.schema.json", "tinyharness/rules/benchmarks/digits01.json",
                     "tinyharness/reference_models/digits01/digits01_int8.tflite",
                     "tinyharness/reference_models/digits01/digits01_float.onnx",
                     "tinyharness/reference_models/build_digits01.py",
                     "tinyharness/datasets/digits01/y_labels.csv", "tinyharness/suts/null/__init__.py",
                     "tinyharness/suts/null/sut.py", "tinyharness/suts/serial/cli.py",
                     "tinyharness/cli/__init__.py", "tinyharness/results/summary.py",
                     "tinyharness/scenarios/windows.py", "tinyharness/submission/result_lines.py",
                     "tinyharness/docs/dut-protocol.md", "tinyharness/docs/mlperf-tiny-rules.md"):
        assert required in names
    assert not any(n.startswith("datasets/") for n in names), "no top-level 'datasets' package"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = env_dir / "bin" / "pip"
    installed = subprocess.run([str(pip), "install", "-q", str(wheel)], capture_output=True, text=True,
                               timeout=900)
    if installed.returncode != 0 and "No matching distribution" in installed.stderr:
        pytest.skip(f"package index unreachable: {installed.stderr.strip().splitlines()[-1]}")
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    exe = str(env_dir / "bin" / "tinyharness")
    listing = subprocess.run([exe, "benchmarks", "--json"], capture_output=True, text=True, cwd=work, timeout=120)
    assert listing.returncode == 0, listing.stderr
    digits = {r["id"]: r for r in json.loads(listing.stdout)}["digits01"]
    assert digits["dataset_present"] and all(digits["model_formats"].values())
    suts = subprocess.run([exe, "suts", "--json"], capture_output=True, text=True, cwd=work, timeout=120)
    names = {r["name"] for r in json.loads(suts.stdout)}  # every built-in plugin's entry point
    assert {"null", "onnxruntime-cpu", "openvino-cpu", "tflite-cpu", "serial"} <= names, suts.stderr
    helped = subprocess.run([exe, "--help"], capture_output=True, text=True, cwd=work, timeout=120)
    assert "dut " in helped.stdout  # the serial plugin's commands (register_commands)

    run = subprocess.run([exe, "run", "--sut", "null", "--min-duration", "0.2", "--json", "--quiet"],
                         capture_output=True, text=True, cwd=work, timeout=300)
    assert run.returncode == 1, run.stderr  # shortened run: INVALID by design, but complete
    summary = json.loads(run.stdout)
    assert "site-packages/tinyharness/datasets/digits01" in summary["dataset"]["path"]
    assert summary["dataset"]["count"] == 360 and summary["latency_us"]["count"] > 0
    run_dirs = list((work / "results").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "summary.json").is_file()

    # the light install: no runtime, no scikit-learn, scipy or matplotlib
    bare = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import importlib.util as u; print([m for m in "
                           "('onnxruntime', 'openvino', 'ai_edge_litert', 'sklearn', 'scipy', 'matplotlib') "
                           "if u.find_spec(m)])"], capture_output=True, text=True, timeout=60)
    assert bare.stdout.strip() == "[]", bare.stdout
    no_runtime = subprocess.run([exe, "run"], capture_output=True, text=True, cwd=work, timeout=120)
    assert no_runtime.returncode == 2 and "pip install 'tinyharness[onnxruntime]'" in no_runtime.stderr
    assert len(no_runtime.stderr.strip().splitlines()) == 1, no_runtime.stderr
    report = subprocess.run([exe, "report", str(run_dirs[0]), "--output", str(work / "r.html")],
                            capture_output=True, text=True, cwd=work, timeout=120)
    assert report.returncode == 2 and "pip install 'tinyharness[report]'" in report.stderr, report.stderr
    doc = subprocess.run([exe, "docs", "dut-protocol"], capture_output=True, text=True, cwd=work, timeout=120)
    assert doc.returncode == 0 and "db load" in doc.stdout, doc.stderr
