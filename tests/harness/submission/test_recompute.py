"""``check`` recomputes every figure an embedded run reports from the run's own records (defect 1:
a forged figure passed when every file that shows it agreed).

The runs are the schema-1 fixtures (real runs): the host-timed digits01 run (accuracy.json,
windows and latencies.npy) and the device-timed serial kws01 run. Each test forges a copy; the
expected values are worked out here from the raw files with numpy, never by the checker's code.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_package import FIXTURES, SERIAL_RUN, SUBMITTER, cli
from test_schema1 import EMBEDDED, MODEL, system_file
from tinyharness.results import render
from tinyharness.results.summary import RunSummary
from tinyharness.submission import archive
from tinyharness.submission.check import check_package
from tinyharness.submission.package import build
from tinyharness.submission.recompute import PLAUSIBLE, recompute
from tinyharness.submission.runfiles import read_run

DIGITS = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"


def load(run: Path, name: str):
    return json.loads((run / name).read_text())


def save(run: Path, name: str, doc) -> None:
    (run / name).write_text(json.dumps(doc, indent=1) + "\n")


def rewrite_events(run: Path, key: str, change) -> None:
    """detail.txt with ``change(value)`` applied to each ``key`` event (its k-th as ``change(v, k)``)."""
    lines, k = [], 0
    for line in (run / "detail.txt").read_text().splitlines():
        if line.startswith(":::MLLOG ") and json.loads(line[9:])["key"] == key:
            event = json.loads(line[9:])
            event["value"] = change(event["value"], k)
            k += 1
            line = ":::MLLOG " + json.dumps(event)
        lines.append(line)
    (run / "detail.txt").write_text("\n".join(lines) + "\n")


def check_run(run: Path, metric: str = "top1"):
    summary = RunSummary.from_dict(load(run, "summary.json"))
    files = read_run(run)
    assert files.problems == []
    return recompute(summary, files, metric)


def top1_of(run: Path) -> float:
    """Top-1 % from accuracy.json's raw outputs and labels, with numpy alone."""
    entries, dtype = load(run, "accuracy.json"), load(run, "summary.json")["accuracy"]["output"]["dtype"]
    hits = [np.frombuffer(bytes.fromhex(e["data"]), np.dtype(dtype).newbyteorder("<")).argmax() == e["label"]
            for e in entries]
    return 100.0 * sum(hits) / len(hits)


@pytest.fixture
def digits(tmp_path) -> Path:
    return Path(shutil.copytree(DIGITS, tmp_path / DIGITS.name))


# -- accuracy --------------------------------------------------------------------------------------
def test_honest_runs_recompute_to_their_own_figures(digits):
    figures, found = check_run(digits)
    assert found == []
    assert figures.accuracy == pytest.approx(top1_of(DIGITS)) == pytest.approx(98.333333, abs=1e-6)
    assert check_run(SERIAL_RUN)[1] == []


def test_a_forged_accuracy_names_both_values(digits):
    summary = load(digits, "summary.json")
    summary["accuracy"]["value"] = 99.9
    save(digits, "summary.json", summary)
    _, found = check_run(digits)
    assert found == [("summary.json", "accuracy-mismatch",
                      "summary.json accuracy 99.9 % but accuracy.json's outputs give 98.3333 %")]


def test_a_forged_accuracy_event_in_detail_txt_is_caught(digits):
    rewrite_events(digits, "accuracy_result", lambda v, k: {**v, "value": 99.9})
    _, found = check_run(digits)
    assert [(f, r) for f, r, _ in found] == [("detail.txt", "accuracy-mismatch")]
    assert "99.9" in found[0][2] and "98.3333" in found[0][2]


def test_predictions_that_are_not_the_argmax_are_caught(digits):
    entries = load(digits, "accuracy.json")
    entries[7]["prediction"] = (entries[7]["prediction"] + 1) % 10
    save(digits, "accuracy.json", entries)
    _, found = check_run(digits)
    assert [(f, r) for f, r, _ in found] == [("accuracy.json", "accuracy-mismatch")]
    assert "entry 7" in found[0][2]


