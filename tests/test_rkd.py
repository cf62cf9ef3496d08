"""RKD (Park et al. 2019; benchmark/engine/distillers/rkd.py): distances, their normalisation by the
mean distance, and the angles, by hand."""

import torch

from benchmark.engine.distillers.rkd import angles, by_mean_distance, pairwise_distance

DT = torch.float64


def test_pairwise_distances_and_their_mean_by_hand():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]], dtype=DT)
    d = pairwise_distance(x)
    torch.testing.assert_close(d, torch.tensor([[0.0, 5.0, 4.0], [5.0, 0.0, 3.0], [4.0, 3.0, 0.0]], dtype=DT))
    assert d.diagonal().eq(0).all()  # exact zeros, not sqrt(eps)
    # the off-diagonal mean is (5 + 4 + 3) * 2 / 6 = 4
    torch.testing.assert_close(by_mean_distance(d), d / 4.0)


def test_angles_are_cosines_at_each_vertex():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=DT)
    a = angles(x).view(3, 3, 3)  # a[j, i, k] = cos of the angle at x_j between x_i and x_k
    assert a[0, 1, 2].item() == 0.0  # the right angle at the origin
    assert abs(a[1, 0, 2].item() - 2 ** -0.5) < 1e-12  # 45 degrees at (1, 0)
    assert abs(a[2, 0, 1].item() - 2 ** -0.5) < 1e-12
    assert a[0, 1, 1].item() == 1.0  # a side with itself
