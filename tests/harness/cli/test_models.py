"""``tinyharness models list|fetch|verify`` through a subprocess, with the cache in tmp_path, the
shared folders as mirrors and a local HTTP server as the upstream. Nothing reaches the internet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# pytest puts this folder on sys.path (rootdir import mode, no __init__.py)
from model_server import model_entry, serving, url_path
from tinyharness.fileio import sha256_of


def tinyharness(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", "models", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def model_server(shared_data):
    """The local upstream server of test_model_store, serving ../shared/mlperf_tiny/models."""
    with serving(shared_data) as server:
        yield server


def base_env(tmp_path: Path) -> dict:
    """No mirror, the cache in tmp_path, a wide table."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TINYHARNESS_")}
    return {**clean, "TINYHARNESS_CACHE_DIR": str(tmp_path), "COLUMNS": "300"}


@pytest.fixture
def env(model_server, tmp_path) -> dict:
    """base_env with the local server as the upstream."""
    return {**base_env(tmp_path), "TINYHARNESS_MODEL_BASE_URL": model_server.url}


def mirrors(shared_data: Path, *names: str) -> str:
    return os.pathsep.join(str(shared_data / name) for name in names)


def by_file(rows: list[dict], benchmark: str) -> dict[str, dict]:
    return {r["file"]: r for r in rows if r["benchmark"] == benchmark}


def corrupt_copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(source.read_bytes())
    data[100] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_list_json_shows_where_each_model_is(env, shared_data, tmp_path, model_server):
    env["TINYHARNESS_MODEL_MIRROR"] = mirrors(shared_data, "models")  # tflite only
    bad = corrupt_copy(shared_data / "models_onnx" / "kws" / "kws_ref_model.onnx",
                       tmp_path / "models" / "kws" / "kws_ref_model.onnx")
    done = tinyharness("list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["benchmark"] for r in rows} == {"ad01", "digits01", "ic01", "ic02", "kws01", "vww01"}
    kws = by_file(rows, "kws01")
    tflite, onnx, fp32 = (kws[f] for f in ("kws_ref_model.tflite", "kws_ref_model.onnx",
                                           "kws_ref_model_fp32.onnx"))
    assert tflite["found"] == "mirror"
    assert tflite["path"] == str(shared_data / "models" / "kws" / "kws_ref_model.tflite")
    assert tflite["url"] == model_entry("kws01", "kws_ref_model.tflite").url(model_server.url)
    assert tflite["default"] is True and tflite["precision"] == "int8" and tflite["format"] == "tflite"
    assert fp32["found"] == "missing" and fp32["url"] is None and fp32["path"] is None
    assert fp32["converted_from"] == "kws_ref_model_savedmodel"
    assert onnx["found"] == "bad checksum" and onnx["path"] == str(bad)
    assert {r["found"] for r in by_file(rows, "digits01").values()} == {"embedded"}
    assert model_server.requests == []  # listing never downloads

    table = tinyharness("list", "--benchmark", "kws01", env=env)
    assert table.returncode == 0, table.stderr
    assert f"bad checksum: {bad}" in table.stdout
    assert "converted from kws_ref_model_savedmodel" in table.stdout
    assert "digits01" not in table.stdout


def test_fetch_downloads_the_tflite_and_reports_the_onnx_it_cannot_get(env, tmp_path, model_server):
    entry = model_entry("kws01", "kws_ref_model.tflite")
    target = tmp_path / "models" / entry.relative_path
    done = tinyharness("fetch", "kws01", env=env)
    # the default tflite model is fetched although the default ONNX one (no upstream URL) is not local
    assert done.returncode == 2
    assert f"kws01 kws_ref_model.tflite: downloaded to {target}" in done.stdout
    assert sha256_of(target) == entry.sha256
    assert model_server.requests == [url_path(entry)]
    assert "kws/kws_ref_model.onnx" in done.stderr and "TINYHARNESS_MODEL_MIRROR" in done.stderr
    assert "converted from kws_ref_model.tflite" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == ("tinyharness: error: 1 of 2 models could not be "
                                                     "fetched (see above)")
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "models").rglob("*.part"))


