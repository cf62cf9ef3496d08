"""AB (Heo et al. 2019; benchmark/engine/distillers/ab.py): the loss against a hand-written float64 formula."""

import torch
import torch.nn.functional as F

from benchmark.engine.distillers import make_distiller
from benchmark.engine.distillers.ab import boundary_loss
from tests.staged import DT, fake, grads_equal, maps


def test_ab_alternative_l2_with_layer_weights():
    g = torch.Generator().manual_seed(0)
    s_maps, t_maps = maps(g, (2, 3, 4), (4, 2, 2)), maps(g, (2, 3, 4), (4, 2, 2), grad=False)
    stem = torch.zeros(3, 2, 4, 4, dtype=DT)
    d = make_distiller("ab", fake(s_maps, stem), fake(t_maps, stem), 5, margin=0.5).double()
    assert all(isinstance(c, torch.nn.Identity) for c in d.connectors)  # same shapes: no connector
    # Heo Eq. 5 rewritten: below a positive teacher neuron relu(m - s)^2, above a non-positive one relu(s + m)^2
    per_layer = [torch.where(t > 0, F.relu(0.5 - s) ** 2, F.relu(s + 0.5) ** 2).sum() for s, t in zip(s_maps, t_maps)]
    ref = (per_layer[0] / 4 + per_layer[1] / 2 + per_layer[2]) / 3 * 3 / 1000
    grads_equal(d.stage_loss(fake(s_maps, stem), fake(t_maps, stem), torch.zeros(3)), ref, s_maps)


def test_boundary_loss_by_hand():
    """Eq. 5 with margin 1: an element counts when the student is on the wrong side of the margin
    (s > -1 where the teacher is off, s <= 1 where it is on), squared distance to the margin."""
    s = torch.tensor([[-2.0, 0.5, 3.0, 0.5]], dtype=DT)
    t = torch.tensor([[-1.0, -1.0, 2.0, 2.0]], dtype=DT)
    # -2 off: fine; 0.5 off: (0.5 + 1)^2 = 2.25; 3 on: fine; 0.5 on: (0.5 - 1)^2 = 0.25
    assert boundary_loss(s, t, margin=1.0).item() == 2.5
    assert boundary_loss(t, t, margin=0.5).item() == 0.0  # the teacher's own maps past the margin
