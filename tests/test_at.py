"""AT (Zagoruyko & Komodakis 2017; benchmark/engine/distillers/at.py): the attention map, by hand."""

import torch

from benchmark.engine.distillers.at import attention_map


def test_attention_map_is_the_normalised_channel_mean_of_powers():
    f = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.0]]]], dtype=torch.float64)  # (1, 2, 1, 2)
    # p = 2: [(1 + 9) / 2, (4 + 0) / 2] = [5, 2] -> / sqrt(29)
    torch.testing.assert_close(attention_map(f), torch.tensor([[5.0, 2.0]], dtype=torch.float64) / 29 ** 0.5)
    # p = 1 keeps the signs: [(1 + 3) / 2, (-2 + 0) / 2] = [2, -1] -> / sqrt(5)
    torch.testing.assert_close(attention_map(f, p=1.0), torch.tensor([[2.0, -1.0]], dtype=torch.float64) / 5 ** 0.5)
