"""LS-KD's penultimate-layer analyses (Chandrasegaran et al., ICML 2022): the diffusion index of
Sect. 4 (Eq. 1, Table 3), its pairwise-distance variant (App. K, Table K.1), the feature-space
choice of similar / dissimilar classes (App. G.2) and Mueller et al.'s projection (App. F, Fig. 1).

The PDF's extraction lost the symbols; each docstring gives the equation as decoded from the
prose (manifests/lskd/figures/lskd-table3.yaml's notes name every decoding). Features are
``(N, d)`` penultimate activations (the input of the final linear layer); distances are Euclidean.
Computed in float64 (the relative distances are ratios of sums of ~1000 distances).
"""

from __future__ import annotations

import torch

NORMALISERS = ("all", "union")


def class_centroids(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(centroids (C, d), counts (C,)): ``c_k = mean of the features of the samples of class k``
    (Sect. 4, first bullet); a class without samples has a zero centroid and count 0."""
    f = features.double()
    sums = torch.zeros(num_classes, f.shape[1], dtype=torch.float64).index_add_(0, labels.long(), f)
    counts = torch.bincount(labels.long(), minlength=num_classes)
    return sums / counts.clamp_min(1)[:, None].double(), counts


def _normaliser_mask(num: int, target: int, normaliser: str, similar, dissimilar) -> torch.Tensor:
    if normaliser not in NORMALISERS:
        raise ValueError(f"normaliser must be one of {NORMALISERS}, got {normaliser!r}")
    mask = torch.zeros(num, dtype=torch.bool)
    if normaliser == "all":
        mask[:] = True
    else:
        mask[torch.as_tensor(list(similar) + list(dissimilar), dtype=torch.long)] = True
    mask[target] = False
    return mask


def relative_distances(distances: torch.Tensor, target: int, normaliser: str = "all",
                       similar=(), dissimilar=()) -> torch.Tensor:
    """Relative distances of a target class t to every class k (Sect. 4, third bullet):

        d~_tk = d_tk / Z_t,   Z_t = sum_{j in N, j != t} d_tj

    ``distances`` (C,) are d_tk = ||c_t - c_k|| (or App. K's mean pairwise distances). N, the set
    the normaliser sums over ("all other classes in <symbol lost>"), is every class (``all``, the
    default reading) or S u D (``union``; then ``similar`` and ``dissimilar`` are needed)."""
    d = distances.double()
    mask = _normaliser_mask(len(d), target, normaliser, similar, dissimilar)
    return d / d[mask].sum()


def diffusion_index(before: torch.Tensor, after: torch.Tensor, classes) -> float:
    """Diffusion index, Eq. 1, over a set X of classes (S: similar, D: dissimilar):

        alpha_X = 100 / |X| * sum_{k in X} (d~_tk(T2) - d~_tk(T1)) / d~_tk(T1)

    the mean percentage change of the relative distances ``before`` (at T1) -> ``after`` (at T2);
    alpha_S < 0 and alpha_D > 0 is diffusion towards the similar classes."""
    idx = torch.as_tensor(list(classes), dtype=torch.long)
    b, a = before.double()[idx], after.double()[idx]
    return float(100.0 * ((a - b) / b).mean())


def centroid_distances(centroids: torch.Tensor, target: int) -> torch.Tensor:
    """d_tk = ||c_t - c_k|| for every class k (C,)."""
    c = centroids.double()
    return (c - c[target]).norm(dim=1)


def mean_pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """App. K's cluster distance: the mean over all pairs (x in A, y in B) of ||x - y||
    (A = B gives the mean over all ordered pairs, the zero self-pairs included)."""
    return float(torch.cdist(a.double(), b.double()).mean())


def pairwise_distances(features: torch.Tensor, labels: torch.Tensor, target: int, num_classes: int) -> torch.Tensor:
    """(C,) App. K's distance from the target class to each class k: the mean over all pairs
    (x of class t, y of class k) of ||x - y||, as mean_pairwise_distance for every k at once;
    NaN for a class without samples."""
    f, y = features.double(), labels.long()
    per_sample = torch.cdist(f[y == target], f).mean(dim=0)  # each sample's mean distance to the target's
    sums = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, y, per_sample)
    counts = torch.bincount(y, minlength=num_classes)
    out = sums / counts.clamp_min(1)
    out[counts == 0] = float("nan")
    return out


def feature_space_sets(centroids: torch.Tensor, target: int, similar: int = 10,
                       dissimilar: int = 900) -> tuple[list[int], list[int]]:
    """App. G.2: S = the ``similar`` classes whose centroids are nearest the target's, D = the
    ``dissimilar`` farthest (10 and 900 of the 999 others on ImageNet), by centroid distance of
    a reference network. Ties are broken by the class index (a stable sort)."""
    d = centroid_distances(centroids, target)
    others = [k for k in torch.argsort(d, stable=True).tolist() if k != target]
    if similar + dissimilar > len(others):
        raise ValueError(f"{similar} similar and {dissimilar} dissimilar classes of {len(others)} others")
    return others[:similar], others[len(others) - dissimilar:]


# ------------------------------------------------------- App. F: Mueller et al.'s projection


def muller_basis(weights: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis Q (d+1, 3) of the plane through the three classes' templates
    (App. F, after Mueller et al. 2019): the final layer's weight rows w_k with their biases
    appended, [w_k; b_k], orthonormalised by a QR decomposition (Q R = [[w_1; b_1] ... [w_3; b_3]])."""
    templates = torch.cat([weights.double(), biases.double()[:, None]], dim=1)  # (3, d+1)
    q, _ = torch.linalg.qr(templates.T)
    return q


def muller_project(features: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """The features with a 1 appended (so the bias takes part, lskd.txt:47's footnote) in the
    basis: x' = [x, 1] Q, (N, 3)."""
    x = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    return x @ basis


def pca_fit(x: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (m,), components (k, m)) of a PCA by the SVD of the centred data: the rows of V^T with
    the k largest singular values. Each component's sign makes its largest-magnitude entry
    positive (a fixed choice: a principal axis has no sign of its own)."""
    x = x.double()
    mean = x.mean(dim=0)
    _, _, vt = torch.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:k]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(dim=1, keepdim=True)))
    return mean, comps * signs


def pca_apply(x: torch.Tensor, mean: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    """(x - mean) V_k^T: the coordinates on the principal axes."""
    return (x.double() - mean) @ components.T
