"""The ``eim`` options. Every wait on the .eim is bounded: the start (socket and ``hello``), each
classify reply, and the size of a reply; ``nan``, ``inf`` and zero are refused."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import SUTConfig, choice, float_range, int_range, option

MAX_TIMEOUT_S = 3600.0  # an hour: no classify of a tiny model takes longer
MAX_REPLY_KIB = 32 * 1024  # the runner's own response buffer (STDIN_BUFFER_SIZE, 32 MiB)


@dataclass(frozen=True)
class EimConfig(SUTConfig):
    """No ``threads``: the .eim is Edge Impulse's build and runs with the threads it was built
    with; the harness only talks to it."""

    transport: str = option("how features reach the .eim: auto (default; its shared memory "
                            "where it announces one, else JSON) or json (always in the request)",
                            choice("auto", "json"), "auto")
    start_timeout_s: float = option("seconds the .eim may take to open its socket and answer "
                                    "hello (default 30)",
                                    float_range(0.0, MAX_TIMEOUT_S, above_low=True), 30.0)
    timeout_s: float = option("seconds one classify reply may take (default 30)",
                              float_range(0.0, MAX_TIMEOUT_S, above_low=True), 30.0)
    max_reply_kib: int = option("largest reply accepted, in KiB (default 1024)",
                                int_range(1, MAX_REPLY_KIB), 1024)
