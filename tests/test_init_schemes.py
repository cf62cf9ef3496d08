"""recipe.init_scheme: the network's own init (torch) vs the ATS authors' weights_init (ats_code)."""

import math

import pytest
import torch
from torch import nn

from benchmark.engine import config as C
from benchmark.engine.init_schemes import apply_init_scheme
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
