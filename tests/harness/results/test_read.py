"""The run reader as compare and report use it: schema-1 runs, archives, labels, bad input."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from tinyharness.compare import compare
from tinyharness.errors import UsageError
from tinyharness.report import row_of
from tinyharness.results import ReasonCode
from tinyharness.results import read
from tinyharness.results.read import load_runs, read_summary
from tinyharness.submission.archive import Limits

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
SINGLE_STREAM = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"


def metric_rows(result: dict) -> list[list[dict]]:
    return [pair["metrics"] for pair in result["pairs"]]


def test_schema1_reasons_get_codes():
    runs = {r.sut: r.summary for r in load_runs([FIXTURES])}
    assert [r.code for r in runs["onnxruntime-cpu"].invalid_reasons] == [ReasonCode.OVERRIDE] * 2
    assert [r.code for r in runs["tflite-cpu"].invalid_reasons] == [ReasonCode.OVERRIDE,
                                                                    ReasonCode.MIN_DURATION]
    assert runs["serial"].invalid_reasons == [] and runs["serial"].latency_us is None


def test_schema3_rewrite_reads_the_same(tmp_path):
    """A schema-1 run rewritten as schema 3 compares and reports exactly as the original."""
    copy = shutil.copytree(SINGLE_STREAM, tmp_path / "v2")
    document = read_summary(copy).to_dict()
    assert document["schema_version"] == 3
    (copy / "summary.json").write_text(json.dumps(document))
    same = compare([SINGLE_STREAM], [SINGLE_STREAM])
    assert metric_rows(compare([SINGLE_STREAM], [copy])) == metric_rows(same)
    (old,), (new,) = load_runs([SINGLE_STREAM]), load_runs([copy])
    assert row_of(old) == row_of(new)


def test_archive_reads_like_the_folder(tmp_path):
    with tarfile.open(tmp_path / "runs.tar.gz", "w:gz") as tar:
        tar.add(FIXTURES, arcname="pkg")
    from_tar = compare([tmp_path / "runs.tar.gz"], [FIXTURES], seed=5)
    assert metric_rows(from_tar) == metric_rows(compare([FIXTURES], [FIXTURES], seed=5))
    assert all(p["a"]["path"].startswith(f"{tmp_path / 'runs.tar.gz'}:pkg/") for p in from_tar["pairs"])


def test_labels_number_runs_of_one_sut(tmp_path):
    shutil.copytree(SINGLE_STREAM, tmp_path / "one")
    shutil.copytree(SINGLE_STREAM, tmp_path / "two")
    assert [row_of(r)["SUT"] for r in load_runs([tmp_path])] == ["onnxruntime-cpu", "onnxruntime-cpu #2"]


@pytest.mark.parametrize("summary, message", [
    (None, "no run directories"),
    ({"schema_version": 99}, "schema_version 99"),
    ({"schema_version": 1, "benchmark": "digits01"}, "not a tinyharness run summary"),
    ("[1, 2]", "not a run summary"),
])
def test_bad_input_is_one_usage_error(tmp_path, summary, message):
    run = tmp_path / "run"
    run.mkdir()
    if summary is not None:
        (run / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    with pytest.raises(UsageError, match=message):
        compare([tmp_path], [SINGLE_STREAM])


# -- untrusted input: bounded, typed, one line (hardening) -----------------------------------------

def one_line_error(paths) -> str:
    """The UsageError load_runs raises for ``paths``, checked to be one line."""
    with pytest.raises(UsageError) as info:
        load_runs(paths)
    message = str(info.value)
    assert "\n" not in message and len(message) < 600, message
    return message


def tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], compress: bool = True) -> Path:
    """An archive of raw member headers and data (headers may lie about sizes)."""
    raw = b"".join(info.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % 512)
                   for info, data in members) + bytes(1024)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def member(name: str, data: bytes, size: int | None = None, kind: bytes = tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.size, info.type = len(data) if size is None else size, kind
    return info, data


def run_copy(tmp_path: Path, name: str = "run") -> Path:
    return shutil.copytree(SINGLE_STREAM, tmp_path / name)


@pytest.mark.parametrize("text, words", [
    ("[" * 200_000 + "]" * 200_000, "JSON nested too deeply"),
    ('{"schema_version": 1, "x": ' + "9" * 5000 + "}", "not readable JSON: Exceeds the limit"),
    ('{"schema_version": NaN}', "schema_version nan is not one"),
])
def test_hostile_json_is_one_line(tmp_path, text, words):
    """Issue defect 15: JSON nested 200 k deep and a 5000-digit integer crashed compare/report."""
    run = run_copy(tmp_path)
    (run / "summary.json").write_text(text)
    assert f"{run / 'summary.json'}: " in one_line_error([run]) and words in one_line_error([run])


@pytest.mark.parametrize("field, value, words", [
    ("latency_us", "fast", 'field "latency_us" should be an object or null, not the string \'fast\''),
    ("settings", [1, 2], 'field "settings" should be an object, not a list'),
    ("invalid_reasons", {"a": 1}, 'field "invalid_reasons" should be a list, not an object'),
    ("throughput_ips", "1e999", 'field "throughput_ips" should be a number or null, not the string'),
])
def test_wrong_types_name_the_file_and_the_field(tmp_path, field, value, words):
    """Issue defect 15: wrong types in summary.json crashed compare and report."""
    run = run_copy(tmp_path)
    document = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**document, field: value}))
    message = one_line_error([run])
    assert message.startswith(f"{run / 'summary.json'}: ") and words in message


def test_a_member_declaring_10_gib_is_refused_before_it_is_read(tmp_path):
    """Issue defect 15/19: a tar header declaring 10 GiB."""
    package = tar_gz(tmp_path / "pkg.tar.gz", [member("pkg/run/summary.json", b"{}", size=10 << 30)])
    assert one_line_error([package]) == (
        f"{package}:pkg/run/summary.json: declares 10,737,418,240 bytes, more than the "
        "67,108,864 allowed for one member; not read further")


def test_a_pax_header_declaring_10_gib_is_refused_before_it_is_read(tmp_path):
    package = tar_gz(tmp_path / "pkg.tar.gz", [member("././@PaxHeader", b"", 10 << 30, tarfile.XHDTYPE)])
    assert one_line_error([package]) == (f"{package}: a member header declares more than the "
                                         "67,108,864 bytes allowed; not read further")


def test_member_and_total_limits_are_the_checkers(tmp_path, monkeypatch):
    """Issue defect 19: a 2.4 MB .tar.gz holding a 2 GiB summary.json took 4.1 GB of memory;
    here, with the limits made small, a 2 MiB summary.json against a 1 MiB member limit."""
    monkeypatch.setattr(read, "LIMITS", Limits(member_bytes=1 << 20, total_bytes=60_000))
    padded = (SINGLE_STREAM / "summary.json").read_bytes() + b" " * (2 << 20)
    package = tar_gz(tmp_path / "pkg.tar.gz", [member("pkg/run/summary.json", padded)])
    assert one_line_error([package]) == (f"{package}:pkg/run/summary.json: declares {len(padded):,} "
                                         "bytes, more than the 1,048,576 allowed for one member; not "
                                         "read further")
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "summary.json").write_bytes(padded)
    assert f"summary {tmp_path / 'big' / 'summary.json'} is {len(padded):,} bytes, more than the " \
           "1,048,576 allowed" in one_line_error([tmp_path / "big"])
    # the three fixture runs keep 67,597 bytes (summaries and latencies): over a 60,000 total
    assert "the runs add up to more than 60,000 bytes" in one_line_error([FIXTURES])


def test_a_compression_bomb_is_not_read_further(tmp_path):
    package = tar_gz(tmp_path / "pkg.tar.gz", [
        member("pkg/run/summary.json", (SINGLE_STREAM / "summary.json").read_bytes()),
        member("pkg/zeros.bin", bytes(16 << 20))])
    assert "decompresses to more than 200 times its size" in one_line_error([package])


@pytest.mark.parametrize("compress", [True, False])
def test_a_truncated_archive_is_one_line(tmp_path, compress):
    """Issue defect 15: a truncated .tar.gz printed only "tinyharness: aborted"."""
    whole = tmp_path / "whole.tar"
    with tarfile.open(whole, "w") as tar:
        tar.add(FIXTURES, arcname="pkg")
    data = whole.read_bytes()
    data = gzip.compress(data) if compress else data
    cut = tmp_path / ("cut.tar.gz" if compress else "cut.tar")
    cut.write_bytes(data[: len(data) // 2])
    assert one_line_error([cut]).startswith(f"{cut}: truncated or corrupt archive (")


def test_a_member_twice_is_refused(tmp_path):
    summary = (SINGLE_STREAM / "summary.json").read_bytes()
    package = tar_gz(tmp_path / "pkg.tar.gz", [member("pkg/run/summary.json", summary)] * 2)
    assert "pkg/run/summary.json: appears twice in the archive" in one_line_error([package])


@pytest.mark.parametrize("name", ["summary.json", "latencies.npy"])
def test_a_fifo_in_a_run_folder_is_refused_not_skipped(tmp_path, name):
    """Issue defect 19: FIFOs and devices are refused for folder inputs too."""
    run = run_copy(tmp_path)
    (run / name).unlink()
    os.mkfifo(run / name)
    assert f"{run / name} is a FIFO; give a regular file" in one_line_error([tmp_path])
    (run / name).unlink()
    (run / name).symlink_to("/dev/zero")
    assert f"{run / name} is a device; give a regular file" in one_line_error([tmp_path])


def test_a_fifo_given_as_a_path_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert one_line_error([tmp_path / "pipe"]).startswith(f"{tmp_path / 'pipe'} is a FIFO, neither a "
                                                         "folder nor a .tar.gz package")


def npy_bytes(array, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize("data, words", [
    (npy_bytes(np.array([1.5, 2.5])), "holds a float64 array of shape (2,); latencies are a 1-D integer"),
    (npy_bytes(np.ones((2, 2), np.int64)), "holds a int64 array of shape (2, 2)"),
    (npy_bytes(np.array([1, None], dtype=object), allow_pickle=True), "holds a object array"),
    (npy_bytes(np.array([5, -3], np.int64)), "a negative latency (-3 ns)"),
    (npy_bytes(np.arange(10, dtype=np.int64))[:-8], "header says 10 values of 8 bytes, the file holds 72"),
    (b"not a numpy file at all", "not a .npy file numpy writes"),
])
def test_latencies_are_read_by_their_header(tmp_path, data, words):
    """Issue defect 19: latencies.npy is read bounded, its header checked: 1-D integer array."""
    run = run_copy(tmp_path)
    (run / "latencies.npy").write_bytes(data)
    message = one_line_error([run])
    assert message.startswith(f"{run / 'latencies.npy'}: ") and words in message


def test_integer_latencies_of_any_width_read_as_int64(tmp_path):
    run = run_copy(tmp_path)
    (run / "latencies.npy").write_bytes(npy_bytes(np.array([7, 9, 11], dtype=">u4")))
    (record,) = load_runs([run])
    assert record.latencies.dtype == np.int64 and record.latencies.tolist() == [7, 9, 11]


def test_a_member_name_with_a_newline_stays_one_line(tmp_path):
    package = tar_gz(tmp_path / "pkg.tar.gz", [member("pkg/x\nInjected line/summary.json", b"[1]")])
    assert one_line_error([package]) == (f"{package}:pkg/x?Injected line/summary.json: not a run "
                                         "summary (a JSON object)")


@pytest.mark.parametrize("change, words", [
    (lambda d: dict(d, invalid_reasons=[]), "says INVALID but lists 0 invalid reasons and 0 errors"),
    (lambda d: dict(d, valid=True), "says VALID but lists 2 invalid reasons and 0 errors"),
    (lambda d: {k: v for k, v in d.items() if k != "valid"}, 'field "valid" is missing'),
])
def test_a_verdict_that_disagrees_with_its_reasons_is_refused(tmp_path, change, words):
    """A tampered summary.json would show as a VALID run (or an INVALID one) it is not."""
    run = run_copy(tmp_path)
    (run / "summary.json").write_text(json.dumps(change(json.loads((run / "summary.json").read_text()))))
    message = one_line_error([run])
    assert message.startswith(f"{run / 'summary.json'}: ") and words in message
