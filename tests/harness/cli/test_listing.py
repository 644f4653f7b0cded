"""``tinyharness suts`` and ``tinyharness benchmarks``, through a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys


def tinyharness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_suts_lists_builtins_as_json():
    done = tinyharness("suts", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert {"null", "onnxruntime-cpu", "openvino-cpu", "tflite-cpu"} <= set(rows)
    assert rows["openvino-cpu"]["model_formats"] == ["tflite", "onnx"]
    assert set(rows["onnxruntime-cpu"]["options"]) == {"threads", "lanes"}
    assert rows["serial"]["timing"] == "device" and rows["serial"]["scenarios"] == ["single-stream"]
    assert rows["openvino-cpu"]["timing"] == "host"
    assert rows["onnxruntime-cpu"]["version"]


def test_plugin_allow_list_env_restricts_suts():
    import os

    env = dict(os.environ, TINYHARNESS_PLUGINS="null")
    done = tinyharness("suts", "--json", env=env)
    assert [r["name"] for r in json.loads(done.stdout)] == ["null"]


def test_benchmarks_lists_embedded_default():
    done = tinyharness("benchmarks", "--json")
    rows = {r["id"]: r for r in json.loads(done.stdout)}
    assert rows["digits01"]["embedded"] and rows["digits01"]["dataset_present"]
    assert all(rows["digits01"]["model_formats"].values())


def test_the_install_hint_keeps_its_extra_in_the_table(monkeypatch):
    """rich read "[onnxruntime]" as markup and printed "pip install 'tinyharness'"."""
    from click.testing import CliRunner

    from fakes import FakeSUT, registered
    from tinyharness.cli.listing import suts

    class Missing(FakeSUT):
        name, runtime, extra = "missing-runtime", "no-such-runtime-package", "vendor"

    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich wraps no cell
    with registered(Missing):
        done = CliRunner().invoke(suts, [])
    assert done.exit_code == 0, done.output
    assert "not installed: pip install 'tinyharness[vendor]'" in done.output


def test_a_dataset_with_only_its_labels_file_is_incomplete_not_present(tmp_path):
    """ad01 with y_labels.csv and none of the files it names: the run would fail on the first."""
    import os

    (tmp_path / "ad01").mkdir()
    (tmp_path / "ad01" / "y_labels.csv").write_text("normal_id_01_00000003_hist_librosa.bin,2,0,2560,512\n")
    done = tinyharness("benchmarks", "--json", env=dict(os.environ, TINYHARNESS_DATASETS=str(tmp_path)))
    rows = {r["id"]: r for r in json.loads(done.stdout)}
    assert rows["ad01"]["dataset_present"] is False
    assert rows["ad01"]["dataset"].startswith("incomplete: ") and "missing" in rows["ad01"]["dataset"]
    assert rows["kws01"]["dataset"] == "missing" and rows["digits01"]["dataset"] == "present (360 files)" and rows["digits01"]["dataset_files"] == 360
