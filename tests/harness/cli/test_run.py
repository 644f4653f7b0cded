"""The CLI end to end, through a subprocess, on the embedded digits01 benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyharness.logs import MLLOG, check_run_directory

REPO = Path(__file__).resolve().parents[2]


def tinyharness(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def only_run_dir(root: Path) -> Path:
    dirs = [p for p in root.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def assert_logs_valid(run_dir: Path) -> dict:
    """Every file in a finished run directory matches its schema and agrees with the others."""
    assert check_run_directory(run_dir) == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (run_dir / "detail.txt").read_text().startswith(MLLOG)
    if summary["accuracy"] is not None:
        log = json.loads((run_dir / "accuracy.json").read_text())
        assert len(log) == summary["dataset"]["count"]
        out = summary["accuracy"]["output"]
        first = np.frombuffer(bytes.fromhex(log[0]["data"]), dtype=out["dtype"])
        assert first.size == int(np.prod(out["shape"]))
        top1 = 100.0 * np.mean([e["prediction"] == e["label"] for e in log])
        assert top1 == pytest.approx(summary["accuracy"]["value"], abs=1e-3)
    if summary["latency_us"] is not None:
        latencies = np.load(run_dir / "latencies.npy")  # uint32 ns: 4 B a query (latencies.py)
        assert latencies.dtype == np.uint32 and len(latencies) == summary["latency_us"]["count"]
        # the stored per-query latencies reproduce the reported p50 (LoadGen rule: sorted[n // 2])
        assert np.sort(latencies)[len(latencies) // 2] / 1000 == pytest.approx(summary["latency_us"]["p50"], abs=1e-3)
    assert not list(run_dir.glob(".*.tmp"))
    return summary


@pytest.mark.parametrize("sut", ["onnxruntime-cpu", "openvino-cpu", "tflite-cpu"])
def test_accuracy_mode_is_valid_on_every_cpu_sut(sut, tmp_path):
    done = tinyharness("run", "--sut", sut, "--mode", "accuracy", "--output", str(tmp_path), "--json",
                       "--quiet")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["valid"] is True and summary["accuracy"]["passed"] is True
    assert summary["accuracy"]["value"] >= 90.0
    assert summary["latency_us"] is None
    on_disk = assert_logs_valid(only_run_dir(tmp_path))
    assert on_disk == summary


def test_single_stream_all_modes_with_override_is_invalid_and_says_why(tmp_path):
    done = tinyharness("run", "--sut", "onnxruntime-cpu", "--min-duration", "0.3", "--output",
                       str(tmp_path), "--json", "--quiet")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["valid"] is False
    assert {"code": "override", "message": "min_duration overridden to 0.3 s (rule set digits01 "
            "requires 3 s)"} in summary["invalid_reasons"]
    assert summary["latency_us"]["count"] >= 100
    assert summary["latency_us"]["p50"] <= summary["latency_us"]["p90"] <= summary["latency_us"]["max"]
    assert len(summary["windows"]["throughput_ips"]) == 5
    assert summary["accuracy"]["passed"] is True
    assert summary["system"]["threads"] == 1
    assert summary["harness_overhead_us"] > 0
    assert_logs_valid(only_run_dir(tmp_path))


def test_offline_reports_throughput(tmp_path):
    done = tinyharness("run", "--sut", "null", "--scenario", "offline", "--mode", "performance",
                       "--min-duration", "0.2", "--output", str(tmp_path), "--json", "--quiet")
    assert done.returncode == 1  # shortened run: INVALID, but complete
    summary = json.loads(done.stdout)
    assert summary["throughput_ips"] > 0 and summary["offline"]["samples"] >= 1024
    assert summary["offline"]["duration_s"] >= 0.2 or not summary["offline"]["min_duration_met"]
    completions = np.load(only_run_dir(tmp_path) / "latencies.npy")
    assert len(completions) == summary["offline"]["samples"]
    assert summary["throughput_ips"] == pytest.approx(len(completions) / (completions.max() / 1e9), rel=1e-3)


def test_text_summary_goes_to_stdout(tmp_path):
    done = tinyharness("run", "--sut", "null", "--mode", "performance", "--min-duration", "0.1",
                       "--output", str(tmp_path))
    assert "Result is : INVALID" in done.stdout
    assert "results: " in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--sut", "nope"], "unknown SUT 'nope'"),
    (["--benchmark", "nope"], "unknown benchmark 'nope'"),
    (["--model", "/nonexistent/model.onnx"], "does not exist"),
    (["--sut-option", "threads"], "is not KEY=VALUE"),
    (["--sut-option", "color=red"], "does not accept option(s) color"),
    (["--sut-option", "threads=zero"], "threads=zero"),
    (["--dataset", "/nonexistent"], "dataset folder /nonexistent does not exist"),
    (["--scenario", "server"], "Invalid value for '--scenario'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    done = tinyharness("run", *args, "--output", str(tmp_path), "--quiet")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) <= 3  # click adds usage lines


def test_corrupt_model_is_a_usage_error_and_leaves_a_failed_run_dir(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not an onnx file")
    done = tinyharness("run", "--sut", "onnxruntime-cpu", "--model", str(bad), "--output",
                       str(tmp_path / "out"), "--quiet")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "corrupt.onnx" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    status = json.loads((only_run_dir(tmp_path / "out") / "status.json").read_text())
    assert status["state"] == "failed" and "corrupt.onnx" in status["error"]


def test_wrong_model_shape_is_a_usage_error(shared_data, tmp_path):
    kws = shared_data / "models" / "kws" / "kws_ref_model.tflite"
    done = tinyharness("run", "--sut", "tflite-cpu", "--model", str(kws), "--output", str(tmp_path),
                       "--quiet")
    assert done.returncode == 2
    assert "has shape [1, 49, 10, 1]" in done.stderr and "Traceback" not in done.stderr


def test_help_does_not_import_runtimes():
    code = ("import sys; from tinyharness.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in ('onnxruntime', 'openvino', 'ai_edge_litert', 'tflite_runtime', 'numpy')"
            " if m in sys.modules]\n"
            "print('LOADED', loaded)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    assert "tinyharness run" in done.stdout
    assert "dut " in done.stdout  # the serial plugin's commands, through register_commands


def test_plugin_commands_follow_the_allow_list():
    import os

    env = dict(os.environ, TINYHARNESS_PLUGINS="null,onnxruntime-cpu")
    done = tinyharness("--help", env=env)
    assert done.returncode == 0 and " run " in done.stdout and "dut " not in done.stdout
    done = tinyharness("dut", "list", env=env)
    assert done.returncode == 2 and "No such command 'dut'" in done.stderr
