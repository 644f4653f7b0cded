"""What the distributed engine costs per cell (not a test; prints figures): the cluster's start-up,
and the scheduling + result transfer each cell adds over running the same cells locally.

The cells are short null-SUT runs (digits01, performance, --min-queries 100: about a second each,
run directories of a few tens of kB). The same N cells run R times three ways: with the
LocalExecutor, on a one-node cluster (cells one at a time, as locally: the difference per cell is
the engine's overhead) and on a two-node cluster (the speed-up). Per cell overhead =
(sweep wall time - sum of the cells' own wall times) / N. Transfer = when the head had the result
(unpacked under OUTPUT) minus when the run ended on its node (same machine, same clock).

Usage: python bench/sweep_engine.py [--cells 8] [--repeats 3]   (needs the cluster extra: distributed)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "harness" / "sweep"))

from conftest_cluster import node_env, start, stop, tinyharness  # noqa: E402

from tinyharness.sweep.cell_run import CellResult  # noqa: E402
from tinyharness.sweep.spec import Cell  # noqa: E402


def cells(n: int, first_seed: int) -> list[Cell]:
    """n distinct cells (distinct seeds: distinct ids; each batch its own, so none is skipped)."""
    return [Cell("digits01", "null", mode="performance",
                 run_args=("--min-duration", "0", "--min-queries", "100", "--seed", str(seed)))
            for seed in range(first_seed, first_seed + n)]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def sweep(executor, batch: list[Cell]) -> dict:
    """One sweep of ``batch``: wall time, per-cell overhead, and each result's transfer time."""
    arrivals: list[tuple[float, CellResult]] = []
    lock = threading.Lock()

    def on_result(result: CellResult) -> None:
        with lock:
            arrivals.append((time.time(), result))

    begin = time.monotonic()
    executor.run(batch, on_result, threading.Event())
    wall = time.monotonic() - begin
    assert len(arrivals) == len(batch), f"{len(arrivals)} results for {len(batch)} cells"
    bad = [r for _, r in arrivals if r.status.value not in ("ok", "invalid")]
    assert not bad, bad[0]
    own = sum(r.wall_s for _, r in arrivals)
    return {"wall_s": wall, "overhead_s": (wall - own) / len(batch),
            "transfer_s": [t - epoch(r.finished) for t, r in arrivals],
            "nodes": sorted({r.node for _, r in arrivals})}


def cluster_up(folder: Path, nodes: int) -> tuple[list, str, float]:
    """Scheduler + ``nodes`` sweep-workers as processes; seconds until all joined."""
    env = node_env(folder / "nodes.db")
    begin = time.monotonic()
    scheduler, address = start(tinyharness("sweep-scheduler", "--port", "0"), env,
                               folder / "scheduler.log")
    procs = [scheduler]
    joined = []
    for i in range(nodes):
        argv = tinyharness("sweep-worker", address, "--name", f"node-{i}", "--startup-timeout", "20")
        joined.append(threading.Thread(
            target=lambda a=argv, i=i: procs.append(start(a, env, folder / f"node-{i}.log")[0])))
        joined[-1].start()
    for thread in joined:
        thread.join(timeout=120)
    return procs, address, time.monotonic() - begin


def down(procs: list) -> None:
    for proc in reversed(procs):
        stop(proc)


def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    v = sorted(x * scale for x in values)
    if len(v) == 1:
        return f"{v[0]:.3f} {unit}"
    return f"median {statistics.median(v):.3f} {unit} (min {v[0]:.3f}, max {v[-1]:.3f}, n={len(v)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from tinyharness.sweep.dask_engine import DaskExecutor
    from tinyharness.sweep.local import LocalExecutor

    with tempfile.TemporaryDirectory(prefix="sweep-engine-") as tmp:
        root = Path(tmp)
        env = node_env(root / "local.db")
        figures: dict[str, list[dict]] = {"local": [], "cluster-1": [], "cluster-2": []}
        startups: list[float] = []
        connects: list[float] = []
        for nodes in (1, 2):
            for rep in range(args.repeats):
                folder = root / f"c{nodes}-{rep}"
                folder.mkdir()
                procs, address, took = cluster_up(folder, nodes)
                try:
                    begin = time.monotonic()
                    with DaskExecutor(address, output=folder / "out") as executor:
                        connects.append(time.monotonic() - begin)
                        startups.append(took)
                        if nodes == 1:  # local and one node interleaved: noise hits both alike
                            local = LocalExecutor(folder / "local", {}, env=env)
                            figures["local"].append(sweep(local, cells(args.cells, 1000 * rep)))
                        figures[f"cluster-{nodes}"].append(
                            sweep(executor, cells(args.cells, 1000 * rep + 100 * nodes)))
                finally:
                    down(procs)

    print(f"sweep engine overhead: {args.cells} null-SUT cells x {args.repeats} repeats "
          f"(digits01, --min-queries 100)")
    print(f"  cluster start-up (scheduler + nodes joined): {spread(startups)}")
    print(f"  head connect (Client):                       {spread(connects)}")
    for name, runs in figures.items():
        print(f"  {name:10s} sweep wall:        {spread([r['wall_s'] for r in runs])}")
        if name == "cluster-2":  # cells run two at a time: a speed-up, not an overhead
            ratios = [a["wall_s"] / b["wall_s"] for a, b in zip(figures["local"], runs)]
            print(f"  {name:10s} speed-up vs local: {spread(ratios, 'x')}")
        else:
            print(f"  {name:10s} overhead per cell: "
                  f"{spread([r['overhead_s'] for r in runs], 'ms', 1e3)}")
        if name != "local":
            transfers = [t for r in runs for t in r["transfer_s"]]
            print(f"  {name:10s} result transfer:   {spread(transfers, 'ms', 1e3)}")
            print(f"  {name:10s} nodes used:        {runs[-1]['nodes']}")
    local = statistics.median(r["overhead_s"] for r in figures["local"])
    one = statistics.median(r["overhead_s"] for r in figures["cluster-1"])
    print(f"  engine overhead per cell (cluster-1 - local, medians): {(one - local) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
