"""The loss math's dtype rule (benchmark/engine/precision.py)."""

import torch

from benchmark.engine.precision import upcast


def test_half_precision_becomes_float32_and_float64_is_kept():
    for dtype, want in ((torch.bfloat16, torch.float32), (torch.float16, torch.float32),
                        (torch.float32, torch.float32), (torch.float64, torch.float64)):
        assert upcast(torch.ones(2, dtype=dtype)).dtype == want
    x = torch.ones(2, dtype=torch.float64)
    assert upcast(x) is x
