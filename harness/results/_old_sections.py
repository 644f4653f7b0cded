"""Results: the measured runs turned into summary sections, the validity verdict, and text.

One definition per metric lives here (MLPerf's checker and summary once disagreed on which
percentile is the metric): single-stream reports the early-stopping p90; the MLPerf Tiny view
reports the median window throughput; offline reports samples per second.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from . import scoring
from .scenarios.accuracy import AccuracyRun
from .scenarios.offline import OfflineRun
from .scenarios.single_stream import QueryRun, Window
from .settings import TestSettings
from .stats import LatencyStats


def single_stream_section(run: QueryRun, settings: TestSettings) -> tuple[dict[str, Any], list[str]]:
    stats = LatencyStats.from_ns(run.latencies_ns)
    reasons = []
    if run.duration_s < settings.min_duration_s:
        reasons.append(f"min duration not met: last query issued at {run.duration_s:.3f} s, "
                       f"needs {settings.min_duration_s:g} s")
    if run.count < settings.min_query_count:
        reasons.append(f"min query count not met: {run.count} queries, needs {settings.min_query_count}")
    if not stats.early.met:
        reasons.append(f"early stopping not met: {run.count} queries, needs at least "
                       f"{stats.early.min_queries} for a p90 estimate "
                       f"({stats.early.min_queries - run.count} more)")
    section = {
        "latency_us": stats.to_us_dict(),
        "early_stopping": {"percentile": 0.90, "confidence": 0.99, "met": stats.early.met,
                           "min_queries": stats.early.min_queries,
                           "discarded": stats.early.discarded},
        "qps": {"with_overhead": round(run.qps_with_overhead(), 3),
                "without_overhead": round(run.qps_without_overhead(), 3)},
        "performance": {"queries": run.count, "duration_s": round(run.duration_s, 6),
                        "min_duration_met": run.duration_s >= settings.min_duration_s,
                        "min_queries_met": run.count >= settings.min_query_count},
    }
    return section, reasons


def windows_section(windows: list[Window], settings: TestSettings) -> tuple[dict[str, Any], list[str]]:
    reasons = []
    if len(windows) != settings.windows:
        reasons.append(f"{len(windows)} performance windows, the rules require {settings.windows}")
    for number, w in enumerate(windows, start=1):
        if w.runtime_s < settings.window_min_s:
            reasons.append(f"window {number} ran {w.runtime_s:.3f} s, needs at least "
                           f"{settings.window_min_s:g} s")
    throughputs = [w.throughput_ips for w in windows]
    median = statistics.median(throughputs) if throughputs else 0.0
    return {
        "throughput_ips": [round(t, 3) for t in throughputs],
        "median_throughput_ips": round(median, 3),
        "latency_ms": round(1000.0 / median, 6) if median else None,
        "window_min_s": settings.window_min_s,
        "details": [{"sample_index": w.sample_index, "file": w.file, "inferences": w.inferences,
                     "runtime_s": round(w.runtime_s, 6), "throughput_ips": round(w.throughput_ips, 3),
                     "attempts": w.attempts} for w in windows],
    }, reasons


def offline_section(run: OfflineRun, settings: TestSettings) -> tuple[dict[str, Any], list[str]]:
    reasons = []
    if run.duration_s < settings.min_duration_s:
        reasons.append(f"min duration not met: last sample completed at {run.duration_s:.3f} s, "
                       f"needs {settings.min_duration_s:g} s; raise --expected-qps")
    if run.count < settings.min_query_count:
        reasons.append(f"min sample count not met: {run.count}, needs {settings.min_query_count}")
    return {
        "throughput_ips": round(run.throughput_ips, 3),
        "offline": {"samples": run.count, "duration_s": round(run.duration_s, 6),
                    "expected_qps": round(run.expected_qps, 3),
                    "expected_qps_source": run.expected_qps_source,
                    "min_duration_met": run.duration_s >= settings.min_duration_s,
                    "min_queries_met": run.count >= settings.min_query_count},
    }, reasons


def accuracy_section(run: AccuracyRun, metric: str, target: float, output_spec) -> tuple[dict[str, Any], list[str]]:
    files = int(run.groups.max()) + 1
    if metric == "top1":
        value = scoring.top1_percent(run.outputs, run.labels)
        shown = f"{value:.2f} % top-1"
    elif metric == "auc":
        file_labels = np.zeros(files, dtype=int)
        file_labels[run.groups] = run.labels
        try:
            value = scoring.roc_auc(file_labels, scoring.group_means(run.scores, run.groups))
        except ValueError:  # one class only: the metric does not exist, the run cannot pass
            return {"accuracy": {"metric": metric, "value": None, "target": target, "passed": False,
                                 "count": len(run.indices), "files": files,
                                 "output": output_spec.to_dict()}}, [
                "AUC is undefined: the label file lists only one class of file; it needs both "
                "normal and anomalous files"]
        shown = f"AUC {value:.4f}"
    else:
        raise ValueError(f"unknown metric {metric!r}")
    passed = value >= target
    reasons = [] if passed else [f"accuracy {shown} is below the target {target:g}"]
    return {"accuracy": {"metric": metric, "value": round(value, 6), "target": target,
                         "passed": passed, "count": len(run.indices), "files": files,
                         "output": output_spec.to_dict()}}, reasons


def render_text(summary: dict[str, Any]) -> str:
    """The human-readable summary.txt, in the spirit of LoadGen's summary."""
    line = "=" * 60
    out = [line, "tinyharness results summary", line,
           f"Benchmark : {summary['benchmark']}", f"SUT       : {summary['sut']}",
           f"Scenario  : {summary['scenario']}", f"Mode      : {summary['mode']}"]
    lat = summary.get("latency_us")
    if lat:
        es = lat["p90_early_stopping"]
        out.append(f"90th percentile latency, early-stopping estimate (us) : "
                   f"{'n/a' if es is None else format(es, '.3f')}")
    if summary.get("throughput_ips") is not None:
        out.append(f"Samples per second : {summary['throughput_ips']:.3f}")
    win = summary.get("windows")
    if win:
        out.append(f"MLPerf Tiny median throughput : {win['median_throughput_ips']:.3f} inf./sec. "
                   f"({len(win['throughput_ips'])} windows of >= {win['window_min_s']:g} s)")
    acc = summary.get("accuracy")
    if acc:
        if acc["value"] is None:
            value = f"{acc['metric']} undefined"
        elif acc["metric"] == "top1":
            value = f"top-1 {acc['value']:.2f} %"
        else:
            value = f"AUC {acc['value']:.4f}"
        out.append(f"Accuracy : {value} (target {acc['target']:g}, "
                   f"{'passed' if acc['passed'] else 'FAILED'}, {acc['count']} samples "
                   f"from {acc['files']} files)")
    out.append(f"Result is : {'VALID' if summary['valid'] else 'INVALID'}")
    out.extend(f"  - {reason}" for reason in summary["invalid_reasons"])
    if lat:
        out += [line, "Latency (us)", line]
        for key in ("count", "min", "mean", "p50", "p90", "p95", "p97", "p99", "p999", "max"):
            out.append(f"{key:>6} : {lat[key]}")
        qps = summary["qps"]
        out.append(f"QPS with harness overhead    : {qps['with_overhead']:.3f}")
        out.append(f"QPS without harness overhead : {qps['without_overhead']:.3f}")
    if win:
        for number, w in enumerate(win["details"], start=1):
            out.append(f"window {number}: {w['file']} {w['inferences']} inferences in "
                       f"{w['runtime_s']:.3f} s = {w['throughput_ips']:.3f} inf./sec.")
    system = summary["system"]
    out += [line, "System", line,
            f"runtime   : {system['runtime']} {system['runtime_version']} ({system['device']}, "
            f"precision {system['precision']}, inference {system['inference_precision']}, "
            f"threads {system['threads']})",
            f"harness   : {system['harness_version']} ({system['harness_git_revision'] or 'no git'}),"
            f" overhead {summary['harness_overhead_us']} us/query",
            f"host      : {system['cpu_model']}, {system['os']}, Python {system['python']}",
            f"model     : {summary['model']['path']} (sha256 {(summary['model']['sha256'] or 'n/a')[:16]}...)",
            f"dataset   : {summary['dataset']['id']}, {summary['dataset']['count']} samples "
            f"(sha256 {summary['dataset']['sha256'][:16]}...)",
            f"errors    : {len(summary['errors'])}"]
    return "\n".join(out) + "\n"
