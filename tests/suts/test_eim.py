"""eim SUT (issue 15 §3) against the project's test .eim (suts/eim/test_runner.py): a real
executable speaking Edge Impulse's runner protocol on a Unix socket, the digits01 float model run
by ONNX Runtime inside it. Nothing is mocked: each test starts real .eim processes.

Skipped with the pip hint where onnxruntime (which the test .eim runs) is missing; the tests that
need no .eim (the light entry point, the label order, the bad files) always run."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _models import assert_no_runtime_import, run

from tinyharness.benchmark import get_benchmark
from tinyharness.errors import RunFailed, UsageError
from tinyharness.resources import data_dir
from tinyharness.sut import SUTError
from tinyharness.suts.eim.sut import EdgeImpulseEim, label_order
from tinyharness.suts.eim.test_runner import write_test_eim
from tinyharness.testing import SUTConformance

MODULE = "tinyharness.suts.eim.sut"
DIGITS01_ONNX = data_dir("reference_models") / "digits01" / "digits01_float.onnx"
HINT = "onnxruntime not installed: the test .eim runs the model with it " \
       "(pip install 'tinyharness[onnxruntime]')"
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason=HINT)
# The CLI in a fresh interpreter, the SUT registered here where the entry point is not installed.
CLI = ("import sys, tinyharness.suts.eim as plugin\n"
       "from tinyharness.plugins import registry\n"
       "if 'eim' not in registry().suts:\n"
       "    registry().add(plugin, 'eim')\n"
       "from tinyharness.cli import main\n"
       "main(sys.argv[1:])\n")


@pytest.fixture(scope="module")
def eim(tmp_path_factory) -> Path:
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip(HINT)
    return write_test_eim(tmp_path_factory.mktemp("eim"))


@pytest.fixture
def registered():
    """The SUT registered for one test (pyproject's entry point does it once installed)."""
    import tinyharness.suts.eim as plugin
    from tinyharness.plugins import registry

    added = "eim" not in registry().suts
    if added:
        registry().add(plugin, "eim")
    yield
    if added:
        registry().remove("eim")


def loaded(model: Path, **options: str) -> EdgeImpulseEim:
    sut = EdgeImpulseEim("single-stream", options, benchmark=get_benchmark("digits01"))
    try:
        sut.load(model)
    except BaseException:
        sut.close()
        raise
    return sut


def execute(model: Path, out: Path, mode: str, **extra):
    from tinyharness.progress import Progress
    from tinyharness.runner import Run, RunRequest

    return Run(RunRequest(benchmark="digits01", sut="eim", mode=mode, model=model, output=out,
                          **extra)).execute(Progress(enabled=False))


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TINYHARNESS_SUPERVISE": "0", **env})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- no .eim needed ---------------------------------------------------------------------------
def test_entry_point_imports_neither_numpy_nor_a_runtime():
    assert_no_runtime_import(MODULE, ("onnxruntime", "edge_impulse_linux",
                                      "multiprocessing.shared_memory"))


def test_labels_come_in_the_benchmark_order_when_the_names_match():
    kws = get_benchmark("kws01")
    studio = tuple(sorted(kws.labels))  # Edge Impulse sorts labels
    assert label_order(studio, kws, "kws.eim") == (tuple(kws.labels), "benchmark")
    renamed = tuple("_" + x if x in ("silence", "unknown") else x for x in studio)
    order, where = label_order(renamed, kws, "kws.eim")
    assert order == renamed and where.startswith("eim")
    with pytest.raises(UsageError, match=r"kws\.eim has 2 labels .* needs 12 outputs"):
        label_order(("yes", "no"), kws, "kws.eim")


def test_only_eim_files():
    with pytest.raises(UsageError, match=r"accepted model formats: \.eim"):
        EdgeImpulseEim("single-stream").load(DIGITS01_ONNX)


def test_a_non_executable_eim_is_exit_2_with_the_chmod_fix(tmp_path):
    model = tmp_path / "model.eim"
    model.write_text("#!/bin/sh\nexit 0\n")
    model.chmod(0o644)
    proc = cli("run", "--sut", "eim", "--mode", "accuracy", "--model", str(model),
               "--output", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"tinyharness: error: {model} is not executable: chmod +x {model}"


def test_an_executable_that_is_no_eim_is_exit_2_saying_so(tmp_path):
    model = tmp_path / "script.eim"
    model.write_text("#!/bin/sh\necho 'just a script'\nexit 0\n")
    model.chmod(0o755)
    private = tmp_path / "tmp"
    private.mkdir()
    proc = cli("run", "--sut", "eim", "--mode", "accuracy", "--model", str(model),
               "--output", str(tmp_path / "out"), TMPDIR=str(private))
    assert proc.returncode == 2, proc.stderr
    assert list(private.iterdir()) == []  # the .eim's folder removed after the failed load
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"tinyharness: error: {model} is not an Edge Impulse .eim: it exited with "
                     "code 0 without opening its runner socket; its last output: 'just a script'"]


def test_a_program_that_never_opens_its_socket_is_stopped_after_the_start_timeout(tmp_path,
                                                                                   monkeypatch):
    model = tmp_path / "silent.eim"
    model.write_text('#!/bin/sh\necho $$ > "$0.pid"\nexec sleep 60\n')
    model.chmod(0o755)
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # where the SUT makes its folder
    sut = EdgeImpulseEim("single-stream", {"start_timeout_s": "0.5"})
    with pytest.raises(UsageError, match=r"opened no runner socket within 0\.5 s: not an Edge "
                                         r"Impulse \.eim, or a slow start"):
        sut.load(model)
    pid = int((tmp_path / "silent.eim.pid").read_text())
    assert not alive(pid) and list(private.iterdir()) == []  # load cleaned up after itself


# -- the test .eim ----------------------------------------------------------------------------
@needs_ort
@pytest.mark.parametrize("transport", ["auto", "json"])
def test_digits01_top1_is_98_33_percent(eim, tmp_path, registered, transport):
    """354 of 360, as the float model on onnxruntime-cpu; features through the shared memory
    the .eim announces (auto) and in the JSON request (json)."""
    summary, run_dir = execute(eim, tmp_path, "accuracy", sut_options={"transport": transport})
    assert summary.accuracy.metric == "top1" and summary.accuracy.count == 360
    assert summary.accuracy.value == pytest.approx(98.333333, abs=1e-4)
    saved = json.loads((run_dir.path / "summary.json").read_text())
    used = saved["system"]["sut"]["extra"]["transport"]
    assert used == ("shm" if transport == "auto" else "json")


@needs_ort
def test_summary_holds_the_host_timing_and_the_eims_own(eim, tmp_path, registered):
    summary, run_dir = execute(eim, tmp_path, "performance", min_duration_s=0.5,
                               min_query_count=100)
    saved = json.loads((run_dir.path / "summary.json").read_text())
    host, own = saved["latency_us"], saved["runtime_latency_us"]
    assert host["p50"] > 0
    # the runner counts whole milliseconds: digits01 takes well under one
    assert own is not None and own["p50"] == 0 and own["max"] <= 1000
    sut = saved["system"]["sut"]
    assert sut["runtime"] == "edge-impulse (eim)" and sut["runtime_version"] == "deploy 1"
    assert sut["extra"]["eim_sha256"] == hashlib.sha256(eim.read_bytes()).hexdigest()
    stats = sut["run_stats"]
    assert stats["replies_read"] >= summary.performance.queries
    assert set(stats["timing_ms_totals"]) == {"dsp", "classification", "anomaly", "json",
                                              "stdin", "msg_handler"}


@needs_ort
def test_an_eim_that_dies_mid_run_fails_the_run(tmp_path, registered):
    crashing = write_test_eim(tmp_path, "crashing.eim", crash_after=50)
    with pytest.raises(RunFailed, match=r"crashing\.eim was killed by SIGKILL during classify"):
        execute(crashing, tmp_path / "out", "accuracy")
    [status_file] = (tmp_path / "out").rglob("status.json")
    status = json.loads(status_file.read_text())
    assert status["state"] == "failed"
    assert "SUTError: crashing.eim was killed by SIGKILL during classify request" in status["error"]
    assert "\n" not in status["error"]


@needs_ort
def test_the_cli_says_run_failed_with_exit_3_when_the_eim_dies(tmp_path):
    crashing = write_test_eim(tmp_path, "crashing.eim", crash_after=20)
    proc = cli("run", "--sut", "eim", "--mode", "accuracy", "--model", str(crashing),
               "--output", str(tmp_path / "out"))
    assert proc.returncode == 3, proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("tinyharness:")]
    assert "crashing.eim was killed by SIGKILL during classify" in line


