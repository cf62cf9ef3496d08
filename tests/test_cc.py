"""CC (Peng et al. 2019; benchmark/engine/distillers/cc.py): RepDistiller's embedding is a linear map of
the flattened feature."""

import torch

from benchmark.engine.distillers.cc import LinearEmbed


def test_the_embedding_is_linear_in_the_flattened_feature():
    embed = LinearEmbed(12, 4)
    x = torch.randn(2, 3, 2, 2)
    assert torch.allclose(embed(x), x.flatten(1) @ embed.linear.weight.t() + embed.linear.bias)
    assert LinearEmbed(12).linear.out_features == 128  # RepDistiller's feat_dim
