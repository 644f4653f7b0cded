"""A run summary for people: summary.txt (LoadGen's summary style) and a Markdown table."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .summary import RunSummary

LINE = "=" * 60
LATENCY_KEYS = ("count", "min", "mean", "p50", "p90", "p95", "p97", "p99", "p999", "max")


def verdict(s: "RunSummary") -> str:
    return "VALID" if s.valid else "INVALID"


def headline(s: "RunSummary") -> list[tuple[str, str]]:
    """(label, value) of the metrics a run reports, in the order people look for them."""
    out = []
    if s.latency_us is not None:
        es = s.latency_us.p90_early_stopping
        out.append(("90th percentile latency, early-stopping estimate (us)",
                    "n/a" if es is None else format(es, ".3f")))
    if s.throughput_ips is not None:
        out.append(("Samples per second", f"{s.throughput_ips:.3f}"))
    if s.windows is not None:
        w = s.windows
        out.append(("MLPerf Tiny median throughput", f"{w.median_throughput_ips:.3f} inf./sec. "
                    f"({len(w.throughput_ips)} windows of >= {w.window_min_s:g} s)"))
    if s.accuracy is not None:
        a = s.accuracy
        out.append(("Accuracy", f"{a.shown} (target {a.target:g}, "
                    f"{'passed' if a.passed else 'FAILED'}, {a.count} samples from {a.files} files)"))
    return out


MATRIX_MAX = 12  # classes up to which summary.txt prints a confusion matrix (kws01 has 12)


def matrix_lines(detail: dict, indent: str = "  ") -> list[str]:
    """A confusion matrix as a small table (rows the true label, columns the predicted one), or
    one line pointing to summary.json past :data:`MATRIX_MAX` classes."""
    matrix, labels = detail.get("matrix"), detail.get("labels")
    if not isinstance(matrix, list) or not matrix or not all(isinstance(r, list) for r in matrix):
        return []
    if len(matrix) > MATRIX_MAX:
        return [f"{indent}{len(matrix)} classes: the matrix is in summary.json (accuracy.metrics)"]
    names = [str(n)[:8] for n in labels] if isinstance(labels, list) and len(labels) == len(matrix) \
        else [str(k) for k in range(len(matrix))]
    cells = [[str(v) for v in row] for row in matrix]
    width = max(len(c) for c in [*names, *(v for row in cells for v in row)])
    head = max(len(n) for n in names + ["true \\ predicted"])
    out = [indent + "true \\ predicted".ljust(head) + " " + " ".join(n.rjust(width) for n in names)]
    out += [indent + name.ljust(head) + " " + " ".join(v.rjust(width) for v in row)
            for name, row in zip(names, cells)]
    return out


def metric_lines(s: "RunSummary") -> list[str]:
    """The accuracy pass's quality metrics, one line each (a confusion matrix as a table)."""
    a = s.accuracy
    out = [LINE, f"Quality metrics (the rule set's {a.metric} alone decides VALID)", LINE]
    width = max(len(name) for name in a.metrics)
    for name, m in a.metrics.items():
        if isinstance(m.detail.get("matrix"), list):
            out.append(f"{name.ljust(width)} : rows the true label, columns the predicted one")
            out += matrix_lines(m.detail)
        else:
            out.append(f"{name.ljust(width)} : {m.shown}")
    return out


def _series(values: list, digits: int = 3) -> str:
    return " / ".join("n/a" if v is None else f"{v:.{digits}f}" for v in values)


def repetition_lines(s: "RunSummary") -> list[str]:
    """Each repetition's headline figures and how far they spread (--repeat)."""
    reps, spread = s.repetitions.runs, s.repetitions.spread
    out = [f"Repetitions : {s.repetitions.count} (the figures above are repetition 1)"]
    if any(r.p50_us is not None for r in reps):
        out.append(f"  p50 (us)        : {_series([r.p50_us for r in reps])}  max/min "
                   f"{spread.p50_max_over_min}, CV {spread.p50_cv}")
        out.append(f"  p90 (us)        : {_series([r.p90_us for r in reps])}  max/min "
                   f"{spread.p90_max_over_min}")
    if any(r.throughput_ips is not None for r in reps):
        out.append(f"  throughput (/s) : {_series([r.throughput_ips for r in reps], 1)}  max/min "
                   f"{spread.throughput_max_over_min}, CV {spread.throughput_cv}")
    return out


def parameter_lines(s: "RunSummary") -> list[str]:
    """The test parameters the run used, as LoadGen's summary lists them, and what it cost
    before the first measured query."""
    st = s.settings
    out = [LINE, "Test parameters used", LINE,
           f"rules                     : {st.rules}",
           f"min_duration (s)          : {st.min_duration_s:g}",
           f"min_query_count           : {st.min_query_count}"]
    if st.max_duration_s:
        out.append(f"max_duration (s)          : {st.max_duration_s:g}")
    if s.windows is not None or s.scenario == "single-stream":
        out.append(f"windows                   : {st.windows} of >= {st.window_min_s:g} s")
    if st.offline_expected_qps is not None:
        out.append(f"offline_expected_qps      : {st.offline_expected_qps:g}")
    out += [f"performance_sample_count  : {st.performance_sample_count}",
            f"seed                      : {st.seed} (qsl {st.qsl_rng_seed}, sample index "
            f"{st.sample_index_rng_seed})"]
    if st.repeat != 1:
        out.append(f"repeat                    : {st.repeat}")
    if st.sut_options:
        out.append("sut options               : " + ", ".join(f"{k}={v}" for k, v in st.sut_options.items()))
    out.extend(f"override                  : {o}" for o in st.overrides)
    first = s.startup.first_inference_us
    out.append(f"load time (s)             : {s.startup.load_s:.3f}")
    out.append("first inference (us)      : " + ("n/a" if first is None else f"{first:.3f}"))
    return out


