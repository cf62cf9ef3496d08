"""`bench --packing` (benchmark/commands/packbench.py): the process counts it takes and K processes
timed side by side on the CPU (the packing itself: tests/test_packing.py)."""

import pytest

from benchmark.commands.packbench import parse_counts
from benchmark.errors import BadInput


def test_bench_packing_counts():
    assert parse_counts("2,4") == (1, 2, 4) and parse_counts("none") == ()
    for bad in ("0", "1,x", "", "100"):
        with pytest.raises(BadInput):
            parse_counts(bad)


@pytest.mark.heavy
def test_bench_times_one_and_two_processes_side_by_side_on_the_cpu():
    from benchmark.commands.packbench import measure

    out = measure("cpu", (1, 2), steps=1, warmup=0, batch_size=4, cpus=2)
    assert [c["processes"] for c in out["cases"]] == [1, 2] and out["cases"][0]["ratio"] == 1.0
    assert [c["threads_per_process"] for c in out["cases"]] == [2, 1]  # cores / K each, as CPU workers
    assert all(c["images_per_s"] > 0 and c["seconds"] > 0 for c in out["cases"])
    assert "CPU sharing" in out["note"]
