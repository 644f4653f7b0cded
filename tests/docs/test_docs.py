"""The reference documents (docs/*.md) and every pointer to them.

A reference is ``docs/NAME.md`` or ``tinyharness docs NAME``, optionally followed by sections
(``§4``, ``§4.1, §5``) or, after ``.md``, a ``#heading-anchor``. Every reference in a command's
``--help`` (the whole click tree, plugin groups included) and in the source must name a document
that exists, and each section a heading that exists; a ``*.md`` name that is no document (the old
``mlperf-tiny.md``) and a ``§`` that belongs to no document are dangling too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import numpy as np
import pytest

from tinyharness.cli import main

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
# Where the references live. docs/cli.md is the help texts again (tests/docs/test_cli_reference.py
# keeps it equal to them), so the help walk below covers it.
SOURCE_DIRS = ("harness", "suts", "rules", "reference_models", "datasets", "bench", "docs")
SOURCE_FILES = ("README.md",)
SUFFIXES = {".py", ".json", ".md", ".txt", ".toml", ".cfg"}
OTHER_MD = {"README.md"}  # Markdown files that are not documents (the README, a dataset's README)

SECTION = r"§\d+(?:\.\d+)*"
REF = re.compile(
    r"(?:docs/(?P<file>[A-Za-z0-9_-]+)\.md(?:#(?P<anchor>[a-z0-9_-]+))?"
    r"|tinyharness docs (?P<topic>[a-z0-9][a-z0-9_-]*))"
    rf"[`'\"]?(?P<sections>(?:(?:,\s*|\s+and\s+|\s+)(?:{SECTION}))*)")
ANY_MD = re.compile(r"(?<![\w/.-])(?:[\w.-]+/)*([\w.-]+\.md)\b")


# -- what the documents hold ---------------------------------------------------------------------
def documents() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(text: str) -> tuple[set[str], set[str]]:
    """(section numbers such as '4' and '4.1', anchors) of a Markdown document's headings."""
    numbers, anchors, fenced = set(), set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not (m := re.match(r"^(#{1,6})\s+(.*)$", line)):
            continue
        anchors.add(slug(m.group(2)))
        if n := re.match(r"^(\d+(?:\.\d+)*)\.?\s", m.group(2)):
            numbers.add(n.group(1))
    return numbers, anchors


def problems_in(text: str, where: str, docs: dict[str, str], home: str | None = None) -> list[str]:
    """Every dangling reference in ``text``; ``home`` is the document a bare ``§`` refers to
    (None: a bare ``§`` is itself a dangling reference)."""
    flat = " ".join(text.split())  # help texts wrap anywhere
    found, covered = [], []
    index = {name: headings(body) for name, body in docs.items()}
    for m in REF.finditer(flat):
        covered.append(m.span())
        name = m.group("file") or m.group("topic")
        if name not in docs:
            found.append(f"{where}: {m.group(0).strip()!r} names no document (docs/{name}.md)")
            continue
        numbers, anchors = index[name]
        for section in re.findall(r"§(\d+(?:\.\d+)*)", m.group("sections") or ""):
            if section not in numbers:
                found.append(f"{where}: {m.group(0).strip()!r}: docs/{name}.md has no section {section}")
        if m.group("anchor") and m.group("anchor") not in anchors:
            found.append(f"{where}: docs/{name}.md has no heading #{m.group('anchor')}")
    for m in re.finditer(SECTION, flat):
        if any(a <= m.start() < b for a, b in covered):
            continue
        if home is None:
            found.append(f"{where}: {m.group(0)} without a document ({flat[max(0, m.start() - 40):m.end()]!r})")
        elif m.group(0)[1:] not in index[home][0]:
            found.append(f"{where}: {m.group(0)}: this document has no such section")
    for m in ANY_MD.finditer(flat):
        base = m.group(1)
        if base not in OTHER_MD and base[:-3] not in docs:
            found.append(f"{where}: {m.group(0)!r} is not a document of docs/")
    return found


# -- the click tree --------------------------------------------------------------------------------
def help_texts() -> dict[str, str]:
    """{'tinyharness dut emulate': its --help, ...} for every command, plugin groups included."""
    from tinyharness.cli import cli

    out = {}

    def walk(command: click.Command, ctx: click.Context, path: str) -> None:
        out[path] = command.get_help(ctx)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    walk(sub, sub.make_context(name, [], parent=ctx, resilient_parsing=True),
                         f"{path} {name}")

    walk(cli, cli.make_context("tinyharness", [], resilient_parsing=True), "tinyharness")
    return out


