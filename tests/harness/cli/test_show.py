"""``tinyharness show`` on runs written by the previous version (schema 1)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from tinyharness.cli import cli

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"


def show(*args: str):
    return CliRunner().invoke(cli, ["show", *args], catch_exceptions=False)


def test_text_is_the_runs_own_summary_txt():
    run = next(FIXTURES.glob("*_kws01_serial_*"))
    done = show(str(run))
    assert done.exit_code == 0
    assert done.output == (run / "summary.txt").read_text()


def test_markdown_has_one_table_per_run_with_verdict_and_reasons():
    done = show("--format", "markdown", str(FIXTURES))
    assert done.exit_code == 0
    assert done.output.count("| Result | ") == 3
    assert "| Result | **VALID** |" in done.output  # the serial kws01 run
    assert "- min_duration overridden to 0.05 s (rule set digits01 requires 3 s)" in done.output


def test_json_is_upgraded_to_schema_3():
    done = show("--format", "json", str(FIXTURES))
    docs = json.loads(done.output)
    assert [d["schema_version"] for d in docs] == [3, 3, 3]
    reasons = [r for d in docs for r in d["invalid_reasons"]]
    assert reasons and all(set(r) == {"code", "message"} for r in reasons)


def test_a_folder_without_runs_is_a_usage_error(tmp_path):
    done = CliRunner().invoke(cli, ["show", str(tmp_path)])
    assert "no run directories" in str(done.exception)
