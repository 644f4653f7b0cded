"""What the command line says to a user's mistake: one line, exit 2, what was expected, the closest
names, names in any case; the default SUT; input checked before a run directory exists.

Every case goes through ``tinyharness.cli.main`` in this process (as test_fuzz.py does), so a
monkeypatched ``importlib.util.find_spec`` decides which runtimes are "installed".
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyharness.benchmark import get_benchmark
from tinyharness.cli import main
from tinyharness.sut_config import max_threads

DIGITS = Path(__file__).resolve().parents[3] / "datasets" / "digits01"
RUNTIMES = ("onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime")
PYTHON_WORDS = ("invalid literal", "could not convert", "with base 10", "Traceback", "KeyError",
                "ValueError", "object has no attribute")


@pytest.fixture
def cli(capfd, tmp_path):
    """``cli(*argv)`` -> (exit code, stdout, stderr), in this process; ``cli.out`` is an empty
    output folder that ``run`` is pointed at."""
    out = tmp_path / "out"
    out.mkdir()

    def invoke(*argv: str) -> tuple[int, str, str]:
        capfd.readouterr()
        try:
            main(list(argv))
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        stdout, stderr = capfd.readouterr()
        return code, stdout, stderr

    invoke.out = out
    return invoke


def run_error(cli, *argv: str) -> str:
    """``tinyharness run ARGV``'s one-line error (exit 2, nothing in the output folder)."""
    code, _, err = cli("run", *argv, "--output", str(cli.out), "--quiet")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert not any(word in err for word in PYTHON_WORDS), err
    assert list(cli.out.iterdir()) == []
    return lines[0].removeprefix("tinyharness: error: ")


def only_importable(monkeypatch, *modules: str) -> None:
    """find_spec finds ``modules`` and none of the other runtimes (importing is left alone)."""
    real = importlib.util.find_spec

    def find_spec(name, package=None):
        if name in RUNTIMES:
            return real("os") if name in modules else None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


# -- 1. --dataset given the label file ---------------------------------------------------------------

def test_the_label_file_as_dataset_says_to_give_its_folder(cli, tmp_path):
    folder = shutil.copytree(DIGITS, tmp_path / "digits01")
    labels = folder / "y_labels.csv"
    assert run_error(cli, "--sut", "null", "--dataset", str(labels)) == (
        f"{labels} is a file; --dataset takes the folder holding y_labels.csv, e.g. {folder} or "
        "its parent")


# -- 2. option values: what is expected, never Python's conversion message ----------------------------

@pytest.mark.parametrize(("sut", "option", "expected"), [
    ("onnxruntime-cpu", "threads=two", "expected an integer from 1 to {most} (4 x the {cores} CPU cores)"),
    ("onnxruntime-cpu", "lanes=1.5", "expected an integer from 1 to {most} (4 x the {cores} CPU cores)"),
    ("onnxruntime-cpu", "threads=0", "expected an integer from 1 to {most} (4 x the {cores} CPU cores)"),
    ("openvino-cpu", "nstreams=many", "expected an integer from 1 to {most} (4 x the {cores} CPU cores)"),
    ("openvino-cpu", "nireq=-1", "expected an integer from 1 to {most} (4 x the {cores} CPU cores)"),
    ("openvino-cpu", "precision=fp64", "expected one of f32, bf16, f16"),
    ("openvino-cpu", "precision=fp16", "expected one of f32, bf16, f16 (did you mean 'f16'?)"),
    ("tflite-cpu", "threads=1e3", "expected an integer from 1 to {most} (4 x the {cores} CPU cores)"),
    ("tflite-cpu", "kernels=xnn", "expected one of xnnpack, builtin (did you mean 'xnnpack'?)"),
    ("serial", "baud=fast", "expected a whole number from 1 to 20000000"),
    ("serial", "timeout=soon", "expected a finite number of seconds > 0 and <= 600"),
    ("serial", "retries=x", "expected a whole number from 0 to 20"),
    ("serial", "verify=maybe", "expected 0 or 1 (or true/false, yes/no, on/off)"),
])
def test_a_bad_option_value_names_the_option_the_value_and_what_is_expected(cli, sut, option, expected):
    """Issue: --sut-option threads=two said "invalid literal for int() with base 10"."""
    port = ["--sut-option", "port=/dev/null"] if sut == "serial" else []
    cores = os.cpu_count() or 1
    message = run_error(cli, "--sut", sut, *port, "--sut-option", option)
    assert message == f"--sut-option {option}: {expected.format(most=max_threads(), cores=cores)}"


def test_a_plugin_parser_that_lets_int_fail_still_says_what_is_expected(cli):
    # suts/serial/config.py chunk_size calls int() unguarded: Python's message never shows
    message = run_error(cli, "--sut", "serial", "--sut-option", "port=/dev/null", "--sut-option",
                        "chunk=big")
    assert message.startswith("--sut-option chunk=big: expected "), message