def test_the_reference_pattern_sees_what_it_must():
    docs = {"dut-protocol": "# T\n\n## 4. Samples\n\n### 4.1 Upload\n\n## 5. Errors\n"}
    assert problems_in("see docs/dut-protocol.md §4.1, §5 and 'tinyharness docs dut-protocol'",
                       "x", docs) == []
    assert problems_in("docs/dut-protocol.md#41-upload", "x", docs) == []
    bad = problems_in("(docs/mlperf-tiny.md §6) `tinyharness docs dut-protcol` "
                      "docs/dut-protocol.md §4.2 and §7, docs/dut-protocol.md#nowhere, "
                      "loadgen.md, a bare §6.8", "x", docs)
    assert len(bad) == 8, bad  # file, topic, 2 sections, anchor, 2 *.md names, bare §


def test_every_help_reference_names_a_document_and_a_section():
    docs, texts = documents(), help_texts()
    assert {"tinyharness docs", "tinyharness dut", "tinyharness dut emulate"} <= set(texts)
    found = [p for path, text in texts.items() for p in problems_in(text, path, docs)]
    assert found == []
    refs = {path for path, text in texts.items() if REF.search(" ".join(text.split()))}
    assert {"tinyharness dut", "tinyharness check", "tinyharness package"} <= refs


def source_files() -> list[Path]:
    files = [REPO / name for name in SOURCE_FILES]
    for folder in SOURCE_DIRS:
        files += [p for p in sorted((REPO / folder).rglob("*")) if p.suffix in SUFFIXES
                  and p.is_file() and "__pycache__" not in p.parts]
    return [p for p in files if p != DOCS / "cli.md"]


def test_every_source_reference_names_a_document_and_a_section():
    docs, found, seen = documents(), [], 0
    for path in source_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(REPO).as_posix()
        home = path.stem if path.parent == DOCS and path.suffix == ".md" else None
        found += problems_in(text, rel, docs, home)
        seen += bool(REF.search(" ".join(text.split())))
    assert found == []
    assert seen >= 8  # the serial modules, the submission modules, the documents themselves


# -- the command -----------------------------------------------------------------------------------
def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["docs", *argv])
    out, err = capsys.readouterr()
    return done.value.code or 0, out, err


def test_docs_lists_the_topics_with_their_titles(capsys):
    code, out, _ = run(capsys)
    assert code == 0
    rows = dict(line.split(None, 1) for line in out.splitlines())
    assert set(rows) == set(documents())
    assert rows["dut-protocol"].startswith("The DUT serial protocol")
    assert rows["mlperf-tiny-rules"].startswith("MLPerf Tiny rules")


def test_docs_prints_a_topic(capsys):
    text = (DOCS / "dut-protocol.md").read_text(encoding="utf-8")
    assert run(capsys, "dut-protocol") == (0, text, "")
    assert run(capsys, "DUT-Protocol.md")[1] == text  # the file name, any case
    assert run(capsys, "mlperf-tiny-rules")[1] == (DOCS / "mlperf-tiny-rules.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("topic, suggestion", [("dut-protcol", "dut-protocol"),
                                               ("rules", "mlperf-tiny-rules"),
                                               ("protocol.md", "dut-protocol"),
                                               ("zzzz", None)])
def test_an_unknown_topic_exits_2_naming_the_closest(capsys, topic, suggestion):
    code, out, err = run(capsys, topic)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("tinyharness: error: unknown docs topic")
    assert "dut-protocol, firmware, mlperf-tiny-rules" in err  # the topics, to pick from
    if suggestion:
        assert f"did you mean {suggestion!r}?" in err
    else:
        assert "did you mean" not in err


def test_the_lookup_falls_back_to_the_checkout_only_in_a_checkout(monkeypatch, tmp_path):
    from tinyharness.cli import docs as module

    real = module.folder()
    assert (Path(str(real)) / "dut-protocol.md").is_file()
    monkeypatch.setattr(module, "__file__", str(tmp_path / "tinyharness" / "cli" / "docs.py"))
    monkeypatch.setattr(module, "PACKAGE", "tinyharness_no_such_docs_package")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "__init__.py").write_text("")
    assert module.folder() is None  # an installed package never reads a folder beside it
    assert module.topics() == {}
    monkeypatch.setattr(module, "__file__", str(tmp_path / "harness" / "cli" / "docs.py"))
    (tmp_path / "docs" / "guide.md").write_text("# A guide\n\ntext\n")
    assert module.topics() == {"guide": "A guide"}  # a checkout whose install lacks the package
    assert module.read("guide") == "# A guide\n\ntext\n"


