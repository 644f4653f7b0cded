"""``tinyharness package`` and ``tinyharness system init``, on real MLPerf Tiny runs.

The runs are built ONCE per test session (``build_runs``, shared with test_check.py through a
folder under pytest's base temp) with ``tinyharness run --mode all`` and the real rules (5 windows
of at least 10 s each): kws01 on tflite-cpu and onnxruntime-cpu with the full kws01 set, ad01 on
tflite-cpu and openvino-cpu with a small synthetic ad01 folder derived from the one real AD sample
(3 normal, 3 anomalous files; the anomalies score 4x to 20x higher, so AUC = 1.0 > 0.85). The four
runs go in parallel (about a minute and a half).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tinyharness.cli import main
from tinyharness.fileio import sha256_of
from fakes import filled_system
from tinyharness.submission import archive, system_json
from tinyharness.submission import check as checker
from tinyharness.submission import result_lines as rl
from tinyharness.submission.layout import SHORT

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "mlperf_tiny"
ENV = dict(os.environ, TINYHARNESS_MODEL_MIRROR=os.pathsep.join([str(SHARED / "models"),
                                                                 str(SHARED / "models_onnx")]))
AD_SAMPLE = SHARED / "samples" / "ad01" / "normal_id_01_00000000_hist_librosa.bin"
RUNS = {  # key -> (benchmark, SUT)
    "kws-tflite": ("kws01", "tflite-cpu"), "kws-ort": ("kws01", "onnxruntime-cpu"),
    "ad-tflite": ("ad01", "tflite-cpu"), "ad-openvino": ("ad01", "openvino-cpu"),
}
SYSTEMS = {"tflite-cpu": "host-tflite", "onnxruntime-cpu": "host-ort", "openvino-cpu": "host-openvino"}
SUBMITTER = "ACME"
FIXTURES = REPO / "tests" / "fixtures" / "schema1"  # run directories the previous version wrote
# VALID, device-timed kws01, its firmware's model unnamed (sha256 n/a): an open-division result only
SERIAL_RUN_UNNAMED = FIXTURES / "20261201-224022_kws01_serial_single-stream"
# The same run naming the model file its firmware was built from (--sut-option model_file=PATH,
# the kws01 reference model): a closed-division result
SERIAL_RUN = REPO / "tests" / "fixtures" / "device_model" / SERIAL_RUN_UNNAMED.name


# -- building the runs and the package once per session -------------------------------------------
def make_ad01(root: Path) -> Path:
    """``root/ad01``: 6 files derived deterministically from the real sample: the sample itself,
    its frames rolled and reversed (normal: they score like it, about 10.3), and three strong
    anomalies (a +/-8 comb over the mel bins, noise of sigma 6, the mel axis reversed: 45 to 200)."""
    real = np.fromfile(AD_SAMPLE, dtype="<f4").reshape(200, 128)
    noise = np.random.default_rng(1234).normal(0.0, 6.0, real.shape)
    comb = np.where(np.arange(128) % 16 < 8, 8.0, -8.0)[None, :]
    files = [("normal_id_01_00000000_hist_librosa.bin", 0, real),
             ("anomaly_id_01_00000000_hist_librosa.bin", 1, real + comb),
             ("normal_id_01_00000001_hist_librosa.bin", 0, np.roll(real, 37, axis=0)),
             ("anomaly_id_01_00000001_hist_librosa.bin", 1, real + noise),
             ("normal_id_01_00000002_hist_librosa.bin", 0, real[::-1]),
             ("anomaly_id_01_00000002_hist_librosa.bin", 1, real[:, ::-1])]
    folder = root / "ad01"
    folder.mkdir(parents=True, exist_ok=True)
    for name, _, data in files:
        (folder / name).write_bytes(np.ascontiguousarray(data, dtype="<f4").tobytes())
    (folder / "y_labels.csv").write_text("".join(f"{n},2,{label},2560,512\n" for n, label, _ in files))
    return root


def need_everything() -> None:
    for path in (AD_SAMPLE, SHARED / "datasets" / "kws01" / "y_labels.csv", SHARED / "models" / "kws",
                 SHARED / "models_onnx" / "kws", SHARED / "models" / "ad"):
        if not path.exists():
            pytest.skip(f"MLPerf Tiny reference data not found at {path}")
    for module in ("ai_edge_litert", "onnxruntime", "openvino"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"runtime {module} is not installed")


def build_runs(base: Path) -> dict[str, Path]:
    """The four runs (built once: later calls read ``base/runs.json``)."""
    index = base / "runs.json"
    if index.is_file():
        return {k: Path(v) for k, v in json.loads(index.read_text()).items()}
    need_everything()
    base.mkdir(parents=True, exist_ok=True)
    ad_root = make_ad01(base / "datasets")
    procs = {}
    for key, (bench, sut) in RUNS.items():
        dataset = SHARED / "datasets" if bench == "kws01" else ad_root
        procs[key] = subprocess.Popen(
            [sys.executable, "-m", "tinyharness.cli", "run", "--benchmark", bench, "--sut", sut,
             "--mode", "all", "--dataset", str(dataset), "--output", str(base / key), "--quiet"],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (key, out[-2000:], err[-3000:])
        (run,) = [p for p in (base / key).iterdir() if p.is_dir()]
        runs[key] = run
    index.write_text(json.dumps({k: str(v) for k, v in runs.items()}))
    return runs


def write_systems(folder: Path) -> list[str]:
    """One system description per SUT (``system init --sut``); the --system options for them."""
    folder.mkdir(parents=True, exist_ok=True)
    options = []
    for sut, system in SYSTEMS.items():
        path = folder / f"{system}.json"
        if not path.exists():
            rc, _, err = cli("system", "init", "--sut", sut, "--output", str(path))
            assert rc == 0, err
            path.write_bytes(system_json.render(filled_system(json.loads(path.read_text()))))
        options += ["--system", f"{sut}={path}"]
    return options


def build_package(base: Path) -> dict[str, Path]:
    """{'runs': ..., 'folder': package folder, 'archive': package .tar.gz, 'systems': [...]}."""
    runs = build_runs(base / "runs")
    folder, archive = base / "package", base / "package.tar.gz"
    options = write_systems(base / "systems")
    if not folder.exists():
        for output in (folder, archive):
            rc, out, err = cli("package", *map(str, runs.values()), "--submitter", SUBMITTER,
                               "--division", "closed", *options, "--output", str(output))
            assert rc == 0, err
    return {"runs": runs, "folder": folder, "archive": archive, "systems": options}


def cli(*args: str) -> tuple[int, str, str]:
    """``tinyharness ARGS`` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    return build_package(tmp_path_factory.getbasetemp() / "submission")