@needs_ort
def test_a_runner_killed_between_queries_is_a_sut_error_and_close_cleans_up(eim):
    sut = loaded(eim)
    runner = sut._runner
    pid, folder, segment = runner.pid(), runner._dir, sut._hello.shm["name"]
    assert Path("/dev/shm" + segment).exists()
    os.kill(pid, signal.SIGKILL)
    sut.prepare(np.zeros((1, 64), dtype=np.float32))
    with pytest.raises(SUTError, match=r"^digits01\.eim was killed by SIGKILL during classify"):
        sut.infer()
    sut.close()
    assert not alive(pid) and not folder.exists() and not Path("/dev/shm" + segment).exists()


@needs_ort
def test_close_stops_the_runner_and_removes_its_files(eim):
    sut = loaded(eim)
    pid, folder, segment = sut._runner.pid(), sut._runner._dir, sut._hello.shm["name"]
    assert alive(pid) and (folder / "runner.sock").exists()
    sut.close()
    sut.close()
    assert not alive(pid) and not folder.exists() and not Path("/dev/shm" + segment).exists()


@needs_ort
def test_a_refused_classify_is_a_sut_error_with_the_runners_words(eim):
    sut = loaded(eim, transport="json")
    try:
        sut.prepare(np.zeros(63, dtype=np.float32))
        with pytest.raises(SUTError, match=r"^digits01\.eim refused classify: Invalid number of "
                                           r"features in 'classify', expected 64 but got 63$"):
            sut.infer()
        np.testing.assert_allclose(run(sut, np.zeros((1, 64), dtype=np.float32)).sum(), 1.0,
                                   rtol=1e-5)  # the runner goes on after an error reply
    finally:
        sut.close()


