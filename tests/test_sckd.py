"""SCKD (benchmark/engine/distillers/sckd.py): the gate that selects a term's gradient."""

import torch

from benchmark.engine.distillers.sckd import cut


def test_cut_passes_the_gradient_only_when_kept_and_exactly_zero_otherwise():
    x = torch.tensor([1.0, 0.0], requires_grad=True)
    for keep, want in ((True, [0.5, float("inf")]), (False, [0.0, 0.0])):
        y = cut(x, torch.tensor(keep))
        assert torch.equal(y.detach(), x.detach())
        (g,) = torch.autograd.grad((y.sqrt()).sum(), x)  # d sqrt(x) / dx is inf at 0
        assert g.tolist() == want  # gated off: 0, not 0 * inf = NaN
