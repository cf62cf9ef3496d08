"""A run's cost (benchmark/catalog/runcost.py): its data sizes and FLOPs, by the formula of the
module's docstring."""

from benchmark.catalog.flops import forward_flops
from benchmark.catalog.runcost import estimate_flops, sizes


def _cfg(**changes):
    cfg = {"model": "resnet8", "dataset": "cifar100", "teacher": None, "loss": {"name": "ce"},
           "data": {"source": "real"}, "recipe": {"epochs": 2, "final_train_eval": False}}
    return {**cfg, **changes}


def test_sizes_of_real_and_generated_data():
    assert sizes(_cfg()) == (32, 50000, 10000)
    syn = {"source": "synthetic", "synthetic": {"image_size": None, "per_class": 3, "test_per_class": None}}
    assert sizes(_cfg(data=syn)) == (32, 300, 400)  # 3 and the registry's 4 test images per class
    assert sizes(_cfg(dataset="tinyimagenet", data={**syn, "synthetic": {**syn["synthetic"], "image_size": 16}})) == \
        (16, 600, 800)


def test_flops_are_three_student_forwards_per_training_image_plus_the_teachers():
    s, t = forward_flops("resnet8", 100, 32), forward_flops("resnet56", 100, 32)
    assert estimate_flops(_cfg(), None) == 2 * (50000 * 3 * s + 10000 * s)
    kd = _cfg(teacher={"run": "x"}, loss={"name": "kd"}, recipe={"epochs": 2, "final_train_eval": True})
    assert estimate_flops(kd, {"model": "resnet56"}) == 2 * (50000 * (3 * s + t) + 10000 * s) + 50000 * s
    ckpt = _cfg(teacher={"checkpoint": "t.pt", "model": "resnet56"}, loss={"name": "kd"})
    assert estimate_flops(ckpt, None) == 2 * (50000 * (3 * s + t) + 10000 * s)
    ab = _cfg(teacher={"run": "x"}, loss={"name": "ab", "init_epochs": 5})
    assert estimate_flops(ab, {"model": "resnet56"}) == 2 * (50000 * (3 * s + t) + 10000 * s) + 5 * 50000 * (3 * s + t)
