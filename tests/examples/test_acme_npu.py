"""examples/acme-npu is what 'tinyharness plugins new acme-npu' writes, file for file; and what that
command writes installs with pip, runs a benchmark and passes its own tests (the conformance kit):
about 10 s, in a fresh venv layered over this environment (plugin_env.py), which stays unchanged.

CI installs the example itself into a fresh venv and runs its tests (.ci/run).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyharness.cli import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "acme-npu"
# What installing and testing the example leaves in it (ignored by git, never the scaffold's)
LEFTOVERS = {"__pycache__", ".pytest_cache", "build", "dist", "results"}
REGENERATE = "tinyharness plugins new acme-npu --output examples --force"


def _helpers():
    spec = importlib.util.spec_from_file_location("plugin_env", Path(__file__).with_name("plugin_env.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin_env = _helpers()


def tree(root: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``root`` but the install and test leftovers."""
    found = {}
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p in LEFTOVERS or p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        found["/".join(parts)] = path.read_bytes()
    return found


def test_the_example_is_the_scaffolds_output(tmp_path):
    done = CliRunner().invoke(cli, ["plugins", "new", "acme-npu", "--output", str(tmp_path), "--force"])
    assert done.exit_code == 0, done.output
    written, example = tree(tmp_path / "acme-npu"), tree(EXAMPLE)
    assert sorted(written) == sorted(example), f"examples/acme-npu has other files: run '{REGENERATE}'"
    differ = [name for name in written if written[name] != example[name]]
    assert differ == [], f"examples/acme-npu differs from the scaffold in {differ}: run '{REGENERATE}'"


def test_a_new_plugin_installs_runs_and_passes_its_own_tests(tmp_path):
    plugin_env.require_absent("acme-npu")
    env = plugin_env.PluginEnv(tmp_path)
    done = env.sh("tinyharness plugins new acme-npu && pip install -e acme-npu")
    assert done.returncode == 0, plugin_env.failure(done, "plugins new, pip install -e")

    listed = env.sh("tinyharness plugins --json")
    assert listed.returncode == 0, plugin_env.failure(listed, "plugins --json")
    rows = {row["distribution"]: row for row in json.loads(listed.stdout)}
    assert rows["tinyharness-acme-npu"]["version"] == "0.1.0"
    (entry,) = rows["tinyharness-acme-npu"]["entry_points"]
    assert entry == {"name": "acme-npu", "module": "tinyharness_acme_npu.plugin", "status": "loaded",
                     "error": None, "hooks": ["register_suts"], "suts": ["acme-npu"], "commands": [],
                     "metrics": []}
    assert "numpy" not in env.py("import sys, tinyharness_acme_npu.plugin; print(sorted(sys.modules))").stdout

    ran = env.sh("tinyharness run --sut acme-npu --mode accuracy --sut-option optimization=basic "
                 "--json --quiet --output results")
    assert ran.returncode == 0, plugin_env.failure(ran, "tinyharness run --sut acme-npu")
    summary = json.loads(ran.stdout)
    assert summary["accuracy"]["passed"] and summary["system"]["sut"]["extra"] == {"optimization": "basic"}
    assert summary["settings"]["sut_config"] == {"threads": None, "optimization": "basic"}

    missing = plugin_env.kit_missing()
    if missing:
        pytest.skip(f"installed and ran; its own tests not run: {missing}")
    tested = env.sh("pytest -q -p no:cacheprovider", cwd=env.work / "acme-npu")
    assert tested.returncode == 0, plugin_env.failure(tested, "pytest in acme-npu/")
    assert " passed" in tested.stdout and " failed" not in tested.stdout
