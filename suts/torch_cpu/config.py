"""The ``torch-cpu`` options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import HostConfig, choice, int_range, option, thread_count

MAX_BATCH = 4096


@dataclass(frozen=True)
class TorchConfig(HostConfig):
    mode: str = option("eager (default): the program's graph as loaded; compile: torch.compile "
                       "with the inductor backend, compiled (and called once) in load, reported "
                       "as load time", choice("eager", "compile"), "eager")
    batch: int | None = option(f"offline: samples per call when the model has a dynamic batch "
                               f"dimension (1 = no batching; default: 64, kept when measured "
                               f"faster at load; at most {MAX_BATCH})",
                               int_range(1, MAX_BATCH))
    lanes: int | None = option("offline: parallel lanes, each calling the model on its own input "
                               "with 1 intra-op thread (default: measured at load against "
                               "batching and one sequential run; at most 4 x the cores)",
                               thread_count)
