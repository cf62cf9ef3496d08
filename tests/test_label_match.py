"""KL-MSE's tau -> 0 limit, label matching (benchmark/engine/losses.py label_match_loss)."""

import pytest
import torch

from benchmark.engine.losses import kd_loss, label_match_loss, make_loss


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(16, 10, generator=g, dtype=torch.float64) * 3,
            torch.randn(16, 10, generator=g, dtype=torch.float64) * 3,
            torch.randint(0, 10, (16,), generator=g))


def ze_grad(z_s, z_t):
    """The slides' limit gradient, one sample at a time (the authors' ze_grad, summed)."""
    out = torch.zeros_like(z_s)
    for i in range(z_s.shape[0]):
        out[i, int(z_s[i].argmax())] += 1.0
        out[i, int(z_t[i].argmax())] -= 1.0
    return out


@pytest.mark.parametrize("reduction, scale", [("batchmean", 1 / 16), ("sum", 1.0)])
def test_gradient_is_the_label_matching_limit(logits, reduction, scale):
    z_s, z_t, y = logits
    zs = z_s.clone().requires_grad_()
    label_match_loss(zs, z_t, y, reduction=reduction).backward()
    torch.testing.assert_close(zs.grad, ze_grad(z_s, z_t) * scale)
    assert (ze_grad(z_s, z_t) != 0).any()  # the draw has samples whose top classes differ


def test_value_is_the_limit_of_kl_over_tau(logits):
    z_s, z_t, y = logits
    limit = label_match_loss(z_s, z_t, y).item()
    assert limit > 0
    # tau^2 KL / tau = tau KL at a small tau approaches it; at tau = 5 it is far
    near = kd_loss(z_s, z_t, y, tau=1e-3, ce_weight=0.0, kd_weight=1.0).item() / 1e-3
    far = kd_loss(z_s, z_t, y, tau=5.0, ce_weight=0.0, kd_weight=1.0).item() / 5.0
    assert near == pytest.approx(limit, rel=1e-2)
    assert far != pytest.approx(limit, rel=2e-1)
    # the same top class: nothing to match
    assert label_match_loss(z_t, z_t, y).item() == 0.0


def test_registered_with_a_teacher_and_no_ce_by_default(logits):
    z_s, z_t, y = logits
    loss = make_loss("label_match")
    assert loss.needs_teacher and loss.params == {"reduction": "batchmean", "ce_weight": 0.0, "kd_weight": 1.0}
    assert set(loss.terms(z_s, z_t, y)) == {"ce", "label_match", "total"}
