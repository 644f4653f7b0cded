"""Error kinds and the exit codes scripts can rely on.

=====  ==============================================================================
 0     success: a VALID result, a clean check, no regression
 1     an INVALID result, check violations, a compare regression (``--fail-above``)
 2     a usage or input error (one line on stderr)
 3     the run failed: the SUT, the device or the runtime raised; its directory says so
 130   interrupted (Ctrl-C or SIGTERM); the run directory is marked ``interrupted``
=====  ==============================================================================
"""

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """A user mistake (bad option, missing file, wrong shape): one line, exit code 2."""


class RunFailed(Exception):
    """The run started but could not finish (a SUT, device or runtime error): exit code 3."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, CI runners, ``docker stop``), handled as Ctrl-C is: every ``finally``
    runs, the run directory is marked ``interrupted``, exit code 130."""


def raise_terminated(signum, frame) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second TERM must not cut the cleanup
    raise Terminated("terminated (SIGTERM)")


class RunInterrupted(RunFailed):
    """The run was interrupted by the user: exit code 130."""


def first_line(exc: BaseException, skip: tuple[str, ...] = ()) -> str:
    """The first informative line of an exception's message (runtimes' errors run to many lines):
    the first non-empty one not starting with a ``skip`` prefix (OpenVINO's "Exception from
    src/..." lines are source locations), else the first non-empty one."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(skip)] if skip else lines
    return (useful or lines or [type(exc).__name__])[0]


# -- names looked up from the user -----------------------------------------------------------------
def closest(word: str, candidates) -> list[str]:
    """The names among ``candidates`` the user most likely meant by ``word``, best first: those
    it is a prefix of (case-insensitive: 'openvino' -> 'openvino-cpu'), else the nearest spelling
    (difflib); [] when nothing is near. At most three."""
    import difflib

    names = list(dict.fromkeys(str(c) for c in candidates))
    typed = str(word).strip().lower()
    if not typed or not names:
        return []
    prefixed = [n for n in names if n.lower().startswith(typed)]
    if prefixed:
        return sorted(prefixed, key=len)[:3]
    lowered = {n.lower(): n for n in names}
    return [lowered[m] for m in difflib.get_close_matches(typed, list(lowered), n=3, cutoff=0.6)][:1]


def did_you_mean(word: str, candidates) -> str:
    """``" (did you mean 'x'?)"`` (or ``'x' or 'y'``) for :func:`closest`, else ``""``."""
    near = closest(word, candidates)
    return f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""


def canonical(word: str, candidates) -> str | None:
    """``word`` as one of ``candidates`` spells it: itself, else the one candidate equal to it
    ignoring case (None when there is none, or more than one)."""
    names = [str(c) for c in candidates]
    if word in names:
        return word
    folded = [n for n in names if n.casefold() == str(word).strip().casefold()]
    return folded[0] if len(folded) == 1 else None
