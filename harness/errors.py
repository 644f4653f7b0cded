"""Error kinds and how the CLI maps them to exit codes."""


class UsageError(Exception):
    """A user mistake (bad option, missing file, wrong shape): one line, exit code 2."""


class RunFailed(Exception):
    """The run started but could not finish (a SUT raised, the run was interrupted): exit code 1."""


def first_line(exc: BaseException, skip: tuple[str, ...] = ()) -> str:
    """The first informative line of an exception's message (runtimes' errors run to many lines):
    the first non-empty one not starting with a ``skip`` prefix (OpenVINO's "Exception from
    src/..." lines are source locations), else the first non-empty one."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(skip)] if skip else lines
    return (useful or lines or [type(exc).__name__])[0]
