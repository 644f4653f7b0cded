"""The serial SUT (suts/serial/sut.py): options, handshake, upload/infer/output, device-timed windows,
and whole runs through the harness: against the scripted FakeDUT, and against the DUT emulator
(suts/serial/emulator.py) running the real KWS model on TFLite Micro when it is present."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_dut import FakeDUT, fake_duts
from tinyharness.errors import UsageError
from tinyharness.plugins import registry
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.benchmark import get_benchmark
from tinyharness.results import RunSummary
from tinyharness.settings import Scenario
from tinyharness.sut import SUTError, Timing
from tinyharness.suts.serial.protocol import WRAP, DUTError
from tinyharness.suts.serial.sut import SerialSUT

dut = pytest.fixture(fake_duts, name="dut")


def one_hot(data: bytes, classes: int = 12) -> list[float]:
    """FakeDUT results: class = first byte of the uploaded sample, so the test sees what arrived."""
    return [1.0 if k == data[0] % classes else 0.0 for k in range(classes)]


def loaded(peer: FakeDUT, benchmark="kws01", **options) -> SerialSUT:
    options = {"port": peer.port, "timeout": "0.5", **{k: str(v) for k, v in options.items()}}
    sut = SerialSUT("single-stream", options, benchmark=get_benchmark(benchmark))
    sut.load(None)
    return sut


@pytest.fixture
def serial_registered():
    """The serial SUT in the registry: by its entry point once installed, else added here."""
    reg = registry()
    added = "serial" not in reg.suts
    if added:
        from tinyharness.suts import serial as module

        reg.add(module, "serial-under-test")
    yield
    if added:
        reg.remove("serial-under-test")


# -- options and load ----------------------------------------------------------------------------
def test_port_is_required_with_a_hint():
    with pytest.raises(UsageError, match="--sut-option port=/dev/ttyACM0"):
        SerialSUT.parse_options({})
    with pytest.raises(UsageError, match="chunk=40"):
        SerialSUT.parse_options({"port": "/dev/x", "chunk": "40"})
    assert SerialSUT.timing is Timing.DEVICE and not SerialSUT.needs_model
    assert SerialSUT.scenarios == (Scenario.SINGLE_STREAM,)


@pytest.mark.parametrize("key, value", [
    ("timeout", "nan"), ("timeout", "inf"), ("timeout", "0"), ("timeout", "-1"), ("timeout", "1e9"),
    ("infer_timeout", "nan"), ("infer_timeout", "inf"), ("infer_timeout", "-5"),
    ("baud", "0"), ("baud", "1e3"), ("baud", "99999999999"), ("retries", "-1"), ("retries", "1000"),
    ("verify", "maybe"),
])
def test_numeric_options_are_finite_and_bounded(key, value):
    """Defect 17: timeout=inf was accepted (positive_float lets inf through): a wait forever."""
    with pytest.raises(UsageError, match=f"--sut-option {key}={value}: expected ") as caught:
        SerialSUT.parse_options({"port": "/dev/x", key: value})
    assert "\n" not in str(caught.value)
    config = SerialSUT.parse_options({"port": "/dev/x", "timeout": "600", "infer_timeout": "86400",
                                      "retries": "20", "baud": "921600"})
    assert (config.timeout, config.infer_timeout, config.retries) == (600.0, 86400.0, 20)


def test_the_link_refuses_a_timeout_that_is_not_finite():
    from tinyharness.suts.serial.protocol import DUTLink

    for bad in (float("nan"), float("inf"), 0.0):
        with pytest.raises(ValueError, match="finite number of seconds"):
            DUTLink(None, line_timeout=bad)


def test_unopenable_port_names_port_and_os_error():
    sut = SerialSUT("single-stream", {"port": "/dev/no-such-tty"}, benchmark=get_benchmark("kws01"))
    with pytest.raises(UsageError, match=r"cannot open serial port /dev/no-such-tty: .*No such file"):
        sut.load(None)


def test_load_and_describe(dut):
    peer = dut(banner=False, name="STMicroelectronics")
    sut = loaded(peer)
    try:
        d = sut.describe()
        assert d.runtime == "serial DUT protocol"
        assert d.runtime_version == "ULPMark for tinyML Firmware V0.0.1"
        assert d.device == f"STMicroelectronics on {peer.port}"
        assert (d.model_format, d.precision, d.threads) == ("device", "device", None)
        assert d.extra["model_id"] == "kws01" and d.extra["baud"] == 115200
        assert d.extra["timestamp_mode"] == "performance" and d.extra["port"] == peer.port
        assert sut.input_spec().shape == () and sut.input_spec().dtype == ""
        assert sut.output_spec().shape == (12,) and not sut.output_spec().quantized
        assert peer.commands == ["name", "profile", "timestamp"]
    finally:
        sut.close()


def test_ad_defaults_to_921600_baud_and_one_output(dut):
    sut = loaded(dut(model="ad01"), benchmark="ad01")
    try:
        assert sut.describe().extra["baud"] == 921600 and sut.output_spec().shape == (1,)
    finally:
        sut.close()


def test_model_mismatch_names_both(dut):
    with pytest.raises(UsageError, match="runs model 'vww01', but the benchmark is 'kws01'"):
        loaded(dut(model="vww01"))


def test_energy_firmware_is_refused(dut):
    with pytest.raises(UsageError, match="energy-mode firmware"):
        loaded(dut(banner=False, mode="energy"))


def test_silent_port_fails_within_bounds(dut):
    peer = dut(banner=False)
    for _ in range(10):
        peer.fault(lambda c: True, "drop")
    with pytest.raises(DUTError, match="no MLPerf Tiny DUT answered"):
        loaded(peer, timeout=0.2)
    # bounded: a fixed number of tries, each with its own timeout, then the error
    assert peer.commands == ["name"] * len(peer.commands) and 1 <= len(peer.commands) <= 4


def test_handshake_survives_a_dropped_name(dut):
    peer = dut(banner=False).fault(lambda c: c == "name", "drop")
    sut = loaded(peer, timeout=0.3)
    sut.close()
    assert peer.commands[:2] == ["name", "name"]


def test_model_file_option_names_a_readable_file(tmp_path):
    model = tmp_path / "fw" / "kws_ref_model.tflite"
    model.parent.mkdir()
    model.write_bytes(b"TFL3 model bytes")
    config = SerialSUT.parse_options({"port": "/dev/x", "model-file": str(model)})
    assert config.model_file == str(model.resolve()) and config.to_dict()["model_file"] == str(model)
    assert SerialSUT.parse_options({"port": "/dev/x"}).model_file is None  # optional (open division)
    for bad, says in ((tmp_path / "missing.tflite", "cannot read it: No such file or directory"),
                      (tmp_path / "fw", "expected a model file (a regular file, e.g. kws_ref_model.tflite), "
                                        "not a folder")):
        with pytest.raises(UsageError) as caught:
            SerialSUT.parse_options({"port": "/dev/x", "model_file": str(bad)})
        message = str(caught.value)  # the value as typed, cut to about 60 characters
        assert message.startswith("--sut-option model_file=") and message.endswith(f": {says}")


def test_load_hashes_the_model_file_and_sends_nothing_of_it(dut, tmp_path):
    import hashlib

    model = tmp_path / "kws-build.tflite"
    model.write_bytes(bytes(range(256)) * 40)
    peer = dut(banner=False)
    sut = loaded(peer, model_file=model)
    try:
        extra = sut.describe().extra
        assert extra["model_id"] == "kws01"  # what the DUT reports, beside the file's identity
        assert (extra["model_file"], extra["model_sha256"], extra["model_size"]) == \
            (str(model), hashlib.sha256(model.read_bytes()).hexdigest(), 10240)
        assert peer.commands == ["name", "profile", "timestamp"]  # the file stays on the host
    finally:
        sut.close()
    sut = loaded(dut(banner=False))
    try:
        assert not {"model_file", "model_sha256", "model_size"} & set(sut.describe().extra)
    finally:
        sut.close()


# -- samples, results, windows -------------------------------------------------------------------
def test_prepare_uploads_raw_bytes_and_infer_parses_results(dut):
    peer = dut(results=one_hot)
    sut = loaded(peer)
    try:
        sample = np.full((1, 49, 10, 1), 5, dtype=np.int8)
        sut.prepare(sample)
        assert bytes(peer.buffer) == sample.tobytes() and len(peer.buffer) == 490
        sut.infer()
        out = sut.output()
        assert out.dtype == np.float32 and out.shape == (12,) and out.argmax() == 5
        assert peer.commands[-1] == "infer 1 0"
        with pytest.raises(SUTError, match="raw 490-byte int8 sample"):
            sut.prepare(sample.astype(np.float32))  # a transformed sample is refused, not uploaded
    finally:
        sut.close()


def test_vww_trailing_comma_and_wrong_result_count(dut):
    sut = loaded(dut(model="vww01", trailing_comma=True, results=lambda d: [0.1, 0.9]),
                 benchmark="vww01")
    try:
        sut.prepare(np.zeros((1, 96, 96, 3), dtype=np.uint8))
        sut.infer()
        assert sut.output().tolist() == pytest.approx([0.1, 0.9])
    finally:
        sut.close()
    sut = loaded(dut(results=lambda d: [0.5] * 10))
    try:
        sut.prepare(np.zeros((1, 49, 10, 1), dtype=np.int8))
        with pytest.raises(DUTError, match="expected 12 result values, got 10"):
            sut.infer()
    finally:
        sut.close()


def test_run_window_uses_the_device_clock_across_the_wrap(dut):
    # 0.75 s per inference on the device clock, answered at once: only the device clock says so
    peer = dut(us_per_inference=750_000, clock_us=WRAP - 1_000_000)
    sut = loaded(peer)
    try:
        sut.prepare(np.zeros((1, 49, 10, 1), dtype=np.int8))
        assert sut.run_window(1, 0) == 750_000_000
        assert sut.run_window(4, 2) == 3_000_000_000  # T1 wrapped past 2^32
        assert peer.commands[-2:] == ["infer 1 0", "infer 4 2"]
        # the read timeout grows with N x the last estimate (default 30 s)
        assert sut._timeout(100) >= 100 * 0.75 and sut._timeout(1) == 30.0
    finally:
        sut.close()


def test_disconnect_mid_run_is_a_clear_error(dut):
    peer = dut()
    sut = loaded(peer, timeout=2)
    try:
        peer.fault(lambda c: c.startswith("infer"), "disconnect")
        sut.prepare(np.zeros((1, 49, 10, 1), dtype=np.int8))
        with pytest.raises(DUTError, match="device disconnected"):  # not a timeout
            sut.run_window(10, 1)
    finally:
        sut.close()


# -- whole runs through the harness (scripted peer) ------------------------------------------------
def kws_dataset(root: Path, count: int = 8) -> Path:
    folder = root / "kws01"
    folder.mkdir(parents=True)
    rows = []
    for i in range(count):
        label = i % 12
        data = np.random.default_rng(i).integers(-128, 128, 490).astype(np.int8)
        data[0] = label
        name = f"tst_{i:06d}_x_{label}.bin"
        data.tofile(folder / name)
        rows.append(f"{name},12,{label}")
    (folder / "y_labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_kws_run_through_the_harness(dut, serial_registered, tmp_path):
    peer = dut(results=one_hot, us_per_inference=2000)
    request = RunRequest(benchmark="kws01", sut="serial", mode="all", dataset=kws_dataset(tmp_path),
                         output=tmp_path / "out", min_duration_s=0.5,
                         sut_options={"port": peer.port, "timeout": "1"})
    summary, run_dir = Run(request).execute(Progress(enabled=False))
    assert summary.accuracy.value == 100.0  # every raw sample arrived unchanged
    windows = summary.windows
    assert windows.throughput_ips == [500.0] * 5 and windows.latency_us == 2000.0
    assert [d.inferences for d in windows.details] == [52] * 5  # ceil(1.03 x 0.1 s / 2 ms)
    assert summary.system.sut.extra["model_id"] == "kws01"
    assert summary.model.found_in == "device"
    stats = summary.system.sut.run_stats  # the link's counters reach the logs
    dataset_size = summary.dataset.count
    assert stats["uploads"] == dataset_size + 5  # each accuracy file, then each window's file
    assert stats["upload_bytes"] == 490 * stats["uploads"] and stats["upload_restarts"] == 0
    assert json.loads((run_dir.path / "status.json").read_text())["state"] == "done"


def test_a_run_records_the_named_model_file_as_its_model(dut, serial_registered, tmp_path):
    import hashlib

    model = tmp_path / "my-kws.tflite"
    model.write_bytes(b"not a reference model")
    request = RunRequest(benchmark="kws01", sut="serial", mode="accuracy", dataset=kws_dataset(tmp_path),
                         output=tmp_path / "out",
                         sut_options={"port": dut(results=one_hot).port, "model_file": str(model)})
    summary, run_dir = Run(request).execute(Progress(enabled=False))
    assert (summary.model.path, summary.model.sha256, summary.model.format, summary.model.size,
            summary.model.found_in, summary.model.reference) == \
        (str(model), hashlib.sha256(b"not a reference model").hexdigest(), "tflite", 21, "device", None)
    assert summary.settings.sut_config["model_file"] == str(model)
    assert summary.system.sut.extra["model_id"] == "kws01"
    assert f"{model} (sha256 {summary.model.sha256[:16]}...)" in (run_dir.path / "summary.txt").read_text()
    from tinyharness.submission import eligibility

    assert [rule for rule, _ in eligibility.problems(summary, "closed")] == ["closed-model"]


def test_a_reference_model_file_makes_the_run_a_closed_division_one(dut, serial_registered, tmp_path,
                                                                    shared_data):
    model = shared_data / "models" / "kws" / "kws_ref_model.tflite"
    request = RunRequest(benchmark="kws01", sut="serial", mode="accuracy", dataset=kws_dataset(tmp_path),
                         output=tmp_path / "out",
                         sut_options={"port": dut(results=one_hot).port, "model_file": str(model)})
    summary, _ = Run(request).execute(Progress(enabled=False))
    entry = next(e for e in get_benchmark("kws01").models if e.file == "kws_ref_model.tflite")
    assert (summary.model.sha256, summary.model.size, summary.model.reference) == \
        (entry.sha256, entry.size, "kws_ref_model.tflite")
    from tinyharness.submission import eligibility

    assert "closed-model" not in [rule for rule, _ in eligibility.problems(summary, "closed")]


def test_ad_run_takes_the_device_score(dut, serial_registered, tmp_path):
    folder = tmp_path / "ad01"
    folder.mkdir()
    rows = []
    for i, label in enumerate([0, 1, 0, 1]):
        level = 2.0 + 3 * label + i * 0.1  # anomalous files: larger values
        np.full(640 + 128, level, dtype=np.float32).tofile(folder / f"f{i}.bin")  # 2 windows
        rows.append(f"f{i}.bin,2,{label},2560,512")
    (folder / "y_labels.csv").write_text("\n".join(rows) + "\n")
    # the DUT's "MSE": the first float of the window, printed %0.3f
    peer = dut(model="ad01", results=lambda d: [float(np.frombuffer(d[:4], np.float32)[0])])
    request = RunRequest(benchmark="ad01", sut="serial", mode="accuracy", dataset=tmp_path,
                         output=tmp_path / "out", sut_options={"port": peer.port})
    summary, run_dir = Run(request).execute(Progress(enabled=False))
    assert summary.accuracy.value == 1.0 and summary.accuracy.count == 8
    scores = [e["score"] for e in json.loads((run_dir.path / "accuracy.json").read_text())]
    assert scores[:2] == pytest.approx([2.0, 2.0])
    assert [c for c in peer.commands if c.startswith("db load")] == ["db load 2560"] * 8


# -- end to end against the DUT emulator (TFLite Micro running the real KWS model) ---------------
FIRST_FILES = 50


@pytest.fixture
def kws_model(shared_data):
    pytest.importorskip("tflite_micro")
    pytest.importorskip("tinyharness.suts.serial.emulator")
    return shared_data / "models" / "kws" / "kws_ref_model.tflite"


@pytest.fixture
def emulate(kws_model):
    """emulate(**faults) -> a started kws01 emulator on tflite-micro (stopped at teardown)."""
    from tinyharness.suts.serial.emulator import Emulator, Faults

    started = []

    def make(**faults):
        started.append(Emulator(kws_model, runtime="tflite-micro", faults=Faults(**faults), seed=3))
        started[-1].start()
        return started[-1]

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def kws_first(shared_data, tmp_path):
    """The first FIRST_FILES official kws01 files, as a dataset folder of links."""
    source = shared_data / "datasets" / "kws01"
    folder = tmp_path / "kws01"
    folder.mkdir()
    rows = (source / "y_labels.csv").read_text().splitlines()[:FIRST_FILES]
    for row in rows:
        name = row.split(",")[0].strip()
        (folder / name).symlink_to(source / name)
    (folder / "y_labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def predictions(run_dir) -> list[int]:
    return [e["prediction"] for e in json.loads((run_dir.path / "accuracy.json").read_text())]


def test_emulator_kws_accuracy_matches_tflite_builtin(emulate, kws_model, kws_first, tmp_path,
                                                      serial_registered):
    emulator = emulate()
    serial_run = RunRequest(benchmark="kws01", sut="serial", mode="accuracy", dataset=kws_first,
                            output=tmp_path / "serial", sut_options={"port": emulator.port})
    summary, run_dir = Run(serial_run).execute(Progress(enabled=False))
    pytest.importorskip("ai_edge_litert.interpreter")
    cpu_run = RunRequest(benchmark="kws01", sut="tflite-cpu", mode="accuracy", dataset=kws_first,
                         model=kws_model, output=tmp_path / "cpu",
                         sut_options={"kernels": "builtin"})
    cpu_summary, cpu_dir = Run(cpu_run).execute(Progress(enabled=False))
    assert summary.accuracy.count == FIRST_FILES
    assert predictions(run_dir) == predictions(cpu_dir)
    assert summary.accuracy.value == cpu_summary.accuracy.value
    assert summary.system.sut.runtime_version == "ULPMark for tinyML Firmware V0.0.1"


def test_emulator_performance_windows_are_device_timed(emulate, kws_first, tmp_path,
                                                       serial_registered):
    emulator = emulate()
    options = ["--sut-option", f"port={emulator.port}"]
    argv = ["run", "--benchmark", "kws01", "--sut", "serial", "--dataset", str(kws_first.parent),
            "--mode", "performance", "--min-duration", "1", "--output", str(tmp_path), "--json",
            "--quiet", *options]
    from importlib import metadata

    if any(ep.name == "serial" for ep in metadata.entry_points(group="tinyharness")):
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-m", "tinyharness.cli", *argv], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 1, done.stderr  # INVALID: the windows were shortened
        summary = RunSummary.from_dict(json.loads(done.stdout))
        assert summary.sut == "serial" and summary.valid is False
    else:  # the entry point is not installed yet: the same run in-process
        request = RunRequest(benchmark="kws01", sut="serial", mode="performance",
                             dataset=kws_first.parent, output=tmp_path, min_duration_s=1.0,
                             sut_options={"port": emulator.port})
        summary, _ = Run(request).execute(Progress(enabled=False))
    windows = summary.windows
    assert len(windows.details) == 5 and windows.window_min_s == pytest.approx(0.2)
    for d in windows.details:
        assert d.runtime_s >= 0.2 and d.inferences > 1
        assert d.throughput_ips == pytest.approx(d.inferences / d.runtime_s, rel=1e-3)
    # the reported latency is the median window's, from the device clock
    median = sorted(windows.throughput_ips)[2]
    assert windows.latency_us == pytest.approx(1e6 / median, rel=1e-5)


def test_emulator_garbled_uploads_never_give_a_wrong_result(emulate, shared_data):
    """Defect 2: with bits flipped on the wire (garble), every output equals the fault-free run's.
    Before, with verify off by default, a flipped hex digit was valid hex and went unseen."""
    files = sorted((shared_data / "datasets" / "kws01").glob("*.bin"))[:20]
    reference_sut, reference = clean_outputs(emulate(), files)
    reference_sut.close()
    sut, outs = clean_outputs(emulate(garble=0.0003), files, timeout=2, retries=10)
    stats = sut.run_stats()
    sut.close()
    for path, got, want in zip(files, outs, reference):
        np.testing.assert_array_equal(got, want, err_msg=path.name)
    assert stats["verify_mismatches"] >= 1  # a flip the protocol itself could not see was caught


def clean_outputs(emulator, files, **options) -> tuple[SerialSUT, list[np.ndarray]]:
    """The outputs of ``files`` through the serial SUT."""
    sut = loaded(SimpleNamespace(port=emulator.port), **options)
    outs = []
    for path in files:
        sut.prepare(np.fromfile(path, dtype=np.int8))
        sut.infer()
        outs.append(sut.output())
    return sut, outs


FAULTS = [  # (emulator faults, SUT options): each must end in success after retries or a DUTError
    ({"drop": 0.0005}, {}),
    ({"garble": 0.0002}, {}),  # a flipped hex digit is valid hex: only the read-back (default) sees it
    ({"ready_delay": 0.05}, {}),
    ({"ready_delay": 1.0}, {}),
    ({"omit_ready": 10}, {}),  # a db chunk (1 name, 2 profile, 3 timestamp, 4 db load, 5-20 chunks)
    ({"omit_ready": 21}, {}),  # the first infer
    ({"error": 8}, {}),
    ({"error": 21}, {}),
    ({"disconnect": 12}, {}),
]


@pytest.mark.parametrize("faults, options", FAULTS, ids=[
    ",".join(f"{k}={v}" for k, v in {**f, **o}.items()) for f, o in FAULTS])
def test_emulator_faults_retry_or_fail_clearly(emulate, shared_data, faults, options):
    files = sorted((shared_data / "datasets" / "kws01").glob("*.bin"))[:4]
    reference_sut, reference = clean_outputs(emulate(), files)
    reference_sut.close()
    emulator = emulate(**faults)
    sut, outcome, stats = None, "ok", {}
    try:
        sut = loaded(SimpleNamespace(port=emulator.port), timeout=0.5, **options)
        for path, want in zip(files, reference):
            sut.prepare(np.fromfile(path, dtype=np.int8))
            sut.infer()
            np.testing.assert_array_equal(sut.output(), want)  # never a silently wrong result
        assert sut.run_window(5, 1) > 0
    except DUTError as exc:
        outcome = str(exc)
    finally:
        if sut is not None:
            stats = sut.run_stats() if sut._link else {}
            sut.close()
    if "disconnect" in faults:
        assert "device disconnected" in outcome
    elif faults.get("ready_delay", 0) > 0.5:  # every m-ready later than the 0.5 s timeout
        assert "no MLPerf Tiny DUT answered" in outcome and "silent for 0.5 s" in outcome
    else:  # one lost m-ready or error reply, a short delay, rare byte faults: retries recover
        assert outcome == "ok"
    if faults.get("omit_ready") == 10 or faults.get("error") == 8 or "drop" in faults:
        assert stats["upload_restarts"] > 0  # the fault hit an upload, which started over
