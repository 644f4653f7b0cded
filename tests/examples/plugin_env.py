"""A fresh virtual environment over the running one, to pip-install a plugin package in a test.

The venv is created without pip and with a ``.pth`` file that adds the running environment's
site-packages after its own: it sees tinyharness (editable or not), onnxruntime, pytest and pip
there, while what ``pip install`` writes goes into the new venv alone and goes away with it. The
running environment is never changed. ``pip``, ``tinyharness`` and ``pytest`` in the venv's
``bin`` run its interpreter, so a shell command reads as a user types it.

``pip install -e PKG`` there needs no package index: the plugin's dependencies are satisfied from
the running environment, and the build runs without isolation when setuptools (>= 64, PEP 660) is
installed here (else pip fetches it into an isolated build environment, as it does for a user).
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from importlib import metadata
from pathlib import Path

import pytest

SHIMS = {
    "pip": "from pip._internal.cli.main import main\nsys.exit(main())",
    "tinyharness": "from tinyharness.cli import main\nsys.exit(main())",
    "pytest": "import pytest\nsys.exit(pytest.main())",
}


def _setuptools_builds_editable() -> bool:
    try:
        version = tuple(int(p) for p in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if version < (64, 0):
        return False
    if version >= (70, 1):
        return True
    try:  # older setuptools builds wheels with the wheel package
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return True


def require_absent(*names: str) -> None:
    """Skip when a plugin entry point named in ``names`` is installed here already: its copy in
    the venv would clash with it (two SUTs of one name)."""
    from tinyharness.plugins import GROUP

    for ep in metadata.entry_points(group=GROUP):
        if ep.name in names:
            owner = ep.dist.metadata["Name"] if getattr(ep, "dist", None) else ep.value
            pytest.skip(f"the plugin {ep.name!r} is installed in this environment ({owner}); "
                        f"'pip uninstall {owner}' to run this test")


class PluginEnv:
    """The layered venv at ``root / 'venv'``; commands run in ``root / 'work'``."""

    def __init__(self, root: Path) -> None:
        if os.name != "posix":
            pytest.skip("the layered venv is built for POSIX paths")
        self.root, self.venv, self.work = root, root / "venv", root / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=False, symlinks=True).create(self.venv)
        self.bin = self.venv / "bin"
        self.python = self.bin / "python"
        site = Path(subprocess.run([str(self.python), "-c", "import sysconfig; "
                                    "print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        outer = list(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))
        (site / "_outer_environment.pth").write_text(
            "".join(f"import site; site.addsitedir({path!r})\n" for path in outer))
        for name, body in SHIMS.items():
            shim = self.bin / name
            shim.write_text(f"#!{self.python}\nimport sys\n{body}\n")
            shim.chmod(0o755)

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("TINYHARNESS_PLUGINS", "PYTHONPATH", "PYTHONHOME", "FORCE_COLOR")}
        env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(self.venv),
                   PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1", NO_COLOR="1",
                   COLUMNS="100")
        if _setuptools_builds_editable():
            env.update(PIP_NO_BUILD_ISOLATION="0", PIP_NO_INDEX="1")  # "0": no isolation
        return env

    def sh(self, script: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """``script`` run by bash (-e, pipefail) in the work folder; stdout and stderr apart."""
        return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd or self.work,
                              env=self.environ(), capture_output=True, text=True, timeout=timeout)

    def py(self, source: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Python ``source`` run by the venv's interpreter in the work folder."""
        return subprocess.run([str(self.python), "-c", source], cwd=self.work, env=self.environ(),
                              capture_output=True, text=True, timeout=timeout)


def kit_missing() -> str | None:
    """Why the conformance kit cannot run here (None when it can)."""
    try:
        from tinyharness.testing import SUTConformance  # noqa: F401
    except ImportError as exc:
        return f"the conformance kit (tinyharness.testing.SUTConformance) is not there yet: {exc}"
    return None


def check_command_missing() -> str | None:
    """Why 'tinyharness plugins check' is not there (None when it is)."""
    from importlib.util import find_spec

    if find_spec("tinyharness.cli.plugins_check") is None:
        return "'tinyharness plugins check' (tinyharness/cli/plugins_check.py) is not there yet"
    return None


def failure(done: subprocess.CompletedProcess, what: str) -> str:
    return f"{what}: exit {done.returncode}\n--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"


def skip_reason(*reasons: str | None) -> str | None:
    found = [r for r in reasons if r]
    return "; ".join(found) if found else None

