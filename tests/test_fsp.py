"""FSP (Yim et al. 2017; benchmark/engine/distillers/fsp.py): the FSP matrix and the loss against a
hand-written float64 formula, and its channel check."""

import pytest
import torch

from benchmark.engine.distillers import make_distiller
from benchmark.engine.distillers.fsp import fsp_matrix
from tests.staged import DT, fake, grads_equal, maps


def test_fsp_matrix_and_loss():
    g = torch.Generator().manual_seed(1)
    bottom, top = maps(g, (2, 3), (4, 2))
    ref = torch.zeros(3, 3, 2, dtype=DT)
    pooled = bottom.reshape(3, 2, 2, 2, 2, 2).mean(dim=(3, 5))  # 4x4 -> 2x2 average pool
    for b in range(3):
        for i in range(3):
            for j in range(2):
                ref[b, i, j] = (top[b, i] * pooled[b, j]).sum() / 4
    grads_equal(fsp_matrix(bottom, top).sum(), ref.sum(), [bottom, top])
    torch.testing.assert_close(fsp_matrix(bottom, top), ref)

    s_maps, t_maps = maps(g, (2, 2, 3), (4, 4, 2)), maps(g, (2, 2, 3), (4, 4, 2), grad=False)
    d = make_distiller("fsp", fake(s_maps[1:], s_maps[0]), fake(t_maps[1:], t_maps[0]), 5)
    loss = d.stage_loss(fake(s_maps[1:], s_maps[0]), fake(t_maps[1:], t_maps[0]), None)
    ref = sum(((fsp_matrix(a, b) - fsp_matrix(c, e)) ** 2).mean()
              for a, b, c, e in zip(s_maps[:-1], s_maps[1:], t_maps[:-1], t_maps[1:]))
    grads_equal(loss, ref, s_maps)


def test_fsp_needs_equal_channels():
    g = torch.Generator().manual_seed(2)
    s, t = maps(g, (2, 2, 3), (4, 4, 2)), maps(g, (2, 4, 3), (4, 4, 2))
    with pytest.raises(ValueError, match="equal channel counts"):
        make_distiller("fsp", fake(s[1:], s[0]), fake(t[1:], t[0]), 5)
