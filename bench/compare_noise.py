"""How honest is ``tinyharness compare``? (not a test; prints figures)

Runs a benchmark (digits01, a ~1.5 us model, by default; ``--benchmark kws01``, ~90 us, reads the
models and data in ../shared/mlperf_tiny) on tflite-cpu in performance mode with the rule set's own
settings (digits01: a 3 s single-stream run and five 1 s windows; kws01: 10 s and five 10 s), so
each run is VALID, to make N pairs of identical configurations, and N
pairs whose B runs a slowed SUT: tflite-cpu whose every inference also runs a calibrated busy
loop, so that its p50 is --slowdown (default x1.2) that of tflite-cpu. The slowed SUT is
defined here and registered in-process (``registry().add``); runs go through
``tinyharness.runner.Run`` as ``tinyharness run`` does. The runs are interleaved (A, B, slowed) so
that drift of the machine hits every kind alike; pair i is (A_i, B_i) identical, (A_i, S_i) slowed.

Then ``compare`` judges every pair, one run a side (the noise-floor rule), and the N runs of each
kind against each other (the hierarchical bootstrap). It prints how many identical pairs were
"within run-to-run noise" / "no significant difference" (the target: at least 9 of 10) and how many
slowed pairs were "B slower" (at least 9 of 10), per metric and per pair (a pair is slower when
any metric is), and the run-to-run spread of the identical pairs, which is what the default noise
floor has to cover.

Usage: python bench/compare_noise.py [--benchmark kws01] [--pairs 10] [--slowdown 1.2] [--output DIR]
                                     [--noise-floor 5]
       python bench/compare_noise.py --compare-only DIR    (the runs an earlier --output DIR kept)
30 runs of about 12 s each with the defaults: about 6 minutes; kws01: about 75 s a run, 40 minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyharness.compare import FASTER, NO_DIFFERENCE, SLOWER, WITHIN_NOISE, compare
from tinyharness.hookspecs import hookimpl
from tinyharness.plugins import registry
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.sut_config import non_negative_int, option
from tinyharness.suts.tflite_cpu.config import TFLiteConfig
from tinyharness.suts.tflite_cpu.sut import TFLiteCPU

METRICS = ("p50 latency", "p90 latency", "median window throughput")


@dataclass(frozen=True)
class SlowedConfig(TFLiteConfig):
    loops: int = option("empty loop iterations after every inference", non_negative_int, 0)


class SlowedTFLite(TFLiteCPU):
    """tflite-cpu, and then ``loops`` iterations of an empty loop inside every timed inference.

    tflite-cpu takes about 1.3 us per digits01 inference here, so 20 % is some 260 ns: finer than
    a loop on the clock (two perf_counter_ns calls alone take about that), so the extra work is a
    counted empty loop (about 20 ns an iteration), calibrated against tflite-cpu itself."""

    name = "tflite-cpu-slowed"
    summary = "tflite-cpu plus a calibrated busy loop (bench/compare_noise.py)"
    config_class = SlowedConfig

    def load(self, model: Path) -> None:
        super().load(model)
        invoke, loops = self._run, range(self.config.loops)

        def infer() -> None:
            invoke()
            for _ in loops:
                pass

        self.infer = infer


class Plugin:
    @hookimpl
    def register_suts(self, register):
        register(SlowedTFLite)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "mlperf_tiny"
BENCHMARK = "digits01"


def request(sut: str, output: Path, loops: int = 0) -> RunRequest:
    options = {"loops": str(loops)} if sut == SlowedTFLite.name else {}
    dataset = None if BENCHMARK == "digits01" else SHARED / "datasets"
    return RunRequest(benchmark=BENCHMARK, sut=sut, scenario="single-stream", mode="performance",
                      output=output, dataset=dataset, sut_options=options)


def timed(infer, calls: int) -> np.ndarray:
    """``calls`` inferences timed as single-stream times them (ns)."""
    clock = time.perf_counter_ns
    out = np.empty(calls, np.int64)
    for i in range(calls):
        t = clock()
        infer()
        out[i] = clock() - t
    return out


def calibrate(slowdown: float, output: Path) -> tuple[int, float]:
    """The loop count that makes the slowed SUT's median inference ``slowdown`` x tflite-cpu's:
    both SUTs loaded and timed in alternating blocks (so load on the machine hits both), the
    ratio measured at 0 loops and at a count guessed from the loop's own cost, then the count
    interpolated (the loop is linear in its count) and measured again until the ratio is within
    2 % of the target (at most 4 measurements)."""
    plain_run, slow_run = Run(request("tflite-cpu", output)), Run(request(SlowedTFLite.name, output))
    plain = plain_run.sut_cls(plain_run.settings.scenario, plain_run.config, benchmark=plain_run.benchmark)
    plain.load(plain_run.model)
    sample = np.zeros(plain.input_spec().shape, plain.input_spec().dtype)
    plain.prepare(sample)

    def ratio(loops: int) -> float:
        slow = SlowedTFLite(slow_run.settings.scenario, SlowedConfig(loops=loops),
                            benchmark=slow_run.benchmark)
        slow.load(slow_run.model)
        slow.prepare(sample)
        a, b = [], []
        for _ in range(40):
            a.append(timed(plain.infer, calls))
            b.append(timed(slow.infer, calls))
        slow.close()
        return float(np.median(np.concatenate(b)) / np.median(np.concatenate(a)))

    median_ns = float(np.median(timed(plain.infer, 200)))
    calls = max(50, min(20_000, int(25e6 / median_ns)))  # about 25 ms of each SUT a block
    start = time.perf_counter_ns()
    for _ in range(100_000):
        pass
    per_loop_ns = (time.perf_counter_ns() - start) / 100_000
    guess = max(10, round((slowdown - 1) * median_ns / per_loop_ns))
    at0, loops = ratio(0), guess
    for _ in range(4):  # secant steps from 0 loops; noise moves each measurement by a few %
        measured = ratio(loops)
        if abs(measured - slowdown) < 0.02 * slowdown:
            break
        loops = max(1, round((slowdown - at0) / max(measured - at0, 1e-6) * loops))
    plain.close()
    return loops, measured


def run_once(sut: str, output: Path, loops: int = 0) -> Path:
    summary, run_dir = Run(request(sut, output, loops)).execute(Progress(False))
    if not summary.valid:
        print(f"  note: {run_dir.path.name} is INVALID: "
              f"{'; '.join(r.message for r in summary.invalid_reasons)}", file=sys.stderr)
    return Path(run_dir.path)


def tally(results: list[dict], wanted: set[str]) -> str:
    per_metric = []
    for name in METRICS:
        verdicts = [next(m["verdict"] for m in r["pairs"][0]["metrics"] if m["metric"] == name)
                    for r in results]
        per_metric.append(f"{name} {sum(v in wanted for v in verdicts)}/{len(verdicts)}")
    overall = sum(r["pairs"][0]["verdict"] in wanted for r in results)
    return f"pairs {overall}/{len(results)}   ({', '.join(per_metric)})"


def value(result: dict, name: str, key: str = "slowdown") -> float:
    return next(m[key] for m in result["pairs"][0]["metrics"] if m["metric"] == name)


def spread(results: list[dict]) -> str:
    """|B/A - 1| of identical pairs: median, the 9th of 10 (the floor that 9 of 10 would have
    needed) and the largest."""
    lines = []
    for name in METRICS:
        rel = np.abs([value(r, name, "relative_difference") for r in results])
        lines.append(f"    {name:26s} |B/A - 1|: median {np.median(rel):6.1%}, "
                     f"90th percentile {np.quantile(rel, 0.9):6.1%}, max {rel.max():6.1%}")
    return "\n".join(lines)


def row(result: dict, name: str) -> str:
    m = next(m for m in result["pairs"][0]["metrics"] if m["metric"] == name)
    lo, hi = m["slowdown_ci"]
    return (f"    {name:26s} slowdown {m['slowdown']:+7.2%}, {result['confidence']:.0%} CI "
            f"[{lo:+7.2%}, {hi:+7.2%}] ({m['replicates']['a']['runs']} vs {m['replicates']['b']['runs']} "
            f"runs): {m['verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="digits01", help="digits01 (default) or a benchmark "
                        "whose model and data are in ../shared/mlperf_tiny (kws01)")
    parser.add_argument("--pairs", type=int, default=10, help="pairs of each kind (default 10)")
    parser.add_argument("--slowdown", type=float, default=1.2, help="the slowed SUT's p50 factor")
    parser.add_argument("--noise-floor", type=float, default=5.0, help="percent (compare's default 5)")
    parser.add_argument("--output", type=Path, help="where the run directories go (default: a "
                        "temporary folder, removed at the end)")
    parser.add_argument("--compare-only", type=Path, metavar="DIR", help="no runs: compare those an "
                        "earlier --output DIR kept (DIR/A, DIR/B, DIR/S)")
    args = parser.parse_args()
    global BENCHMARK
    BENCHMARK = args.benchmark
    if BENCHMARK != "digits01":
        os.environ.setdefault("TINYHARNESS_MODEL_MIRROR", f"{SHARED / 'models'}{os.pathsep}{SHARED / 'models_onnx'}")
    if args.compare_only:
        kinds = {k: sorted(p for p in (args.compare_only / k).iterdir() if p.is_dir()) for k in "ABS"}
        report(kinds, args, "(kept runs)", time.monotonic())
        return

    print(f"{BENCHMARK} on tflite-cpu; host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    registry().add(Plugin(), "bench-compare-noise")
    with tempfile.TemporaryDirectory(prefix="compare_noise_") as tmp:
        out = args.output or Path(tmp)
        started = time.monotonic()
        loops, measured = calibrate(args.slowdown, out)
        print(f"calibration: {loops} empty-loop iterations after each inference: x{measured:.3f} the "
              "median tflite-cpu inference")
        kinds: dict[str, list[Path]] = {"A": [], "B": [], "S": []}
        for i in range(args.pairs):
            for kind in kinds:
                sut = SlowedTFLite.name if kind == "S" else "tflite-cpu"
                kinds[kind].append(run_once(sut, out / kind, loops if kind == "S" else 0))
            print(f"  runs {i + 1}/{args.pairs} done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        report(kinds, args, f"+ {loops} loops", started)


def report(kinds: dict[str, list[Path]], args, slowed: str, started: float) -> None:
    """Every pair compared, one run a side, then each kind's runs as replicates."""
    floor, n = args.noise_floor / 100, len(kinds["A"])
    same = [compare([a], [b], noise_floor=floor) for a, b in zip(kinds["A"], kinds["B"])]
    slow = [compare([a], [s], noise_floor=floor, pairs=[(a.name, s.name)])
            for a, s in zip(kinds["A"], kinds["S"])]
    p50 = [value(r, "p50 latency") for r in slow]
    print(f"\n{n} identical pairs (tflite-cpu vs tflite-cpu, one run a side, noise floor "
          f"{args.noise_floor:g} %):")
    print(f"  within run-to-run noise:                {tally(same, {WITHIN_NOISE, NO_DIFFERENCE})}")
    print(f"  called different (B slower or faster):  {tally(same, {SLOWER, FASTER, 'mixed'})}")
    print("  run-to-run spread of identical runs:")
    print(spread(same))
    print(f"\n{n} slowed pairs (tflite-cpu vs tflite-cpu {slowed}; p50 slowdown measured pair by "
          f"pair: median {statistics.median(p50):+.1%}, range {min(p50):+.1%}..{max(p50):+.1%}):")
    print(f"  B slower:                               {tally(slow, {SLOWER})}")
    print(f"  B faster:                               {tally(slow, {FASTER})}")
    print(f"\nreplicates: all {n} runs a side, hierarchical bootstrap")
    print("  A vs B (identical):")
    both = compare(kinds["A"], kinds["B"], noise_floor=floor)
    for name in METRICS:
        print(row(both, name))
    print("  A vs slowed:")
    slowed_all = compare(kinds["A"], kinds["S"], noise_floor=floor,
                         pairs=[(list(map(str, kinds["A"])), list(map(str, kinds["S"])))])
    for name in METRICS:
        print(row(slowed_all, name))
    print(f"\ntotal {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
