"""The smoke profile's stand-in is learnt: a smoke teacher ends far above chance, and what it gets
wrong goes to classes of the true class's group (the "dark knowledge" its students are taught).

Before the profile trained SMOKE_EPOCHS epochs on SMOKE_PER_CLASS images per class at SMOKE_SIDE px
with ResNet blocks started as their shortcuts, a smoke run was one 32-px epoch of 10 images per
class, and networks ended near chance (1-4.5 % on CIFAR-100's 100 classes): both assertions failed
there (resnet8 as below, measured: 4.25 % top-1, same-group probability 1.6x the others').
"""

import torch

from benchmark.catalog import profiles
from benchmark.catalog.manifest import cached_catalog
from benchmark.engine import config as C
from benchmark.engine.data import synthetic_groups
from benchmark.engine.execution import ExecOptions
from benchmark.engine.train import train_run
from benchmark.store.layout import TEST_LOGITS, Store


def smoke_teacher_config(model: str) -> dict:
    """A CIFAR-100 teacher as the planner makes it at the smoke profile (the recipe of ATKD's
    CIFAR tables, as atkd-table5's teachers), resolved."""
    recipe = cached_catalog().recipes["repdistiller-cifar"]
    raw = {"dataset": "cifar100", "data": dict(recipe["data"]), "model": model, "loss": {"name": "ce"},
           "recipe": dict(recipe["recipe"]), "seed": 0, "init": None, "teacher": None}
    return C.resolve(profiles.apply("smoke", raw))


def test_a_smoke_teacher_learns_its_stand_in_with_dark_knowledge(tmp_path):
    cfg = smoke_teacher_config("resnet8")
    assert cfg["data"]["synthetic"]["image_size"] == profiles.SMOKE_SIDE  # the profile as it is planned
    store = Store(tmp_path)
    result = train_run(cfg, store, ExecOptions())
    chance = 100 / 100
    assert result["metrics"]["top1"] >= 10 * chance  # measured: 15.5 % (the old one-epoch profile: 4.25 %)
    saved = torch.load(store.run_file(result["id"], TEST_LOGITS), weights_only=True)
    prob, labels = saved["logits"].softmax(1), saved["labels"]
    groups = synthetic_groups("cifar100")
    same = groups[None, :] == groups[labels][:, None]
    rows = torch.arange(len(labels))
    same[rows, labels] = False
    other = ~same
    other[rows, labels] = False
    p_same = ((prob * same).sum(1) / same.sum(1)).mean()
    p_other = ((prob * other).sum(1) / other.sum(1)).mean()
    assert p_same > 2 * p_other  # measured: 4.6x (the old one-epoch profile: 1.6x)
