"""One benchmark run, end to end: resolve inputs, load the SUT, run the passes, write the logs."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import results
from .benchmark import Benchmark, get_benchmark
from .dataset import Dataset
from .errors import RunFailed, UsageError
from .logs import DetailLog, RunDirectory
from .fileio import sha256_of
from .model_store import ModelStore
from .plugins import registry
from .progress import Progress
from .qsl import QSL, Seeds
from .scenarios.accuracy import AccuracyRun, run_accuracy
from .scenarios.offline import run_offline
from .scenarios.single_stream import run_device_window, run_queries, run_window
from .settings import TestSettings
from .system import describe_host


@dataclass
class RunRequest:
    benchmark: str | None = None
    sut: str = "onnxruntime-cpu"
    scenario: str = "single-stream"
    mode: str = "all"
    model: Path | None = None
    dataset: Path | None = None
    output: Path = Path("results")
    min_duration_s: float | None = None
    min_query_count: int | None = None
    expected_qps: float | None = None
    seed: int = 0
    sut_options: dict[str, str] = field(default_factory=dict)


def measure_overhead(scenario: str, repeats: int = 5) -> float:
    """The harness's own cost per query (µs): the issue-to-issue period of the same loop driving
    the null SUT (single-stream), or the per-sample cost of an offline query to it."""
    from .suts.null import NullSUT

    sut = NullSUT(scenario)
    sut.load(Path("null.onnx"))
    samples = [np.zeros(1, dtype=np.float32)] * 16
    periods = []
    for r in range(repeats):
        if scenario == "single-stream":
            run = run_queries(sut, samples, r, min_duration_s=0.02, min_query_count=1)
            periods.append((run.end_ns - run.start_ns) / run.count / 1e3)
        else:
            completions = np.zeros(20000, dtype=np.int64)
            start = time.perf_counter_ns()
            sut.issue_offline(samples * 1250, completions)
            periods.append((time.perf_counter_ns() - start) / len(completions) / 1e3)
    return round(float(np.median(periods)), 4)


class Run:
    """Resolved, validated inputs of one run; :meth:`execute` does the work."""

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.benchmark: Benchmark = get_benchmark(request.benchmark)
        self.sut_cls = registry().get(request.sut)
        if request.scenario not in self.sut_cls.scenarios:
            raise UsageError(f"SUT {request.sut!r} does not support the {request.scenario} scenario")
        self.settings = TestSettings.resolve(
            self.benchmark, request.scenario, request.mode, request.seed, request.min_duration_s,
            request.min_query_count, request.expected_qps)
        self.sut_cls.parse_options(request.sut_options)  # fail before creating a run directory
        b = self.benchmark
        self.dataset = Dataset.open(request.dataset or b.default_dataset(), b.dataset_id,
                                    b.label_file, b.sample_shape, b.sample_dtype, b.windowed)
        if not self.sut_cls.needs_model:
            if request.model:
                raise UsageError(f"SUT {request.sut!r} runs the model flashed on the device; "
                                 "--model does not apply")
            self.model, self.model_found_in = None, "device"
        elif request.model:
            self.model, self.model_found_in = Path(request.model), "--model"
            if not self.model.is_file():
                raise UsageError(f"model file {self.model} does not exist")
        else:
            found = ModelStore().resolve(b.default_entry(self.sut_cls.model_formats))
            self.model, self.model_found_in = found.path, found.where
        if self.model is not None:
            self.sut_cls.check_format(self.model)
        self.seeds = Seeds.from_seed(request.seed)

    def execute(self, progress: Progress) -> tuple[dict[str, Any], RunDirectory]:
        req, settings = self.request, self.settings
        run_dir = RunDirectory.create(req.output, self.benchmark.id, req.sut, req.scenario)
        run_dir.set_status("running")
        detail = DetailLog()
        summary: dict[str, Any] = {}
        sut = None
        try:
            started = datetime.now(timezone.utc)
            detail.event("test_datetime", started.isoformat(timespec="seconds"))
            detail.event("requested_scenario", req.scenario)
            detail.event("requested_test_mode", req.mode)
            for key, value in {**settings.to_dict(), **self.seeds.to_dict()}.items():
                detail.event(f"effective_{key}", value)
            sut = self.sut_cls(req.scenario, req.sut_options, benchmark=self.benchmark.id)
            t = time.perf_counter_ns()
            sut.load(self.model)
            detail.event("sut_load_ms", round((time.perf_counter_ns() - t) / 1e6, 3))
            description = sut.describe()
            detail.event("sut_name", description.to_dict())
            in_spec = sut.input_spec()
            # An empty dtype takes the raw dataset sample as it is (the null SUT; a device that
            # applies its own transform, as MLPerf Tiny firmware does in th_load_tensor).
            kind = self.benchmark.transform.get(in_spec.dtype) if in_spec.dtype else "identity"
            if kind is None:
                raise UsageError(f"{self.model.name}: input dtype {in_spec.dtype} is not one benchmark "
                                 f"{self.benchmark.id} can feed ({', '.join(self.benchmark.transform)})")
            qsl = QSL(self.dataset, kind, in_spec)
            qsl.load([0])  # fail early on a shape mismatch, before any timing
            qsl.unload()
            detail.event("qsl_reported_total_count", qsl.total_count)
            summary = self._skeleton(description.to_dict(), started)
            summary["harness_overhead_us"] = measure_overhead(req.scenario)
            reasons = list(settings.overrides)
            if settings.runs_accuracy:
                reasons += self._accuracy(sut, qsl, summary, run_dir, detail, progress)
            if settings.runs_performance:
                reasons += self._performance(sut, qsl, summary, run_dir, detail, progress)
            summary["system"]["sut"]["run_stats"] = sut.run_stats()
            detail.event("sut_run_stats", summary["system"]["sut"]["run_stats"])
            summary["invalid_reasons"] = reasons
            summary["valid"] = not reasons and not summary["errors"]
            detail.event("result_validity", "VALID" if summary["valid"] else "INVALID")
            for reason in reasons:
                detail.event("result_invalid_reason", reason)
            summary["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self._write(run_dir, summary, detail)
            run_dir.set_status("done")
            return summary, run_dir
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            message = "interrupted by the user" if interrupted else (
                str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}")
            detail.event("error_runtime", message, error=True)
            self._salvage(run_dir, summary, detail)
            run_dir.set_status("interrupted" if interrupted else "failed", message)
            if isinstance(exc, UsageError):
                raise
            raise RunFailed(f"run failed ({message}); partial results in {run_dir.path}") from exc
        finally:
            if sut is not None:
                sut.close()

    def _skeleton(self, description: dict[str, Any], started: datetime) -> dict[str, Any]:
        req = self.request
        system = describe_host()
        system.update({"runtime": description["runtime"], "runtime_version": description["runtime_version"],
                       "device": description["device"], "precision": description["precision"],
                       "inference_precision": description["inference_precision"],
                       "threads": description["threads"], "sut": description})
        return {
            "schema_version": 1, "benchmark": self.benchmark.id, "sut": req.sut,
            "scenario": req.scenario, "mode": req.mode, "valid": False, "invalid_reasons": [],
            "errors": [], "started": started.isoformat(timespec="seconds"), "finished": None,
            "settings": {**self.settings.to_dict(), **self.seeds.to_dict(),
                         "sut_options": dict(req.sut_options),
                         "performance_sample_count": len(self.dataset),
                         "rules": self.benchmark.source.name},
            "latency_us": None, "early_stopping": None, "qps": None, "performance": None,
            "windows": None, "throughput_ips": None, "offline": None, "accuracy": None,
            "harness_overhead_us": None, "system": system,
            "model": self._model_section(description),
            "dataset": {"id": self.dataset.id, "path": str(self.dataset.folder.resolve()),
                        "sha256": self.dataset.sha256(), "count": len(self.dataset)},
            "files": {},
        }

    def _model_section(self, description: dict[str, Any]) -> dict[str, Any]:
        if self.model is None:  # on the device: what it says it runs
            return {"path": f"device:{description['device']}", "sha256": None,
                    "format": description["model_format"], "size": None, "found_in": "device",
                    "reference": None}
        return {"path": str(self.model.resolve()), "sha256": sha256_of(self.model),
                "format": self.model.suffix.lstrip("."), "size": self.model.stat().st_size,
                "found_in": self.model_found_in, "reference": self._reference()}

    def _reference(self) -> str | None:
        """The reference model this file is (same name and checksum), or None for another model."""
        entry = self.benchmark.entry_for(self.model)
        return entry.file if entry and entry.sha256 == sha256_of(self.model) else None

    def _accuracy(self, sut, qsl, summary, run_dir, detail, progress) -> list[str]:
        progress.phase("accuracy", qsl.total_count)
        detail.event("generic_message", "Starting accuracy mode")
        auc, device = self.benchmark.metric == "auc", sut.timing == "device"
        run = run_accuracy(sut, qsl, sut.output_spec() if auc and not device else None,
                           progress=lambda done: progress.update(done))
        if auc and device:  # the DUT computes the window's reconstruction error itself
            run = dataclasses.replace(run, scores=run.outputs[:, 0].astype(np.float64))
        progress.update(qsl.total_count)
        section, reasons = results.accuracy_section(run, self.benchmark.metric, self.benchmark.target,
                                                    sut.output_spec())
        summary.update(section)
        run_dir.write_json("accuracy.json", self._accuracy_log(run, qsl), "accuracy")
        summary["files"]["accuracy"] = "accuracy.json"
        detail.event("accuracy_result", section["accuracy"])
        return reasons

    @staticmethod
    def _accuracy_log(run: AccuracyRun, qsl: QSL) -> list[dict[str, Any]]:
        little = run.outputs.astype(run.outputs.dtype.newbyteorder("<"), copy=False)
        log = [{"seq_id": seq, "qsl_idx": int(idx), "data": little[seq].tobytes().hex().upper(),
                "file": qsl.dataset.entries[int(idx)].file, "label": int(run.labels[seq])}
               for seq, idx in enumerate(run.indices)]
        if run.scores is not None:  # AD: the per-window score that the file score averages
            for entry, score in zip(log, run.scores):
                entry["score"] = float(score)
        else:
            for entry, prediction in zip(log, run.outputs.argmax(axis=1)):
                entry["prediction"] = int(prediction)
        return log

    def _performance(self, sut, qsl, summary, run_dir, detail, progress) -> list[str]:
        settings = self.settings
        rules = self.benchmark.single_stream if settings.scenario == "single-stream" else self.benchmark.offline
        perf_set = qsl.performance_set(rules.performance_sample_count or qsl.total_count, self.seeds)
        qsl.load(perf_set)
        loaded = [qsl.sample(int(i)) for i in perf_set]
        detail.event("loaded_qsl_set", [int(i) for i in perf_set])
        detail.event("generic_message", "Starting performance mode")
        if settings.scenario == "offline":
            progress.phase("offline", None)
            run = run_offline(sut, loaded, settings.min_duration_s, settings.min_query_count,
                              settings.offline_expected_qps)
            section, reasons = results.offline_section(run, settings)
            run_dir.write_npy("latencies.npy", run.completions_ns)
            summary["files"]["latencies"] = "latencies.npy"
            detail.event("result_samples_per_second", section["throughput_ips"])
        elif sut.timing == "device":
            section, reasons = self._device_windows(sut, qsl, detail, progress)
        else:
            progress.phase("single-stream", settings.min_duration_s)
            query_run = run_queries(
                sut, loaded, self.seeds.sample_index_rng_seed, settings.min_duration_s,
                settings.min_query_count, settings.max_duration_s,
                progress=lambda n, s: progress.update(min(s, settings.min_duration_s), f"{n} queries"))
            run_dir.write_npy("latencies.npy", query_run.latencies_ns)
            summary["files"]["latencies"] = "latencies.npy"
            section, reasons = results.single_stream_section(query_run, settings)
            detail.event("result_query_count", query_run.count)
            detail.event("early_stopping_latency_ss", section["latency_us"]["p90_early_stopping"])
            windows = []
            progress.phase("MLPerf Tiny windows", settings.windows)
            firsts = qsl.dataset.first_of_groups(settings.windows)  # AD: a file's first window
            qsl.load(firsts)
            for done, index in enumerate(firsts, start=1):
                windows.append(run_window(sut, qsl.sample(index), index, qsl.dataset.entries[index].file,
                                          settings.window_min_s, float(query_run.latencies_ns.mean())))
                progress.update(done)
                detail.event("window_result", windows[-1].__dict__ | {"throughput_ips": windows[-1].throughput_ips})
            win_section, win_reasons = results.windows_section(windows, settings)
            section["windows"] = win_section
            reasons += win_reasons
        qsl.unload()
        summary.update(section)
        return reasons

    def _device_windows(self, sut, qsl, detail, progress) -> tuple[dict[str, Any], list[str]]:
        """MLPerf Tiny performance on a device-timed SUT: the windows alone, device clock only."""
        settings = self.settings
        progress.phase("MLPerf Tiny windows (device-timed)", settings.windows)
        firsts = qsl.dataset.first_of_groups(settings.windows)
        qsl.load(firsts)
        windows = []
        for done, index in enumerate(firsts, start=1):
            windows.append(run_device_window(sut, qsl.sample(index), index,
                                             qsl.dataset.entries[index].file, settings.window_min_s))
            progress.update(done)
            detail.event("window_result", windows[-1].__dict__ | {"throughput_ips": windows[-1].throughput_ips})
        win_section, reasons = results.windows_section(windows, settings)
        return {"windows": win_section}, reasons

    def _write(self, run_dir: RunDirectory, summary: dict[str, Any], detail: DetailLog) -> None:
        run_dir.write_detail(detail)
        summary["files"].update({"detail": "detail.txt", "text": "summary.txt"})
        run_dir.write_json("summary.json", summary, "summary")
        run_dir.write_text("summary.txt", results.render_text(summary))

    def _salvage(self, run_dir: RunDirectory, summary: dict[str, Any], detail: DetailLog) -> None:
        """After a failure, keep what exists: the detail log always, a partial summary unvalidated."""
        try:
            run_dir.write_detail(detail)
        except Exception:
            run_dir.write_text("detail.txt", detail.render())
        if summary:
            summary["valid"] = False
            run_dir.write_json("partial_summary.json", summary, None)
