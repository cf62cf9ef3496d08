"""Verdicts: tolerances by kind, the seeds' interval (hand-computed), claims judged with the spread."""

import math

import pytest

from benchmark.results.verdict import difference_decided, judge, kind_of, seed_interval

T2 = 4.302652729749464  # t(0.975, df=2), from a t table


def test_kinds_of_cell_values():
    assert kind_of(None) == kind_of("top1") == kind_of("top1/top5") == kind_of("train_top1") == "accuracy"
    assert kind_of("train_loss") == "loss"
    assert kind_of({"analysis": "sharpness_gap", "teacher_tau": 4.0}) == "gap"
    assert kind_of({"analysis": "entropy"}) == "analysis"


def test_seed_interval_is_welch_with_the_t_quantile():
    # three runs, std 0.5; the paper prints no std: its runs are taken to vary as ours
    lo, hi = seed_interval(70.0, 0.5, 3, None, 3)
    half = T2 * math.sqrt(0.25 / 3 + 0.25 / 3)
    assert (lo, hi) == pytest.approx((70.0 - half, 70.0 + half), abs=1e-9)
    # the paper's printed std (LS-KD's 71.547±0.122) on its side of the difference
    lo, hi = seed_interval(71.0, 0.2, 3, 0.122, 3)
    assert hi - 71.0 == pytest.approx(T2 * math.sqrt(0.04 / 3 + 0.122 ** 2 / 3), abs=1e-9)
    # one run and a printed std: the paper's spread alone, df from the paper's seeds
    lo, hi = seed_interval(71.0, None, 1, 0.3, 3)
    assert hi - 71.0 == pytest.approx(T2 * 0.3 / math.sqrt(3), abs=1e-9)
    assert seed_interval(71.0, None, 1, None, 3) is None  # nothing to say how runs vary


def test_judge_within_by_tolerance_then_by_spread_else_outside():
    assert judge(70.0, 70.4, 0.5, None, 1, None, 1) == ("within", None, "tolerance")
    status, interval, basis = judge(70.0, 71.5, 0.5, 0.5, 3, None, 3)  # 1.5 < half-width 1.757
    assert (status, basis) == ("within", "seed spread") and interval[0] < 71.5 < interval[1]
    status, _, basis = judge(70.0, 72.0, 0.5, 0.5, 3, None, 3)
    assert (status, basis) == ("outside", "tolerance and seed spread")
    assert judge(70.0, 71.0, 0.5, None, 1, None, 1)[0] == "outside"


def test_difference_decided_by_the_spread():
    assert not difference_decided(70.0, 70.3, (0.5, 3), (0.5, 3))   # half-width 1.757
    assert difference_decided(70.0, 72.0, (0.5, 3), (0.5, 3))
    assert difference_decided(70.0, 70.3, None, None)               # single runs: the means decide
