"""Shared by the sweep tests: the sweep command run as a user runs it (a fresh interpreter).

The misbehaving SUT (fakes.BadSUT) is registered twice: in the test's process (so the spec
validates and knows it is host-timed) and in each cell's fresh interpreter (fakes.bad_launcher)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def supervised_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: runs supervised (conftest.py turns that off for the
    in-process tests)."""
    env = {k: v for k, v in os.environ.items() if k != "TINYHARNESS_SUPERVISE"}
    return {**env, **extra}


SWEEP = textwrap.dedent('''
    import sys
    from tinyharness.cli.exits import handled
    from tinyharness.cli.sweep import sweep

    sys.exit(handled(lambda: sweep.main(args=sys.argv[1:], prog_name="tinyharness sweep",
                                        standalone_mode=False)))
''')


def sweep_command(tmp_path: Path, *args: str) -> list[str]:
    """``tinyharness sweep ARGS`` as a command line: the command as the CLI group calls it (with
    its exit codes), whether or not the group registers it yet."""
    script = tmp_path / "tinyharness_sweep.py"
    script.write_text(SWEEP)
    return [sys.executable, str(script), *args]


def run_sweep(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_command(tmp_path, *args), capture_output=True, text=True,
                          env=env or supervised_env(), timeout=600)
