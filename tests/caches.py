"""A private FLOPs and list cache for one test (the disk cache alone: no committed FLOP table), as a
fixture that test modules import."""


import pytest

from benchmark.catalog import flops


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(flops, "TABLE", tmp_path / "no-table.json")  # the disk cache alone (tests/test_flops.py: the table)
    flops.table.cache_clear()
    flops.forward_flops.cache_clear()
    yield tmp_path / "cache"
    flops.forward_flops.cache_clear()
    flops.table.cache_clear()
