"""Known-answer tests for harness.scoring (MLPerf Tiny's metrics), every expected value worked out
by hand; the rank-sum form of the AUC (mlperf-tiny.md §3.4) is checked on a random case with ties,
and against scikit-learn's roc_auc_score (the oracle, a dev dependency) on many random cases."""

from __future__ import annotations

import numpy as np
import pytest

from tinyharness import scoring
from tinyharness.sut import TensorSpec

FLOAT = TensorSpec("out", (1, 3), "float32")
INT8 = TensorSpec("out", (1, 3), "int8", scale=0.5, zero_point=3)


def pairwise_auc(labels, scores) -> float:
    """P(anomalous file scores higher than a normal one), ties counting one half."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def average_ranks(values) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[order[j + 1]] == values[order[i]]:
            j += 1
        ranks[order[i: j + 1]] = (i + j) / 2 + 1  # positions i..j are ranks i+1..j+1
        i = j + 1
    return ranks


@pytest.mark.parametrize("labels, scores, expected", [
    # pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, 0.1) win, (0.8, 0.4) win -> 3/4
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 1.0),  # perfectly separated
    ([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], 0.0),  # perfectly inverted
    ([0, 1], [0.5, 0.5], 0.5),  # one tied pair: one half
    # (0.5, 0.2) win, (0.5, 0.5) tie 1/2, (0.9, 0.2) win, (0.9, 0.5) win -> 3.5 / 4
    ([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9], 0.875),
    # 1 positive, 3 negatives: 9.0 beats 8.0 and ties twice with 9.0 -> (1 + 0.5 + 0.5) / 3
    ([0, 1, 0, 0], [9.0, 9.0, 8.0, 9.0], 2 / 3),
    # everything tied: 0.5 whatever the class balance
    ([0, 1, 1, 1, 0], [3.0] * 5, 0.5),
])
def test_roc_auc_known_answers(labels, scores, expected):
    assert scoring.roc_auc(np.array(labels), np.array(scores)) == pytest.approx(expected, abs=1e-12)
    assert pairwise_auc(labels, scores) == pytest.approx(expected, abs=1e-12)  # the hand rule agrees


def test_roc_auc_ignores_the_order_of_the_files_and_monotonic_rescaling():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([9.7, 10.4, 10.1, 25.7, 9.6, 15.9])
    auc = scoring.roc_auc(labels, scores)
    # anomalies 10.1, 25.7, 15.9 against normals 9.7, 10.4, 9.6: only 10.1 < 10.4 is misordered
    assert auc == pytest.approx(8 / 9)
    assert pairwise_auc(labels.tolist(), scores.tolist()) == pytest.approx(auc)
    perm = np.random.default_rng(3).permutation(len(labels))
    assert scoring.roc_auc(labels[perm], scores[perm]) == pytest.approx(auc)
    assert scoring.roc_auc(labels, np.log(scores) * 3 + 7) == pytest.approx(auc)


def test_roc_auc_equals_the_rank_sum_formula_on_a_random_case_with_ties():
    """mlperf-tiny.md §3.4: AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), average ranks."""
    rng = np.random.default_rng(20240)
    labels = rng.integers(0, 2, 57)
    scores = np.round(rng.normal(10, 2, 57) + 1.5 * labels, 0)  # rounding to units makes many ties
    assert len(np.unique(scores)) < len(scores)  # there are ties
    ranks = average_ranks(scores)
    n_pos, n_neg = int(labels.sum()), int((1 - labels).sum())
    r_pos = ranks[labels == 1].sum()
    expected = (r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    assert scoring.roc_auc(labels, scores) == pytest.approx(expected, abs=1e-12)
    assert pairwise_auc(labels.tolist(), scores.tolist()) == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected < 1.0  # a meaningful case, not a degenerate one


def test_roc_auc_is_the_exact_fraction():
    """Twice the rank sum is an integer, so the AUC is one division of integers: k / (n_pos n_neg)
    to the last bit, not a sum of trapezoids."""
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([9.7, 10.4, 10.1, 25.7, 9.6, 15.9])
    assert scoring.roc_auc(labels, scores) == 8 / 9  # the misordered pair, worked out above
    # 3 positives, 7 negatives, integer scores: positive 5 beats 1, 2, 3, 4 and ties 5 (4.5 wins),
    # positive 2 beats 1 and ties 2 (1.5), positive 9 beats all 7; 13 / 21 in all
    labels = np.array([1, 0, 0, 0, 0, 0, 1, 0, 1, 0], dtype=bool)
    scores = np.array([5, 1, 2, 3, 4, 5, 2, 7, 9, 8])
    assert scoring.roc_auc(labels, scores) == 13 / 21
    assert pairwise_auc(labels.astype(int).tolist(), scores.tolist()) == pytest.approx(13 / 21)


def test_roc_auc_takes_the_larger_label_as_positive():
    # -1 / +1 labels, as scikit-learn reads them: the larger (+1) is the positive class
    assert scoring.roc_auc(np.array([-1, -1, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


@pytest.mark.parametrize("seed", range(3))
def test_roc_auc_equals_scikit_learns_on_random_data_with_many_ties(seed):
    roc_auc_score = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) is the oracle").roc_auc_score
    rng = np.random.default_rng([7, seed])
    for _ in range(80):  # scikit-learn takes about 10 ms a call, mostly input checks
        n = int(rng.integers(2, 300))
        labels = (rng.random(n) < rng.uniform(0.02, 0.98)).astype(int)
        if labels.min() == labels.max():
            continue
        levels = int(rng.integers(1, 12))  # few distinct values: ties everywhere, across classes
        scores = rng.integers(0, levels, n) + 0.5 * labels * rng.integers(0, 2)
        kind = seed
        if kind == 1:
            scores = scores.astype(np.float32) / 7  # float32, not exactly representable
        elif kind == 2:
            scores = rng.normal(size=n) + labels * 0.3  # continuous: no ties
        assert scoring.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_roc_auc_at_a_large_size():
    roc_auc_score = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) is the oracle").roc_auc_score
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, 200_000)
    scores = np.round(rng.normal(size=200_000) + 0.2 * labels, 2)
    assert scoring.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 1, 2], [0.1, 0.2, 0.3], "two classes, not 3"),
    ([0, 1, 1], [0.1, 0.2], "one score per label"),
    ([0, 1], [0.1, float("nan")], "finite scores"),
    ([0, 1], [0.1, float("inf")], "finite scores"),
    ([0, 1], ["a", "b"], "numeric scores"),
])
def test_roc_auc_refuses_what_has_no_auc(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        scoring.roc_auc(np.array(labels), np.array(scores))


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1], [1]])
def test_roc_auc_over_one_class_raises_value_error(labels):
    with pytest.raises(ValueError, match="both normal and anomalous"):
        scoring.roc_auc(np.array(labels), np.arange(len(labels), dtype=float))


def test_group_means_averages_each_files_windows():
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 0.5])
    groups = np.array([0, 0, 1, 1, 2, 1])
    # group 0: (1 + 2) / 2; group 1: (3 + 4 + 0.5) / 3; group 2: 10
    np.testing.assert_allclose(scoring.group_means(values, groups), [1.5, 2.5, 10.0])


def test_group_means_of_equal_windows_is_the_plain_mean():
    values = np.arange(196 * 3, dtype=float)
    groups = np.repeat(np.arange(3), 196)
    np.testing.assert_allclose(scoring.group_means(values, groups),
                               [np.mean(values[k * 196:(k + 1) * 196]) for k in range(3)])


def test_window_score_float_output_is_the_mean_squared_error():
    # (1 - 0)^2 + (2 - 4)^2 + (3 - 3)^2 = 1 + 4 + 0 -> 5 / 3
    score = scoring.window_score(np.array([1.0, 2.0, 3.0], dtype=np.float32), np.array([0.0, 4.0, 3.0]), FLOAT)
    assert score == pytest.approx(5 / 3)


def test_window_score_dequantizes_the_output_and_compares_with_the_float_input():
    # y = (q - 3) * 0.5: q = [5, 1, 3] -> [1.0, -1.0, 0.0]; x = [1.0, 1.0, 0.5]
    # (1 - 1)^2 + (-1 - 1)^2 + (0 - 0.5)^2 = 0 + 4 + 0.25 -> 4.25 / 3
    q = np.array([[5, 1, 3]], dtype=np.int8)
    score = scoring.window_score(q, np.array([1.0, 1.0, 0.5], dtype=np.float32), INT8)
    assert score == pytest.approx(4.25 / 3)
    # not the quantized input: x = 0.3 would quantize to q 4 = 0.5 exactly; the score uses 0.3
    assert scoring.window_score(np.array([4], dtype=np.int8), np.array([0.3]),
                                TensorSpec("o", (1,), "int8", 0.5, 3)) == pytest.approx(0.04)


def test_window_score_int8_extremes_do_not_wrap():
    # q = -128 and 127 with zero point 3: (-131 * 0.5)^2 and (124 * 0.5)^2; int8 arithmetic would wrap
    score = scoring.window_score(np.array([-128, 127], dtype=np.int8), np.zeros(2), INT8)
    assert score == pytest.approx(((65.5 ** 2) + (62.0 ** 2)) / 2)


def test_dequantize_and_top1():
    np.testing.assert_allclose(scoring.dequantize(np.array([-128, 0, 127], dtype=np.int8),
                                                  TensorSpec("o", (3,), "int8", 1 / 256, -128)),
                               [0.0, 0.5, 255 / 256])
    outputs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert scoring.top1_percent(outputs, np.array([1, 0, 0, 0])) == pytest.approx(75.0)


def test_roc_auc_accepts_plain_sequences():
    assert scoring.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


# -- the runner's AUC of a classifier (one-vs-rest, macro) -------------------------------------------
def runner_auc(labels, outputs) -> float:
    """The MLCommons runner's AUC (benchmark/runner/main.py, summarize_result), with scikit-learn:
    each row divided by its sum, then column 1 of two, or one-vs-rest over more."""
    roc_auc_score = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) is the oracle").roc_auc_score
    rows = np.array([[v / sum(row) for v in row] for row in np.asarray(outputs, dtype=float).tolist()])
    if rows.shape[1] == 2:
        return roc_auc_score(np.asarray(labels), rows[:, 1])
    return roc_auc_score(np.asarray(labels), rows, multi_class="ovr")


def test_multiclass_auc_known_answer_one_vs_rest_after_normalizing():
    # rows (sums 2, 10, 1, 10) normalize to [.6 .3 .1] [.2 .5 .3] [.1 .2 .7] [.3 .5 .2]:
    # class 0: .6 and .3 above .2 and .1 -> 1; class 1: .5 beats .3 and .2, ties .5 -> 2.5 / 3;
    # class 2: .7 above .1 .3 .2 -> 1; the mean: (1 + 5/6 + 1) / 3 = 17/18
    labels = [0, 1, 2, 0]
    outputs = [[1.2, 0.6, 0.2], [2, 5, 3], [0.1, 0.2, 0.7], [3, 5, 2]]
    assert scoring.multiclass_roc_auc(labels, outputs) == pytest.approx(17 / 18, abs=1e-12)


def test_multiclass_auc_of_two_columns_is_column_one_normalized():
    # p1 = 1/4, 1/2, 3/4, 4/5: positives .5 and .8 against .25 and .75 -> 3 of 4 pairs; the raw
    # column 1 (1, 1, 3, 4) would tie and give 2.5 / 4: the runner normalizes first
    labels, outputs = [0, 1, 0, 1], [[3, 1], [1, 1], [1, 3], [1, 4]]
    assert scoring.multiclass_roc_auc(labels, outputs) == 0.75
    assert scoring.roc_auc(labels, [1, 1, 3, 4]) == 0.625


@pytest.mark.parametrize("classes", [2, 3, 10, 12])
def test_multiclass_auc_equals_the_runners_scikit_learn_call(classes):
    rng = np.random.default_rng([13, classes])
    for trial in range(30):
        n = int(rng.integers(classes, 400))
        labels = np.concatenate([np.arange(classes), rng.integers(0, classes, n - classes)])
        if trial % 3 == 0:  # int8 softmax outputs, dequantized: k/256, ties everywhere
            q = rng.integers(0, 256, (n, classes))
            q[np.arange(n), labels] += rng.integers(0, 200, n)  # better than chance
            outputs = np.minimum(q, 255) / 256.0
            outputs[q.sum(axis=1) == 0, 0] = 1 / 256  # no row of zeros
        elif trial % 3 == 1:  # float32 probabilities from a softmax
            logits = rng.normal(size=(n, classes)) + np.eye(classes)[labels] * rng.uniform(0, 3)
            outputs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
        else:  # three decimals, as a DUT prints them: few distinct values
            outputs = np.round(rng.dirichlet(np.ones(classes), n), 3) + 0.001
        assert scoring.multiclass_roc_auc(labels, outputs) == \
            pytest.approx(runner_auc(labels, outputs), abs=1e-12), trial


@pytest.mark.parametrize("labels, outputs, message", [
    ([0, 1, 1], [[0.5, 0.5, 0.0]] * 3, "needs files of every class; the labels hold 2"),
    ([0, 0], [[0.5, 0.5]] * 2, "needs files of every class; the labels hold 1"),
    ([0, 1, 3], [[0.2, 0.3, 0.5]] * 3, "classes 0..2"),
    ([0, 1], [[0.0, 0.0], [0.5, 0.5]], "sum to 0"),
    ([0, 1], [[0.2, float("nan")], [0.5, 0.5]], "finite"),
    ([0, 1], [[0.2], [0.5]], "at least two outputs"),
    ([0, 1, 0], [[0.2, 0.8], [0.5, 0.5]], "one output row per label"),
    ([0.0, 1.0], [[0.2, 0.8], [0.5, 0.5]], "integer labels"),
])
def test_multiclass_auc_refuses_what_the_runner_cannot_score(labels, outputs, message):
    with pytest.raises(ValueError, match=message):
        scoring.multiclass_roc_auc(labels, outputs)
