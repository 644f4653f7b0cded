"""Error kinds and how the CLI maps them to exit codes."""


class UsageError(Exception):
    """A user mistake (bad option, missing file, wrong shape): one line, exit code 2."""


class RunFailed(Exception):
    """The run started but could not finish (a SUT raised, the run was interrupted): exit code 1."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (runtimes' errors run to many lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