def copy_run(run: Path, dest: Path, name: str, **changes) -> Path:
    target = dest / name
    shutil.copytree(run, target)
    summary = json.loads((target / "summary.json").read_text())
    summary.update(changes)
    (target / "summary.json").write_text(json.dumps(summary, indent=1))
    return target


# -- the package from the four real runs -----------------------------------------------------------
@pytest.mark.slow
def test_the_runs_are_valid_mlperf_tiny_runs(built):
    for key, run in built["runs"].items():
        summary = json.loads((run / "summary.json").read_text())
        assert summary["valid"] and summary["mode"] == "all", (key, summary["invalid_reasons"])
        assert len(summary["windows"]["details"]) == 5
        assert all(w["runtime_s"] >= 10.0 for w in summary["windows"]["details"])
        if key.startswith("ad"):
            assert summary["accuracy"]["value"] == 1.0 and summary["accuracy"]["files"] == 6
        else:
            assert summary["accuracy"]["value"] >= 90.0 and summary["dataset"]["count"] == 1000


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["folder", "archive"])
def test_the_package_passes_check(built, kind):
    rc, out, err = cli("check", str(built[kind]))
    assert rc == 0, out + err
    assert out.strip().endswith("runs all pass)") and len(out.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_tree_holds_exactly_the_submission_files(built):
    root, top = built["folder"], built["folder"] / "closed" / SUBMITTER
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted(os.listdir(root)) == ["closed", "manifest.json"]
    assert sorted(os.listdir(top)) == ["results", "systems", "tinyharness"]
    assert sorted(os.listdir(top / "systems")) == sorted(f"{s}.json" for s in SYSTEMS.values())
    expected_models = {"host-tflite": ["ad", "kws"], "host-ort": ["kws"], "host-openvino": ["ad"]}
    for system, models in expected_models.items():
        assert sorted(os.listdir(top / "results" / system)) == models
        for model in models:
            for test in ("accuracy", "performance"):
                assert sorted(os.listdir(top / "results" / system / model / test)) == \
                    ["log.txt", "results.json", "results.txt"]
            (run,) = os.listdir(top / "tinyharness" / system / model)
            assert sorted(os.listdir(top / "tinyharness" / system / model / run)) == \
                ["accuracy.json", "detail.txt", "latencies.npy", "status.json", "summary.json", "summary.txt"]
    manifest = json.loads((root / "manifest.json").read_text())
    listed = {e["path"]: e for e in manifest["files"]}
    assert sorted(listed) == [f for f in files if f != "manifest.json"]
    for rel, entry in listed.items():
        assert entry["size"] == (root / rel).stat().st_size
        assert entry["sha256"] == sha256_of(root / rel)
    assert not [p for p in root.rglob("*") if p.is_symlink() or p.name == "__pycache__"
                or (p.is_dir() and not any(p.iterdir()))]
    with tarfile.open(built["archive"]) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    assert sorted(names) == files


@pytest.mark.slow
def test_results_txt_holds_the_lines_the_checker_parses(built):
    top = built["folder"] / "closed" / SUBMITTER / "results"
    for key, (bench, sut) in RUNS.items():
        summary = json.loads((built["runs"][key] / "summary.json").read_text())
        folder = top / SYSTEMS[sut] / SHORT[bench]
        acc = (folder / "accuracy" / "results.txt").read_text()
        stamp = r"\d{4}\.\d{6} ulp-mlperf: "
        if bench == "kws01":  # top-1, then the runner's one-vs-rest AUC of the outputs
            assert re.fullmatch(stamp + r"Top 1% = \d+\.\d\n" + stamp + r"AUC = [01]\.\d{3}\n", acc), acc
            assert float(rl.last_value(rl.TOP1, acc)) == round(summary["accuracy"]["value"], 1)
            assert 0.9 < float(rl.last_value(rl.AUC, acc)) <= 1.0
        else:
            assert re.fullmatch(stamp + r"AUC = 1\.000\n", acc), acc
        perf = (folder / "performance" / "results.txt").read_text()
        windows, problems = rl.parse_windows(perf)
        assert not problems and len(windows) == 5
        assert perf.count("Runtime requirements have been met.") == 5
        assert [w["inferences"] for w in windows] == [d["inferences"] for d in summary["windows"]["details"]]
        median_line = [ln for ln in perf.splitlines() if "Median throughput" in ln]
        assert re.fullmatch(stamp + r"Median throughput is [ \d]{5,}\d\.\d{3} inf\./sec\.", median_line[0])
        assert float(rl.last_value(rl.MEDIAN, perf)) == summary["windows"]["median_throughput_ips"]
        lines = perf.splitlines()
        assert lines[-1] == lines[-3] and lines[-1].endswith("-" * 57)  # framed by dashed lines


STEP_KEYS = ["file", "classes", "class", "bytes_to_send", "stride", "total_length", "infer", "mode"]


def runner_summary(steps: list[dict]) -> dict:
    """What the MLCommons runner's summarize_result (mlcommons/tiny benchmark/runner/main.py) makes
    of a results.json: the median of the steps' throughputs, or each file's outputs (each inference
    normalized to sum 1 where it has several values, then averaged per file), top-1 and the AUC
    (scikit-learn: column 1 of two, one-vs-rest over more, the score itself for AD)."""
    from sklearn.metrics import roc_auc_score

    throughputs = [s["infer"]["throughput"] for s in steps if "throughput" in s["infer"]]
    if throughputs:
        return {"median": float(np.median(throughputs))}
    files: dict[str, tuple[int, list]] = {}
    for s in steps:
        rows = s["infer"]["results"]
        rows = rows if len(rows) == 1 else [v / sum(rows) for v in rows]
        files.setdefault(s["file"], (int(s["class"]), []))[1].append(rows)
    y_true = np.array([label for label, _ in files.values()])
    y_pred = np.array([np.mean(rows, axis=0) for _, rows in files.values()])
    auc = roc_auc_score(y_true, y_pred[:, 1]) if y_pred.shape[1] == 2 else \
        roc_auc_score(y_true, y_pred, multi_class="ovr")
    return {"top1": 100 * float(np.mean(y_pred.argmax(axis=1) == y_true)), "auc": float(auc)}


@pytest.mark.slow
def test_results_json_and_log_txt(built):
    top = built["folder"] / "closed" / SUBMITTER / "results"
    for key, (bench, sut) in RUNS.items():
        run = built["runs"][key]
        summary = json.loads((run / "summary.json").read_text())
        folder = top / SYSTEMS[sut] / SHORT[bench]
        text = (folder / "accuracy" / "results.json").read_text()
        assert "\n" not in text  # one line, as the runner's json.dump writes it
        acc = json.loads(text)
        perf = json.loads((folder / "performance" / "results.json").read_text())
        labels = [ln.split(",") for ln in (Path(summary["dataset"]["path"]) / "y_labels.csv").read_text().splitlines()]
        assert all(list(s) == STEP_KEYS for s in acc + perf)  # the runner's keys, in its order
        assert all(s["mode"] == "a" for s in acc) and all(s["mode"] == "p" for s in perf)
        # one step per inference, in label-file order: AD's 196 windows of each file
        per_file = 196 if bench == "ad01" else 1
        assert [(s["file"], s["classes"], s["class"]) for s in acc] == \
            [(r[0], r[1], r[2]) for r in labels for _ in range(per_file)]
        for s in acc:
            assert {k: v for k, v in s["infer"].items() if k != "results"} == \
                {"total_inferences": 1, "iterations": 1, "warmups": 0}
        details = summary["windows"]["details"]
        assert [s["file"] for s in perf] == [d["file"] for d in details]
        classes = {r[0]: r[2] for r in labels}
        for s, d in zip(perf, details):
            infer = s["infer"]
            assert s["class"] == classes[s["file"]] and infer["iterations"] == d["inferences"]
            assert infer["elapsed_time"] == round(d["runtime_s"] * 1e6) >= 10_000_000  # microseconds
            assert isinstance(infer["elapsed_time"], int) and infer["warmups"] == 10
            assert infer["throughput"] == infer["iterations"] / (infer["elapsed_time"] / 1e6)
            # the summary's figure: N over the unrounded time, to 3 decimals (elapsed_time is whole us)
            assert abs(infer["throughput"] - d["throughput_ips"]) <= 5e-4 + infer["throughput"] * 1e-7
            assert (infer["results"], infer["total_inferences"]) == ([], 0)
        if bench == "ad01":
            assert all((s["bytes_to_send"], s["stride"], s["total_length"]) == ("2560", "512", 196) for s in acc)
            assert all((s["bytes_to_send"], s["stride"], s["total_length"]) == ("2560", "512", 1) for s in perf)
            scores = [np.mean([s["infer"]["results"][0] for s in acc[k * 196:(k + 1) * 196]]) for k in range(6)]
            assert min(scores[1::2]) > 4 * max(scores[0::2])  # anomalies far above the normal files
        else:
            assert all(len(s["infer"]["results"]) == 12 for s in acc)
            assert all((s["bytes_to_send"], s["stride"], s["total_length"]) == (None, None, None) for s in acc + perf)
        # the runner's own reading of these files gives the figures results.txt reports
        pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) reads them as the runner does")
        figures = {**runner_summary(acc), **runner_summary(perf)}
        txt = (folder / "accuracy" / "results.txt").read_text()
        assert float(rl.last_value(rl.AUC, txt)) == round(figures["auc"], 3)
        if bench == "kws01":
            assert float(rl.last_value(rl.TOP1, txt)) == round(figures["top1"], 1)
        assert abs(figures["median"] - summary["windows"]["median_throughput_ips"]) <= 5e-4 + figures["median"] * 1e-7
        for test in ("accuracy", "performance"):
            log = (folder / test / "log.txt").read_text()
            assert (run / "summary.txt").read_text() in log and (run / "detail.txt").read_text() in log
            assert log.endswith((folder / test / "results.txt").read_text())


