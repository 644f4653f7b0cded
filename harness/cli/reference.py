"""The CLI reference (docs/cli.md), generated from the commands' own ``--help``.

``python -m tinyharness.cli.reference > docs/cli.md`` rewrites it; a test fails when the file and
the help texts drift apart. Only tinyharness's own commands (built-in plugins included) are listed,
so an installed third-party plugin does not change the document.
"""

from __future__ import annotations

import click

WIDTH = 100
HEADER = """# tinyharness command-line reference

Generated from `tinyharness --help` and each command's `--help` by
`python -m tinyharness.cli.reference > docs/cli.md`; a test fails when they drift apart.
Exit codes everywhere: 0 success (a VALID result), 1 an INVALID or failed run (or violations
found), 2 a usage or input error.
"""


def _ours(command: click.Command) -> bool:
    module = getattr(command.callback, "__module__", "") or ""
    return command.callback is None or module.startswith("tinyharness.")


def _walk(command: click.Command, ctx: click.Context, path: str):
    yield path, command.get_help(ctx)
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden or not _ours(sub):
                continue
            # make_context, not Context(): it applies the command's context_settings as a real
            # invocation would (help option names, widths inherited from the parent)
            sub_ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
            yield from _walk(sub, sub_ctx, f"{path} {name}")


def render() -> str:
    from . import cli

    root = cli.make_context("tinyharness", [], resilient_parsing=True, terminal_width=WIDTH,
                            max_content_width=WIDTH)
    parts = [HEADER]
    for path, text in _walk(cli, root, "tinyharness"):
        parts.append(f"## {path}\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