def text(s: "RunSummary") -> str:
    out = [LINE, "tinyharness results summary", LINE, f"Benchmark : {s.benchmark}",
           f"SUT       : {s.sut}", f"Scenario  : {s.scenario}", f"Mode      : {s.mode}"]
    out += [f"{label} : {value}" for label, value in headline(s)]
    out.append(f"Result is : {verdict(s)}")
    out.extend(f"  - {reason}" for reason in s.invalid_reasons)
    if s.stability is not None:
        out += s.stability.lines()
    if s.repetitions is not None:
        out += repetition_lines(s)
    if s.accuracy is not None and s.accuracy.metrics:
        out += metric_lines(s)
    if s.startup is not None:  # schema 3; older summary.txt files stay as they were written
        out += parameter_lines(s)
    if s.latency_us is not None:
        out += [LINE, "Latency (us)", LINE]
        out += [f"{key:>6} : {getattr(s.latency_us, key)}" for key in LATENCY_KEYS]
        if s.runtime_latency_us is not None:
            rt = s.runtime_latency_us
            out.append(f"runtime's own latency (us), p50 / p90 / p99 : {rt.p50} / {rt.p90} / {rt.p99}")
        if s.qps is not None:
            out.append(f"QPS with harness overhead    : {s.qps.with_overhead:.3f}")
            out.append(f"QPS without harness overhead : {s.qps.without_overhead:.3f}")
    if s.windows is not None:
        for number, w in enumerate(s.windows.details, start=1):
            retried = "".join(f"; re-run after {r.inferences} in {r.runtime_s:.3f} s"
                              for r in w.short_runs)
            out.append(f"window {number}: {w.file} {w.inferences} inferences in "
                       f"{w.runtime_s:.3f} s = {w.throughput_ips:.3f} inf./sec.{retried}")
    if s.offline is not None:
        for r in s.offline.short_runs:
            out.append(f"offline query re-sized: {r.samples} samples at --expected-qps "
                       f"{r.expected_qps:g} completed in {r.duration_s:.3f} s, too soon")
    sy = s.system
    out += [LINE, "System", LINE,
            f"runtime   : {sy.runtime} {sy.runtime_version} ({sy.device}, precision {sy.precision}, "
            f"inference {sy.inference_precision}, threads {sy.threads})",
            f"harness   : {sy.harness_version} ({sy.harness_git_revision or 'no git'}), "
            f"overhead {s.harness_overhead_us} us/query",
            f"host      : {sy.cpu_model}, {sy.os}, Python {sy.python}",
            # older summaries do not record the CPU's features
            *([] if sy.cpu_features is None else [f"cpu ISA   : {' '.join(sy.cpu_features) or '-'}"]),
            f"model     : {s.model.path} (sha256 {(s.model.sha256 or 'n/a')[:16]}...)",
            f"dataset   : {s.dataset.id}, {s.dataset.count} samples "
            f"(sha256 {s.dataset.sha256[:16]}...)",
            f"errors    : {len(s.errors)}"]
    return "\n".join(out) + "\n"


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(s: "RunSummary") -> str:
    """A Markdown section: a metrics table, the reasons, and the system line."""
    rows = [("Benchmark", s.benchmark), ("SUT", s.sut), ("Scenario", s.scenario), ("Mode", s.mode),
            *headline(s), ("Result", f"**{verdict(s)}**")]
    if s.latency_us is not None:
        lat = s.latency_us
        rows.append(("Latency p50 / p90 / p99 (us)", f"{lat.p50} / {lat.p90} / {lat.p99}"))
    sy = s.system
    rows.append(("Runtime", f"{sy.runtime} {sy.runtime_version}, {sy.device}, precision "
                 f"{sy.precision}, threads {sy.threads}"))
    rows.append(("Model", f"`{s.model.path.rsplit('/', 1)[-1]}` sha256 `{(s.model.sha256 or 'n/a')[:16]}`"))
    out = [f"### {_md(s.benchmark)} on {_md(s.sut)}, {_md(s.scenario)}", "", "| | |", "|---|---|"]
    out += [f"| {_md(label)} | {_md(value)} |" for label, value in rows]
    if s.invalid_reasons or s.errors:
        out += ["", *(f"- {_md(r)}" for r in [*s.invalid_reasons, *s.errors])]
    if s.stability is not None and (s.stability.warnings or s.stability.notes):
        out += ["", *(f"- {_md(line)}" for line in s.stability.lines()[1:])]
    return "\n".join(out) + "\n"