def test_threads_two_on_the_default_sut(cli, monkeypatch):
    only_importable(monkeypatch, *RUNTIMES)
    assert run_error(cli, "--sut-option", "threads=two") == (
        f"--sut-option threads=two: expected an integer from 1 to {max_threads()} (4 x the "
        f"{os.cpu_count() or 1} CPU cores)")


# -- 3. the closest names ---------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--sut", "openvino"], "unknown SUT 'openvino' (did you mean 'openvino-cpu'?); available: "
     "deepsparse-cpu, eim, executorch-cpu, null, onnxruntime-cpu, openvino-cpu, qemu, serial, tensorrt-gpu, "
     "tflite-cpu, torch-cpu (see 'tinyharness suts')"),
    (["--sut", "tflite"], "unknown SUT 'tflite' (did you mean 'tflite-cpu'?); available: "
     "deepsparse-cpu, eim, executorch-cpu, null, onnxruntime-cpu, openvino-cpu, qemu, serial, tensorrt-gpu, "
     "tflite-cpu, torch-cpu (see 'tinyharness suts')"),
    (["--sut", "onxruntime-cpu"], "unknown SUT 'onxruntime-cpu' (did you mean 'onnxruntime-cpu'?); "
     "available: deepsparse-cpu, eim, executorch-cpu, null, onnxruntime-cpu, openvino-cpu, qemu, serial, "
     "tensorrt-gpu, tflite-cpu, torch-cpu (see 'tinyharness suts')"),
    (["--benchmark", "kws"], "unknown benchmark 'kws' (did you mean 'kws01'?); known: ad01, digits01, "
     "ic01, ic02, kws01, vww01 (see 'tinyharness benchmarks')"),
    (["--benchmark", "digits1"], "unknown benchmark 'digits1' (did you mean 'digits01'?); known: ad01, "
     "digits01, ic01, ic02, kws01, vww01 (see 'tinyharness benchmarks')"),
    (["--scenario", "single"], "Invalid value for '--scenario': 'single' is not one of "
     "'single-stream', 'offline' (did you mean 'single-stream'?) (see 'tinyharness run --help')"),
    (["--mode", "perf"], "Invalid value for '--mode': 'perf' is not one of 'performance', "
     "'accuracy', 'all' (did you mean 'performance'?) (see 'tinyharness run --help')"),
    (["--sut", "null", "--sut-option", "threads=1"], "SUT 'null' does not accept option(s) threads; "
     "accepted: none"),
    (["--sut", "onnxruntime-cpu", "--sut-option", "thread=2"], "SUT 'onnxruntime-cpu' does not "
     "accept option(s) thread (did you mean 'threads'?); accepted: lanes, threads"),
    (["--sut", "openvino-cpu", "--sut-option", "nstream=2"], "SUT 'openvino-cpu' does not accept "
     "option(s) nstream (did you mean 'nstreams'?); accepted: nireq, nstreams, precision, threads"),
])
def test_an_unknown_name_names_the_closest(cli, argv, message):
    """Issue: --sut openvino listed the SUTs but offered no 'did you mean openvino-cpu'."""
    assert run_error(cli, *argv) == message


def test_other_commands_name_the_closest_choice(cli, tmp_path):
    code, _, err = cli("show", "--format", "mark", str(tmp_path))
    assert code == 2 and err.strip() == (
        "tinyharness: error: Invalid value for '--format': 'mark' is not one of 'text', "
        "'markdown', 'json' (did you mean 'markdown'?) (see 'tinyharness show --help')")
    code, _, err = cli("system", "init", "--status", "rdl")
    assert code == 2 and "'rdl' is not one of 'available', 'preview', 'rdi' (did you mean 'rdi'?)" in err
    code, _, err = cli("system", "init", "--sut", "openvino")
    assert code == 2 and err.strip().startswith(
        "tinyharness: error: unknown SUT 'openvino' (did you mean 'openvino-cpu'?); available:")


# -- 4. any case ------------------------------------------------------------------------------------

def test_names_and_choices_match_in_any_case_and_are_recorded_as_spelt(cli):
    """Issue: --scenario Offline was refused for its capital letter."""
    code, out, err = cli("run", "--sut", "NULL", "--benchmark", "Digits01", "--scenario", "Offline",
                         "--mode", "PERFORMANCE", "--min-duration", "0.05", "--output", str(cli.out),
                         "--json", "--quiet")
    assert code == 1, err  # shortened: INVALID but complete
    summary = json.loads(out)
    assert (summary["sut"], summary["benchmark"], summary["scenario"], summary["mode"]) == (
        "null", "digits01", "offline", "performance")
    run_dir, = cli.out.iterdir()
    assert run_dir.name.endswith("_digits01_null_offline")
    code, out, _ = cli("show", "--format", "JSON", str(run_dir))
    assert code == 0 and json.loads(out)[0]["scenario"] == "offline"


