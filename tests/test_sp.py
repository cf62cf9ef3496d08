"""SP (Tung & Mori 2019; benchmark/engine/distillers/sp.py): the batch similarity matrix, by hand."""

import torch

from benchmark.engine.distillers.sp import similarity


def test_similarity_is_the_row_normalised_gram_matrix():
    f = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]], dtype=torch.float64)  # (2, 1, 1, 2)
    # G = [[1, 1], [1, 2]]; rows / their norms: [1, 1] / sqrt(2), [1, 2] / sqrt(5)
    want = torch.tensor([[2 ** -0.5, 2 ** -0.5], [5 ** -0.5, 2 * 5 ** -0.5]], dtype=torch.float64)
    torch.testing.assert_close(similarity(f), want)
