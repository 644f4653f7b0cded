"""native_output.captured(): what a runtime writes to file descriptors 1 and 2 (C++, a child
process, Python) lands in Captured.text, not on the console; the descriptors come back, also
after an exception; the text kept is bounded."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinyharness.native_output import LIMIT, Captured, captured

REPO = Path(__file__).resolve().parents[2]
DIGITS_INT8 = REPO / "reference_models" / "digits01" / "digits01_int8.tflite"
XNNPACK_LINE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


def identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def test_c_level_writes_to_fd_1_and_2_are_captured_not_shown(capfd):
    os.write(2, b"before\n")
    with captured() as out:
        os.write(2, b"native stderr line\n")
        os.write(1, b"native stdout line\n")
    os.write(2, b"after\n")
    assert out.text == "native stderr line\nnative stdout line\n"
    assert out.lines() == ["native stderr line", "native stdout line"]
    assert out.size == len(out.text) and not out.truncated
    shown = capfd.readouterr()
    assert shown.err == "before\nafter\n" and shown.out == ""


def test_a_child_process_inheriting_the_descriptors_is_captured(capfd):
    with captured() as out:
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'child stderr\\n'); "
                        "print('child stdout', flush=True)"], check=True)
        subprocess.run(["sh", "-c", "echo from sh >&2"], check=True)
    assert out.lines() == ["child stderr", "child stdout", "from sh"]
    shown = capfd.readouterr()
    assert "child" not in shown.err + shown.out and "from sh" not in shown.err


def test_python_writes_are_captured_in_order_with_native_ones(capfd):
    original = sys.stdout, sys.stderr
    with captured() as out:
        print("python stdout")
        os.write(2, b"native\n")
        sys.stderr.write("python stderr\n")
        sys.__stderr__.write("dunder stderr\n")  # buffered: flushed before the restore
        log = logging.getLogger("a_runtime")
        handler = logging.StreamHandler()  # sys.stderr as the runtime's logging finds it
        log.addHandler(handler)
        try:
            log.warning("a runtime warning")
        finally:
            log.removeHandler(handler)
        os.write(1, b"native again\n")
    assert (sys.stdout, sys.stderr) == original
    assert out.lines()[:4] == ["python stdout", "native", "python stderr", "dunder stderr"]
    assert "a runtime warning" in out.lines()
    assert out.lines()[-1] == "native again"
    shown = capfd.readouterr()
    assert shown.out == "" and shown.err == ""


def test_c_stdio_buffers_are_flushed_into_the_capture(capfd):
    ctypes = pytest.importorskip("ctypes")
    try:
        libc = ctypes.CDLL(None)
        libc.printf
    except (OSError, AttributeError):
        pytest.skip("no C library to call")
    with captured() as out:
        libc.printf(b"printf to a file is fully buffered\n")  # flushed by fflush(NULL) at the end
    assert out.lines() == ["printf to a file is fully buffered"]
    assert capfd.readouterr().out == ""


def test_descriptors_and_streams_come_back_after_an_exception(capfd):
    before = identity(1), identity(2)
    streams = sys.stdout, sys.stderr
    out = captured()
    with pytest.raises(RuntimeError, match="load failed"):
        with out:
            os.write(2, b"said before failing\n")
            raise RuntimeError("load failed")
    assert (identity(1), identity(2)) == before
    assert (sys.stdout, sys.stderr) == streams
    assert out.text == "said before failing\n"  # kept for the detail log of the failed run
    os.write(2, b"visible again\n")
    assert capfd.readouterr().err == "visible again\n"


def test_the_text_is_capped_head_and_tail_with_a_note():
    with captured(limit=1024) as out:
        os.write(2, b"HEAD\n" + b"x" * 10_000 + b"\nTAIL\n")
    assert out.truncated and out.size == 5 + 10_000 + 6
    assert out.text.startswith("HEAD\n") and out.text.endswith("\nTAIL\n")
    left_out = out.size - 1024
    assert f"[tinyharness: {left_out} bytes of output left out]" in out.text
    assert len(out.text) <= 1024 + 60


def test_the_default_cap_is_64_kib():
    assert LIMIT == 64 * 1024
    with captured() as out:
        os.write(1, b"y" * (LIMIT + 1))
    assert out.truncated and len(out.text.encode()) < LIMIT + 100


def test_nested_blocks_capture_into_their_own_text(capfd):
    with captured() as outer:
        os.write(2, b"outer 1\n")
        with captured() as inner:
            os.write(2, b"inner\n")
        os.write(2, b"outer 2\n")
    assert inner.lines() == ["inner"] and outer.lines() == ["outer 1", "outer 2"]
    assert capfd.readouterr().err == ""


def test_a_capture_is_used_once_and_the_limit_is_checked():
    out = Captured()
    with out:
        pass
    assert out.text == "" and out.lines() == [] and not out.truncated
    with pytest.raises(ValueError):
        Captured(limit=10)


LITERT_CHILD = textwrap.dedent("""
    import json, sys
    from tinyharness.native_output import captured
    from ai_edge_litert.interpreter import Interpreter

    with captured() as out:
        interp = Interpreter(model_path=sys.argv[1])
        interp.allocate_tensors()  # LiteRT 2.x applies the XNNPACK delegate here
    print(json.dumps({"text": out.text}))
""")


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="ai-edge-litert not installed")
def test_litert_xnnpack_line_goes_into_the_capture_not_the_real_stderr():
    """In a child process, so that its real stderr can be read."""
    done = subprocess.run([sys.executable, "-c", LITERT_CHILD, str(DIGITS_INT8)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert XNNPACK_LINE in json.loads(done.stdout)["text"]
    assert XNNPACK_LINE not in done.stderr
