"""The speech networks of ATS Table 5 (benchmark/engine/models/speech.py)."""


import torch

from benchmark.engine.models import build_model, count_params, model_info


def test_networks_match_ats_table5():
    """RES 1.9M and DSCNN 59.8K at 35 classes (ATS Table 5); the exact counts as derived in
    benchmark/engine/models/speech.py."""
    with torch.device("meta"):
        res, ds = build_model("resnet15_128", 35), build_model("dscnn", 35)
    assert count_params(res) == 9 * 128 + 13 * 9 * 128 * 128 + 128 * 35 + 35 == 1_922_595
    assert round(count_params(res) / 1e6, 1) == 1.9
    conv1, block, fc = 40 * 96 + 96 + 2 * 96, 9 * 96 + 2 * 96 + 96 * 96 + 2 * 96, 96 * 35 + 35
    assert count_params(ds) == conv1 + 5 * block + fc == 59_843
    assert round(count_params(ds) / 1e3, 1) == 59.8
    assert model_info("dscnn")["input_shape"] == [1, 101, 40]


def test_resnet15_dilations_and_dscnn_same_padding():
    res = build_model("resnet15_128", 35)
    assert [c.dilation[0] for c in res.convs] == [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 16]
    assert all(not bn.affine for bn in res.bns)
    ds = build_model("dscnn", 35).eval()
    out = ds.extract(torch.randn(2, 1, 101, 40))
    assert out["stages"][0].shape == (2, 96, 26, 20)  # "SAME": ceil(ceil(101 / 2) / 2), ceil(40 / 2)
    assert out["logits"].shape == (2, 35)


def test_same_padding_is_tensorflows():
    """Output ceil(size / stride); the odd padding pixel goes at the end."""
    from benchmark.engine.models.speech import INPUT_SHAPE, _same_pad

    assert _same_pad(101, 10, 2) == (4, 5)  # out 51: 50 x 2 + 10 - 101 = 9
    assert _same_pad(40, 4, 1) == (1, 2) and _same_pad(8, 1, 2) == (0, 0)
    assert INPUT_SHAPE == (1, 101, 40)  # one channel, 101 MFCC frames of 40 coefficients
