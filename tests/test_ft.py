"""FT (Kim et al. 2018; benchmark/engine/distillers/ft.py): the factor loss against a hand-written float64
formula with a frozen paraphraser, and the stage rate RepDistiller uses for each student."""

import pytest
import torch

from benchmark.engine.distillers import make_distiller
from benchmark.engine.distillers.ft import factor
from benchmark.engine.models import build_model
from tests.staged import DT, fake, grads_equal, maps


def test_ft_factor_loss_and_frozen_paraphraser():
    g = torch.Generator().manual_seed(3)
    (f_s,), (f_t,) = maps(g, (3,), (4,)), maps(g, (4,), (2,), grad=False)
    stem = torch.zeros(3, 2, 4, 4, dtype=DT)
    fs, ft = fake([f_s], stem), fake([f_t], stem)
    torch.manual_seed(0)
    d = make_distiller("ft", fs, ft, 5).double()
    assert d.paraphraser.encoder[-2].out_channels == 2 and d.translator[-2].num_features == 2  # k = 0.5 of 4
    u = d.translator(f_s)                                   # (3, 2, 4, 4): pooled to the teacher's 2x2
    u = u.reshape(3, 2, 2, 2, 2, 2).mean(dim=(3, 5))
    v = d.paraphraser.encoder(f_t)
    a = (u ** 2).mean(1).flatten(1)
    b = (v ** 2).mean(1).flatten(1)
    ref = (a / a.norm(dim=1, keepdim=True) - b / b.norm(dim=1, keepdim=True)).abs().mean()
    loss = d.feature_loss(fs, ft, None, None)
    grads_equal(loss, ref, [f_s])
    loss.backward()
    assert all(p.grad is None for p in d.paraphraser.parameters())       # fixed after its stage
    assert all(p.grad is not None for p in d.translator.parameters())
    rec = d.paraphraser.decoder(d.paraphraser.encoder(f_t))
    assert d.stage_loss(None, ft, None).item() == pytest.approx(((rec - f_t) ** 2).mean().item(), rel=1e-12)


@pytest.mark.parametrize("student, lr", [("resnet8", 0.01), ("resnet8x4", 0.01), ("wrn_16_1", 0.01), ("vgg8", 0.05),
                                         ("mobilenetv2", 0.01), ("shufflev1", 0.01), ("resnet50_cifar", 0.05)])
def test_ft_stage_rate_is_repdistillers_for_the_student(student, lr):
    """helper/pretrain.py l. 22-27: 0.01 for CIFAR ResNet/WRN students, else --learning_rate, which
    train_student.py l. 93-94 sets to 0.01 for MobileNetV2/ShuffleV1/ShuffleV2 (0.05 by default)."""
    torch.manual_seed(0)
    s, t = build_model(student, 10).eval(), build_model("resnet8", 10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        probe_s, probe_t = s.extract(x), t.extract(x)
    (stage,) = make_distiller("ft", probe_s, probe_t, 10).pretrain_stages(s)
    assert stage.lr == lr
    (given,) = make_distiller("ft", probe_s, probe_t, 10, init_lr=0.2).pretrain_stages(s)
    assert given.lr == 0.2


def test_factor_is_the_normalised_channel_mean_of_squares():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]], dtype=DT)  # (1, 2 channels, 1, 2)
    # mean over channels of the squares: [(1 + 9) / 2, (4 + 0) / 2] = [5, 2], then unit length
    want = torch.tensor([[5.0, 2.0]], dtype=DT) / 29 ** 0.5
    torch.testing.assert_close(factor(f), want)
