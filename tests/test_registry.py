"""The dataset registry (benchmark/engine/data/registry.py): what each dataset is."""

from __future__ import annotations

import pytest

from benchmark.engine.data import list_datasets
from benchmark.engine.data.registry import DATASETS, dataset_names, get_spec


def test_registry_facts():
    assert dataset_names() == ["cifar10", "cifar100", "svhn", "tinyimagenet", "cub", "dogs", "imagenet", "gsc"]
    sizes = {n: (s.num_classes, s.image_size, s.kind, s.train_size, s.test_size) for n, s in DATASETS.items()}
    assert sizes["cifar100"] == (100, 32, "array", 50000, 10000)
    assert sizes["svhn"] == (10, 32, "array", 73257, 26032)
    assert sizes["tinyimagenet"] == (200, 64, "array", 100000, 10000)
    assert sizes["cub"] == (200, 224, "folder", 5994, 5794)
    assert sizes["dogs"] == (120, 224, "folder", 12000, 8580)
    assert sizes["imagenet"] == (1000, 224, "folder", 1281167, 50000)
    assert sizes["gsc"] == (35, 101, "audio", 84843, 11005)  # v0.02's training list and testing_list.txt
    with pytest.raises(ValueError, match=r"unknown dataset 'x'; known: cifar10, cifar100"):
        get_spec("x")
    rows = {r["name"]: r for r in list_datasets()}
    assert [n for n, r in rows.items() if r["downloadable"]] == ["cifar10", "cifar100", "svhn", "gsc"]
    assert rows["dogs"]["splits"] == {"train": 12000, "test": 8580} and "ImageNetDogs" in rows["dogs"]["how_to_get"]
