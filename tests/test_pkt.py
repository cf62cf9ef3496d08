"""PKT (Passalis & Tefas 2018; benchmark/engine/distillers/pkt.py): the conditional probabilities, by hand."""

import torch

from benchmark.engine.distillers.pkt import conditional_probs


def test_conditional_probs_of_the_cosine_kernel_by_hand():
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]], dtype=torch.float64)
    # unit rows: e1, e2, -e1; kernel (cos + 1) / 2: [[1, .5, 0], [.5, 1, .5], [0, .5, 1]]; rows sum to 1
    want = torch.tensor([[1 / 1.5, 0.5 / 1.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.5 / 1.5, 1 / 1.5]], dtype=torch.float64)
    # within 1e-7: the norm has EPS = 1e-7 added (RepDistiller's eps), so the opposite rows are not quite -1
    torch.testing.assert_close(conditional_probs(x), want, rtol=1e-6, atol=1e-7)
    zero = conditional_probs(torch.zeros(2, 2, dtype=torch.float64))  # a zero row: cosine 0, not NaN
    torch.testing.assert_close(zero, torch.full((2, 2), 0.5, dtype=torch.float64))
