"""A run's own random stream (benchmark/engine/run_rng.py)."""

import torch

from benchmark.engine.run_rng import RunRandom


def test_a_run_draws_from_its_own_stream_and_leaves_the_global_one_alone():
    cpu = torch.device("cpu")
    run = RunRandom.fresh(7, cpu)
    torch.manual_seed(0)
    with run.own():
        a = torch.rand(3)
    outside = torch.rand(3)
    with run.own():
        b = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(outside, torch.rand(3))  # the global stream did not move
    again = RunRandom.fresh(7, cpu)
    with again.own():
        assert torch.equal(torch.rand(6), torch.cat([a, b]))  # two blocks continue one stream
