"""A comparison for people: one table per pair, then unpaired runs and notes."""

from __future__ import annotations

from .verdicts import FASTER, HIERARCHICAL, NO_DIFFERENCE, SLOWER, WITHIN_NOISE

# -- the table -------------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(v) >= scale:
            return f"{v / (scale if prefix != 'k' else 1e3):.2f} {prefix}"
    return f"{v:.4g}"


LABELS = {"p50 latency": "p50 latency, us", "p90 latency": "p90 latency, us",
          "median window throughput": "window median, inf/s", "offline throughput": "offline, samples/s"}
SHORT = {NO_DIFFERENCE: "not significant", WITHIN_NOISE: "within noise"}


def _replicates_text(pair: dict, side: str) -> str:
    """"1 run", "3 runs" or "1 run x 5 repetitions", from the pair's widest metric."""
    counts = [m["replicates"][side] for m in pair["metrics"] if m.get("replicates")]
    runs = max((c["runs"] for c in counts), default=len(pair[side]["runs"]))
    reps = max((c["repetitions"] for c in counts if c["runs"] == runs), default=runs)
    text = f"{runs} run{'s' if runs > 1 else ''}"
    return text + (f" x {reps // runs} repetitions" if reps > runs and reps % runs == 0 else
                   f", {reps} repetitions" if reps > runs else "")


def print_table(result: dict) -> None:
    """One table per pair, then unpaired runs, notes and the method. The SUTs and the metrics are
    never cut: on a terminal each pair's title wraps between words and the metric and number
    columns never wrap (each metric becomes a block where the terminal is too narrow); elsewhere
    the tables are tab-separated and no line wraps (the layout of :mod:`tinyharness.tables`)."""
    if result.get("kind") == "published":
        from .published import print_published

        return print_published(result)
    from rich.text import Text

    from ..tables import Col, console
    from ..tables import print_table as print_rows

    out = console()
    notes: dict[str, None] = {}
    floor_used = False
    columns = (Col("metric", key=True), Col("A", nowrap=True, justify="right"),
               Col("B", nowrap=True, justify="right"), Col("B vs A", nowrap=True, justify="right"),
               Col(f"{result['confidence']:.0%} CI, %", nowrap=True), Col("verdict"))
    for pair in result["pairs"]:
        title = (f"{pair['benchmark']} {pair['scenario']}: A = {pair['a']['sut']} "
                 f"({_replicates_text(pair, 'a')}), B = {pair['b']['sut']} ({_replicates_text(pair, 'b')})")
        rows = []
        for m in pair["metrics"] or [{"metric": "no performance data on both sides"}]:
            rel, ci, verdict = m.get("relative_difference"), m.get("ci"), m.get("verdict")
            style = {SLOWER: "red", FASTER: "green"}.get(verdict, "")
            rows.append((LABELS.get(m["metric"], m["metric"]), _fmt(m.get("a")), _fmt(m.get("b")),
                         "-" if rel is None else f"{rel:+.1%}",
                         "-" if ci is None else f"{100 * ci[0]:+.1f}..{100 * ci[1]:+.1f}",
                         Text(SHORT.get(verdict, verdict or "-"), style)))
            if m.get("note"):
                notes[f"{m['metric']}: {m['note']}"] = None
            floor_used |= m.get("method") not in (None, HIERARCHICAL)
        for note in pair.get("notes", []):
            notes[note] = None
        print_rows(columns, rows, title=Text(title, style="bold"), out=out)
        out.print()  # a blank line after each table
    if not result["pairs"]:
        out.print("no pairs: no configuration (benchmark, scenario, SUT, model) is in both A and B")
    for r in result["unpaired"]:
        out.print(Text(f"unpaired, only in {r['side']}: {r['benchmark']} {r['scenario']} "
                           f"{r['sut']} {r['model']} ({r['path']})"), soft_wrap=True)  # a path
    if result["unpaired"]:
        out.print(Text("note: compare other SUTs or models with --pair A_RUN=B_RUN"))
    for note in notes:
        out.print(Text(f"note: {note}"))
    if floor_used:
        out.print(Text(f"note: one run a side measures no run-to-run variation: a difference "
                           f"within the noise floor of {result['noise_floor']:.1%}, or whose CI "
                           "reaches into it, is within run-to-run noise; several runs or --repeat "
                           "give a CI that includes it"))
    if any(m.get("verdict") == NO_DIFFERENCE for p in result["pairs"] for m in p["metrics"]):
        out.print(Text("note: not significant: the CI, which includes run-to-run variation, "
                           "contains 0"))
