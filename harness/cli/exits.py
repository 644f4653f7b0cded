"""Errors to exit codes, once for every command (and for the supervised run's child)."""

from __future__ import annotations

import click

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, RunFailed, RunInterrupted, UsageError


def handled(body) -> int:
    """``body()``'s exit code, with every error a user can cause turned into one line on stderr
    and its documented exit code (a command's own ``sys.exit`` passes through)."""
    try:
        body()
        return 0
    except click.exceptions.Abort:  # click's own Ctrl-C at a prompt
        click.echo("tinyharness: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:  # one line, as every other error (not click's usage block)
        click.echo(f"tinyharness: error: {one_line(exc)}", err=True)
        return EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except UsageError as exc:
        click.echo(f"tinyharness: error: {_line(exc, 'bad input')}", err=True)
        return EXIT_USAGE
    except RunInterrupted as exc:
        click.echo(f"tinyharness: {_line(exc, 'interrupted')}", err=True)
        return EXIT_INTERRUPTED
    except RunFailed as exc:
        click.echo(f"tinyharness: {_line(exc, 'run failed')}", err=True)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        click.echo(f"tinyharness: {_line(exc, 'interrupted')}", err=True)
        return EXIT_INTERRUPTED


def one_line(exc: click.ClickException) -> str:
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


def _line(exc: BaseException, otherwise: str) -> str:
    """An error's message as one line (a message that spans lines, from a plugin or a runtime,
    would break the one-line contract), or ``otherwise`` when it has none."""
    return " ".join(str(exc).split()) or otherwise
