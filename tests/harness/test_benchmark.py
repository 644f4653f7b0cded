"""Benchmark lookup and the facts a benchmark gives its dataset reader (classes, file size)."""

from __future__ import annotations

import pytest
from tinyharness.benchmark import get_benchmark, load_benchmarks
from tinyharness.cli import main
from tinyharness.errors import EXIT_USAGE, UsageError


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_an_empty_benchmark_id_is_a_usage_error_not_the_default(blank):
    """Issue defect 5: ``--benchmark ""`` silently ran digits01."""
    with pytest.raises(UsageError, match="the benchmark id is empty; give one of ad01, ") as info:
        get_benchmark(blank)
    assert "\n" not in str(info.value)


def test_no_benchmark_id_is_the_default():
    assert get_benchmark(None).id == "digits01"


def test_run_with_an_empty_benchmark_exits_2_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--benchmark", "", "--sut", "null", "--output", str(tmp_path / "results")])
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "benchmark id is empty" in err[0]
    assert not (tmp_path / "results").exists()


def test_classes_and_file_size_come_from_the_rule_sets():
    known = load_benchmarks()
    # the MLPerf Tiny label counts: 12 keywords, person / no person, 10 CIFAR-10 classes,
    # normal / anomalous machine sound; digits 0-9
    assert {b: known[b].classes for b in known} == {"kws01": 12, "vww01": 2, "ic01": 10, "ic02": 10,
                                                   "ad01": 2, "digits01": 10}
    assert known["ad01"].file_bytes == 102400 and known["kws01"].file_bytes is None