@pytest.mark.slow
def test_system_descriptions_in_the_package(built):
    for sut, system in SYSTEMS.items():
        doc = json.loads((built["folder"] / "closed" / SUBMITTER / "systems" / f"{system}.json").read_text())
        assert system_json.problems(doc) == [] and "system_type" not in doc
        assert (doc["Submitter"], doc["Division"], doc["Status"]) == (SUBMITTER, "Closed", "available")
        from tinyharness.plugins import registry

        cls = registry().get(sut)
        assert doc["Inference Framework"] == f"{cls.runtime} {cls.runtime_version()}"


@pytest.mark.slow
def test_the_archive_is_deterministic(built, tmp_path):
    again = tmp_path / "again.tar.gz"
    rc, _, err = cli("package", *map(str, built["runs"].values()), "--submitter", SUBMITTER,
                     "--division", "closed", *built["systems"], "--output", str(again))
    assert rc == 0, err
    assert again.read_bytes() == built["archive"].read_bytes()
    with tarfile.open(again) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(946684800, 0, 0, "", "")}


@pytest.mark.slow
def test_separate_accuracy_and_performance_runs_are_combined(built, tmp_path):
    run = built["runs"]["kws-tflite"]
    acc = copy_run(run, tmp_path, "acc-run", mode="accuracy", latency_us=None, early_stopping=None,
                   qps=None, performance=None, windows=None)
    perf = copy_run(run, tmp_path, "perf-run", mode="performance", accuracy=None)
    system = built["systems"][1].split("=", 1)[1]
    rc, out, err = cli("package", str(acc), str(perf), "--submitter", SUBMITTER, "--division", "closed",
                       "--system", system, "--output", str(tmp_path / "combined"))
    assert rc == 0, err
    root = tmp_path / "combined"
    assert sorted(os.listdir(root / "closed" / SUBMITTER / "tinyharness" / "host-tflite" / "kws")) == \
        ["acc-run", "perf-run"]
    assert checker.check_package(root) == []
    # the checker sees a model that differs between the two runs
    summary_path = root / "closed" / SUBMITTER / "tinyharness" / "host-tflite" / "kws" / "perf-run" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["model"]["sha256"] = "0" * 64
    summary_path.write_text(json.dumps(summary))
    archive.write_manifest(root)
    found = checker.check_package(root)
    assert {v.rule for v in found} == {"model-mismatch"}, found
    assert found[0].path == f"closed/{SUBMITTER}/results/host-tflite/kws"
    # ... and the packager refuses such runs
    bad = copy_run(perf, tmp_path, "perf-other-model")
    summary = json.loads((bad / "summary.json").read_text())
    summary["model"]["sha256"] = "1" * 64
    (bad / "summary.json").write_text(json.dumps(summary))
    rc, _, err = cli("package", str(acc), str(bad), "--submitter", SUBMITTER, "--division", "closed",
                     "--system", system, "--output", str(tmp_path / "refused"))
    assert rc == 2 and "perf-other-model" in err and "same model" in err
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_two_runs_sharing_a_name_in_two_folders_are_packaged_together(built, tmp_path):
    run = built["runs"]["kws-tflite"]
    name = "20261201-220717_kws01_tflite-cpu_single-stream"  # the old to-the-second names clashed
    acc = copy_run(run, tmp_path / "a", name, mode="accuracy", latency_us=None, early_stopping=None,
                   qps=None, performance=None, windows=None)
    perf = copy_run(run, tmp_path / "b", name, mode="performance", accuracy=None)
    system = built["systems"][1].split("=", 1)[1]
    rc, _, err = cli("package", str(acc), str(perf), "--submitter", SUBMITTER, "--division", "closed",
                     "--system", system, "--output", str(tmp_path / "pkg"))
    assert rc == 0, err
    kws = tmp_path / "pkg" / "closed" / SUBMITTER / "tinyharness" / "host-tflite" / "kws"
    assert sorted(os.listdir(kws)) == [name, f"{name}-2"]
    assert checker.check_package(tmp_path / "pkg") == []
    rc, _, err = cli("package", str(acc), str(tmp_path / "a" / ".." / "a" / name), "--submitter", SUBMITTER,
                     "--division", "closed", "--system", system, "--output", str(tmp_path / "twice"))
    assert rc == 2 and "given twice" in err and not (tmp_path / "twice").exists()


