"""The conformance rules that drive a loaded SUT as the harness does (see :mod:`.kit` for the list).

Each rule takes a :class:`~.subject.Subject` and returns ``(message, detail)`` when the SUT keeps
the rule; it raises :class:`~.subject.Failed` (the SUT broke it) or :class:`~.subject.Skipped`
(it does not apply) otherwise. The SUT contract they check is :mod:`tinyharness.sut`'s.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from typing import Any

import numpy as np

from ..errors import RunFailed, UsageError
from ..settings import Scenario
from ..sut import Timing
from .subject import Failed, Skipped, Subject, calling, dequantized, one_line, raised

Verdict = tuple[str, dict[str, Any]]

OUTPUT_SAMPLES = 4  # samples whose outputs output-spec checks against the spec
REPEAT_SAMPLES = 16  # samples repeatable tries for one whose output differs from the first's
REFERENCE_SAMPLES = 16  # samples compared with the reference SUT
OFFLINE_QUERY = 256  # samples in each offline query offline-stamps issues (two queries)
TIMING_S = 0.3  # seconds of queries timing-ratio runs each way, in TIMING_ROUNDS rounds
TIMING_ROUNDS = 3
# Values every option is tried with: at least one is bad for any typed option (a number, a
# choice, a flag, a path); an option that takes any text (a port name) accepts them all.
BAD_VALUES = ("not-a-value", "nan", "inf", "-1", "0", "1e999", "", "2.5", "9" * 5000, "a\nb")
UNKNOWN_KEY = "no-such-option"


def _run(sut, sample) -> np.ndarray:
    with calling("prepare()"):
        sut.prepare(sample)
    with calling("infer()"):
        sut.infer()
    with calling("output()"):
        out = sut.output()
    return np.array(out, copy=True)  # what output() gave, as it was then


# -- output-spec ----------------------------------------------------------------------------------
def output_spec(subject: Subject) -> Verdict:
    """After load, prepare(sample), infer() and output() give one output of output_spec()'s
    dtype and shape (up to batch-1 dimensions), all finite: the accuracy pass's own check."""
    from ..scenarios.accuracy import OutputCheck, spec_text

    sut = subject.loaded()
    with calling("input_spec()"):
        in_spec = sut.input_spec()
    with calling("output_spec()"):
        spec = sut.output_spec()
    try:
        check = OutputCheck(spec, sut.name)
        samples = subject.samples(in_spec, OUTPUT_SAMPLES)
        for i, sample in enumerate(samples):
            check(_run(sut, sample), i)
    except RunFailed as exc:
        raise Failed(one_line(exc)) from None
    return (f"{len(samples)} outputs match {spec_text(spec)}, all finite",
            {"output_spec": spec_text(spec), "input_spec": spec_text(in_spec),
             "samples": len(samples)})


# -- repeatable -----------------------------------------------------------------------------------
def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def repeatable(subject: Subject) -> Verdict:
    """infer() again without prepare() gives the same output; prepare() of another sample changes
    it (where the model tells the samples apart), and the first sample prepared again gives its
    output back; an output already returned does not change afterwards (output() copies)."""
    sut = subject.loaded()
    with calling("input_spec()"):
        samples = subject.samples(sut.input_spec(), REPEAT_SAMPLES)
    first = _run(sut, samples[0])
    with calling("infer()"):
        sut.infer()
        sut.infer()
    with calling("output()"):
        kept = sut.output()
    again = np.array(kept, copy=True)
    if not _same(first, again):
        raise Failed(f"infer() run again on the same prepared sample gave another output "
                     f"({_difference(first, again)}): each infer() must run on the prepared input")
    other = next(((i, out) for i, out in ((i, _run(sut, s)) for i, s in enumerate(samples[1:], 1))
                  if not _same(out, first)), None)
    if not _same(np.asarray(kept), again):
        raise Failed("an output returned by output() changed with a later infer(): output() "
                     "must return a copy, not the SUT's own buffer")
    if other is None:
        raise Skipped(f"the first {len(samples)} samples all gave the same output: the model does "
                      "not tell them apart, or prepare() does not reach infer() (give a reference "
                      "SUT to tell which)")
    back = _run(sut, samples[0])
    if not _same(back, first):
        raise Failed(f"sample 0 prepared again after sample {other[0]} gave another output "
                     f"({_difference(first, back)}): prepare() must replace the whole input")
    return (f"repeated infer() gives the same output; sample {other[0]} gives another",
            {"samples_tried": other[0] + 1})


def _difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{a.dtype}{list(a.shape)} then {b.dtype}{list(b.shape)}"
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(-1)
    return f"max |difference| {float(np.nanmax(diff)):.6g} at position {int(np.nanargmax(diff))}"