def test_sut_option_keys_and_choices_match_in_any_case(cli):
    message = run_error(cli, "--sut", "OpenVINO-CPU", "--sut-option", "Precision=F16",
                        "--sut-option", "NIREQ=0")
    assert message == (f"--sut-option nireq=0: expected an integer from 1 to {max_threads()} "
                       f"(4 x the {os.cpu_count() or 1} CPU cores)")


def test_system_init_takes_choices_in_any_case(cli):
    code, out, err = cli("system", "init", "--division", "Closed", "--status", "Available",
                         "--sut", "NULL")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["Division"], doc["Status"]) == ("Closed", "available")
    assert doc["Software Notes"].endswith(", SUT null.")


# -- 5. the default SUT -----------------------------------------------------------------------------

def test_run_help_states_the_default_order(cli):
    code, out, _ = cli("run", "--help")
    assert code == 0
    assert "default: the first installed of onnxruntime-cpu, openvino-cpu, tflite-cpu" in " ".join(out.split())


def test_without_any_runtime_the_default_is_one_line_naming_the_extras(cli, monkeypatch):
    """Issue: after 'pip install .' (no runtime) run picked onnxruntime-cpu, not installed."""
    only_importable(monkeypatch)
    assert run_error(cli) == (
        "no SUT runtime is installed (tried onnxruntime-cpu, openvino-cpu, tflite-cpu): "
        "pip install 'tinyharness[onnxruntime]' or pip install 'tinyharness[openvino]' or "
        "pip install 'tinyharness[litert]'; or choose a SUT with --sut (see 'tinyharness suts')")


@pytest.mark.parametrize(("modules", "default", "accepted"), [
    (("openvino", "ai_edge_litert"), "openvino-cpu", "nireq, nstreams, precision, threads"),
    (("tflite_runtime",), "tflite-cpu", "kernels, threads"),
    (RUNTIMES, "onnxruntime-cpu", "lanes, threads"),
])
def test_the_default_is_the_first_installed_sut(cli, monkeypatch, modules, default, accepted):
    only_importable(monkeypatch, *modules)
    assert run_error(cli, "--sut-option", "bogus=1") == (
        f"SUT {default!r} does not accept option(s) bogus; accepted: {accepted}")


def test_a_run_on_the_default_sut_records_which_one(cli, monkeypatch):
    pytest.importorskip("openvino")
    only_importable(monkeypatch, "openvino")
    code, out, err = cli("run", "--mode", "accuracy", "--output", str(cli.out), "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["sut"] == "openvino-cpu"
    run_dir, = cli.out.iterdir()
    assert "_openvino-cpu_" in run_dir.name
    assert json.loads((run_dir / "summary.json").read_text())["sut"] == "openvino-cpu"


# -- 6. every listed file checked before the run directory exists -----------------------------------

def digits_copy(root: Path, damage: str) -> Path:
    """digits01 with one sample file missing or short."""
    folder = shutil.copytree(DIGITS, root / "digits01")
    victim = folder / "tst_0001_8.bin"
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:10])
    return folder


@pytest.mark.parametrize("damage", ["missing", "short"])
def test_a_missing_or_short_sample_fails_before_a_run_directory_exists(cli, tmp_path, damage):
    folder = digits_copy(tmp_path, damage)
    victim = folder / "tst_0001_8.bin"
    sample = get_benchmark("digits01").sample_bytes
    message = run_error(cli, "--sut", "null", "--dataset", str(folder))
    assert message == (f"dataset file {victim} is missing (y_labels.csv lists it)" if damage == "missing"
                       else f"dataset file {victim} has 10 bytes, expected {sample} (8x8x1 uint8)")


def test_the_supervised_run_fails_before_a_run_directory_exists_too(tmp_path):
    folder = digits_copy(tmp_path, "missing")
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, TINYHARNESS_SUPERVISE="1")
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "run", "--sut", "null",
                           "--dataset", str(folder), "--output", str(out), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"tinyharness: error: dataset file {folder / 'tst_0001_8.bin'} "
                                   "is missing (y_labels.csv lists it)")
    assert list(out.iterdir()) == []


# -- one line, whatever the message --------------------------------------------------------------

def test_a_message_spanning_lines_is_printed_on_one(capfd):
    from tinyharness.cli.exits import handled
    from tinyharness.errors import RunFailed, UsageError

    def raising(exc):
        def body():
            raise exc
        return body

    assert handled(raising(UsageError("first\n  second"))) == 2
    assert capfd.readouterr().err == "tinyharness: error: first second\n"
    assert handled(raising(RunFailed("runtime said:\nboom"))) == 3
    assert capfd.readouterr().err == "tinyharness: runtime said: boom\n"
    assert handled(raising(UsageError())) == 2
    assert capfd.readouterr().err == "tinyharness: error: bad input\n"