@pytest.mark.slow
def test_a_closed_package_refuses_a_blank_board_name(built, tmp_path):
    run = built["runs"]["kws-tflite"]
    system = Path(built["systems"][1].split("=", 1)[1])
    blank = tmp_path / system.name
    blank.write_bytes(system_json.render({**json.loads(system.read_text()), "Board Name": " "}))
    args = ("package", str(run), "--submitter", SUBMITTER, "--system", f"tflite-cpu={blank}")
    rc, _, err = cli(*args, "--division", "closed", "--output", str(tmp_path / "closed"))
    assert rc == 2 and "Board Name is empty" in err and "N/A" in err, err
    rc, _, err = cli(*args, "--division", "open", "--output", str(tmp_path / "open"))
    assert rc == 0, err  # the open division does not ask


def refusal_cases(run: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (the runs to package, what the one-line error must say)."""
    def edited(name, file="summary.json", **changes):
        target = tmp / name
        shutil.copytree(run, target)
        doc = json.loads((target / file).read_text())
        doc.update(changes)
        (target / file).write_text(json.dumps(doc))
        return str(target)

    missing = tmp / "missing-file"
    shutil.copytree(run, missing)
    (missing / "accuracy.json").unlink()
    return {
        "digits01-closed": ([edited("digits", benchmark="digits01")], "not an MLPerf Tiny benchmark"),
        "not-done": ([edited("failed-run", "status.json", state="failed", error="boom")], "not 'done'"),
        "unsound": ([str(missing)], "accuracy.json"),
        "invalid": ([edited("invalid-run", valid=False, invalid_reasons=[{
            "code": "window-duration", "message": "window 3 ran 9.000 s, needs at least 10 s"}])], "INVALID"),
        "offline": ([edited("offline-run", scenario="offline")], "single-stream"),
        "accuracy-only": ([edited("acc-only", mode="accuracy")], "no performance run"),
        "two-providers": ([str(run), edited("same-again")], "also come from run"),
        "not-a-folder": ([str(tmp / "nothing-here")], "not a run directory"),
    }


@pytest.mark.slow
def test_packaging_refuses_with_one_line_naming_the_run(built, tmp_path):
    run = built["runs"]["kws-tflite"]
    system = built["systems"][1].split("=", 1)[1]
    for name, (runs, says) in refusal_cases(run, tmp_path / "runs").items():
        rc, out, err = cli("package", *runs, "--submitter", SUBMITTER, "--division", "closed",
                           "--system", system, "--output", str(tmp_path / name))
        assert rc == 2, (name, err)
        line = err.strip()
        assert "\n" not in line and says in line, (name, line)
        assert Path(runs[-1]).name in line, (name, line)
        assert not (tmp_path / name).exists()
    digits = refusal_cases(run, tmp_path / "again")["digits01-closed"][0]
    rc, _, err = cli("package", *digits, "--submitter", SUBMITTER, "--division", "open",
                     "--system", system, "--output", str(tmp_path / "open"))
    assert rc == 2 and "not an MLPerf Tiny benchmark" in err  # refused in the open division too


@pytest.mark.slow
def test_packaging_refuses_bad_options(built, tmp_path):
    runs = [str(p) for p in built["runs"].values()]
    tflite = built["systems"][1].split("=", 1)[1]
    cases = {
        "no system for a SUT": (["--system", f"tflite-cpu={tflite}"], "no --system for SUT"),
        "two SUTs share a system": (["--system", tflite], "would share system"),
        "output exists": ([*built["systems"], "--output", str(built["folder"])], "exists"),
        "bad submitter": ([*built["systems"], "--submitter", "Evil/../Org"], "--submitter"),
    }
    for name, (extra, says) in cases.items():
        args = ["package", *runs, "--division", "closed"]
        args += extra if "--submitter" in extra else ["--submitter", SUBMITTER, *extra]
        if "--output" not in extra:
            args += ["--output", str(tmp_path / "out")]
        rc, _, err = cli(*args)
        assert rc == 2 and says in err, (name, err)
    assert not (tmp_path / "out").exists()
    assert sorted(os.listdir(tmp_path)) == []  # no staging folder left behind


# -- the runner's form, on the device-timed serial fixture (no runs needed) ----------------------
def serial_package(tmp_path: Path, run: Path = SERIAL_RUN, division: str = "closed") -> Path:
    from tinyharness.submission.package import build

    tmp_path.mkdir(parents=True, exist_ok=True)
    system = tmp_path / "dut-board.json"
    system.write_bytes(system_json.render(filled_system(system_json.describe(sut="serial", submitter=SUBMITTER))))
    return build([run], SUBMITTER, division, [(None, system)], tmp_path / "package")


def test_results_json_is_the_runners_list_of_steps(tmp_path):
    folder = serial_package(tmp_path) / "closed" / SUBMITTER / "results" / "dut-board" / "kws"
    acc = json.loads((folder / "accuracy" / "results.json").read_text())
    perf = json.loads((folder / "performance" / "results.json").read_text())
    log = json.loads((SERIAL_RUN / "accuracy.json").read_text())
    assert len(acc) == len(log) == 1000 and len(perf) == 5
    first = log[0]
    outputs = np.frombuffer(bytes.fromhex(first["data"]), "<f4").astype(float).tolist()
    assert acc[0] == {"file": "tst_000000_Stop_7.bin", "classes": "12", "class": "7", "bytes_to_send": None,
                      "stride": None, "total_length": None, "infer": {"results": outputs, "total_inferences": 1,
                                                                      "iterations": 1, "warmups": 0}, "mode": "a"}
    # window 1 of the run: 2910 inferences in 17.336406 s (device clock), its file labelled 7
    assert perf[0] == {"file": "tst_000000_Stop_7.bin", "classes": "12", "class": "7", "bytes_to_send": None,
                       "stride": None, "total_length": None,
                       "infer": {"results": [], "elapsed_time": 17_336_406, "total_inferences": 0,
                                 "iterations": 2910, "warmups": 10, "throughput": 2910 / 17.336406},
                       "mode": "p"}
    assert "attempts" not in json.dumps(perf)  # tinyharness's own records stay in the run folder


def test_results_txt_adds_the_runners_auc_to_top1(tmp_path):
    from tinyharness import scoring

    folder = serial_package(tmp_path) / "closed" / SUBMITTER / "results" / "dut-board" / "kws"
    text = (folder / "accuracy" / "results.txt").read_text()
    log = json.loads((SERIAL_RUN / "accuracy.json").read_text())
    outputs = [np.frombuffer(bytes.fromhex(e["data"]), "<f4") for e in log]
    auc = scoring.multiclass_roc_auc([e["label"] for e in log], outputs)
    assert 0.9 < auc < 1.0
    assert text == f"1201.224152 ulp-mlperf: Top 1% = 90.1\n1201.224152 ulp-mlperf: AUC = {auc:.3f}\n"
    assert float(rl.last_value(rl.TOP1, text)) == 90.1  # what both checkers read is unchanged


def test_a_serial_package_names_the_firmwares_model_and_passes_check(tmp_path):
    root = serial_package(tmp_path)
    assert checker.check_package(root) == []
    embedded = root / "closed" / SUBMITTER / "tinyharness" / "dut-board" / "kws" / SERIAL_RUN.name
    model = json.loads((embedded / "summary.json").read_text())["model"]
    assert (model["found_in"], model["reference"], model["format"]) == ("device", "kws_ref_model.tflite", "tflite")
    assert "kws_ref_model.tflite (sha256 aeea436800704fce...)" in (embedded / "summary.txt").read_text()


def test_a_device_run_without_its_model_file_is_open_division_only(tmp_path):
    from tinyharness.errors import UsageError

    with pytest.raises(UsageError) as refused:
        serial_package(tmp_path / "closed", SERIAL_RUN_UNNAMED)
    message = str(refused.value)
    assert "\n" not in message and SERIAL_RUN_UNNAMED.name in message
    assert "not identified (sha256 n/a)" in message and "--sut-option model_file=PATH" in message
    assert not (tmp_path / "closed" / "package").exists()
    root = serial_package(tmp_path / "open", SERIAL_RUN_UNNAMED, "open")
    assert checker.check_package(root) == []


# -- system init (no runs needed) --------------------------------------------------------------
def test_system_init_prints_every_field_and_no_system_type():
    rc, out, err = cli("system", "init")
    assert rc == 0, err
    doc = json.loads(out)
    assert list(doc) == list(system_json.FIELDS) and "system_type" not in doc
    assert system_json.problems(doc) == []
    assert doc["Status"] == "available" and doc["Processor(s) Name"]
    assert doc["Operating System"] and doc["Other Software Stack"].startswith("Python ")
    assert doc["Software Libraries"].startswith("tinyharness ")
    assert doc["Accelerator"] == "" and doc["Board Memory type"] == ""  # for the user to complete


def test_system_init_writes_a_file_and_fills_the_runtime(tmp_path):
    path = tmp_path / "my-board.json"
    rc, _, err = cli("system", "init", "--sut", "onnxruntime-cpu", "--submitter", "ACME",
                     "--division", "open", "--status", "preview", "--output", str(path))
    assert rc == 0, err
    doc = json.loads(path.read_text())
    assert (doc["Submitter"], doc["Division"], doc["Status"]) == ("ACME", "Open", "preview")
    if importlib.util.find_spec("onnxruntime"):
        import onnxruntime

        assert doc["Inference Framework"] == f"onnxruntime {onnxruntime.__version__}"
    assert "note: the closed division needs Board Name" in err and "N/A" in err
    rc, _, err = cli("system", "init", "--output", str(path))
    assert rc == 2 and "--force" in err
    rc, _, err = cli("system", "init", "--sut", "no-such-sut")
    assert rc == 2 and "unknown SUT" in err


def test_the_system_schema_rules():
    doc = system_json.describe()
    assert system_json.problems(doc) == []
    assert [r for r, _ in system_json.problems({**doc, "Status": "released"})] == ["system-status"]
    assert [r for r, _ in system_json.problems({**doc, "Status": "RDI"})] == []
    assert [r for r, _ in system_json.problems({**doc, "system_type": "edge"})] == ["system-type"]
    assert [r for r, _ in system_json.problems({**doc, "system_type": None})] == ["system-type"]
    missing = dict(doc)
    del missing["Board Name"], missing["Status"]
    assert sorted(r for r, _ in system_json.problems(missing)) == ["system-json", "system-status"]
    assert system_json.problems([]) == [("system-json", "a system description is a JSON object, not list")]
    blank = {**filled_system(doc), "Board Name": "", "Accelerator": "  "}
    assert system_json.problems(blank, "open") == []
    (rule, message), = system_json.problems(blank, "closed")
    assert rule == "system-blank" and message.startswith("Board Name, Accelerator are empty")
    assert system_json.problems(filled_system(doc), "closed") == []
