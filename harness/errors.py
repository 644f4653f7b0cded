"""Error kinds and how the CLI maps them to exit codes."""


class UsageError(Exception):
    """A user mistake (bad option, missing file, wrong shape): one line, exit code 2."""


class RunFailed(Exception):
    """The run started but could not finish (a SUT raised, the run was interrupted): exit code 1."""
