"""VID (Ahn et al. 2019; benchmark/engine/distillers/vid.py): the variance starts at init_var, and the
loss is the Gaussian negative log-likelihood, by hand."""

import math

import torch

from benchmark.engine.distillers.vid import VIDLayer


def test_the_layer_is_a_gaussian_nll_with_a_learned_variance():
    layer = VIDLayer(2, 3, 2, init_var=5.0).double()
    var = torch.nn.functional.softplus(layer.alpha) + 1e-5  # EPS of the module
    assert torch.allclose(var, torch.full((2,), 5.0, dtype=torch.float64))  # to float32's rounding of alpha
    v = var[0].item()
    for conv in layer.regressor:
        if isinstance(conv, torch.nn.Conv2d):
            torch.nn.init.zeros_(conv.weight)  # mu = 0
    f_s = torch.randn(1, 2, 2, 2, dtype=torch.float64)
    f_t = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    # 0.5 * (t^2 / v + log v) averaged over the 8 entries (v = 5): sum t^2 = 1 + 4 + 1 + 9 = 15
    want = 0.5 * (15 / 8 / v + math.log(v))
    assert abs(layer(f_s, f_t).item() - want) < 1e-12
