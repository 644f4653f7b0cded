"""The sweep spec: the TOML matrix expanded into cells (product, excludes, includes, options that
apply only to the SUTs that take them), the ids resuming keys on, and the one-line errors of a bad
spec."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tinyharness.errors import UsageError
from tinyharness.sweep.spec import Cell, SweepSpec, load_spec

BASIC = """
name = "digits-cpu"
timeout_s = 600
[matrix]
benchmark = ["digits01"]
sut = ["onnxruntime-cpu", "tflite-cpu", "null"]
scenario = ["single-stream", "offline"]
[matrix.sut_options]
threads = [1, 2]
[[exclude]]
sut = "tflite-cpu"
scenario = "offline"
[[include]]
sut = "onnxruntime-cpu"
mode = "accuracy"
sut_options = { threads = 3 }
[run]
min_duration = 1
seed = 7
"""


def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def labels(spec: SweepSpec) -> list[str]:
    return [c.label() for c in spec.cells]


def test_the_matrix_is_the_product_less_excludes_plus_includes(tmp_path):
    spec = load_spec(write(tmp_path, BASIC))
    assert spec.name == "digits-cpu"
    # onnxruntime: 2 threads x 2 scenarios; tflite: 2 threads x single-stream (offline excluded);
    # null takes no threads: its cells are made without, once per scenario; then the include.
    assert labels(spec) == [
        "digits01 onnxruntime-cpu threads=1 single-stream", "digits01 onnxruntime-cpu threads=2 single-stream",
        "digits01 onnxruntime-cpu threads=1 offline", "digits01 onnxruntime-cpu threads=2 offline",
        "digits01 tflite-cpu threads=1 single-stream", "digits01 tflite-cpu threads=2 single-stream",
        "digits01 null single-stream", "digits01 null offline",
        "digits01 onnxruntime-cpu threads=3 single-stream accuracy"]
    assert all(c.timeout_s == 600 for c in spec.cells)
    assert all(c.run_args == ("--min-duration", "1", "--seed", "7") for c in spec.cells)


def test_exclude_matches_options_and_lists(tmp_path):
    spec = load_spec(write(tmp_path, """
        [matrix]
        sut = ["onnxruntime-cpu", "null"]
        scenario = ["single-stream", "offline"]
        sut_options = { threads = [1, 2] }
        [[exclude]]
        sut_options = { threads = 2 }
        scenario = ["offline"]
    """))
    assert labels(spec) == ["digits01 onnxruntime-cpu threads=1 single-stream",
                            "digits01 onnxruntime-cpu threads=2 single-stream",
                            "digits01 onnxruntime-cpu threads=1 offline",
                            "digits01 null single-stream", "digits01 null offline"]


def test_ids_key_on_what_runs_not_on_the_timeout_or_the_file(tmp_path):
    first = load_spec(write(tmp_path, BASIC, "a.toml"))
    again = load_spec(write(tmp_path, BASIC.replace("timeout_s = 600", "timeout_s = 60"), "b.toml"))
    assert [c.id for c in first.cells] == [c.id for c in again.cells]
    assert first.id == again.id  # same name, same cells: a rerun resumes
    renamed = load_spec(write(tmp_path, BASIC.replace('"digits-cpu"', '"other"'), "c.toml"))
    assert renamed.id != first.id
    reordered = SweepSpec(first.name, tuple(reversed(first.cells)))
    assert reordered.id == first.id
    assert len({c.id for c in first.cells}) == len(first.cells)
    assert Cell("digits01", "null").id != Cell("digits01", "null", run_args=("--seed", "1")).id
    assert all(len(c.id) == 12 and int(c.id, 16) >= 0 for c in first.cells)


def test_a_cell_round_trips_and_knows_its_command_line(tmp_path):
    cell = Cell("kws01", "serial", sut_options=(("verify", "1"),), board="board-a",
                run_args=("--min-duration", "1"), timeout_s=30)
    assert Cell.from_dict(cell.to_dict()) == cell
    out = tmp_path / "out"
    assert cell.argv(out, port="/dev/ttyACM0") == [
        "run", "--benchmark", "kws01", "--sut", "serial", "--scenario", "single-stream", "--mode", "all",
        "--sut-option", "verify=1", "--sut-option", "port=/dev/ttyACM0", "--min-duration", "1",
        "--json", "--quiet", "--output", str(out)]
    assert "port=" not in " ".join(cell.argv(out))
    assert cell.label() == "kws01 serial verify=1 single-stream @board-a"


def test_timed_cells_are_host_timed_performance(fake_suts):
    assert Cell("digits01", "null").timed and Cell("digits01", "null", mode="performance").timed
    assert not Cell("digits01", "null", mode="accuracy").timed
    assert not Cell("digits01", "fake-device").timed  # the device's clock: no host timing slot
    assert Cell("digits01", "null").resources() == {"timing": 1}
    assert Cell("digits01", "fake-device", board="b").resources() == {"board:b": 1}


def test_relative_paths_are_the_spec_folder_s(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.onnx").write_bytes(b"x")
    (tmp_path / "data").mkdir()
    spec = load_spec(write(tmp_path, """
        [matrix]
        sut = "onnxruntime-cpu"
        model = "models/m.onnx"
        [run]
        dataset = "data"
    """))
    (cell,) = spec.cells
    assert cell.model == str(tmp_path / "models" / "m.onnx")
    assert cell.run_args == ("--dataset", str(tmp_path / "data"))


@pytest.mark.parametrize("text, expected", [
    ("[matrix]\nsut = 'null'\nscenrio = 'offline'", "matrix: unknown key 'scenrio' (did you mean 'scenario'?)"),
    ("[matrix]\nsut = 'null'\nscenario = 'ofline'", "matrix.scenario: 'ofline' is not one of single-stream, offline (did you mean 'offline'?)"),
    ("[matrix]\nsut = 'null'\nscenario = ['offline', 'x']", "matrix.scenario.1: 'x' is not one of"),
    ("[matrix]\nsut = 'nul'", "matrix.sut: unknown SUT 'nul' (did you mean 'null'?)"),
    ("[matrix]\nsut = 'null'\nbenchmark = 'digit01'", "matrix.benchmark: unknown benchmark 'digit01' (did you mean 'digits01'?)"),
    ("[matrix]\nsut = ['null', 'onnxruntime-cpu']\nsut_options = { threadz = 1 }", "matrix.sut_options.threadz: no SUT of the sweep accepts it (did you mean 'threads'?)"),
    ("[matrix]\nsut = 'onnxruntime-cpu'\nsut_options = { threads = 0 }", "matrix.sut_options: --sut-option threads=0"),
    ("[matrix]\nsut = 'null'\nboard = 'b'", "matrix.board: no SUT of the sweep takes a port"),
    ("[matrix]\nscenario = 'offline'", "matrix.sut: missing"),
    ("name = 'x'", "matrix: empty"),
    ("[matrix]\nsut = []", "matrix.sut: [] should be non-empty"),
    ("timeout_s = -1\n[matrix]\nsut = 'null'", "timeout_s: -1 is less than or equal to the minimum of 0"),
    ("[matrix]\nsut = 'null'\n[run]\noutput = 'x'", "run.output: not allowed in a sweep; give --output"),
    ("[matrix]\nsut = 'null'\n[run]\nmin_duraton = 1", "run: unknown key 'min_duraton' (did you mean 'min_duration'?)"),
    ("[matrix]\nsut = 'null'\n[run]\ndataset = 'nowhere'", "run.dataset: no folder"),
    ("[matrix]\nsut = 'null'\n[[include]]\nsut = 'onnxruntime-cpu'\nsut_options = { lanez = 2 }", "include.0.sut_options: SUT 'onnxruntime-cpu' does not accept option(s) lanez"),
    ("[matrix]\nsut = ['null', 'onnxruntime-cpu']\n[[include]]\nmode = 'accuracy'", "include.0.sut: missing"),
    ("[matrix\nsut = 'null'", "not valid TOML"),
    ("[matrix]\nsut = 'null'\nsut_options = { threads = %s }" % list(range(300)), "matrix.sut_options.threads: [0, 1, 2, 3, 4, 5, ...] is too long"),
])
def test_a_bad_spec_is_one_line_naming_the_file_and_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as error:
        load_spec(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert "\n" not in message


def test_a_spec_that_is_no_text_or_too_large_is_refused(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_spec(tmp_path / "bin.toml")
    (tmp_path / "big.toml").write_text("# " + "x" * (2 << 20))
    with pytest.raises(UsageError, match="more than the"):
        load_spec(tmp_path / "big.toml")


def test_too_many_combinations_are_refused_before_anything_is_made(tmp_path):
    lanes = ", ".join(str(i) for i in range(1, 251))
    path = write(tmp_path, f"[matrix]\nsut = 'onnxruntime-cpu'\nsut_options = {{ threads = [1, 2, 3, 4, 5, 6, 7, 8], "
                           f"lanes = [{lanes}] }}\nscenario = ['single-stream', 'offline']\nmode = ['all', 'accuracy', 'performance']")
    with pytest.raises(UsageError, match=r"matrix: 12,000 combinations, more than the 10,000"):
        load_spec(path)


def test_the_flags_make_the_same_sweep_as_the_file(tmp_path):
    from tinyharness.cli.sweep import build_spec

    path = write(tmp_path, """
        name = "sweep"
        [matrix]
        sut = ["onnxruntime-cpu", "null"]
        scenario = ["single-stream", "offline"]
        sut_options = { threads = [1, 2] }
        [run]
        min_duration = 1.0
    """)
    flags = {k: () for k in ("benchmark", "sut", "scenario", "mode", "model", "sut_option", "board",
                             "board_port", "metric")}
    flags.update({k: None for k in ("name", "timeout", "min_duration", "min_queries", "dataset", "seed",
                                    "repeat", "query_timeout", "expected_qps")})
    flags.update(sut=("onnxruntime-cpu,null",), scenario=("single-stream", "offline"),
                 sut_option=("threads=1,2",), min_duration=1.0)
    assert build_spec(None, flags).id == load_spec(path).id
    with pytest.raises(UsageError, match="--sut: give the matrix in .* or by flags, not both"):
        build_spec(path, flags)
    with pytest.raises(UsageError, match="not KEY=VALUE"):
        build_spec(None, {**flags, "sut_option": ("threads",)})
    assert build_spec(None, {**flags, "board_port": ("b=/dev/ttyACM0",)}).boards == {"b": "/dev/ttyACM0"}
    quick = build_spec(path, {**flags, "sut": (), "scenario": (), "sut_option": (), "min_duration": 0.5,
                              "timeout": 9.0})
    assert quick.cells[0].run_args == ("--min-duration", "0.5") and quick.cells[0].timeout_s == 9.0


def test_a_serial_board_cell_needs_no_port_in_the_spec(tmp_path):
    """The serial SUT requires a port, but a board cell gets it where the board is attached
    (the [boards] table or the cluster node): the spec is valid without one."""
    spec = load_spec(write(tmp_path, """
        [matrix]
        benchmark = ["kws01"]
        sut = ["serial"]
        board = ["emu-a", "emu-b"]
        mode = "accuracy"
        [boards]
        emu-a = "/dev/pts/7"
    """))
    assert sorted(c.board for c in spec.cells) == ["emu-a", "emu-b"]
    cell = next(c for c in spec.cells if c.board == "emu-a")
    assert "port=/dev/pts/7" in cell.argv(tmp_path, port="/dev/pts/7")
    assert all("port" not in k for c in spec.cells for k, _ in c.sut_options)
