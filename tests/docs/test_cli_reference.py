"""docs/cli.md is the commands' own --help: regenerate it when a help text changes."""

from __future__ import annotations

from pathlib import Path

from tinyharness.cli.reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_matches_the_help_texts():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is out of date: run 'python -m tinyharness.cli.reference > docs/cli.md'")


def test_cli_reference_covers_every_command():
    from tinyharness.cli import cli

    text = render()
    for name in cli.commands:
        assert f"\n## tinyharness {name}\n" in text
    assert "\n## tinyharness dut emulate\n" in text  # a plugin's command group, walked to its leaves
