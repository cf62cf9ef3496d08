"""The generated stand-ins (benchmark/engine/data/synthetic.py): shapes, determinism, a fixed set of
batched ops, learnable with dark knowledge, classes sharing structure within groups."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from benchmark.engine.data.registry import DATASETS, get_spec
from benchmark.engine.data.synthetic import synthetic_arrays, synthetic_groups


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items() if s.kind != "audio"])  # gsc: test_data_speech.py
def test_synthetic_shapes_and_classes(name):
    spec = get_spec(name)
    size = 32 if name in ("cifar10", "cifar100", "svhn") else 64  # 224-px datasets are generated at 64 px
    for split in ("train", "test"):
        per_class = spec.synthetic_train_per_class if split == "train" else spec.synthetic_test_per_class
        images, labels = synthetic_arrays(name, split)
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape == (spec.num_classes * per_class, size, size, 3)
        assert torch.bincount(labels, minlength=spec.num_classes).tolist() == [per_class] * spec.num_classes
    defaults = (spec.synthetic_train_per_class, spec.synthetic_test_per_class)
    assert defaults == ((2, 1) if name == "imagenet" else (10, 4))


def test_synthetic_is_deterministic():
    a = synthetic_arrays("cifar100", "train", seed=3)
    b = synthetic_arrays("cifar100", "train", seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = synthetic_arrays("cifar100", "train", seed=4)
    assert not torch.equal(a[0], c[0])
    test = synthetic_arrays("cifar100", "test", seed=3, per_class=10)
    assert not torch.equal(a[0], test[0])  # same sizes, different samples
    assert not torch.equal(synthetic_arrays("cifar10", "train")[0][:50], synthetic_arrays("svhn", "train")[0][:50])
    images, _ = synthetic_arrays("cub", "train", per_class=1, image_size=48)
    assert images.shape == (200, 48, 48, 3)
    assert images.float().std() > 30  # a real spread of pixel values, not a flat image


def test_synthetic_cost_is_a_fixed_set_of_batched_ops():
    """What keeps the stand-in fast, asserted without a clock (wall time is no test of code): every
    image comes out of one fixed set of batched tensor operations, however many images (no
    per-image Python loop), and the texture is one grouped convolution drawn at 32 px, also for
    the 64-px datasets."""
    ops = {}
    for name, per_class in (("cifar100", 1), ("cifar100", 20), ("tinyimagenet", 1), ("tinyimagenet", 3)):
        with _TensorOps() as log:
            images, _ = synthetic_arrays(name, "train", per_class=per_class)
        ops[name, per_class] = [op for op, _ in log.calls]
        n = images.shape[0]
        convs = [shapes for op, shapes in log.calls if op == "aten.convolution"]
        assert convs == [[(1, 3 * n, 32 + 5 - 1, 32 + 5 - 1), (3 * n, 3, 5, 5)]], (name, per_class)
    assert ops["cifar100", 1] == ops["cifar100", 20]
    assert ops["tinyimagenet", 1] == ops["tinyimagenet", 3]


def _pooled(images: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(images.permute(0, 3, 1, 2).float() / 255, 8).flatten(1)


def test_synthetic_is_learnable_with_dark_knowledge():
    """A linear classifier on the mean-pooled image, 100 full-batch steps: far above chance on the
    test split, and its wrong-class probability goes mostly to classes of the true class's group."""
    xtr, ytr = synthetic_arrays("cifar100", "train")
    xte, yte = synthetic_arrays("cifar100", "test")
    ftr, fte = _pooled(xtr), _pooled(xte)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    torch.manual_seed(0)
    model = torch.nn.Linear(ftr.shape[1], 100)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = F.cross_entropy(model(ftr), ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        prob = model(fte).softmax(1)
    accuracy = (prob.argmax(1) == yte).float().mean().item()
    assert accuracy > 0.3  # chance is 0.01; measured 0.84
    assert accuracy < 0.99  # and not trivially separable
    groups = synthetic_groups("cifar100")
    same = groups[None, :] == groups[yte][:, None]
    rows = torch.arange(len(yte))
    same[rows, yte] = False
    other = ~same
    other[rows, yte] = False
    p_same = ((prob * same).sum(1) / same.sum(1)).mean()
    p_other = ((prob * other).sum(1) / other.sum(1)).mean()
    assert p_same > 10 * p_other


def test_synthetic_classes_share_structure_within_groups():
    images, labels = synthetic_arrays("cifar100", "train", per_class=20)
    feats = _pooled(images)
    means = torch.stack([feats[labels == c].mean(0) for c in range(100)])
    means = F.normalize(means - means.mean(0), dim=1)
    cos = means @ means.T
    groups = synthetic_groups("cifar100")
    within = (groups[:, None] == groups[None, :]) & ~torch.eye(100, dtype=torch.bool)
    across = groups[:, None] != groups[None, :]
    assert groups.tolist()[:10] == [0] * 5 + [1] * 5 and int(groups.max()) == 19  # 20 groups of 5
    assert cos[within].mean() > cos[across].mean() + 0.3


class _TensorOps(TorchDispatchMode):
    """Logs every tensor operation run inside it: (op name, shapes of its tensor arguments)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append((str(func.overloadpacket), [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]))
        return func(*args, **(kwargs or {}))
