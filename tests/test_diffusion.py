"""LS-KD's diffusion index (Eq. 1), its pairwise variant (App. K), App. G.2's class sets and
Mueller's projection (App. F) (benchmark/engine/diffusion.py), on tiny hand-computed tensors."""

import math

import pytest
import torch

from benchmark.engine import diffusion as dif

D = torch.float64


def test_class_centroids_are_per_class_means_and_an_empty_class_counts_zero():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [3.0, 3.0]], dtype=D)
    c, n = dif.class_centroids(x, torch.tensor([0, 0, 1, 1]), 3)
    assert c.tolist() == [[1.0, 0.0], [2.0, 2.0], [0.0, 0.0]] and n.tolist() == [2, 2, 0]


def test_relative_distances_over_all_classes_and_over_s_union_d():
    c = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0]], dtype=D)
    d = dif.centroid_distances(c, 0)
    assert d.tolist() == [0.0, 5.0, 10.0, 1.0]
    assert dif.relative_distances(d, 0).tolist() == [0.0, 5 / 16, 10 / 16, 1 / 16]  # Z = 5 + 10 + 1
    union = dif.relative_distances(d, 0, "union", similar=[3], dissimilar=[1])  # Z = 1 + 5: class 2 left out
    assert union.tolist() == pytest.approx([0.0, 5 / 6, 10 / 6, 1 / 6])
    with pytest.raises(ValueError, match="normaliser"):
        dif.relative_distances(d, 0, "some")


def test_diffusion_index_is_the_mean_percentage_change():
    before = torch.tensor([0.0, 0.5, 0.25, 0.25], dtype=D)
    after = torch.tensor([0.0, 0.4, 0.3, 0.3], dtype=D)
    assert dif.diffusion_index(before, after, [1]) == pytest.approx(-20.0)  # (0.4 - 0.5) / 0.5
    assert dif.diffusion_index(before, after, [2, 3]) == pytest.approx(20.0)  # 0.05 / 0.25 each
    assert dif.diffusion_index(before, after, [1, 2]) == pytest.approx(0.0)


def test_mean_pairwise_distance_and_per_class_pairwise_distances():
    a = torch.tensor([[0.0, 0.0]], dtype=D)
    b = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=D)
    assert dif.mean_pairwise_distance(a, b) == pytest.approx(3.0)  # (5 + 1) / 2
    ab = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=D)
    assert dif.mean_pairwise_distance(ab, ab) == pytest.approx(2.5)  # (0 + 5 + 5 + 0) / 4
    feats = torch.cat([a, b, ab])  # class 0: (0, 0); class 1: b; class 3: (0, 0), (3, 4); class 2: none
    out = dif.pairwise_distances(feats, torch.tensor([0, 1, 1, 3, 3]), 0, 4)
    assert out[0] == 0.0 and out[1] == pytest.approx(3.0) and math.isnan(out[2]) and out[3] == pytest.approx(2.5)


def test_feature_space_sets_nearest_and_farthest_with_ties_by_index():
    c = torch.tensor([[float(k), 0.0] for k in range(5)], dtype=D)  # distances from class 2: 2 1 0 1 2
    assert dif.feature_space_sets(c, 2, similar=1, dissimilar=2) == ([1], [0, 4])
    assert dif.feature_space_sets(c, 0, similar=2, dissimilar=1) == ([1, 2], [4])
    with pytest.raises(ValueError):
        dif.feature_space_sets(c, 0, similar=3, dissimilar=2)


def test_muller_projection_keeps_the_templates_plane_and_drops_the_rest():
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=D)
    b = torch.tensor([0.0, 0.0, 1.0], dtype=D)  # templates e1, e2, e4 of R^4
    q = dif.muller_basis(w, b)
    assert q.shape == (4, 3) and torch.allclose(q.T @ q, torch.eye(3, dtype=D))
    p = dif.muller_project(torch.tensor([[2.0, 3.0, 5.0]], dtype=D), q)  # [2, 3, 5, 1]: the 5 is off the plane
    assert p.abs()[0].tolist() == pytest.approx([2.0, 3.0, 1.0])


def test_pca_by_centred_svd_with_a_fixed_sign():
    x = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, -0.5, 0.0]], dtype=D) + 10
    mean, comps = dif.pca_fit(x, 2)
    assert mean.tolist() == [10.0, 10.0, 10.0]
    assert torch.allclose(comps, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=D))
    assert dif.pca_apply(torch.tensor([[12.0, 11.0, 17.0]], dtype=D), mean, comps).tolist() == [[2.0, 1.0]]
    _, flipped = dif.pca_fit(-x, 2)  # the data mirrored: the same axes, signs fixed
    assert torch.allclose(flipped, comps)