# -- reference ------------------------------------------------------------------------------------
def reference(subject: Subject) -> Verdict:
    """The outputs equal the reference SUT's on REFERENCE_SAMPLES samples, within the tolerance
    (absolute, on dequantized outputs); each SUT gets the samples in its own input format."""
    if subject.reference is None:
        raise Skipped("no reference SUT given")
    sut = subject.loaded()
    with calling("input_spec()"):
        spec_in = sut.input_spec()
    with calling("output_spec()"):
        spec_out = sut.output_spec()
    ours = [dequantized(_run(sut, s), spec_out) for s in subject.samples(spec_in, REFERENCE_SAMPLES)]
    ref = subject.reference_sut()
    try:
        with calling(f"reference {ref.name!r}: input_spec()"):
            ref_in, ref_out = ref.input_spec(), ref.output_spec()
        theirs = [dequantized(_run(ref, s), ref_out)
                  for s in subject.samples(ref_in, REFERENCE_SAMPLES)]
    except Failed as exc:
        raise Failed(f"reference SUT {ref.name!r}: {exc}") from None
    finally:
        subject.close_quietly(ref)
    worst, agree = (0.0, 0, 0), 0
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a.size != b.size:
            raise Failed(f"sample {i}: {a.size} output values, the reference {ref.name!r} "
                         f"gives {b.size}")
        diff = np.abs(a - b)
        k = int(np.argmax(diff)) if diff.size else 0
        if diff.size and diff[k] > worst[0]:
            worst = (float(diff[k]), i, k)
        agree += int(a.size == 0 or np.argmax(a) == np.argmax(b))
    detail = {"reference": ref.name, "samples": len(ours), "max_abs_difference": worst[0],
              "tolerance": subject.tolerance, "same_argmax": agree}
    if not worst[0] <= subject.tolerance:
        steps = [s for s in (spec_out, ref_out) if s.quantized]
        hint = (f"; one {steps[0].dtype} output step is {max(s.scale for s in steps):.6g}: a "
                "quantized model against another gets a tolerance of a few steps"
                if steps and spec_out.dtype != ref_out.dtype else "")
        raise Failed(f"sample {worst[1]}: output {worst[2]} differs from reference {ref.name!r} "
                     f"by {worst[0]:.6g} > tolerance {subject.tolerance:g} (dequantized; "
                     f"{agree} of {len(ours)} samples have the same top class){hint}", detail)
    return (f"{len(ours)} samples within {subject.tolerance:g} of {ref.name} "
            f"(max |difference| {worst[0]:.3g})", detail)


# -- offline-stamps -------------------------------------------------------------------------------
def offline_stamps(subject: Subject) -> Verdict:
    """issue_offline() stamps every sample's completion with time.perf_counter_ns() within
    [issue, return] (none missing, none before the issue, none in the future), as the offline
    scenario checks after every query."""
    from ..scenarios.offline import check_stamps, query_of

    if Scenario.OFFLINE not in subject.cls.scenarios:
        raise Skipped("the SUT does not run the offline scenario")
    sut = subject.fresh(Scenario.OFFLINE)
    try:
        with calling("input_spec()"):
            loaded = subject.samples(sut.input_spec(), REPEAT_SAMPLES)
        spans = []
        for _ in range(2):
            query = query_of(loaded, OFFLINE_QUERY)
            completions = np.zeros(len(query), dtype=np.int64)
            start = time.perf_counter_ns()
            with calling("issue_offline()"):
                sut.issue_offline(query, completions)
            end = time.perf_counter_ns()
            try:
                check_stamps(sut, completions, start, end)
            except RunFailed as exc:
                raise Failed(one_line(exc)) from None
            spans.append((end - start) / 1e3)
    finally:
        subject.close_quietly(sut)
    return (f"2 queries of {OFFLINE_QUERY} samples, every stamp within the call",
            {"samples": OFFLINE_QUERY, "query_us": [round(s, 1) for s in spans]})


# -- options --------------------------------------------------------------------------------------
def options(subject: Subject) -> Verdict:
    """Every declared option refuses a bad value with a one-line UsageError that names it and
    says what it expects (never Python's conversion message); a float option never takes nan or
    inf; an unknown key is refused with a one-line UsageError naming it."""
    from ..sut_config import _CONVERSION, _key

    cls = subject.cls
    problems, free = [], []
    with calling("options()"):
        declared = list(cls.options())
    fields = {f.name: f for f in dataclasses.fields(cls.config_class)}
    for key in declared:
        refused = 0
        base = {k: v for k, v in subject.options.items() if _key(k) != _key(key)}
        for bad in BAD_VALUES:
            try:
                config = cls.parse_options({**base, key: bad})
            except UsageError as exc:
                refused += 1
                problem = _message_problem(str(exc), key, _CONVERSION)
                if problem:
                    problems.append(f"{key}={_shown(bad)} {problem}")
                continue
            except Exception as exc:
                problems.append(f"{key}={_shown(bad)}: {raised('parse_options()', exc)} instead "
                                "of a UsageError")
                continue
            value = getattr(config, fields[key].name, None) if key in fields else None
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(f"{key}={_shown(bad)} was accepted as {value} (a number option "
                                "must refuse what is not finite)")
        if not refused:
            free.append(key)
        if problems:
            break
    if problems:
        raise Failed(f"option {problems[0]}")
    try:
        cls.parse_options({**subject.options, UNKNOWN_KEY: "1"})
    except UsageError as exc:
        problem = _message_problem(str(exc), UNKNOWN_KEY, ())
        if problem:
            raise Failed(f"an unknown option {problem}") from None
    except Exception as exc:
        raise Failed(f"an unknown option: {raised('parse_options()', exc)} instead of a "
                     "UsageError") from None
    else:
        raise Failed(f"an unknown option ({UNKNOWN_KEY}=1) was accepted; SUTConfig.parse "
                     "refuses unknown keys")
    detail = {"options": declared, "free_text": free}
    checked = len(declared) - len(free)
    text = (f"{checked} option(s) refuse bad values in one line" if declared else "no options")
    if free:
        text += f"; {', '.join(free)} accept(s) any text"
    return text + "; an unknown key is refused", detail


