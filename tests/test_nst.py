"""NST (Huang & Wang 2017; benchmark/engine/distillers/nst.py): the polynomial kernel, by hand."""

import torch

from benchmark.engine.distillers.nst import poly_kernel


def test_poly_kernel_is_the_squared_dot_product_of_every_channel_pair():
    a = torch.tensor([[[1.0, 2.0], [0.0, 1.0]]], dtype=torch.float64)  # (1, 2 channels, 2 positions)
    b = torch.tensor([[[3.0, 1.0]]], dtype=torch.float64)  # (1, 1 channel, 2 positions)
    # b_0 . a_0 = 3 + 2 = 5, b_0 . a_1 = 0 + 1 = 1; squared: [[25, 1]]
    torch.testing.assert_close(poly_kernel(a, b), torch.tensor([[[25.0, 1.0]]], dtype=torch.float64))
