"""Names are never cut or wrapped: ``suts``, ``benchmarks``, ``models list|verify`` and ``compare``
on a terminal 80 and 60 columns wide (rich forced to a terminal: TTY_COMPATIBLE=1) and piped
(click's CliRunner output is no tty), and the layout of tinyharness.tables itself."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from fakes import FakeSUT, registered
from tinyharness.cli import cli
from tinyharness.tables import Col, column_widths, print_table

BUILTIN_SUTS = ("null", "onnxruntime-cpu", "openvino-cpu", "serial", "tflite-cpu")
LONG_NAME = "acme-neural-accelerator-npu-v2"  # a third-party SUT's name, 30 characters
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\")  # colours and terminal links
WIDTHS = (80, 60)


def terminal(width: int) -> dict:
    """The environment of a rich terminal ``width`` columns wide."""
    return {"COLUMNS": str(width), "TTY_COMPATIBLE": "1", "FORCE_COLOR": None, "NO_COLOR": None}


PIPED = {"COLUMNS": "80", "TTY_COMPATIBLE": "0", "FORCE_COLOR": None}


def invoke(args: list[str], env: dict, code: int = 0) -> str:
    done = CliRunner().invoke(cli, args, env=env)
    assert done.exit_code == code, done.output
    return ANSI.sub("", done.stdout)


def whole(name: str, text: str) -> bool:
    """Whether ``name`` is on one line of ``text``, between spaces, tabs or line ends."""
    return re.search(rf"(?:^|[\s(]){re.escape(name)}(?:[\s)]|$)", text, re.M) is not None


def assert_fits(text: str, width: int, allow: tuple[str, ...] = ()) -> None:
    """No line is wider than the terminal, except the lines of a name in ``allow`` (a path longer
    than the terminal is printed whole: the terminal shows the rest on its next line)."""
    for line in text.splitlines():
        if not any(a in line for a in allow):
            assert cell_len(line) <= width, line


class LongNamedSUT(FakeSUT):
    name, runtime = LONG_NAME, "acme-npu-runtime"


# -- the layout ------------------------------------------------------------------------------------
def render(columns, rows, width: int, terminal: bool = True, **kwargs) -> str:
    out = Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None)
    out.soft_wrap = not terminal
    print_table(columns, rows, out=out, **kwargs)
    return out.file.getvalue()


ROWS = [("onnxruntime-cpu", "onnxruntime", "single-stream, offline", "threads, lanes"),
        (LONG_NAME, "acme-npu-runtime", "single-stream", "threads, precision, nstreams, nireq, "
         "a-rather-long-option-name-that-must-fold-somewhere")]
COLUMNS = (Col("SUT", key=True), "runtime", "scenarios", "options")


@pytest.mark.parametrize("width", [120, 80, 60, 40, 20])
def test_keys_are_whole_and_lines_fit_at_any_width(width):
    text = render(COLUMNS, ROWS, width)
    assert "…" not in text
    for name in ("onnxruntime-cpu", LONG_NAME):
        assert whole(name, text)
    assert_fits(text, width, allow=(LONG_NAME,))


def test_a_table_when_it_fits_blocks_when_it_does_not():
    wide = render(COLUMNS, ROWS, 120).splitlines()
    assert wide[0].split() == ["SUT", "runtime", "scenarios", "options"]
    assert wide[2].startswith(f"onnxruntime-cpu{' ' * (len(LONG_NAME) - 15 + 2)}onnxruntime")
    narrow = render(COLUMNS, ROWS, 40).splitlines()
    assert narrow[0] == "onnxruntime-cpu"  # the key on a line of its own, then its fields
    assert narrow[1].split() == ["runtime", "onnxruntime"]


def test_column_widths_keep_keys_and_words_and_give_up_when_they_cannot():
    cells = [[Text(c) for c in row] for row in ROWS]
    widths = column_widths([Col("SUT", key=True), Col("runtime"), Col("scenarios"), Col("options")],
                           cells, 90)
    assert widths is not None and sum(widths) + 2 * 3 <= 90
    assert widths[0] == len(LONG_NAME) and widths[1] >= len("acme-npu-runtime")
    assert widths[2] >= len("single-stream,") and widths[3] >= 20
    assert column_widths([Col("SUT", key=True), Col("runtime")], cells, 40) is None


def test_piped_is_tab_separated_with_a_header_and_no_wrapping():
    text = render(COLUMNS, ROWS, 20, terminal=False, title="the SUTs")
    lines = text.splitlines()
    assert lines[:2] == ["the SUTs", "SUT\truntime\tscenarios\toptions"]
    assert [ln.split("\t") for ln in lines[2:]] == [list(ROWS[0]), list(ROWS[1])]


def test_piped_cells_are_one_field_each():
    text = render(("a", "b"), [("x\ty", "two\nlines"), ("", None)], 80, terminal=False)
    assert text.splitlines()[1:] == ["x y\ttwo lines", "-\t-"]


def test_a_cell_is_text_never_markup():
    for terminal in (True, False):
        text = render(("SUT", "install"), [("[bold]x[/bold]", "pip install 'tinyharness[vendor]'")],
                      80, terminal)
        assert "[bold]x[/bold]" in text and "'tinyharness[vendor]'" in text


# -- tinyharness suts and benchmarks ---------------------------------------------------------------
@pytest.mark.parametrize("width", WIDTHS)
def test_suts_names_are_whole_on_a_terminal(width):
    with registered(LongNamedSUT):
        text = invoke(["suts"], terminal(width))
    assert "…" not in text
    for name in (*BUILTIN_SUTS, LONG_NAME):
        assert whole(name, text), name
    assert_fits(text, width)


def test_suts_piped_is_one_record_a_line():
    with registered(LongNamedSUT):
        text = invoke(["suts"], PIPED)
    lines = text.splitlines()
    assert lines[0] == "SUT\truntime\tversion\tformats\tdevices\tscenarios\toptions"
    assert {ln.split("\t")[0] for ln in lines[1:]} >= {*BUILTIN_SUTS, LONG_NAME}
    assert all(ln.count("\t") == 6 for ln in lines) and "…" not in text
    long_row = next(ln.split("\t") for ln in lines if ln.startswith(LONG_NAME + "\t"))
    assert long_row[1] == "acme-npu-runtime" and long_row[3] == "onnx, tflite"


@pytest.mark.parametrize("width", WIDTHS)
def test_benchmark_ids_are_whole_on_a_terminal(width):
    text = invoke(["benchmarks"], terminal(width))
    ids = [r["id"] for r in json.loads(invoke(["benchmarks", "--json"], PIPED))]
    assert "…" not in text and len(ids) >= 6
    for benchmark in ids:
        assert whole(benchmark, text), benchmark
    assert_fits(text, width)


def test_benchmarks_piped():
    lines = invoke(["benchmarks"], PIPED).splitlines()
    assert lines[0] == "benchmark\ttask\ttarget\tmodels\tdataset\twindows"
    digits = next(ln.split("\t") for ln in lines if ln.startswith("digits01\t"))
    assert digits[2:] == ["top1 >= 90", "tflite, onnx, pt2, pte", "present (360 files)", "5 x 1 s"]


# -- tinyharness models list and verify ------------------------------------------------------------
@pytest.fixture
def store(tmp_path) -> dict:
    """The cache in a deep tmp_path holding a damaged kws01 model, no mirror: the environment."""
    cache = tmp_path / ("a-rather-deep-folder-for-the-model-cache-" * 2) / "cache"
    bad = cache / "models" / "kws" / "kws_ref_model.tflite"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a model")
    return {"TINYHARNESS_CACHE_DIR": str(cache), "TINYHARNESS_MODEL_MIRROR": None,
            "TINYHARNESS_BAD": str(bad)}


def verify_rows(env: dict) -> list[dict]:
    done = CliRunner().invoke(cli, ["models", "verify", "kws01", "digits01", "--json"], env=env)
    assert done.exit_code == 1, done.output
    return json.loads(done.stdout)


@pytest.mark.parametrize("width", WIDTHS)
def test_verify_prints_each_path_whole_on_one_line(store, width):
    rows = verify_rows(store)
    paths = [r["path"] for r in rows if r["path"]]
    assert store["TINYHARNESS_BAD"] in paths and len(paths) == 8  # 7 embedded digits01 models
    text = invoke(["models", "verify", "kws01", "digits01"], {**store, **terminal(width)}, code=1)
    assert "…" not in text
    for path in paths:
        assert whole(path, text), path
        assert text.count(path) == 1  # shown once
    for r in rows:  # a missing model by its file name
        assert r["path"] or whole(r["file"], text)
    assert "MISMATCH" in text and "11 bytes, the rule set for kws01 expects" in text
    assert_fits(text, width, allow=tuple(paths))


def test_verify_path_goes_on_its_own_line_when_narrow(store):
    text = invoke(["models", "verify", "kws01"], {**store, **terminal(60)}, code=1)
    lines = text.splitlines()
    i = lines.index(f"  {store['TINYHARNESS_BAD']}")
    assert lines[i - 1].split() == ["kws01", "MISMATCH", "cache"]
    assert lines[i + 1].startswith("  11 bytes, the rule set for kws01 expects")


def test_verify_is_one_line_a_copy_when_wide(store):
    text = invoke(["models", "verify", "kws01"], {**store, **terminal(250)}, code=1)
    row = next(ln for ln in text.splitlines() if "MISMATCH" in ln)
    assert row.split()[:4] == ["kws01", "MISMATCH", "cache", store["TINYHARNESS_BAD"]]


def test_verify_piped_is_tab_separated(store):
    rows = verify_rows(store)
    text = invoke(["models", "verify", "kws01", "digits01"], {**store, **PIPED}, code=1)
    lines = text.splitlines()
    assert lines[0] == "benchmark\tstatus\twhere\tpath\tproblem"
    assert [ln.split("\t")[:4] for ln in lines[1:]] == [
        [r["benchmark"], r["status"], r["where"] or "-", r["path"] or r["file"]] for r in rows]


def test_verify_json_is_unchanged(store):
    rows = verify_rows(store)
    assert all(set(r) == {"benchmark", "file", "status", "where", "path", "problem"} for r in rows)


@pytest.mark.parametrize("width", WIDTHS)
def test_models_list_keeps_file_names_and_the_bad_copy_path_whole(store, width):
    listed = json.loads(invoke(["models", "list", "--json"], {**store, **PIPED}))
    files = [r["file"] for r in listed]
    text = invoke(["models", "list"], {**store, **terminal(width)})
    assert "…" not in text
    for file in files:
        assert whole(file, text), file
    assert f"  {store['TINYHARNESS_BAD']}\n" in text
    assert_fits(text, width, allow=(store["TINYHARNESS_BAD"],))
    piped = invoke(["models", "list"], {**store, **PIPED})
    assert f"\tbad checksum: {store['TINYHARNESS_BAD']}\t" in piped
    assert {ln.split("\t")[1] for ln in piped.splitlines()[1:]} == set(files)


# -- tinyharness compare ---------------------------------------------------------------------------
COMPARE = ["compare", str(FIXTURES), str(FIXTURES), "--resamples", "200"]
METRICS = ("p50 latency, us", "p90 latency, us", "window median, inf/s", "offline, samples/s")


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_keeps_suts_and_metrics_whole(width):
    text = invoke(COMPARE, terminal(width))
    assert "…" not in text
    for name in ("onnxruntime-cpu", "tflite-cpu", "serial", *METRICS):
        assert whole(name, text), name
    assert_fits(text, width)


def test_compare_piped_is_a_title_and_tab_separated_rows():
    lines = invoke(COMPARE, PIPED).splitlines()
    i = lines.index("kws01 single-stream: A = serial (1 run), B = serial (1 run)")
    assert lines[i + 1] == "metric\tA\tB\tB vs A\t95% CI, %\tverdict"
    assert lines[i + 2].split("\t")[0] == "window median, inf/s"
    assert lines[i + 2].split("\t")[-1] == "within noise"
    assert all(len(ln) > 80 for ln in lines if ln.startswith("note: one run a side"))  # unwrapped


# -- a third-party plugin, as users install one --------------------------------------------------
PLUGIN = textwrap.dedent(f'''
    import numpy as np

    from tinyharness.hookspecs import hookimpl
    from tinyharness.sut import SUT, SUTDescription, TensorSpec


    class AcmeSUT(SUT):
        name = "{LONG_NAME}"
        summary = "a vendor's accelerator, from a third-party plugin"
        runtime = "numpy"
        model_formats = ("onnx",)

        def load(self, model):
            self.y = np.zeros((1, 10), np.float32)

        def input_spec(self):
            return TensorSpec("input", (1, 8, 8, 1), "float32")

        def output_spec(self):
            return TensorSpec("out", (1, 10), "float32")

        def prepare(self, sample):
            pass

        def infer(self):
            pass

        def output(self):
            return self.y.copy()

        def describe(self):
            return SUTDescription(self.name, "numpy", np.__version__, "cpu", "onnx", "float32", 1)


    @hookimpl
    def register_suts(register):
        register(AcmeSUT)
''')


def test_a_third_party_sut_name_of_30_characters_stays_whole_at_80_columns(tmp_path):
    (tmp_path / "acme_sut.py").write_text(PLUGIN)
    info = tmp_path / "acme_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tinyharness]\nacme = acme_sut\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "NO_COLOR", "TINYHARNESS_PLUGINS")}
    env.update(PYTHONPATH=str(tmp_path), COLUMNS="80", TTY_COMPATIBLE="1")
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "suts"], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = ANSI.sub("", done.stdout)
    assert len(LONG_NAME) == 30 and "…" not in text
    for name in (*BUILTIN_SUTS, LONG_NAME):
        assert whole(name, text), name
    assert_fits(text, 80)
