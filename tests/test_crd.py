"""CRD's negatives have RepDistiller's distribution (dataset/cifar100.py l. 166-167 and
dataset/imagenet.py l. 99, commit 49f9be6), tested by their frequencies over many seeded draws;
no (B, n_data) tensor and no (B, 1 + K, feat_dim) block of bank rows is built; the chunked
scores give the whole computation's values and gradients."""

import itertools
import math

import pytest
import torch
from scipy import stats
from torch.utils._python_dispatch import TorchDispatchMode

from benchmark.engine.distillers import crd as crd_module
from benchmark.engine.distillers import make_distiller
from tests.nohostsync import NoHostSync

P_MIN = 1e-3  # seeded draws: a correct sampler passes at this seed; a wrong one fails by far


def crd(labels, k, sampler="floyd", dim=4):
    probe = {"penultimate": torch.zeros(2, dim)}
    return make_distiller("crd", probe, probe, int(labels.max()) + 1, train_labels=labels, nce_k=k,
                          sampler=sampler, feat_dim=dim)


def draw(d, y, seed=0):
    torch.manual_seed(seed)
    with NoHostSync():  # drawing reads nothing on the host
        return d.negatives(y)


def subset_counts(rows):
    counts = {}
    for row in rows.tolist():
        key = tuple(sorted(row))
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_every_k_subset_of_the_other_classes_is_equally_likely():
    """Class 0 has 2 samples, class 1 has 7: a row of class 0 draws 3 of the 7 others. All 35
    subsets, none with a repeat, none of class 0, equally often (chi-square, 35 cells)."""
    labels = torch.tensor([1, 0, 1, 1, 0, 1, 1, 1, 1])
    rows = draw(crd(labels, 3), torch.zeros(35 * 300, dtype=torch.long))
    counts = subset_counts(rows)
    others = (labels != 0).nonzero().flatten().tolist()
    assert set(counts) == set(itertools.combinations(others, 3))
    assert stats.chisquare(list(counts.values())).pvalue > P_MIN


def test_the_chi_square_above_rejects_a_near_miss():
    """The test's power: sorted i.i.d. draws plus their rank also give 3 distinct positions of 7
    with every subset possible, but not uniformly; the same statistic rejects them."""
    torch.manual_seed(0)
    t = torch.randint(0, 5, (35 * 300, 3)).sort(1).values + torch.arange(3)
    counts = subset_counts(t)
    assert len(counts) == 35 and stats.chisquare(list(counts.values())).pvalue < 1e-12


def inclusion_pvalue(counts, rows, k, n, replace):
    """Counts of each of n cells over rows draws of k: uniform? Without replacement each cell is
    Binomial(rows, k/n) (a row holds a cell at most once), so the statistic uses that variance."""
    p = k / n
    expected = rows * p if not replace else rows * k / n
    var = rows * p * (1 - p) if not replace else expected
    statistic = ((counts - expected) ** 2 / var).sum().item()
    return stats.chi2.sf(statistic, n - 1)


# Unequal classes: 60 samples; K = 40 is more than class 0's 30 others (drawn with replacement,
# RepDistiller's replace = k > len(cls_negative)) and at most every other class's (a K-subset).
SIZES = [30, 5, 10, 15]


def unequal_labels():
    g = torch.Generator().manual_seed(3)
    return torch.repeat_interleave(torch.arange(4), torch.tensor(SIZES))[torch.randperm(60, generator=g)]


@pytest.mark.parametrize("sampler", ["floyd", "with_replacement"])
def test_each_other_class_sample_is_drawn_equally_often(sampler):
    labels, k, per_class = unequal_labels(), 40, 2000
    y = torch.arange(4).repeat_interleave(per_class)
    rows = draw(crd(labels, k, sampler), y)
    assert rows.shape == (4 * per_class, k)
    for c in range(4):
        mine = rows[y == c]
        n = 60 - SIZES[c]
        replace = sampler == "with_replacement" or k > n
        assert (labels[mine] != c).all()  # never the anchor's class, hence never its own index
        distinct = torch.tensor([len(set(r)) for r in mine.tolist()]).double()
        if replace:  # repeats as often as k uniform draws of n give them
            assert distinct.mean().item() == pytest.approx(n * (1 - (1 - 1 / n) ** k), abs=0.1)
        else:
            assert (distinct == k).all()
        counts = torch.bincount(mine.flatten(), minlength=60).double()[labels != c]
        assert inclusion_pvalue(counts, per_class, k, n, replace) > P_MIN


