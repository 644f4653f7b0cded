"""``tinyharness plugins``: the listing (built-ins, a third-party distribution, a broken one, the
allow list, a hook that fails), ``plugins new`` (the files, their validity, the name checks, an
existing folder) and the conformance kit's ``check``, attached lazily."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyharness.cli import cli, main
from tinyharness.hookspecs import hookimpl

BUILTINS = {"null": ["null"], "onnxruntime-cpu": ["onnxruntime-cpu"],
            "openvino-cpu": ["openvino-cpu"], "serial": ["serial"], "tflite-cpu": ["tflite-cpu"]}
PIPED = {"COLUMNS": "80", "TTY_COMPATIBLE": "0", "FORCE_COLOR": None}

GOOD = textwrap.dedent('''
    """A plugin with a SUT and a command."""
    from tinyharness.hookspecs import hookimpl


    @hookimpl
    def register_suts(register):
        from tinyharness.sut import SUT

        class Widget(SUT):
            name = "widget-npu"
            load = input_spec = output_spec = prepare = infer = output = describe = None

        register(Widget)


    @hookimpl
    def register_commands(cli):
        import click

        @click.command("widget")
        def widget():
            """Widget things."""

        cli.add_command(widget)
''')


def _distribution(root: Path, name: str, version: str, module: str, source: str, entry: str) -> None:
    (root / f"{module}.py").write_text(source)
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[tinyharness]\n{entry} = {module}\n")


def _tinyharness(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("TINYHARNESS_PLUGINS", "FORCE_COLOR")}
    environ.update(PYTHONPATH=str(root), **env)
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *args], capture_output=True,
                          text=True, env=environ, timeout=300, cwd=root)


def _entries(rows: list[dict]) -> dict[str, dict]:
    """{entry point name: its row plus its distribution and version}."""
    return {ep["name"]: {**ep, "distribution": row["distribution"], "version": row["version"]}
            for row in rows for ep in row["entry_points"]}


# -- the listing -----------------------------------------------------------------------------------
def test_the_listing_shows_the_builtins_with_their_hooks_suts_and_commands():
    done = CliRunner().invoke(cli, ["plugins", "--json"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    entries = _entries(rows)
    assert set(BUILTINS) <= set(entries)
    from tinyharness import __version__

    for name, suts in BUILTINS.items():
        entry = entries[name]
        assert (entry["distribution"], entry["version"]) == ("tinyharness", __version__)
        assert (entry["status"], entry["error"], entry["suts"]) == ("loaded", None, suts)
        assert entry["module"] == f"tinyharness.suts.{name.replace('-', '_')}"
    assert entries["serial"]["hooks"] == ["register_commands", "register_suts"]
    assert entries["serial"]["commands"] == ["dut"]
    assert entries["null"]["hooks"] == ["register_suts"] and entries["null"]["commands"] == []
    names = [row["distribution"] for row in rows if row["distribution"]]
    assert names == sorted(names, key=str.lower)


def test_the_table_piped_is_one_tab_separated_record_an_entry_point():
    done = CliRunner().invoke(cli, ["plugins"], env=PIPED)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == "plugin\tdistribution\thooks\tregisters\tstatus"
    rows = {ln.split("\t")[0]: ln.split("\t") for ln in lines[1:]}
    assert rows["serial"][2:] == ["register_commands, register_suts", "SUT serial, command dut", "loaded"]
    assert rows["null"][1].startswith("tinyharness ") and all(ln.count("\t") == 4 for ln in lines)


def test_a_third_party_plugin_and_a_broken_one_are_listed_the_broken_with_one_line(tmp_path):
    _distribution(tmp_path, "widget-plugin", "1.2.3", "widget_plugin", GOOD, "widget")
    _distribution(tmp_path, "broken-plugin", "0.0.1", "broken_plugin",
                  "raise ImportError('missing libfoo.so')\n", "broken")
    done = _tinyharness(tmp_path, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    entries = _entries(json.loads(done.stdout))
    assert entries["widget"] == {"name": "widget", "module": "widget_plugin", "status": "loaded",
                                 "error": None, "hooks": ["register_commands", "register_suts"],
                                 "suts": ["widget-npu"], "commands": ["widget"], "metrics": [],
                                 "distribution": "widget-plugin", "version": "1.2.3"}
    broken = entries["broken"]
    assert (broken["distribution"], broken["version"], broken["status"]) == ("broken-plugin", "0.0.1", "failed")
    assert broken["error"] == "ImportError: missing libfoo.so"
    assert broken["hooks"] == broken["suts"] == []
    assert "Traceback" not in done.stderr  # the loader's warning, one line
    assert [ln for ln in done.stderr.splitlines() if ln.strip()] == [
        ln for ln in done.stderr.splitlines() if "broken" in ln]

    table = _tinyharness(tmp_path, "plugins")
    assert table.returncode == 0
    row = next(ln.split("\t") for ln in table.stdout.splitlines() if ln.startswith("broken\t"))
    assert row == ["broken", "broken-plugin 0.0.1", "-", "-", "failed: ImportError: missing libfoo.so"]
    assert "widget\twidget-plugin 1.2.3\t" in table.stdout


def test_the_allow_list_shows_the_others_as_skipped(tmp_path):
    _distribution(tmp_path, "widget-plugin", "1.2.3", "widget_plugin", GOOD, "widget")
    done = _tinyharness(tmp_path, "plugins", "--json", TINYHARNESS_PLUGINS="null,widget")
    assert done.returncode == 0 and done.stderr == ""
    entries = _entries(json.loads(done.stdout))
    assert entries["null"]["status"] == entries["widget"]["status"] == "loaded"
    assert entries["serial"] == {**entries["serial"], "status": "skipped",
                                 "error": "not in TINYHARNESS_PLUGINS", "hooks": [], "suts": []}


def test_a_second_distribution_with_the_same_entry_point_name_is_shadowed(tmp_path):
    _distribution(tmp_path, "widget-plugin", "1.2.3", "widget_plugin", GOOD, "widget")
    _distribution(tmp_path, "widget-fork", "2.0", "widget_fork", GOOD.replace("widget-npu", "fork-npu"),
                  "widget")
    done = _tinyharness(tmp_path, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["distribution"]: row["entry_points"][0] for row in json.loads(done.stdout)}
    statuses = sorted((rows["widget-plugin"]["status"], rows["widget-fork"]["status"]))
    assert statuses == ["loaded", "shadowed"]
    shadowed = next(ep for ep in rows.values() if ep["status"] == "shadowed")
    assert shadowed["error"].startswith("the entry point name 'widget' is taken by widget_")


def test_a_plugin_whose_register_suts_fails_is_listed_with_the_error():
    from tinyharness.plugins import plugin_manager

    class Failing:
        @hookimpl
        def register_suts(self, register):
            raise RuntimeError("no device\nsecond line")

    pm = plugin_manager()
    pm.register(Failing(), name="failing-test")
    try:
        done = CliRunner().invoke(cli, ["plugins", "--json"])
    finally:
        pm.unregister(name="failing-test")
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    assert rows[-1]["distribution"] is None  # registered at run time, from no entry point
    entry = _entries(rows)["failing-test"]
    assert (entry["status"], entry["hooks"]) == ("failed", ["register_suts"])
    assert entry["error"] == "register_suts: RuntimeError: no device"


def test_json_belongs_to_the_listing(capsys):
    with pytest.raises(SystemExit) as done:
        main(["plugins", "--json", "new", "x"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1 and "--json is the listing's option" in err


# -- plugins new -----------------------------------------------------------------------------------
def test_new_writes_a_valid_package(tmp_path):
    done = CliRunner().invoke(cli, ["plugins", "new", "zeta-dsp", "--output", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "pip install -e" in done.stdout and "tinyharness run --sut zeta-dsp" in done.stdout
    root = tmp_path / "zeta-dsp"
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert found == [".gitignore", "README.md", "pyproject.toml", "src/tinyharness_zeta_dsp/__init__.py",
                     "src/tinyharness_zeta_dsp/plugin.py", "src/tinyharness_zeta_dsp/sut.py",
                     "tests/test_conformance.py"]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "tinyharness-zeta-dsp"
    assert project["project"]["entry-points"]["tinyharness"] == {"zeta-dsp": "tinyharness_zeta_dsp.plugin"}
    assert any(d.startswith("tinyharness>=") for d in project["project"]["dependencies"])
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    for path in root.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")  # valid Python
    plugin = ast.parse((root / "src/tinyharness_zeta_dsp/plugin.py").read_text())
    top = [n for n in plugin.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in top] == ["from tinyharness.hookspecs import hookimpl"]  # light
    text = "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    from tinyharness import scaffold

    placeholders = re.findall(r"__[A-Z_]+__", "".join(scaffold.TEMPLATES.values()))
    assert placeholders and not any(p in text for p in placeholders) and "zeta-dsp" in text
    test = (root / "tests/test_conformance.py").read_text()
    assert "class TestZetaDsp(SUTConformance):" in test and 'sut = "zeta-dsp"' in test


@pytest.fixture
def generated(tmp_path):
    """The package of 'plugins new zeta-npu' importable in this process, its plugin registered."""
    from tinyharness.plugins import registry

    assert CliRunner().invoke(cli, ["plugins", "new", "zeta-npu", "--output", str(tmp_path)]).exit_code == 0
    sys.path.insert(0, str(tmp_path / "zeta-npu" / "src"))
    try:
        import tinyharness_zeta_npu.plugin as plugin

        registry().add(plugin, "zeta-npu")
        yield tmp_path
    finally:
        registry().remove("zeta-npu")
        sys.path.remove(str(tmp_path / "zeta-npu" / "src"))
        for name in [m for m in sys.modules if m.startswith("tinyharness_zeta_npu")]:
            del sys.modules[name]


def test_the_generated_sut_runs_digits01_to_its_accuracy_target(generated, capsys):
    pytest.importorskip("onnxruntime")
    with pytest.raises(SystemExit) as done:
        main(["run", "--sut", "zeta-npu", "--mode", "accuracy", "--sut-option", "optimization=none",
              "--json", "--quiet", "--output", str(generated / "results")])
    out, err = capsys.readouterr()
    assert done.value.code == 0, err
    summary = json.loads(out)
    assert summary["accuracy"]["passed"] and summary["accuracy"]["count"] == 360
    assert summary["system"]["sut"]["extra"] == {"optimization": "none"}
    assert summary["settings"]["sut_config"] == {"threads": None, "optimization": "none"}


def test_the_generated_sut_refuses_a_bad_option_in_one_line(generated, capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "--sut", "zeta-npu", "--sut-option", "optimization=fast",
              "--output", str(generated / "results")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and not (generated / "results").exists()
    assert err == "tinyharness: error: --sut-option optimization=fast: expected one of all, basic, none\n"


@pytest.mark.parametrize("name, message", [
    ("Acme_NPU", "is not a valid SUT name: use lower-case letters and digits, words joined by "
                 "single hyphens, starting with a letter (e.g. 'acme-npu')"),
    ("1npu", "is not a valid SUT name"),
    ("acme--npu", "(e.g. 'acme-npu')"),
    ("acme-", "is not a valid SUT name"),
    ("../npu", "is not a valid SUT name"),
    ("", "the plugin name is empty"),
    ("x" * 41, "is 41 characters long; at most 40"),
    ("a\u202eb", "is not a valid SUT name"),
    ("null", "'null' is already an installed plugin (an entry point of tinyharness"),
    ("serial", "'serial' is already an installed plugin"),
])
def test_a_bad_or_taken_name_is_one_line_and_exit_2(name, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["plugins", "new", name])
    out, err = capsys.readouterr()
    assert done.value.code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("tinyharness: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_a_sut_name_taken_by_a_plugin_without_entry_point_is_refused(fake_suts, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["plugins", "new", "fake", "--output", str(tmp_path)])
    assert done.value.code == 2
    assert "'fake' is already a SUT (registered by plugin 'fakes:" in capsys.readouterr().err


def test_an_existing_folder_is_refused_without_force(tmp_path, capsys):
    (tmp_path / "zeta-dsp").mkdir()
    (tmp_path / "zeta-dsp" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as done:
        main(["plugins", "new", "zeta-dsp", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert [p.name for p in (tmp_path / "zeta-dsp").iterdir()] == ["notes.txt"]

    with pytest.raises(SystemExit) as done:
        main(["plugins", "new", "zeta-dsp", "--output", str(tmp_path), "--force"])
    assert done.value.code == 0
    assert (tmp_path / "zeta-dsp" / "notes.txt").read_text() == "mine"  # kept
    assert (tmp_path / "zeta-dsp" / "src" / "tinyharness_zeta_dsp" / "sut.py").is_file()

    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as done:
        main(["plugins", "new", "file", "--output", str(tmp_path / "file")])
    assert done.value.code == 2


def test_force_turns_a_taken_name_into_a_warning(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["plugins", "new", "null", "--output", str(tmp_path), "--force"])
    err = capsys.readouterr().err
    assert done.value.code == 0 and err.startswith("warning: 'null' is already an installed plugin")
    assert (tmp_path / "null" / "src" / "tinyharness_null" / "plugin.py").is_file()


# -- plugins check, attached lazily ----------------------------------------------------------------
def test_help_imports_neither_the_kit_nor_the_scaffold():
    code = ("import sys; from tinyharness.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', [m for m in ('tinyharness.cli.plugins_check', 'tinyharness.testing', "
            "'tinyharness.scaffold', 'numpy') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    assert " plugins " in done.stdout


def test_check_is_attached_when_the_kit_has_its_command():
    from importlib.util import find_spec

    if find_spec("tinyharness.cli.plugins_check") is None:
        pytest.skip("tinyharness/cli/plugins_check.py (the kit's command) is not there yet")
    done = CliRunner().invoke(cli, ["plugins", "--help"])
    assert done.exit_code == 0 and " check " in done.stdout and " new " in done.stdout


def test_attaching_check_without_its_module_leaves_the_group_without_it(monkeypatch):
    import click

    from tinyharness.cli.plugins import attach_check

    monkeypatch.setitem(sys.modules, "tinyharness.cli.plugins_check", None)  # import fails: absent
    group = click.Group("plugins")
    assert attach_check(group) is False and "check" not in group.commands


def test_a_kit_that_fails_to_import_gives_a_check_that_says_why(monkeypatch):
    import types

    import click

    from tinyharness.cli.plugins import attach_check
    from tinyharness.errors import UsageError

    monkeypatch.setitem(sys.modules, "tinyharness.cli.plugins_check",
                        types.ModuleType("tinyharness.cli.plugins_check"))  # no 'check' in it
    group = click.Group("plugins")
    assert attach_check(group) is True
    with pytest.raises(UsageError) as raised:
        group.commands["check"].main(["acme-npu"], standalone_mode=False)
    assert "'tinyharness plugins check' is unavailable: ImportError: cannot import name 'check'" \
        in str(raised.value)


@pytest.mark.parametrize("width", [100, 80, 60])
def test_on_a_terminal_names_are_whole_and_lines_fit(width):
    from rich.cells import cell_len

    env = {"COLUMNS": str(width), "TTY_COMPATIBLE": "1", "FORCE_COLOR": None, "NO_COLOR": "1"}
    done = CliRunner().invoke(cli, ["plugins"], env=env)
    assert done.exit_code == 0, done.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    assert "…" not in text
    for name in BUILTINS:
        assert re.search(rf"(?:^|\s){re.escape(name)}(?:\s|$)", text, re.M), name
    assert all(cell_len(line) <= width for line in text.splitlines())
