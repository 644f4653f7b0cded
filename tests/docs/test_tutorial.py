"""docs/writing-a-sut.md cannot drift: its code blocks run, in order, as a reader would run them.

Every fenced block of the tutorial follows a marker comment, the line before its fence:

- ``<!-- test: run -->``: a ``bash`` block runs with ``bash -e -o pipefail``, a ``python`` block
  with the venv's interpreter, each from the tutorial's folder; it must exit 0, or N with
  ``exit=N``. ``run kit`` blocks need the conformance kit (or its ``plugins check`` command): where
  it is not there yet they are left out and the test says so (skipped) after running the rest;
- ``<!-- test: output -->`` (a ``text`` block): each of its lines is in what the last run printed;
- ``<!-- test: excerpt PATH -->``: the block is a verbatim piece of PATH, a file the scaffold wrote;
- ``<!-- test: files ROOT -->`` (a ``text`` block): the first word of each line after the first
  is a file under ROOT, and they are all of the scaffold's files;
- ``<!-- test: skip (why) -->``: not run (an install, a publication), and the reason is given.

The fast tests check the markers, and the excerpts and file lists against the scaffold's
templates; the slow one runs the whole tutorial in a fresh virtual environment layered over this
one (tests/examples/plugin_env.py), where ``pip install -e`` changes nothing outside it.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "writing-a-sut.md"
MARKER = re.compile(r"^<!-- test: (?P<kind>run|output|excerpt|files|skip)(?P<arg>[^>]*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")


def _helpers():
    path = REPO / "tests" / "examples" / "plugin_env.py"
    spec = importlib.util.spec_from_file_location("plugin_env", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Block:
    kind: str  # run, output, excerpt, files, skip
    arg: str  # the marker's words after the kind
    lang: str
    text: str
    line: int  # of the fence, 1-based

    @property
    def where(self) -> str:
        return f"docs/writing-a-sut.md:{self.line}"

    @property
    def expected_exit(self) -> int:
        found = re.search(r"\bexit=(\d+)\b", self.arg)
        return int(found.group(1)) if found else 0

    @property
    def needs_kit(self) -> bool:
        return self.kind == "run" and "kit" in self.arg.split()


def blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with their markers; a block without one is an error."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        start = i
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"docs/writing-a-sut.md:{start + 1}: a code block is never closed"
        marker = MARKER.match(lines[start - 1]) if start else None
        assert marker is not None, (f"docs/writing-a-sut.md:{start + 1}: a code block without a "
                                    "'<!-- test: ... -->' marker on the line before its fence")
        found.append(Block(marker.group("kind"), marker.group("arg").strip(), fence.group("lang"),
                           "".join(f"{ln}\n" for ln in lines[start + 1:end]), start + 1))
        i = end + 1
    return found


def tutorial() -> list[Block]:
    return blocks(TUTORIAL.read_text(encoding="utf-8"))


def listed_files(block: Block) -> list[str]:
    """The files of a ``files`` block: the first word of each line after the root's."""
    return [line.split()[0] for line in block.text.splitlines()[1:] if line.strip()]


def _normal(text: str) -> str:
    return " ".join(text.split())


# -- fast: the markers, the excerpts and the file lists against the scaffold ------------------------
def test_the_marker_grammar():
    text = ("<!-- test: run exit=2 -->\n```bash\nfalse\n```\n\n<!-- test: skip (why) -->\n"
            "```bash\npip install x\n```\n")
    first, second = blocks(text)
    assert (first.kind, first.expected_exit, first.lang, first.text) == ("run", 2, "bash", "false\n")
    assert (second.kind, second.arg) == ("skip", "(why)")
    with pytest.raises(AssertionError, match="without a"):
        blocks("text\n```bash\nls\n```\n")


def test_every_block_is_marked_and_runs_or_says_why_not():
    found = tutorial()
    kinds = [b.kind for b in found]
    assert kinds.count("run") >= 6 and "excerpt" in kinds and "files" in kinds
    for i, block in enumerate(found):
        if block.kind == "run":
            assert block.lang in ("bash", "python"), f"{block.where}: runs only bash or python"
            assert set(block.arg.split()) <= {"kit", f"exit={block.expected_exit}"}, block.where
        if block.kind == "skip":
            assert re.fullmatch(r"\(.+\)", block.arg), f"{block.where}: say why it is not run"
        if block.kind == "output":
            assert i and found[i - 1].kind == "run", f"{block.where}: output follows a run block"
        if block.kind in ("excerpt", "files"):
            assert block.arg, f"{block.where}: name the file or folder"
    assert any("tinyharness run --sut acme-npu" in b.text for b in found if b.kind == "run")


def test_the_excerpts_and_the_file_list_are_the_scaffolds():
    from tinyharness.scaffold import files

    written = {f"acme-npu/{path}": text for path, text in files("acme-npu").items()}
    for block in tutorial():
        if block.kind == "excerpt":
            assert block.arg in written, f"{block.where}: the scaffold writes no {block.arg}"
            assert block.text in written[block.arg], f"{block.where}: not a piece of {block.arg}"
        if block.kind == "files":
            assert sorted(f"{block.arg}/{name}" for name in listed_files(block)) == sorted(written), \
                f"{block.where}: the list differs from the scaffold's files"


# -- slow: the whole tutorial, run --------------------------------------------------------------------
@pytest.mark.slow
def test_the_tutorial_runs(tmp_path):
    helpers = _helpers()
    helpers.require_absent("acme-npu")
    env = helpers.PluginEnv(tmp_path)
    left_out, last = [], None
    for block in tutorial():
        if block.kind == "run":
            missing = None
            if block.needs_kit:
                missing = helpers.skip_reason(helpers.kit_missing(), helpers.check_command_missing()
                                              if "plugins check" in block.text else None)
            if missing:
                left_out.append(f"{block.where} ({missing})")
                last = None
                continue
            done = env.sh(block.text) if block.lang == "bash" else env.py(block.text)
            assert done.returncode == block.expected_exit, helpers.failure(done, block.where)
            assert "Traceback" not in done.stderr, helpers.failure(done, block.where)
            last = done
        elif block.kind == "output" and last is not None:
            printed = _normal(last.stdout + "\n" + last.stderr)
            for line in block.text.splitlines():
                assert _normal(line) in printed, f"{block.where}: {line!r} not in {printed[-2000:]!r}"
        elif block.kind == "excerpt":
            path = env.work / block.arg
            assert block.text in path.read_text(encoding="utf-8"), f"{block.where}: not in {path}"
        elif block.kind == "files":
            root = env.work / block.arg
            on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                             and not any(part.endswith(".egg-info") or part in ("__pycache__", ".pytest_cache")
                                         for part in p.relative_to(root).parts))
            assert sorted(listed_files(block)) == on_disk, block.where
    if left_out:
        pytest.skip("the tutorial ran but for: " + "; ".join(left_out))