@needs_ort
def test_outputs_equal_onnxruntime_and_describe_names_the_eim(eim):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(DIGITS01_ONNX), providers=["CPUExecutionProvider"])
    sut = loaded(eim)
    try:
        assert (sut.input_spec().shape, sut.output_spec().shape) == ((1, 64), (1, 10))
        rng = np.random.default_rng(0)
        for _ in range(10):
            x = (rng.random((1, 64)) * 16).astype(np.float32)
            want = sess.run(None, {sess.get_inputs()[0].name: x.reshape(1, 8, 8, 1)})[0]
            np.testing.assert_array_equal(run(sut, x), want)  # float32 printed shortest: exact
        d = sut.describe()
        assert (d.runtime, d.model_format, d.precision, d.threads) == \
            ("edge-impulse (eim)", "eim", "float32", None)
        assert d.extra["project"]["name"] == "tinyharness test runner"
        assert d.extra["model_type"] == "classification" and d.extra["label_order"] == "benchmark"
        assert d.extra["transport"] == "shm"
    finally:
        sut.close()


def test_the_test_runner_answers_print_info(eim):
    proc = subprocess.run([str(eim), "--print-info"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.split("\n", 1)[1])
    assert info["model_parameters"]["input_features_count"] == 64
    assert info["model_parameters"]["labels"] == [str(d) for d in range(10)]


@needs_ort
class TestEimConformance(SUTConformance):
    """The conformance kit on the test .eim, against onnxruntime-cpu on the model it runs."""

    sut = EdgeImpulseEim
    reference = "onnxruntime-cpu"

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _written(cls, eim):
        cls.model = eim


def test_the_written_eim_is_this_python_and_this_runner(tmp_path):
    """write_test_eim: an executable file, its shebang this interpreter, its settings filled in
    (a check that the file is the runner, not a copy that drifts from it)."""
    out = write_test_eim(tmp_path, "x.eim", crash_after=3, shm=False)
    text = out.read_text()
    assert text.startswith(f"#!{sys.executable}\n") and os.access(out, os.X_OK)
    assert "'crash_after': 3" in text and "'shm': False" in text
    source = (Path(__file__).resolve().parents[2] / "suts" / "eim" / "test_runner.py").read_text()
    written, original = text.splitlines()[1:], source.splitlines()[1:]
    changed = [(a, b) for a, b in zip(written, original) if a != b]
    assert len(written) == len(original) and len(changed) == 1
    assert changed[0][1].startswith("SETTINGS: dict = {}  #")
    assert changed[0][0].startswith("SETTINGS: dict = {'model': ")