def test_the_auc_comes_from_the_files_mean_window_scores(digits):
    """An AD-like log: 2 normal and 2 anomalous files of 2 windows each. File means 1, 4 (normal),
    3, 5 (anomalous): of the 4 anomalous-normal pairs, 3 rank the anomaly higher, AUC 0.75."""
    windows = [("n1", 0, 0.5, 1.5), ("n2", 0, 4.0, 4.0), ("a1", 1, 2.0, 4.0), ("a2", 1, 5.0, 5.0)]
    entries = [{"seq_id": 2 * i + j, "qsl_idx": 2 * i + j, "data": "00", "file": f"{name}.bin",
                "label": label, "score": score}
               for i, (name, label, *scores) in enumerate(windows) for j, score in enumerate(scores)]
    save(digits, "accuracy.json", entries)
    summary = load(digits, "summary.json")
    summary["accuracy"].update(metric="auc", value=0.75, count=8, files=4)
    save(digits, "summary.json", summary)
    rewrite_events(digits, "accuracy_result", lambda v, k: {**v, "value": 0.75})
    (digits / "summary.txt").write_text("")
    figures, found = check_run(digits, "auc")
    assert (figures.accuracy, found) == (0.75, [])
    summary["accuracy"]["value"] = 0.95
    save(digits, "summary.json", summary)
    _, found = check_run(digits, "auc")
    assert found == [("summary.json", "accuracy-mismatch",
                      "summary.json AUC 0.95 but accuracy.json's window scores give 0.75")]


# -- windows and latencies -------------------------------------------------------------------------
def rewrite_windows(run: Path, change) -> dict:
    """Every record of the windows rewritten consistently, as a forger would: ``change(k, w)``
    edits window k's inferences or runtime_s, and summary.json, detail.txt and summary.txt
    follow. Returns the new summary document."""
    summary = load(run, "summary.json")
    windows = summary["windows"]
    for k, w in enumerate(windows["details"]):
        change(k, w)
        w["throughput_ips"] = round(w["inferences"] / w["runtime_s"], 3)
    windows["throughput_ips"] = [w["throughput_ips"] for w in windows["details"]]
    windows["median_throughput_ips"] = sorted(windows["throughput_ips"])[len(windows["details"]) // 2]
    if "latency_ms" in windows:  # a schema-2 fixture
        windows["latency_ms"] = round(1000 / windows["median_throughput_ips"], 6)
    else:
        windows["latency_us"] = round(1e6 / windows["median_throughput_ips"], 6)
    save(run, "summary.json", summary)
    rewrite_events(run, "window_result", lambda v, k: {**v, **{key: windows["details"][k][key] for key in (
        "inferences", "runtime_s", "throughput_ips")}})
    (run / "summary.txt").write_text(render.text(RunSummary.from_dict(summary)))
    return summary


def inflate(run: Path, inferences) -> dict:
    """Window k forged to ``inferences(k, w)`` inferences in its own runtime."""
    return rewrite_windows(run, lambda k, w: w.update(inferences=inferences(k, w)))


def fastest_ns(run: Path) -> int:
    return int(np.load(run / "latencies.npy").min())


@pytest.mark.parametrize("over", [0.9, 1.4])
def test_windows_within_the_plausible_bound_pass(digits, over):
    fastest = fastest_ns(DIGITS)
    inflate(digits, lambda k, w: math.floor(over * 1e9 / fastest * w["runtime_s"]))
    assert check_run(digits)[1] == []


def test_windows_faster_than_any_timed_query_allows_are_caught(digits):
    fastest = fastest_ns(DIGITS)  # 4 536 ns: at most 1.5 x 220 458.554 inf./sec. is plausible
    inflate(digits, lambda k, w: math.ceil(3 * 1e9 / fastest * w["runtime_s"]))
    _, found = check_run(digits)
    assert {(f, r) for f, r, _ in found} == {("summary.json", "implausible-throughput")} and len(found) == 5
    assert "window 1 runs 661" in found[0][2] and "fastest of the run's 5,939 timed queries took 4.536 us" \
        in found[0][2] and "220458.554 inf./sec." in found[0][2]
    assert PLAUSIBLE == 1.5


def test_a_throughput_its_window_record_does_not_give_is_caught(digits):
    summary = load(digits, "summary.json")
    summary["windows"]["details"][2]["throughput_ips"] *= 3
    save(digits, "summary.json", summary)
    _, found = check_run(digits)
    assert [(f, r) for f, r, _ in found] == [("summary.json", "throughput-mismatch")]
    assert "window 3 throughput 428924.544 inf./sec. but its 2112 inferences in 0.014772 s give 142973.193" \
        in found[0][2]


def test_a_median_the_windows_do_not_give_is_caught(digits):
    summary = load(digits, "summary.json")
    summary["windows"]["median_throughput_ips"] = 174475.182
    save(digits, "summary.json", summary)
    _, found = check_run(digits)
    assert found == [("summary.json", "throughput-mismatch", "summary.json median throughput 174475.182 "
                      "inf./sec. but the window records give 142973.193")]


def test_windows_that_detail_txt_does_not_record_are_caught(digits):
    rewrite_events(digits, "window_result", lambda v, k: {**v, "inferences": v["inferences"] + (k == 3)})
    _, found = check_run(digits)
    assert [(f, r) for f, r, _ in found] == [("detail.txt", "throughput-mismatch")]
    assert "window 4: 1542 inferences" in found[0][2]


def loadgen(values: np.ndarray, p: float) -> float:
    ordered = np.sort(values)
    return round(int(ordered[int(len(ordered) * p)]) / 1000, 3)


@pytest.mark.parametrize("key, p", [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)])
def test_a_forged_latency_percentile_names_both_values(digits, key, p):
    summary = load(digits, "summary.json")
    summary["latency_us"][key] = 1.0
    save(digits, "summary.json", summary)
    _, found = check_run(digits)
    expected = loadgen(np.load(DIGITS / "latencies.npy"), p)
    assert expected == load(DIGITS, "summary.json")["latency_us"][key]  # the run's own figure
    assert found == [("summary.json", "latency-mismatch",
                      f"summary.json latency {key} 1.0 us but latencies.npy gives {expected} us")]


