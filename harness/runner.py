"""One benchmark run, as a plan: resolve → load the SUT → accuracy pass → performance pass(es) → write.

:class:`Run` resolves and validates every input before anything is created (a user mistake is a
one-line UsageError and no run directory); :meth:`Run.execute` runs the passes and writes the run
directory, which says ``failed`` or ``interrupted`` when the run does not finish.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import heartbeat, supervisor
from .benchmark import get_benchmark
from .dataset import Dataset
from .errors import RunFailed, RunInterrupted, Terminated, UsageError
from .fileio import sha256_bounded
from .host import HostSampler
from .logs import DetailLog, RunDirectory, SpilledValues, json_safe
from .metrics.select import resolve as resolve_metrics
from .model_store import ModelStore, model_file
from .native_output import captured
from .plugins import registry
from .progress import Progress
from .qsl import QSL, Seeds
from .results import Measurement, Reason, ReasonCode, RunSummary, render
from .results.sections import DatasetInfo, Model, Repetitions, Settings, Startup, SUTInfo, System
from .results.stability import Stability
from .scenarios.accuracy import AccuracyPass
from .scenarios.base import Context, Pass
from .scenarios.offline import OfflinePass
from .scenarios.single_stream import SingleStreamPass
from .scenarios.windows import WindowsPass
from .settings import Mode, Scenario, TestSettings
from .sut import SUT, Timing
from .system import describe_host


@dataclass
class RunRequest:
    """What the user asked for, as the command line gives it."""

    benchmark: str | None = None
    sut: str | None = None  # None: the first installed host SUT (plugins.default_sut)
    scenario: Scenario | str = Scenario.SINGLE_STREAM
    mode: Mode | str = Mode.ALL
    model: Path | None = None
    dataset: Path | None = None
    output: Path = Path("results")
    min_duration_s: float | None = None
    min_query_count: int | None = None
    expected_qps: float | None = None
    seed: int = 0
    sut_options: dict[str, str] = field(default_factory=dict)
    repeat: int = 1
    metrics: tuple[str, ...] = ()  # --metric: more quality metrics for the accuracy pass

    def __post_init__(self) -> None:  # the API takes the str paths the command line gives
        self.output = Path(self.output)
        self.model = None if self.model is None else Path(self.model)
        self.dataset = None if self.dataset is None else Path(self.dataset)


class Run:
    """Resolved, validated inputs of one run; :meth:`execute` does the work."""

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.benchmark = b = get_benchmark(request.benchmark)
        if request.sut is None:
            request.sut = registry().default_sut()
        self.sut_cls = registry().get(request.sut)
        self.settings = TestSettings.resolve(b, request.scenario, request.mode, request.seed,
                                             request.min_duration_s, request.min_query_count,
                                             request.expected_qps, request.repeat)
        if self.settings.scenario not in self.sut_cls.scenarios:
            raise UsageError(f"SUT {request.sut!r} does not support the {self.settings.scenario} scenario")
        self.config = self.sut_cls.parse_options(request.sut_options)
        self.dataset = Dataset.for_benchmark(b, request.dataset)
        self.model, self.model_found_in = self._resolve_model()
        self.seeds = Seeds.from_seed(request.seed)
        self.metrics = resolve_metrics(b, tuple(request.metrics), self.settings.runs_accuracy)

    def _resolve_model(self) -> tuple[Path | None, str]:
        req, cls = self.request, self.sut_cls
        if not cls.needs_model:
            if req.model:
                raise UsageError(f"SUT {req.sut!r} runs the model flashed on the device; "
                                 "--model does not apply")
            return None, "device"
        if req.model:
            model_file(req.model)  # a bounded regular file, or a one-line error
            found = Path(req.model), "--model"
        else:
            resolved = ModelStore().resolve(self.benchmark.default_entry(cls.model_formats))
            found = resolved.path, resolved.where
        cls.check_format(found[0])
        return found

    # -- the plan ---------------------------------------------------------------------------------
    def performance_passes(self, sut: SUT, context: Context) -> list[Pass]:
        """The performance pass of the scenario and the SUT's clock, ``--repeat`` times."""
        if not self.settings.runs_performance:
            return []
        if self.settings.scenario is Scenario.OFFLINE:
            performance = OfflinePass
        elif sut.timing is Timing.DEVICE:  # the device clock: the windows alone
            performance = WindowsPass
        else:
            performance = SingleStreamPass
        return [performance(context) for _ in range(self.settings.repeat)]

    def execute(self, progress: Progress) -> tuple[RunSummary, RunDirectory]:
        req = self.request
        run_dir = RunDirectory.create(req.output, self.benchmark.id, req.sut, str(self.settings.scenario))
        run_dir.set_status("running")
        supervisor.run_directory_created(run_dir.path)
        detail, summary, sut = DetailLog(), None, None
        try:
            started = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self._log_settings(detail, started)
            sut = self._load(detail)
            qsl = self._qsl(sut, detail)
            summary = self._begin(sut, started)
            summary.harness_overhead_us = self._overhead()
            context = Context(self.settings, self.seeds, self.benchmark, progress, detail.event)
            if self.settings.runs_accuracy:
                self._record(AccuracyPass(context, self.metrics).run(sut, qsl), summary, run_dir)
            repetitions = self._measure_all(self.performance_passes(sut, context), sut, qsl, run_dir)
            if repetitions:
                self._record_performance(repetitions, summary, run_dir)
            self._finish(summary, sut, detail)
            closing, sut = sut, None
            self._close(closing, detail, summary)
            self._write(run_dir, summary, detail)
            run_dir.set_status("done")
            return summary, run_dir
        except BaseException as exc:
            self._fail(exc, run_dir, summary, detail, sut)
        finally:
            supervisor.run_directory_finished(run_dir.path)

    # -- steps ------------------------------------------------------------------------------------
    def _log_settings(self, detail: DetailLog, started: str) -> None:
        detail.event("test_datetime", started)
        detail.event("requested_scenario", str(self.settings.scenario))
        detail.event("requested_test_mode", str(self.settings.mode))
        for key, value in {**self.settings.to_dict(), **self.seeds.to_dict()}.items():
            detail.event(f"effective_{key}", value)
        detail.event("effective_sut_config", self.config.to_dict())

    def _load(self, detail: DetailLog) -> SUT:
        sut = self.sut_cls(self.settings.scenario, self.config, benchmark=self.benchmark)
        t = time.perf_counter_ns()
        output = captured()  # runtimes print to the process's stderr: keep it in the logs instead
        heartbeat.loading()
        try:
            with output:
                sut.load(self.model)
        except BaseException:  # a half-loaded SUT may hold a process, a port or a device
            self._close(sut, detail)
            raise
        finally:  # also when load fails: the runtime's message is kept for the failed run
            for line in output.lines():
                detail.event("runtime_output", line)
        heartbeat.beat()
        self._load_s = (time.perf_counter_ns() - t) / 1e9
        detail.event("sut_load_ms", round(self._load_s * 1e3, 3))
        self._description = self._describe(sut, detail)
        detail.event("sut_name", self._description)
        return sut

    @staticmethod
    def _describe(sut: SUT, detail: DetailLog) -> dict:
        """The SUT's description as JSON can hold it (a plugin may return anything)."""
        described, problems = json_safe(sut.describe().to_dict(), "describe()")
        for problem in problems:
            detail.event("sut_plugin_warning", problem, warning=True)
        return described

    def _qsl(self, sut: SUT, detail: DetailLog) -> QSL:
        in_spec = sut.input_spec()
        # An empty dtype takes the raw dataset sample as it is (the null SUT; a device that
        # applies its own transform, as MLPerf Tiny firmware does in th_load_tensor).
        kind = self.benchmark.transform.get(in_spec.dtype) if in_spec.dtype else "identity"
        if kind is None:
            raise UsageError(f"{self.model.name}: input dtype {in_spec.dtype} is not one benchmark "
                             f"{self.benchmark.id} can feed ({', '.join(self.benchmark.transform)})")
        qsl = QSL(self.dataset, kind, in_spec)
        qsl.load([0])  # fail early on a shape mismatch, before any timing
        try:
            self._first_us = self._first_inference(sut, qsl.sample(0), detail)
        finally:
            qsl.unload()
        detail.event("qsl_reported_total_count", qsl.total_count)
        return qsl

    @staticmethod
    def _first_inference(sut: SUT, sample, detail: DetailLog) -> float | None:
        """The first inference after loading, timed alone (benchmark_app's "First inference
        took"): lazy initialisation shows here and in no reported figure. None on a device: its
        model was flashed, not loaded, and an extra upload would cost seconds on a slow link."""
        if sut.timing is Timing.DEVICE:
            return None
        sut.prepare(sample)
        heartbeat.loading()  # a runtime may compile on its first call
        t = time.perf_counter_ns()
        try:
            sut.infer()
        except NotImplementedError:  # a SUT that only answers whole offline queries
            return None
        finally:
            heartbeat.beat()
        us = round((time.perf_counter_ns() - t) / 1e3, 3)
        detail.event("first_inference_us", us)
        return us

    def _overhead(self) -> float | None:
        from .overhead import measure_overhead

        return measure_overhead(self.settings.scenario)

    def _begin(self, sut: SUT, started: str) -> RunSummary:
        d = self._description
        info = SUTInfo(**{k: d[k] for k in ("name", "runtime", "runtime_version", "device",
                                              "model_format", "precision", "inference_precision",
                                              "threads", "extra")})
        system = System(sut=info, **{k: d[k] for k in ("runtime", "runtime_version", "device",
                                                        "precision", "inference_precision", "threads")},
                        **describe_host())
        settings = Settings(**self.settings.to_dict(), **self.seeds.to_dict(),
                            sut_options=dict(self.request.sut_options), sut_config=self.config.to_dict(),
                            metrics=list(self.request.metrics),
                            performance_sample_count=len(self.dataset), rules=self.benchmark.source.name)
        return RunSummary(benchmark=self.benchmark.id, sut=self.request.sut,
                          startup=Startup(round(self._load_s, 6), self._first_us),
                          scenario=str(self.settings.scenario), mode=str(self.settings.mode),
                          started=started, settings=settings, system=system,
                          model=self._model_info(d), dataset=self._dataset_info(),
                          invalid_reasons=[Reason(ReasonCode.OVERRIDE, o) for o in self.settings.overrides])

    def _model_info(self, description: dict) -> Model:
        if self.model is None:  # on the device: the model file it was built from, if the SUT names one
            extra = description.get("extra") if isinstance(description.get("extra"), dict) else {}
            path, digest, size = (extra.get(k) for k in ("model_file", "model_sha256", "model_size"))
            if isinstance(path, str) and path and isinstance(digest, str) and len(digest) == 64 \
                    and all(c in "0123456789abcdef" for c in digest):
                # the reference model it is: any of the rule set's files with this checksum
                entry = next((e for e in self.benchmark.models if e.sha256 == digest), None)
                known = isinstance(size, int) and not isinstance(size, bool) and size >= 0
                return Model(path, digest, Path(path).suffix.lstrip(".") or description["model_format"],
                             size if known else None, "device", entry.file if entry else None)
            return Model(f"device:{description['device']}", None, description["model_format"], None,
                         "device", None)
        digest = sha256_bounded(self.model, "model")
        entry = self.benchmark.entry_for(self.model)  # the reference model: same name and checksum
        return Model(str(self.model.resolve()), digest, self.model.suffix.lstrip("."),
                     self.model.stat().st_size, self.model_found_in,
                     entry.file if entry and entry.sha256 == digest else None)

    def _dataset_info(self) -> DatasetInfo:
        d = self.dataset
        return DatasetInfo(d.id, str(d.folder.resolve()), d.sha256(), len(d))

    def _measure_all(self, steps: list[Pass], sut: SUT, qsl: QSL,
                     run_dir: RunDirectory) -> list[Measurement]:
        """Every performance pass; with ``--repeat``, each one's per-query values go to the run
        directory as soon as it is judged, so that memory holds one repetition, not K."""
        measured = []
        for index, step in enumerate(steps, start=1):
            m = self._measure(step, sut, qsl)
            if len(steps) > 1 and m.latencies_ns is not None and getattr(m.latencies_ns, "exact", True):
                m.latencies_ns = run_dir.spill(m.latencies_ns, index)
            measured.append(m)
        return measured

    @staticmethod
    def _measure(step: Pass, sut: SUT, qsl: QSL) -> Measurement:
        """Run a performance pass with the host sampled around it (outside any timed region), and
        judge how steady the measurement was."""
        sampler = HostSampler()
        sampler.start()
        measured = step.run(sut, qsl)
        host = sampler.stop()
        latencies = measured.latencies_ns if measured.latency_us is not None else None
        windows = measured.windows.throughput_ips if measured.windows is not None else None
        measured.stability = Stability.from_run(latencies, windows, host)
        return measured

    def _record_performance(self, runs: list[Measurement], summary: RunSummary,
                            run_dir: RunDirectory) -> None:
        """The first repetition gives the sections; every repetition's reasons count (tagged
        after the first); latencies.npy holds all of them back to back."""
        first = runs[0]
        if len(runs) > 1:
            self._merge_repetitions(runs, summary)
        self._record(first, summary, run_dir)

    @staticmethod
    def _merge_repetitions(runs: list[Measurement], summary: RunSummary) -> None:
        first = runs[0]
        summary.repetitions = Repetitions.of([m.repetition(i) for i, m in enumerate(runs, start=1)])
        for index, m in enumerate(runs[1:], start=2):
            first.reasons += [Reason(r.code, f"repetition {index}: {r.message}") for r in m.reasons]
        if first.latencies_ns is not None:  # spilled parts, or None where one was a histogram
            spilled = all(isinstance(m.latencies_ns, SpilledValues) for m in runs)
            first.latencies_ns = [m.latencies_ns for m in runs] if spilled else None

    def _record(self, measured: Measurement, summary: RunSummary, run_dir: RunDirectory) -> None:
        summary.add(measured)
        values = measured.latencies_ns
        if values is not None and getattr(values, "exact", True):  # a histogram has no sequence
            run_dir.write_npy("latencies.npy", values)
            summary.files["latencies"] = "latencies.npy"
        if measured.accuracy_log is not None:
            run_dir.write_json("accuracy.json", measured.accuracy_log, "accuracy")
            summary.files["accuracy"] = "accuracy.json"

    def _finish(self, summary: RunSummary, sut: SUT, detail: DetailLog) -> None:
        stats, problems = json_safe(sut.run_stats(), "run_stats()")
        for problem in problems:
            detail.event("sut_plugin_warning", problem, warning=True)
        summary.system = dataclasses.replace(
            summary.system, sut=dataclasses.replace(summary.system.sut, run_stats=stats))
        detail.event("sut_run_stats", stats)
        summary.conclude()
        detail.event("result_validity", "VALID" if summary.valid else "INVALID")
        for reason in summary.invalid_reasons:
            detail.event("result_invalid_reason", reason.message)
        summary.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")

    @staticmethod
    def _write(run_dir: RunDirectory, summary: RunSummary, detail: DetailLog) -> None:
        run_dir.write_detail(detail)
        summary.files.update({"detail": "detail.txt", "text": "summary.txt"})
        run_dir.write_json("summary.json", summary.to_dict(), "summary")
        run_dir.write_text("summary.txt", render.text(summary))

    @staticmethod
    def _close(sut: SUT | None, detail: DetailLog, summary: RunSummary | None = None) -> str | None:
        """``sut.close()``; an error there is logged (and returned), never raised: the result
        was measured before it."""
        if sut is None:
            return None
        try:
            sut.close()
        except Exception as exc:
            message = f"close() raised {type(exc).__name__}: {exc}"
            detail.event("sut_plugin_warning", message, warning=True)
            return message
        return None

    def _fail(self, exc: BaseException, run_dir: RunDirectory, summary: RunSummary | None,
              detail: DetailLog, sut: SUT | None) -> None:
        """Keep what exists (the detail log always, a partial summary unvalidated), mark the run
        directory, and raise: a UsageError as it is, anything else as RunFailed. Nothing here
        may raise before the status is written: a full disk or a value JSON cannot hold only
        loses the file it concerns, and the status says which."""
        interrupted = isinstance(exc, KeyboardInterrupt)
        message = (str(exc) or "terminated") if isinstance(exc, Terminated) else (
            "interrupted by the user" if interrupted else
            str(exc) if isinstance(exc, (UsageError, RunFailed)) else f"{type(exc).__name__}: {exc}")
        detail.event("error_runtime", message, error=True)
        self._close(sut, detail)
        lost = [name for name, write in (
            ("detail.txt", lambda: _write_detail(run_dir, detail)),
            ("partial_summary.json", lambda: summary is not None and _write_partial(run_dir, summary)),
        ) if not _attempt(write)]
        status = message + (f" (could not write {', '.join(lost)})" if lost else "")
        if not _attempt(lambda: run_dir.set_status("interrupted" if interrupted else "failed", status)):
            status += f"; could not write {run_dir.path}/status.json either"
        if isinstance(exc, UsageError):
            raise exc
        if interrupted:
            raise RunInterrupted(f"run {message}; partial results in {run_dir.path}") from exc
        raise RunFailed(f"run failed ({status}); partial results in {run_dir.path}") from exc


def _attempt(write) -> bool:
    try:
        write()
        return True
    except Exception:
        return False


def _write_detail(run_dir: RunDirectory, detail: DetailLog) -> None:
    try:
        run_dir.write_detail(detail)
    except OSError:
        raise
    except Exception:  # an event the schema refuses: keep the log anyway, unvalidated
        run_dir.write_text("detail.txt", detail.render())


def _write_partial(run_dir: RunDirectory, summary: RunSummary) -> None:
    summary.valid = False
    document, _ = json_safe(summary.to_dict(), "partial summary")
    run_dir.write_json("partial_summary.json", document, None)
