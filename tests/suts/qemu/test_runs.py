"""``tinyharness dut qemu``: the project's firmware on emulated boards, through the CLI.

Oracles: tflite-micro's output bytes for the same files (computed here, independently of the
firmware), the MLPerf Tiny result print of mlperf-tiny.md §3.1 (kws01: ``0.`` + three digits of
(q + 128) / 256), the ELF's own sha256, and QEMU's -icount determinism (qemu-dut.md: two runs give
the same window times to the microsecond).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "mlperf_tiny"
KWS_MODEL = SHARED / "models" / "kws" / "kws_ref_model.tflite"
KWS_DATA = SHARED / "datasets" / "kws01"
TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc")

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="needs qemu-system-arm and gcc-arm-none-eabi (apt-get install qemu-system-arm "
           "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)")


def env() -> dict[str, str]:
    mirror = os.pathsep.join([str(SHARED / "models"), str(SHARED / "models_onnx")])
    return dict(os.environ, TINYHARNESS_MODEL_MIRROR=mirror)


def tinyharness(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *map(str, args)],
                          capture_output=True, text=True, env=env(), timeout=timeout)


def only_dir(root: Path) -> Path:
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


@pytest.fixture(scope="session")
def kws100(tmp_path_factory) -> Path:
    """The first 100 official kws01 files (label-file order) as a dataset root of their own."""
    if not (KWS_DATA / "y_labels.csv").is_file() or not KWS_MODEL.is_file():
        pytest.skip(f"MLPerf Tiny kws01 data not found at {KWS_DATA}")
    root = tmp_path_factory.mktemp("kws100")
    folder = root / "kws01"
    folder.mkdir()
    rows = list(csv.reader((KWS_DATA / "y_labels.csv").read_text().splitlines()))[:100]
    for row in rows:
        (folder / row[0]).symlink_to(KWS_DATA / row[0])
    (folder / "y_labels.csv").write_text("".join(",".join(r) + "\n" for r in rows))
    return root


def tflite_micro_outputs(files: list[Path]) -> np.ndarray:
    """kws01's int8 output bytes per file from tflite-micro (the microcontroller interpreter)."""
    tflm = pytest.importorskip("tflite_micro")
    interp = tflm.runtime.Interpreter.from_file(str(KWS_MODEL))
    out = []
    for f in files:
        interp.set_input(np.fromfile(f, np.int8).reshape(1, 49, 10, 1), 0)
        interp.invoke()
        out.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(out)


