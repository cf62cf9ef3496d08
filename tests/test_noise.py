"""Label noise on the training split (data.label_noise; benchmark/engine/data/noise.py)."""

import math

import pytest
import torch

from benchmark.engine import config as C
from benchmark.engine.assembly import build_pipeline
from benchmark.engine.data.noise import Relabeled, noisy_labels
from benchmark.engine.execution import ExecOptions
from benchmark.spec import run_id
from tests.helpers import cli

K, N = 100, 20000
CLEAN = torch.arange(N) % K


def _within_binomial(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("rate", [0.4, 0.8])
def test_symmetric_changes_rate_times_k_minus_1_over_k(rate):
    noisy = noisy_labels(CLEAN, K, "cifar100", "symmetric", rate, 0)
    changed = int((noisy != CLEAN).sum())
    # the draw may keep the true label: a changed label with probability rate * (K - 1) / K
    assert _within_binomial(changed, N, rate * (K - 1) / K)
    assert noisy.min() >= 0 and noisy.max() < K
    # the new labels are uniform over the classes: no class gets far more than its share
    counts = torch.bincount(noisy[noisy != CLEAN], minlength=K)
    assert counts.max() < 2 * changed / K


def test_symmetric_other_changes_every_drawn_label():
    rate = 0.4
    noisy = noisy_labels(CLEAN, K, "cifar100", "symmetric_other", rate, 0)
    changed = int((noisy != CLEAN).sum())
    assert _within_binomial(changed, N, rate)
    # the same samples are chosen as by `symmetric` (one uniform per sample), and all of them change
    keep_allowed = noisy_labels(CLEAN, K, "cifar100", "symmetric", rate, 0)
    assert ((keep_allowed != CLEAN) & (noisy == CLEAN)).sum() == 0


def test_deterministic_seeded_and_nested():
    a = noisy_labels(CLEAN, K, "cifar100", "symmetric", 0.4, 0)
    assert torch.equal(a, noisy_labels(CLEAN.clone(), K, "cifar100", "symmetric", 0.4, 0))
    assert not torch.equal(a, noisy_labels(CLEAN, K, "cifar100", "symmetric", 0.4, 1))
    assert not torch.equal(a, noisy_labels(CLEAN, K, "cifar10", "symmetric", 0.4, 0))
    # the samples redrawn at 40 % are redrawn (to the same labels) at 80 %
    b = noisy_labels(CLEAN, K, "cifar100", "symmetric", 0.8, 0)
    assert torch.equal(b[a != CLEAN], a[a != CLEAN])
    # no noise: the labels as they were
    assert torch.equal(noisy_labels(CLEAN, K, "cifar100", "symmetric", 0.0, 0), CLEAN)
    assert torch.equal(noisy_labels(CLEAN, K, "cifar100", "none", 0.0, 0), CLEAN)


def _cfg(noise=None):
    data = {"source": "synthetic", "synthetic": {"per_class": 20, "test_per_class": 10}}
    if noise:
        data["label_noise"] = noise
    return C.resolve({"dataset": "cifar10", "model": "resnet8", "loss": {"name": "ce"}, "data": data})


def test_only_the_training_labels_change_and_the_id_records_the_noise():
    clean, noisy = _cfg(), _cfg({"kind": "symmetric", "rate": 0.4, "seed": 3})
    p_clean, p_noisy = build_pipeline(clean, ExecOptions()), build_pipeline(noisy, ExecOptions())
    assert torch.equal(p_clean.train_images, p_noisy.train_images)
    assert torch.equal(p_clean.test_labels, p_noisy.test_labels)
    changed = (p_clean.train_labels != p_noisy.train_labels).float().mean().item()
    assert 0.2 < changed < 0.5  # 200 samples, expected 0.4 * 9/10 = 0.36
    expected = noisy_labels(p_clean.train_labels, 10, "cifar10", "symmetric", 0.4, 3)
    assert torch.equal(p_noisy.train_labels, expected)
    # the noise is part of the run's identity, its seed included; no noise leaves the id alone
    other_seed = _cfg({"kind": "symmetric", "rate": 0.4, "seed": 4})
    assert len({run_id(clean), run_id(noisy), run_id(other_seed)}) == 3
    assert run_id(clean) == run_id(_cfg({"kind": "none", "rate": 0.0, "seed": 0}))
    assert noisy["data"]["label_noise"] == {"kind": "symmetric", "rate": 0.4, "seed": 3}


def test_relabeled_dataset_keeps_the_inputs():
    base = [(torch.full((2,), float(i)), i % 3) for i in range(6)]
    labels = torch.tensor([2, 2, 2, 0, 0, 0])
    ds = Relabeled(base, labels)
    assert [ds[i][1] for i in range(6)] == [2, 2, 2, 0, 0, 0] == ds.targets
    assert torch.equal(ds[4][0], base[4][0])


@pytest.mark.parametrize("noise, problem", [
    ("{kind: symmetric, rate: 1.0}", "data.label_noise.rate: must be in [0, 1)"),
    ("{kind: symmetric, rate: -0.2}", "data.label_noise.rate: must be >= 0"),
    ("{kind: asymmetric, rate: 0.2}", "data.label_noise.kind: must be one of none, symmetric, symmetric_other"),
])
def test_bad_noise_is_one_line_exit_2_nothing_written(tmp_path, noise, problem):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: cifar10\nmodel: resnet8\nloss: {name: ce}\n"
                   f"data: {{source: synthetic, label_noise: {noise}}}\n")
    store = tmp_path / "store"
    out = cli("train", cfg, "--store", store)  # main() in this process: no interpreter to start
    assert out.returncode == 2
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and "run.yaml" in lines[0]
    assert not store.exists()
