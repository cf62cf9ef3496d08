"""Evaluation (benchmark/engine/evaluation.py): top-1 and top-5 by hand, and precise BN's averages."""

import pytest
import torch

from benchmark.engine.evaluation import evaluate, recalibrate_bn


class Fixed(torch.nn.Module):
    """Returns the logits it is given as input."""

    def forward(self, x):
        return x


def test_top1_and_top5_by_hand():
    z = torch.tensor([[9.0, 8, 7, 6, 5, 4], [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]])
    y = torch.tensor([0, 0, 4])
    # sample 0: right at top-1; sample 1: class 0 is last, a miss; sample 2: class 4 is 5th, a top-5 hit
    got = evaluate(Fixed(), [(z[:2], y[:2]), (z[2:], y[2:])])
    assert got["top1"] == pytest.approx(100 / 3) and got["top5"] == pytest.approx(200 / 3)  # float32 means
    assert torch.equal(got["logits"], z) and torch.equal(got["labels"], y)


def test_precise_bn_is_the_plain_average_of_the_batch_statistics():
    bn = torch.nn.BatchNorm1d(1, momentum=0.1)
    net = torch.nn.Sequential(bn).eval()
    batches = [(torch.tensor([[0.0], [2.0]]), None), (torch.tensor([[4.0], [8.0]]), None)]
    recalibrate_bn(net, batches)
    # batch means 1 and 6 -> 3.5; unbiased variances 2 and 8 -> 5
    assert bn.running_mean.item() == 3.5 and bn.running_var.item() == 5.0
    assert bn.momentum == 0.1 and not net.training  # put back as they were