def test_fetch_uses_the_cache_then_force_downloads_again(env, tmp_path, model_server):
    entry = model_entry("kws01", "kws_ref_model.tflite")
    target = tmp_path / "models" / entry.relative_path
    first = tinyharness("fetch", "kws01", "--format", "tflite", env=env)
    assert first.returncode == 0, first.stderr
    second = tinyharness("fetch", "kws01", "--format", "tflite", env=env)
    assert second.returncode == 0 and f"kws01 kws_ref_model.tflite: cache: {target}" in second.stdout
    assert model_server.requests == [url_path(entry)]
    forced = tinyharness("fetch", "kws01", "--format", "tflite", "--force", env=env)
    assert forced.returncode == 0 and "downloaded to" in forced.stdout
    assert model_server.requests == [url_path(entry)] * 2 and sha256_of(target) == entry.sha256


def test_fetch_all_from_the_mirrors_downloads_nothing(env, shared_data, model_server):
    env["TINYHARNESS_MODEL_MIRROR"] = mirrors(shared_data, "models", "models_onnx")
    done = tinyharness("fetch", "kws01", "digits01", "--all", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 11 and sum(": mirror: " in ln for ln in lines) == 4
    # digits01: tflite float and int8, onnx, pt2 and pte float and PT2E int8
    assert sum(": embedded: " in ln for ln in lines) == 7
    assert model_server.requests == []


def test_verify_reports_a_corrupted_cache_file_with_exit_1(env, shared_data, tmp_path):
    good = shared_data / "models" / "kws" / "kws_ref_model.tflite"
    bad = corrupt_copy(good, tmp_path / "models" / "kws" / "kws_ref_model.tflite")
    done = tinyharness("verify", "kws01", "--json", env=env)
    assert done.returncode == 1
    kws = by_file(json.loads(done.stdout), "kws01")
    row = kws["kws_ref_model.tflite"]
    assert row["status"] == "MISMATCH" and row["where"] == "cache" and row["path"] == str(bad)
    assert {r["status"] for f, r in kws.items() if f != "kws_ref_model.tflite"} == {"missing"}

    table = tinyharness("verify", "kws01", env=env)
    assert table.returncode == 1 and "MISMATCH" in table.stdout and str(bad) in table.stdout
    assert "do not match the rule set" in table.stderr

    shutil.copyfile(good, bad)
    env["TINYHARNESS_MODEL_MIRROR"] = mirrors(shared_data, "models", "models_onnx")
    fixed = tinyharness("verify", "kws01", "digits01", "--json", env=env)
    assert fixed.returncode == 0, fixed.stdout
    rows = json.loads(fixed.stdout)
    assert {r["status"] for r in rows} == {"OK"}
    assert {r["where"] for r in rows} == {"mirror", "cache", "embedded"}


@pytest.mark.parametrize("args", [("fetch", "nope"), ("verify", "nope"),
                                  ("list", "--benchmark", "nope"), ("fetch", "--format", "pb")])
def test_bad_arguments_are_one_line_and_exit_2(args, tmp_path):
    done = tinyharness(*args, env=base_env(tmp_path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "nope" in done.stderr or "pb" in done.stderr


@pytest.mark.parametrize("args", [("list", "--benchmark", ""), ("fetch", ""), ("verify", " ")])
def test_an_empty_benchmark_id_is_an_error_not_every_benchmark(args, tmp_path):
    """Issue defect 5: an empty id (an unset shell variable) must not mean all benchmarks."""
    done = tinyharness(*args, env=base_env(tmp_path))
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown benchmark" in lines[0], done.stderr
    assert done.stdout == ""
