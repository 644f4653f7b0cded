"""Memory the single-stream loop needs per query (not a test; prints figures).

Runs the null SUT's single-stream queries (``run_queries``, the hot loop itself) until --queries
have been issued and summarises them as the run does (percentiles by selection), in a fresh
process per size, and reports the peak RSS over the process's RSS just before the run
(``ru_maxrss`` against ``/proc/self/statm``), less the same figure for a 1000-query run (the
modules the run imports and its first block), per query.

Usage: python bench/latency_memory.py [--queries 1000000 10000000 30000000]
Target (issue 10): <= 4 B a query up to 10 M queries (40 MB), a fixed bound past 8 Mi queries.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r'''
import json, os, resource, sys
import numpy as np
from tinyharness.scenarios.single_stream import measure, run_queries
from tinyharness.suts.null.sut import NullSUT

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

n = int(sys.argv[1])
sut = NullSUT("single-stream", NullSUT.config_class())
sample = [np.zeros(4, np.float32)]
before = rss()
run = run_queries(sut, sample, 0, min_duration_s=0.0, min_query_count=n)
measured = measure(run, 0.0, n)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"queries": run.count, "peak_over_idle": peak - before, "after": rss() - before,
                  "exact": run.latencies_ns.exact, "p50_us": measured.latency_us.p50,
                  "blocks": len(run.latencies_ns.blocks)}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, nargs="+", default=[1_000_000, 10_000_000, 30_000_000])
    args = parser.parse_args()
    def child(n: int) -> dict:
        done = subprocess.run([sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True,
                              check=True)
        return json.loads(done.stdout)

    base = min((child(1000) for _ in range(3)), key=lambda r: r["peak_over_idle"])["peak_over_idle"]
    print(f"baseline (1000 queries: imports, one block): {base / 1e6:.1f} MB peak over idle")
    print(f"{'queries':>11} {'peak over baseline':>19} {'B/query':>8} {'exact':>6}")
    for n in args.queries:
        r = child(n)
        extra = r["peak_over_idle"] - base
        print(f"{r['queries']:>11,} {extra / 1e6:>16.1f} MB {extra / r['queries']:>8.2f} {str(r['exact']):>6}")


if __name__ == "__main__":
    main()