def test_a_shortened_latencies_file_is_caught(digits):
    values = np.load(digits / "latencies.npy")
    values[values.argmax()] = values.min()  # the slowest query made the fastest: max and mean change
    np.save(digits / "latencies.npy", values)
    _, found = check_run(digits)
    assert {m.split(" us")[0] for _, r, m in found if r == "latency-mismatch"} >= {
        "summary.json latency max 120.922", "summary.json latency mean 6.816"}


def test_summary_txt_figures_are_held_against_the_records(digits):
    text = (digits / "summary.txt").read_text()
    (digits / "summary.txt").write_text(text.replace("top-1 98.33 %", "top-1 99.50 %")
                                        .replace("   p90 : 8.998", "   p90 : 7.5"))
    _, found = check_run(digits)
    assert found == [("summary.txt", "figure-mismatch", "summary.txt accuracy 99.50 but the run's records "
                      "give 98.3333"),
                     ("summary.txt", "figure-mismatch", "summary.txt latency p90 7.5 but the run's records "
                      "give 8.998")]


# -- the forged package of the issue, through the whole check --------------------------------------
def test_a_package_forged_to_97_5_percent_fails_check(tmp_path):
    """accuracy 97.5 in summary.json, detail.txt, summary.txt and results.txt, manifest
    recomputed: the outputs in accuracy.json still give 90.1 % (the fixture's own figure)."""
    root = build([SERIAL_RUN], SUBMITTER, "closed", [(None, system_file(tmp_path))], tmp_path / "package")
    run = root / EMBEDDED
    assert top1_of(run) == pytest.approx(90.1)
    summary = load(run, "summary.json")
    summary["accuracy"]["value"] = 97.5
    save(run, "summary.json", summary)
    rewrite_events(run, "accuracy_result", lambda v, k: {**v, "value": 97.5})
    (run / "summary.txt").write_text((run / "summary.txt").read_text().replace("top-1 90.10 %", "top-1 97.50 %"))
    results = root / MODEL / "accuracy" / "results.txt"
    results.write_text(results.read_text().replace("Top 1% = 90.1", "Top 1% = 97.5"))
    archive.write_manifest(root)
    found = check_package(root)
    assert {(v.path, v.rule) for v in found} == {
        (f"{EMBEDDED}/summary.json", "accuracy-mismatch"), (f"{EMBEDDED}/detail.txt", "accuracy-mismatch"),
        (f"{EMBEDDED}/summary.txt", "figure-mismatch"), (f"{MODEL}/accuracy/results.txt", "accuracy-mismatch")}
    assert f"{EMBEDDED}/summary.json: accuracy-mismatch: summary.json accuracy 97.5 % but accuracy.json's " \
           "outputs give 90.1 %" in map(str, found)
    assert f"{MODEL}/accuracy/results.txt: accuracy-mismatch: Top 1% = 97.5 but the embedded run's " \
           "accuracy.json outputs give 90.1" in map(str, found)
    code, out, err = cli("check", str(root))
    assert code == 1 and "OK" not in out and "4 violations" in err
