"""Measured throughput per device kind (benchmark/runs/throughput.py) from a store's throughput.json,
never mixed between kinds. A bench's saved rate and the runs' median are tested in test_accel.py."""

import json

from benchmark.runs import throughput
from benchmark.store.layout import Store


def test_device_kinds():
    assert [throughput.device_kind(d) for d in ("cuda:1", "cuda", "cpu", None, "")] == \
        ["cuda", "cuda", "cpu", "unknown", "unknown"]


def test_the_file_is_read_per_kind_and_an_old_one_as_its_devices_kind(tmp_path):
    store = Store(tmp_path)
    store.throughput_file.parent.mkdir(parents=True, exist_ok=True)
    assert throughput.measured_rate(store) is None  # no file
    store.throughput_file.write_text(json.dumps({"flops_per_s": 2e12, "device": "cuda:0", "measured": "d"}))
    assert throughput.measured_rate(store) == (2e12, "measured on cuda: runner.py bench on cuda:0 (d)")
    assert throughput.measured_rate(store, "cpu") is None
    store.throughput_file.write_text(json.dumps({"cpu": {"flops_per_s": 5e9, "device": "cpu", "measured": "e"},
                                                 "cuda": {"flops_per_s": 0}, "junk": 3}))
    assert throughput.measured_rate(store, "cpu") == (5e9, "measured on cpu: runner.py bench on cpu (e)")
    assert throughput.measured_rate(store, "cuda") is None  # a rate of 0 measures nothing
    store.throughput_file.write_text("[1, 2")
    assert throughput.measured_rate(store, "cpu") is None  # a damaged file: nothing measured