def _shown(value: str) -> str:
    shown = value if value.isprintable() else repr(value)
    return shown if len(shown) <= 20 else shown[:17] + "..."


def _message_problem(message: str, key: str, conversion: tuple[str, ...]) -> str | None:
    """What is wrong with an option error's message, or None."""
    if "\n" in message or "\r" in message:
        return f"is refused with a message of {len(message.splitlines())} lines: {one_line(message)[:120]}"
    low = message.lower()
    if any(text in low for text in conversion):
        return f"is refused with Python's conversion message: {message[:120]}"
    if key.replace("-", "_").lower() not in low.replace("-", "_"):
        return f"is refused with a message that does not name the option: {message[:120]}"
    return None


# -- close-idempotent -----------------------------------------------------------------------------
def close_idempotent(subject: Subject) -> Verdict:
    """close() twice raises nothing: on an instance never loaded (the harness closes after a
    failed load too) and after load and an inference."""
    sut = subject.fresh(load=False)
    subject.forget(sut)
    for call in ("first", "second"):
        with calling(f"close() (the {call} call, never loaded)"):
            sut.close()
    sut = subject.fresh()
    subject.forget(sut)
    try:
        with calling("input_spec()"):
            sample = subject.samples(sut.input_spec(), 1)[0]
        _run(sut, sample)
    finally:
        for call in ("first", "second"):
            with calling(f"close() (the {call} call, after load)"):
                sut.close()
    return "close() twice raises nothing, before and after load", {}


# -- timing-ratio ---------------------------------------------------------------------------------
def timing_ratio(subject: Subject) -> Verdict:
    """infer() timed as the harness times it (a clock pair around each query, prepare() outside)
    against a raw loop of the same callable: how much the measurement adds per query. Reported,
    never judged. A device-timed SUT: the host's time for infer() against the device's own."""
    sut = subject.loaded()
    with calling("input_spec()"):
        sample = subject.samples(sut.input_spec(), 1)[0]
    if sut.timing is Timing.DEVICE:
        _run(sut, sample)
        start = time.perf_counter_ns()
        with calling("infer()"):
            for _ in range(5):
                sut.infer()
        host = (time.perf_counter_ns() - start) / 5
        with calling("run_window()"):
            device = sut.run_window(10, 1) / 10
        ratio = host / device if device > 0 else math.inf
        return (f"host infer() {host / 1e3:.1f} us (link included), device {device / 1e3:.1f} "
                f"us an inference: ratio {ratio:.2f}",
                {"host_infer_us": round(host / 1e3, 3), "device_us": round(device / 1e3, 3),
                 "ratio": round(ratio, 3)})
    from ..scenarios.single_stream import run_queries

    _run(sut, sample)
    harness = raw = math.inf
    infer, clock = sut.infer, time.perf_counter_ns
    paused = gc.isenabled()
    try:
        for _ in range(TIMING_ROUNDS):  # alternated, the best of each: a busy host skews less
            with calling("infer()"):
                run = run_queries(sut, [sample], 0, TIMING_S / TIMING_ROUNDS, 10,
                                  max_duration_s=10 * TIMING_S)
                harness = min(harness, float(run.latencies_ns.mean()))
                n = run.count
                gc.disable()  # as in the harness's loop: a collection must not land in either
                start = clock()
                for _ in range(n):
                    infer()
                raw = min(raw, (clock() - start) / n)
                if paused:
                    gc.enable()
    finally:
        if paused:
            gc.enable()
    ratio = harness / raw if raw > 0 else math.inf
    return (f"{harness / 1e3:.2f} us a query timed as the harness does, {raw / 1e3:.2f} us in a "
            f"raw loop: ratio {ratio:.2f}",
            {"harness_us": round(harness / 1e3, 4), "raw_us": round(raw / 1e3, 4),
             "ratio": round(ratio, 4), "queries": n})
