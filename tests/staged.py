"""Helpers of the pre-training methods' loss tests (test_ab.py, test_fsp.py, test_ft.py): float64
feature maps, a feature dict with them as taps, and a value-and-gradient comparison."""

import pytest
import torch

DT = torch.float64


def grads_equal(value, ref, inputs):
    assert value.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    for a, b in zip(torch.autograd.grad(value, inputs, retain_graph=True),
                    torch.autograd.grad(ref, inputs, retain_graph=True)):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


def maps(g, channels, sides, n=3, grad=True):
    return [torch.randn(n, c, s, s, generator=g, dtype=DT).requires_grad_(grad) for c, s in zip(channels, sides)]


def fake(stages, stem, n=3):
    return {"logits": torch.zeros(n, 5, dtype=DT), "penultimate": torch.zeros(n, 4, dtype=DT),
            "stages": stages, "taps": [stem, *stages], "preact_taps": [stem, *stages]}
