"""``tinyharness docs``: the reference documents (``docs/*.md``), from a source checkout or a wheel.

The documents are package data of ``tinyharness.docs`` (the repository's ``docs/`` folder). In a
source checkout whose install does not map that package yet, they are read from ``docs/`` beside
``harness/`` instead; an installed wheel never looks outside itself.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from ..errors import UsageError

PACKAGE = "tinyharness.docs"
SUFFIX = ".md"


def folder():
    """The documents' folder: the ``tinyharness.docs`` package, else (source checkout only) the
    repository's ``docs/``; None when neither exists."""
    from importlib.resources import files

    try:
        return files(PACKAGE)
    except ModuleNotFoundError:
        pass
    here = Path(__file__).resolve()  # <repo>/harness/cli/docs.py in a checkout
    repo_docs = here.parents[2] / "docs"
    if here.parents[1].name == "harness" and (repo_docs / "__init__.py").is_file():
        return repo_docs
    return None


def topics() -> dict[str, str]:
    """{topic: one-line description (the document's title)}, sorted by topic."""
    root = folder()
    if root is None:
        return {}
    found = {}
    for entry in root.iterdir():
        if entry.name.endswith(SUFFIX) and entry.is_file():
            found[entry.name[: -len(SUFFIX)]] = title(entry.read_text(encoding="utf-8"))
    return dict(sorted(found.items()))


def title(text: str) -> str:
    """The first ``# `` heading of a Markdown document, else its first non-empty line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    heading = next((ln[2:].strip() for ln in lines if ln.startswith("# ")), None)
    return heading or (lines[0] if lines else "")


def read(topic: str) -> str:
    """The Markdown text of ``topic`` (``dut-protocol`` or ``dut-protocol.md``, any case), or a
    one-line UsageError naming the closest topic."""
    known = topics()
    name = topic.strip().lower().removesuffix(SUFFIX)
    if name in known:
        return (folder() / f"{name}{SUFFIX}").read_text(encoding="utf-8")
    if not known:
        raise UsageError("no documents found: this installation lacks its tinyharness.docs "
                         "package data")
    near = closest(name, list(known))
    hint = f"; did you mean {near!r}?" if near else ""
    raise UsageError(f"unknown docs topic {topic!r}{hint} (topics: {', '.join(known)})")


def closest(name: str, names: list[str]) -> str | None:
    """The topic ``name`` most likely meant: one containing it (or contained in it), else the
    nearest spelling; None when nothing is near."""
    if name:
        within = [n for n in names if name in n or n in name]
        if within:
            return min(within, key=lambda n: abs(len(n) - len(name)))
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return near[0] if near else None


@click.command("docs")
@click.argument("topic", required=False)
def docs(topic) -> None:
    """Print a reference document as Markdown; without TOPIC, list the topics.

    \b
    Topics include:
      dut-protocol       the serial protocol of a device under test (tinyharness dut)
      mlperf-tiny-rules  the MLPerf Tiny rules the harness applies (run, package, check)

    An unknown TOPIC is a usage error (exit 2) naming the closest topic.
    """
    if topic is not None:
        click.echo(read(topic), nl=False)
        return
    known = topics()
    if not known:
        raise UsageError("no documents found: this installation lacks its tinyharness.docs "
                         "package data")
    width = max(map(len, known))
    for name, description in known.items():
        click.echo(f"{name:{width}s}  {description}")
