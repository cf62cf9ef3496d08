"""ATS's analyses of teachers' logits (benchmark/results/figure_kinds.py): the rank metrics on known
vectors and the claims judged on computed quantities (their drawing from finished runs:
tests/test_items.py)."""

import pytest
import torch

from benchmark.results import figure_kinds


def test_rank_metrics_on_known_vectors():
    p = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]])
    q = torch.tensor([[0.05, 0.15, 0.3, 0.5], [0.4, 0.3, 0.2, 0.1]])
    assert figure_kinds.spearman(p, q).tolist() == pytest.approx([1.0, -1.0])
    assert figure_kinds.kendall(p, q).tolist() == pytest.approx([1.0, -1.0])
    r = torch.tensor([[0.1, 0.3, 0.2, 0.4]])  # one swapped pair of 6: (5 - 1) / 6
    assert float(figure_kinds.kendall(p[:1], r)) == pytest.approx(4 / 6)
    wide = torch.arange(8.0)[None]
    assert float(figure_kinds.top5_overlap(wide, wide.flip(1))) == pytest.approx(2 / 8)  # {3..7} & {0..4}


def test_claims_on_quantities():
    claims = [{"text": "a", "compare": {"left": "x", "op": ">", "right": "y", "factor": 2}},
              {"text": "b", "compare": {"left": "x", "op": "<", "right": 1}},
              {"text": "c", "compare": {"left": "z", "op": "<", "right": 1}}]
    got = [c["status"] for c in figure_kinds.judge_claims(claims, {"x": 5.0, "y": 2.0})]
    assert got == ["held", "not held", "undecided"]