# -- the protocol document against the serial code ---------------------------------------------------
ARG = "<arg>"


def table_commands(text: str) -> set[str]:
    """The commands of dut-protocol.md's command table (§3), placeholders as <arg>."""
    section = text.split("\n## 3.", 1)[1].split("\n## ", 1)[0]
    cells = re.findall(r"^\| `([^`]+)` \|", section, re.M)
    return {" ".join(ARG if w.startswith("<") else w for w in cell.split()) for cell in cells}


def leading(node: ast.AST, assigned: dict[str, ast.AST]) -> str | None:
    """The command text an expression builds, its computed parts as <arg> (None: not text)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else ARG for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = leading(node.left, assigned)
        return None if left is None else left + (leading(node.right, assigned) or ARG)
    if isinstance(node, ast.Name) and node.id in assigned:
        return leading(assigned[node.id], assigned)
    return None


def source_commands() -> set[str]:
    """The commands the host side sends, read from protocol.py and ports.py: the first argument
    of every .command(), .retrying() and .send() call, followed through local assignments."""
    found = set()
    for name in ("protocol.py", "ports.py"):
        tree = ast.parse((REPO / "suts" / "serial" / name).read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            assigned = {t.id: n.value for n in ast.walk(func) if isinstance(n, ast.Assign)
                        for t in n.targets if isinstance(t, ast.Name)}
            for call in ast.walk(func):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                        and call.func.attr in ("command", "retrying", "send") and call.args:
                    text = leading(call.args[0], assigned)
                    if text is not None:
                        found.add(" ".join(text.replace(ARG, f" {ARG} ").split()))
    return found


def test_the_protocol_document_has_every_command_in_the_serial_source():
    commands = source_commands()
    assert {"name", "profile", "timestamp", "db print", f"db load {ARG}", f"db {ARG}",
            f"infer {ARG} {ARG}"} <= commands  # the reader sees them all
    table = table_commands((DOCS / "dut-protocol.md").read_text(encoding="utf-8"))
    assert commands - table == set()


class _Backend:
    """Just enough of a model for the firmware: kws01's shapes, outputs of zeros."""

    shape, output_size = (1, 49, 10, 1), 12
    input_quant, output_quant = (0.5847029, 83), (1 / 256, -128)

    def invoke(self):
        pass

    def set_input(self, q):
        pass

    def output(self):
        return np.zeros(12, np.int8)


class _Loop:
    """A port wired to the emulated firmware in-process: what is written is answered at once."""

    baudrate, timeout = 115200, 1.0

    def __init__(self, firmware):
        self.firmware, self.pending = firmware, bytearray(firmware.boot())

    @property
    def in_waiting(self):
        return len(self.pending)

    def read(self, n):
        data, self.pending[:] = bytes(self.pending[:n]), self.pending[n:]
        return data

    def write(self, data):
        self.pending += self.firmware.feed(data)
        return len(data)


def test_the_protocol_document_has_every_command_a_session_sends():
    from tinyharness.suts.serial.firmware import Firmware
    from tinyharness.suts.serial.ports import identify
    from tinyharness.suts.serial.protocol import DUTLink

    ticks = iter(range(0, 1 << 40, 1000))
    firmware = Firmware(_Backend(), "kws01", clock=lambda: next(ticks))
    sent = []
    firmware.on_command = lambda fw, cmd: (sent.append(cmd.decode()), fw.run_command(cmd))
    link = DUTLink(_Loop(firmware), line_timeout=1.0)
    info = identify(link, timestamp=True)
    link.upload((bytes(range(256)) * 2)[:490])  # kws01's sample size
    link.infer(3, 1, timeout=1.0)
    assert (info.model, info.timestamp_mode) == ("kws01", "performance")
    shapes = {" ".join([cmd.split()[0]] + [ARG if re.fullmatch(r"[0-9a-fA-F]+", w) else w
                                           for w in cmd.split()[1:]]) for cmd in sent}
    table = table_commands((DOCS / "dut-protocol.md").read_text(encoding="utf-8"))
    assert {"name", "profile", "timestamp", f"db load {ARG}", f"db {ARG}", "db print",
            f"infer {ARG} {ARG}"} == shapes
    assert shapes - table == set()
