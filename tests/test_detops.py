"""Deterministic forms of ops (benchmark/engine/detops.py): the adaptive average pool against torch's.
The inventory of the package's pools is checked in test_numerics.py."""


import pytest
import torch
import torch.nn.functional as F

from benchmark.engine import detops


@pytest.mark.parametrize("shape, size, exact", [
    ((2, 3, 8, 8), 1, True),            # the mean torch's own op computes for 1x1
    ((2, 3, 8, 8), (4, 4), True),       # avg_pool2d, kernel 2: sum/2/2 == sum/4 in binary
    ((2, 5, 32, 16), (8, 4), True),     # kernel 4
    ((2, 3, 6, 6), 2, False),           # kernel 3: sum/3/3 against sum/9
    ((2, 3, 7, 7), 4, False),           # overlapping windows (ReviewKD's pyramid on a 7x7 map)
    ((2, 3, 7, 7), 2, False),
    ((2, 3, 13, 13), (6, 6), False),    # torchvision AlexNet's pool on a 13x13 map
    ((2, 3, 1, 1), 2, False),           # AlexNet-small at 64 px: a 1x1 map spread to 2x2
])
def test_the_deterministic_adaptive_pool_equals_torchs(shape, size, exact):
    """Values and gradients: bit for bit where the ratio is a power of two (or 1x1); else to 1e-6,
    since the original divides a window's sum by kh then kw (avg_pool2d by kh*kw; the banded form
    takes a mean of row means)."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), requires_grad=True)
    want = F.adaptive_avg_pool2d(x, size)
    grad_out = torch.randn(want.shape, generator=torch.Generator().manual_seed(1))
    got = detops.deterministic_adaptive_avg_pool2d(x, size)
    (want_grad,), (got_grad,) = torch.autograd.grad(want, x, grad_out), torch.autograd.grad(got, x, grad_out)
    if exact:
        assert torch.equal(got, want) and torch.equal(got_grad, want_grad)
    else:
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-6, atol=1e-6)
    # off CUDA the routed op is torch's own: the CPU's numbers do not move
    assert torch.equal(detops.adaptive_avg_pool2d(x, size), want)