def printed_levels(values: list[float]) -> list[int]:
    """int8 outputs back from the kws01 print: level k = q + 128 prints as floor(1000 k / 256)
    thousandths, distinct for every k (1/256 > 1/1000)."""
    table = {(1000 * k) // 256: k - 128 for k in range(256)}
    return [table[round(v * 1000)] for v in values]


def run_qemu(out: Path, *args, expect_rc: tuple[int, ...] = (0,)) -> tuple[dict, Path]:
    done = tinyharness("dut", "qemu", *args, "--json", "--quiet", "--output", out)
    assert done.returncode in expect_rc, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr
    run_dir = only_dir(out)
    return json.loads((run_dir / "summary.json").read_text()), run_dir


@pytest.fixture(scope="module")
def an386_run(kws100, tmp_path_factory) -> tuple[dict, Path]:
    """kws01 on the 100-file subset, accuracy then performance, on the default board."""
    return run_qemu(tmp_path_factory.mktemp("an386"), "--benchmark", "kws01", "--mode", "all",
                    "--dataset", kws100, expect_rc=(0, 1))


def check_bytes_and_record(summary: dict, run_dir: Path, kws100: Path, board: str, core: str):
    log = json.loads((run_dir / "accuracy.json").read_text())
    assert [e["qsl_idx"] for e in log] == list(range(100))
    files = [kws100 / "kws01" / e["file"] for e in log]
    device = np.array([printed_levels(np.frombuffer(bytes.fromhex(e["data"]), "<f4").tolist())
                       for e in log], dtype=np.int8)
    expected = tflite_micro_outputs(files)
    assert np.array_equal(device, expected), np.argwhere(device != expected)[:5]
    top1 = 100.0 * np.mean(expected.argmax(1) == [e["label"] for e in log])
    assert summary["accuracy"]["value"] == pytest.approx(top1, abs=1e-9)
    extra = summary["system"]["sut"]["extra"]
    assert extra["board"] == board and extra["core"] == core and extra["emulated"] is True
    assert extra["icount_shift"] == 3
    assert extra["device_clock"] == "virtual time: 2^3 ns per instruction, not cycle-accurate"
    assert extra["qemu_version"].startswith(subprocess.run(
        ["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split()[3])
    elf = Path(extra["firmware_elf"])
    assert extra["firmware_sha256"] == hashlib.sha256(elf.read_bytes()).hexdigest()
    assert 0 < extra["firmware_rom_bytes"] < 1 << 20 and 0 < extra["firmware_ram_bytes"] < 1 << 20
    assert extra["model_id"] == "kws01" and summary["model"]["reference"] == "kws_ref_model.tflite"
    assert core in summary["system"]["device"] and "emulated" in summary["system"]["device"]


@pytest.mark.slow
def test_kws01_100_files_give_tflite_micro_bytes_on_the_cortex_m4(an386_run, kws100):
    summary, run_dir = an386_run
    check_bytes_and_record(summary, run_dir, kws100, "mps2-an386", "Cortex-M4")


@pytest.mark.slow
def test_the_same_firmware_built_for_the_cortex_m7_gives_the_same_bytes(kws100, tmp_path):
    summary, run_dir = run_qemu(tmp_path, "--benchmark", "kws01", "--board", "mps2-an500",
                                "--mode", "accuracy", "--dataset", kws100, expect_rc=(0, 1))
    check_bytes_and_record(summary, run_dir, kws100, "mps2-an500", "Cortex-M7")


def window_times(summary: dict) -> list[float]:
    return [d["runtime_s"] for d in summary["windows"]["details"]]


@pytest.mark.slow
def test_kws01_performance_is_valid_and_two_runs_give_the_same_windows(an386_run, kws100,
                                                                        tmp_path):
    first, _ = an386_run
    second, _ = run_qemu(tmp_path, "--benchmark", "kws01", "--mode", "performance",
                         "--dataset", kws100)
    assert not any(r["code"] != "accuracy-target" for r in first["invalid_reasons"])
    assert second["valid"]
    a, b = window_times(first), window_times(second)
    assert len(a) == len(b) >= 5
    # virtual time: equal to the µs (the stamps are whole µs; compare them as such)
    assert all(abs(round(x * 1e6) - round(y * 1e6)) <= 1 for x, y in zip(a, b)), (a, b)
    assert [d["inferences"] for d in first["windows"]["details"]] == \
        [d["inferences"] for d in second["windows"]["details"]]


@pytest.mark.slow
def test_a_qemu_run_packages_in_the_open_division_and_passes_the_check(an386_run, tmp_path):
    _, run_dir = an386_run
    system = tmp_path / "qemu-mps2-an386.json"
    done = tinyharness("system", "init", "--run", run_dir, "--submitter", "acme", "--division",
                       "open", "--output", system)
    assert done.returncode == 0, done.stderr
    doc = json.loads(system.read_text())
    assert "emulated" in doc["Board Name"] and "QEMU" in doc["Board Name"]
    assert "Cortex-M4" in doc["Processor(s) Name"]
    assert "not cycle-accurate" in doc["Processor(s) Frequencies"]
    assert doc["General Compiler(s)"].startswith("arm-none-eabi-gcc")
    closed = tinyharness("package", run_dir, "--submitter", "acme", "--division", "closed",
                         "--system", system, "--output", tmp_path / "closed")
    assert closed.returncode == 2 and "emulated board" in closed.stderr, closed.stderr
    done = tinyharness("package", run_dir, "--submitter", "acme", "--division", "open",
                       "--system", system, "--output", tmp_path / "pkg")
    assert done.returncode == 0, done.stderr
    check = tinyharness("check", tmp_path / "pkg")
    assert check.returncode == 0 and "OK" in check.stdout, (check.stdout, check.stderr)


def failed_status(out: Path) -> dict:
    status = json.loads((only_dir(out) / "status.json").read_text())
    assert status["state"] == "failed"
    return status


@pytest.mark.slow
def test_a_model_that_does_not_fit_is_a_one_line_error_and_a_marked_run(kws100, tmp_path):
    done = tinyharness("dut", "qemu", "--benchmark", "kws01", "--ram-limit", "16K", "--mode",
                       "accuracy", "--dataset", kws100, "--quiet", "--output", tmp_path)
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("results:")]
    assert len(lines) == 1 and "does not fit" in lines[0] and "RAM" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "does not fit" in failed_status(tmp_path)["error"]


@pytest.mark.slow
def test_a_firmware_that_never_answers_fails_the_run_with_the_reason(kws100, tmp_path):
    src = tmp_path / "silent.c"
    src.write_text("__attribute__((naked, noreturn)) void reset(void) { for (;;) {} }\n"
                   "__attribute__((section(\".vectors\"), used)) const void *const v[2] = "
                   "{(void *)0x20001000, (void *)reset};\n")
    script = tmp_path / "silent.ld"
    script.write_text("MEMORY\n{\n ROM (rx) : ORIGIN = 0, LENGTH = 4M\n}\n"
                      "SECTIONS { .text : { KEEP(*(.vectors)) *(.text*) } > ROM }\n")
    elf = tmp_path / "silent.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O2", "-nostdlib", "-T",
                    script, src, "-o", elf], check=True, timeout=120)
    out = tmp_path / "runs"
    done = tinyharness("dut", "qemu", "--benchmark", "kws01", "--mode", "accuracy", "--dataset",
                       kws100, "--sut-option", f"firmware={elf}", "--sut-option", "timeout=1",
                       "--quiet", "--output", out)
    assert done.returncode == 3, done.stderr
    assert "no MLPerf Tiny DUT answered on socket://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert "no MLPerf Tiny DUT answered" in failed_status(out)["error"]


def is_emulator(process) -> bool:
    """The emulator itself, not the short-lived ``qemu-system-arm --version`` the SUT reads the
    version from (CI's test caught that one, which had ended by the time of the kill)."""
    try:
        return process.name().startswith("qemu-system") and "--version" not in process.cmdline()
    except Exception:  # psutil.NoSuchProcess / AccessDenied: gone already, or not ours
        return False


@pytest.mark.slow
def test_qemu_killed_mid_run_fails_the_run_and_says_so(kws100, tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "runs"
    # all 1000 files (a minute or more): the kill lands in the accuracy pass on any machine
    proc = subprocess.Popen([sys.executable, "-m", "tinyharness.cli", "dut", "qemu", "--benchmark",
                             "kws01", "--mode", "accuracy", "--dataset", str(KWS_DATA.parent), "--quiet",
                             "--output", str(out)], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        qemu = None
        for _ in range(3000):  # the build may take a while on a cold cache (bounded: 300 s)
            found = [p for p in psutil.Process(proc.pid).children(recursive=True) if is_emulator(p)]
            if found:
                qemu = found[0]
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert qemu is not None
        time.sleep(3)  # into the accuracy pass
        try:
            qemu.kill()
        except psutil.NoSuchProcess:
            pytest.fail(f"QEMU ended before the kill: {proc.communicate(timeout=120)}")
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, stderr
    assert "QEMU (mps2-an386) stopped (killed by signal 9)" in stderr
    assert "Traceback" not in stderr
    assert "killed by signal 9" in failed_status(out)["error"]


@pytest.mark.slow
def test_ic01_on_the_firmware_gives_tflite_micro_bytes(tmp_path):
    """ic01 (ResNet-8: conv, add, average pool, fully connected, softmax) on 20 seeded random
    images: each printed %0.3f of (q + 128) / 256 decodes to tflite-micro's output byte."""
    model = SHARED / "models" / "ic" / "pretrainedResnet_quant.tflite"
    if not model.is_file():
        pytest.skip(f"MLPerf Tiny ic01 model not found at {model}")
    tflm = pytest.importorskip("tflite_micro")
    folder = tmp_path / "data" / "ic01"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(16)
    images = {f"rand_{i:03d}.bin": rng.integers(0, 256, 3072, dtype=np.uint8) for i in range(20)}
    for name, pixels in images.items():
        (folder / name).write_bytes(pixels.tobytes())
    (folder / "y_labels.csv").write_text("".join(f"{n},10,{i % 10}\n" for i, n in enumerate(images)))
    _, run_dir = run_qemu(tmp_path / "runs", "--benchmark", "ic01", "--mode", "accuracy",
                          "--dataset", tmp_path / "data", expect_rc=(0, 1))
    table = {f"{k / 256:.3f}": k - 128 for k in range(256)}  # distinct: 1/256 > 0.001
    interp = tflm.runtime.Interpreter.from_file(str(model))
    log = json.loads((run_dir / "accuracy.json").read_text())
    assert len(log) == 20
    for entry in log:
        x = (images[entry["file"]].astype(np.int16) - 128).astype(np.int8)  # the DUT's u8 - 128
        interp.set_input(x.reshape(1, 32, 32, 3), 0)
        interp.invoke()
        printed = np.frombuffer(bytes.fromhex(entry["data"]), "<f4")
        assert [table[f"{v:.3f}"] for v in printed] == interp.get_output(0).reshape(-1).tolist()
