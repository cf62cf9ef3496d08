"""recipe.init_scheme: the network's own init (torch) vs the ATS authors' weights_init (ats_code)."""

import math

import pytest
import torch
from torch import nn

from benchmark.engine import config as C
from benchmark.engine.init_schemes import apply_init_scheme, zero_residual_norms
from benchmark.engine.models import build_model
from benchmark.engine.train import Student
from benchmark.errors import BadInput
from benchmark.store.layout import Store
from tests.helpers import tiny

TEACHER = {"run": "0" * 16}


def test_vgg8_classifier_std_is_0p01_own_and_0p0625_under_the_ats_code():
    torch.manual_seed(0)
    own = build_model("vgg8", 100)
    assert own.classifier.weight.std().item() == pytest.approx(0.010, rel=0.03)
    apply_init_scheme(own, "ats_code")  # 512 x 100 weights: sqrt(2 / 512) = 0.0625
    assert own.classifier.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.03)
    assert float(own.classifier.bias.detach().abs().max()) == 0.0


def test_ats_code_draws_each_layer_from_the_formula():
    layers = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(6, 5), nn.Conv1d(2, 3, 5))
    for p in layers.parameters():  # random start, so that "set to 1 / 0" is visible
        nn.init.uniform_(p, 0.3, 0.7)
    torch.manual_seed(7)
    apply_init_scheme(layers, "ats_code")
    # model.apply visits modules in this order; each draws N(0, 2 / fan) from the global generator.
    torch.manual_seed(7)
    conv2 = torch.empty(4, 3, 3, 3).normal_(0, math.sqrt(2 / (4 * 3 * 3)))  # fan_out = out * kh * kw
    lin = torch.empty(5, 6).normal_(0, math.sqrt(2 / 6))                    # fan_in = in_features
    conv1 = torch.empty(3, 2, 5).normal_(0, math.sqrt(2 / (3 * 5)))
    assert torch.equal(layers[0].weight, conv2) and torch.equal(layers[2].weight, lin)
    assert torch.equal(layers[3].weight, conv1)
    for m in (layers[0], layers[2], layers[3]):
        assert torch.equal(m.bias, torch.zeros_like(m.bias))
    assert torch.equal(layers[1].weight, torch.ones(4)) and torch.equal(layers[1].bias, torch.zeros(4))


def test_torch_scheme_leaves_the_weights_alone():
    torch.manual_seed(0)
    model = build_model("resnet8", 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_init_scheme(model, "torch")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_ats_code_applies_to_distilled_runs_only_and_torch_keeps_old_ids():
    base = C.resolve(tiny())
    assert base["recipe"]["init_scheme"] == "torch"
    assert "init_scheme" not in C.identity(base).get("recipe", {})
    # A CE run (no teacher) under ats_code is the same run as before: the code never re-inits it.
    ce = C.resolve(tiny(recipe={"init_scheme": "ats_code"}))
    assert ce["recipe"]["init_scheme"] == "torch" and C.run_id(ce) == C.run_id(base)
    kd_torch = C.resolve(tiny(loss={"name": "kd"}, teacher=TEACHER))
    kd_ats = C.resolve(tiny(loss={"name": "kd"}, teacher=TEACHER, recipe={"init_scheme": "ats_code"}))
    assert kd_ats["recipe"]["init_scheme"] == "ats_code"
    assert C.run_id(kd_ats) != C.run_id(kd_torch)
    assert C.resolve(kd_ats) == kd_ats  # resolving twice changes nothing
    with pytest.raises(BadInput, match="init_scheme"):
        C.resolve(tiny(recipe={"init_scheme": "xavier"}))
    with pytest.raises(BadInput, match="init_scheme"):
        C.resolve(tiny(loss={"name": "kd"}, teacher=TEACHER, recipe={"init_scheme": "ats_code"},
                       init={"weights": "w.pt", "sha256": None}))


def test_the_trainer_starts_from_the_scheme_the_config_names(tmp_path):
    def student(scheme):
        cfg = C.resolve(tiny(model="vgg8", dataset="cifar100", loss={"name": "kd"}, teacher=TEACHER,
                             recipe={"init_scheme": scheme}))
        return Student(cfg, Store(tmp_path), torch.device("cpu"))
    assert student("torch").model.classifier.weight.std().item() == pytest.approx(0.010, rel=0.03)
    assert student("ats_code").model.classifier.weight.std().item() == pytest.approx(0.0625, rel=0.03)


def test_zero_init_residual_starts_every_resnet_block_as_its_shortcut_and_is_off_by_default(tmp_path):
    def student(**recipe):
        return Student(C.resolve(tiny(model="resnet20", recipe=recipe)), Store(tmp_path), torch.device("cpu"))
    off, on = student(), student(zero_init_residual=True)
    assert "zero_init_residual" not in C.identity(off.cfg).get("recipe", {})  # the default: no id moved
    blocks = [m for m in on.model.modules() if hasattr(m, "preact")]
    assert len(blocks) == 9 and all(float(b.bn2.weight.detach().abs().max()) == 0.0 for b in blocks)
    assert all(float(b.bn2.weight.detach().min()) == 1.0 for b in off.model.modules() if hasattr(b, "preact"))
    # the same draws otherwise: only those BatchNorm weights differ
    differ = {k for k, v in on.model.state_dict().items() if not torch.equal(v, off.model.state_dict()[k])}
    assert differ == {k for k in differ if k.endswith("bn2.weight")} and len(differ) == 9
    x = torch.randn(2, 16, 8, 8)
    block = next(b for b in blocks if b.downsample is None).eval()
    assert torch.equal(block(x), torch.relu(x))  # the branch adds nothing at the start
    with pytest.raises(BadInput, match="zero_init_residual"):
        C.resolve(tiny(recipe={"zero_init_residual": True}, init={"weights": "w.pt", "sha256": None}))
    torchvision_net = build_model("resnet50", 10)
    assert zero_residual_norms(torchvision_net) == 16 and zero_residual_norms(build_model("wrn_16_2", 10)) == 0
