"""Does a performance run come out VALID on a busy machine? (not a test; prints figures)

Starts a CPU hog beside the harness (one busy process per ``--hog`` core), then runs kws01 in
performance mode on each CPU SUT, single-stream and offline, ``--attempts`` times each, through
the CLI as a user would. Counts VALID results, INVALID ones whose reason names the setting that
would pass (``--expected-qps N``), and other INVALID ones; shows how often windows and offline
queries had to be re-run, how far windows overshot their minimum, and how many runs the
stability diagnostics flagged.

Usage: python bench/noisy_validity.py [--attempts 10] [--hog 1] [--suts onnxruntime-cpu,...]
Needs ../shared/mlperf_tiny (models and the kws01 files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "mlperf_tiny"
SUTS = ("onnxruntime-cpu", "openvino-cpu", "tflite-cpu")
SCENARIOS = ("single-stream", "offline")


@contextmanager
def cpu_hog(cores: int):
    """``cores`` processes that spin until the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def run_once(sut: str, scenario: str, out: Path) -> dict:
    env = dict(os.environ, TINYHARNESS_MODEL_MIRROR=f"{SHARED / 'models'}{os.pathsep}{SHARED / 'models_onnx'}")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "run", "--benchmark", "kws01",
                           "--sut", sut, "--scenario", scenario, "--mode", "performance",
                           "--dataset", str(SHARED / "datasets"), "--output", str(out), "--json",
                           "--quiet"], capture_output=True, text=True, env=env, timeout=900)
    if done.returncode not in (0, 1):
        return {"failed": done.stderr.strip().splitlines()[-1:], "seconds": time.monotonic() - start}
    summary = json.loads(done.stdout)
    summary["seconds"] = time.monotonic() - start
    return summary


def describe(runs: list[dict], min_window_s: float = 10.0) -> str:
    valid = sum(1 for r in runs if r.get("valid"))
    invalid = [r for r in runs if "failed" not in r and not r.get("valid")]
    named = sum(1 for r in invalid if all("would pass" in x["message"] for x in r["invalid_reasons"]))
    failed = sum(1 for r in runs if "failed" in r)
    windows = [w for r in runs if r.get("windows") for w in r["windows"]["details"]]
    offline = [r["offline"] for r in runs if r.get("offline")]
    parts = [f"VALID {valid}/{len(runs)}", f"INVALID naming the setting {named}",
             f"other INVALID {len(invalid) - named}", f"failed {failed}"]
    if windows:
        over = [w["runtime_s"] / min_window_s for w in windows]
        parts.append(f"windows re-run {sum(w['attempts'] > 1 for w in windows)}/{len(windows)}, "
                     f"length/min median {statistics.median(over):.2f} (max {max(over):.2f})")
    if offline:
        parts.append(f"queries re-sized {sum(o.get('attempts', 1) > 1 for o in offline)}/{len(offline)}")
    flagged = sum(1 for r in runs if (r.get("stability") or {}).get("unstable"))
    parts.append(f"flagged unstable {flagged}/{len(runs)}")
    parts.append(f"median {statistics.median(r['seconds'] for r in runs):.0f} s a run")
    reasons = sorted({x["message"] for r in invalid for x in r["invalid_reasons"]})
    return "; ".join(parts) + "".join(f"\n    INVALID: {m}" for m in reasons[:5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10)
    parser.add_argument("--hog", type=int, default=1, help="busy processes beside the harness")
    parser.add_argument("--suts", default=",".join(SUTS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    if not (SHARED / "datasets" / "kws01").is_dir():
        raise SystemExit(f"MLPerf Tiny data not found at {SHARED}")
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp, cpu_hog(args.hog):
        for attempt in range(args.attempts):  # interleaved: each configuration meets the same noise
            for sut in args.suts.split(","):
                for scenario in args.scenarios.split(","):
                    runs = results.setdefault((sut, scenario), [])
                    runs.append(run_once(sut, scenario, Path(tmp) / f"{sut}-{scenario}-{attempt}"))
                    print(f"attempt {attempt + 1}: {sut} {scenario}: "
                          f"{'VALID' if runs[-1].get('valid') else 'INVALID or failed'}", flush=True)
    print(f"\nkws01, performance mode, {args.hog} CPU hog(s) beside the harness, "
          f"{os.cpu_count()} cores:")
    for (sut, scenario), runs in results.items():
        print(f"  {sut:16s} {scenario:13s} {describe(runs)}")


if __name__ == "__main__":
    main()
