"""The datasets package's face (benchmark/engine/data/__init__.py): the registry at once, the rest loaded
on first use, and `data list`'s rows."""

import subprocess
import sys

import pytest

import benchmark.engine.data as data
from benchmark.engine.data import sources, synthetic


def test_the_lazy_names_are_the_modules_own_and_unknown_names_fail():
    assert data.load_arrays is sources.load_arrays and data.synthetic_arrays is synthetic.synthetic_arrays
    assert set(data.__all__) >= set(data._LAZY)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        data.nope  # noqa: B018


def test_the_registry_loads_without_torch():
    code = "import sys, benchmark.engine.data as d; d.get_spec('cifar10'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_rows_are_one_per_dataset_with_its_splits():
    rows = data.list_datasets()
    assert [r["name"] for r in rows] == data.dataset_names()
    cifar = rows[0]
    assert (cifar["name"], cifar["classes"], cifar["image_size"], cifar["splits"]) == \
        ("cifar10", 10, 32, {"train": 50000, "test": 10000})
