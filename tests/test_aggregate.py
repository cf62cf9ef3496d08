"""The aggregator's pieces (benchmark/results/aggregate.py) by hand: the ensemble's top-1 of averaged
probabilities and a table's coverage counts. Whole tables are aggregated in test_report.py and
test_results.py."""

import torch

from benchmark.results.aggregate import CellResult, coverage, ensemble_top1


class Logits:
    """A measurer that only knows each run's test logits."""

    def __init__(self, by_run):
        self.by_run = by_run

    def logits(self, rid):
        return self.by_run[rid]


def test_the_ensemble_votes_with_averaged_probabilities():
    y = torch.tensor([0, 1])
    # sample 0: a is sure of class 1 (p 0.73), b less sure of class 0 (p 0.88 at 2 logits apart): the
    # mean picks class 0; sample 1: both pick class 1
    a = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    assert ensemble_top1(Logits({"a": (a, y), "b": (b, y)}), ["a", "b"]) == 100.0
    assert ensemble_top1(Logits({"a": (a, y)}), ["a"]) == 50.0


def _cell(status, published=None, delta=None):
    return CellResult("r", "c", "value", published, None, "", status=status, delta=delta)


def test_coverage_counts_by_status():
    cells = [_cell("within", 70.0, 0.5), _cell("outside", 70.0, -3.0), _cell("not comparable", 60.0, 1.5),
             _cell("stale", 50.0, 9.0), _cell("pending", 70.0), _cell("failed", 70.0), _cell("cited", 70.0),
             _cell("measured")]
    assert coverage(cells) == {"cells": 8, "published_cells": 7, "reproducible_cells": 6, "reproduced_cells": 3,
                               "within_tolerance": 1, "not_comparable": 1, "mean_abs_delta": (0.5 + 3.0 + 1.5) / 3,
                               "pending": 1, "failed": 1, "cited": 1, "stale": 1}
    assert coverage([])["mean_abs_delta"] is None