def test_a_large_draw_is_uniform_and_distinct():
    """CIFAR-100's proportions, scaled: 100 classes of 50, K = 1638 of the 4950 others."""
    labels = torch.arange(5000) % 100
    rows = draw(crd(labels, 1638), torch.full((400,), 7))
    assert all(len(set(r)) == 1638 for r in rows.tolist()) and (labels[rows] != 7).all()
    counts = torch.bincount(rows.flatten(), minlength=5000).double()[labels != 7]
    assert inclusion_pvalue(counts, 400, 1638, 4950, replace=False) > P_MIN


class LargestNew(TorchDispatchMode):
    """The largest tensor an op allocates (in-place ops, which return their input, excluded)."""

    def __init__(self):
        super().__init__()
        self.largest = (0, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func._schema.is_mutable:
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if torch.is_tensor(t) and t.numel() > self.largest[0]:
                    self.largest = (t.numel(), str(func))
        return out


def test_no_tensor_of_the_batch_times_the_data_or_of_all_gathered_rows(monkeypatch):
    monkeypatch.setattr(crd_module, "CHUNK_ELEMENTS", 8 * 4 * 16)  # 4 columns of bank rows at a time
    labels = torch.arange(20000) % 10
    b, k, dim = 8, 64, 16
    d = crd(labels, k, dim=dim)
    e_s, e_t = torch.randn(b, 5, requires_grad=True), torch.randn(b, 7, requires_grad=True)
    d.embed_s, d.embed_t = crd_module.Embed(5, dim), crd_module.Embed(7, dim)
    y, index = labels[:b], torch.arange(b)
    fs, ft = {"penultimate": e_s, "stages": []}, {"penultimate": e_t, "stages": []}
    mode = LargestNew()
    with mode:
        d.feature_loss(fs, ft, y, index).backward()
    assert mode.largest[0] < min(b * len(labels), b * (1 + k) * dim) / 4, mode.largest


def test_chunked_scores_equal_one_block(monkeypatch):
    """The same value, gradients and banks with one column of bank rows at a time as with all at
    once, float64; the rows the momentum update overwrites (the positives, and negatives that are
    other anchors of the batch) enter the gradient with their values before the update."""
    labels = torch.arange(12) % 3
    y, index = labels[:6], torch.arange(6)
    results = []
    for chunk in (1 << 24, 6 * 3):  # all columns; one column of (B, 1, 3) rows
        monkeypatch.setattr(crd_module, "CHUNK_ELEMENTS", chunk)
        torch.manual_seed(0)
        d = crd(labels, 7, dim=3).double()
        g = torch.Generator().manual_seed(1)
        e_s = torch.randn(6, 4, dtype=torch.float64, generator=g, requires_grad=True)
        e_t = torch.randn(6, 5, dtype=torch.float64, generator=g, requires_grad=True)
        d.embed_s, d.embed_t = crd_module.Embed(4, 3).double(), crd_module.Embed(5, 3).double()
        torch.manual_seed(2)
        fs, ft = {"penultimate": e_s, "stages": []}, {"penultimate": e_t, "stages": []}
        value = d.feature_loss(fs, ft, y, index) + d.feature_loss(fs, ft, y, index)  # the 2nd: banks moved
        grads = torch.autograd.grad(value, [e_s, e_t])
        results.append((value, grads, d.memory_s.clone(), d.memory_t.clone()))
    (v1, g1, s1, t1), (v2, g2, s2, t2) = results
    assert v1.item() == pytest.approx(v2.item(), rel=1e-12)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    assert torch.equal(s1, s2) and torch.equal(t1, t2)
    assert math.isfinite(v1.item())
