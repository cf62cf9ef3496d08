"""Tests for the model registry: parameter counts against the papers, forward/extract, weights."""

import pytest
import torch
from torch import nn

from benchmark.engine.models import build_model, count_params, describe_models, model_info, model_names

# CATALOGUE.md "Reference architectures": parameters at 100 classes, in millions.
CATALOGUE_100 = {
    "resnet8": 0.084, "resnet14": 0.181, "resnet20": 0.278, "resnet32": 0.473, "resnet44": 0.667,
    "resnet56": 0.862, "resnet110": 1.737, "resnet8x4": 1.234, "resnet32x4": 7.434,
    "wrn_16_1": 0.181, "wrn_16_2": 0.703, "wrn_40_1": 0.570, "wrn_40_2": 2.255,
    "wrn_28_1": 0.375, "wrn_28_2": 1.479, "wrn_28_4": 5.872, "wrn_28_8": 23.401,
    "vgg8": 3.965, "vgg13": 9.462, "shufflev1": 0.949, "shufflev2": 1.356, "mobilenetv2": 0.813,
}

# ATS Table 5, (model, classes) -> parameters in millions, rounded by the paper.
TABLE5 = {
    **{(f"resnext29_{c}x4d", 100): n for c, n in zip((4, 8, 16, 24, 32, 64), (1.3, 1.8, 2.8, 3.8, 4.9, 8.9))},
    **{(f"resnext29_{c}x4d", 10): n for c, n in zip((4, 8, 16, 24, 32, 64), (1.2, 1.7, 2.7, 3.8, 4.8, 8.9))},
    **{(f"resnet{d}", 10): n for d, n in zip((14, 20, 32, 44, 56, 110), (0.18, 0.27, 0.47, 0.66, 0.86, 1.7))},
    **{(f"wrn_28_{k}", 10): n for k, n in zip((1, 2, 3, 4, 6, 8), (0.37, 1.5, 3.3, 5.8, 13, 23))},
    **{(f"wrn_28_{k}", 100): n for k, n in ((3, 3.3), (6, 13))},
    ("vgg8", 10): 3.9, ("shufflev1", 10): 0.86, ("mobilenetv2", 10): 0.7,
    ("wide_resnet50_2", 200): 67, ("resnext101_32x8d", 200): 87, ("resnext101_32x8d", 120): 87,
    ("shufflenet_v2_x1_0", 200): 1.5, ("shufflenet_v2_x1_0", 120): 1.4,
    ("mobilenet_v2", 200): 2.5, ("mobilenet_v2", 120): 2.4,
    ("alexnet_small", 200): 2.7, ("alexnet_small", 120): 2.6,
    ("resnet15_128", 35): 1.9, ("dscnn", 35): 0.0598,  # Google Speech Commands: RES 1.9M, DSCNN 59.8K
}

LISTED_WRNS = {f"wrn_16_{k}" for k in range(1, 7)} | {f"wrn_28_{k}" for k in (1, 2, 3, 4, 6, 8)} | {
    "wrn_40_1", "wrn_40_2", "wrn_40_6", "wrn_26_2"}


def meta_params(name: str, num_classes: int) -> int:
    with torch.device("meta"):
        return count_params(build_model(name, num_classes))


@pytest.mark.parametrize("name", sorted(CATALOGUE_100))
def test_params_match_catalogue(name):
    assert meta_params(name, 100) / 1e6 == pytest.approx(CATALOGUE_100[name], rel=0.01)


@pytest.mark.parametrize("name,classes", sorted(TABLE5))
def test_params_match_ats_table5(name, classes):
    assert meta_params(name, classes) / 1e6 == pytest.approx(TABLE5[(name, classes)], rel=0.05)


def test_registry_lists_expected_names():
    names = model_names()
    assert names == sorted(names) and len(set(names)) == len(names)
    assert {n for n in names if n.startswith("wrn_")} == LISTED_WRNS
    for expected in ("resnet8", "resnet110", "resnet32x4", "vgg11", "resnext29_64x4d", "resnet152",
                     "convnext_tiny", "efficientnet_b0", "alexnet", "alexnet_small"):
        assert expected in names


def test_model_info_families():
    assert model_info("resnet56") == {"name": "resnet56", "family": "cifar", "input_size": 32}
    assert model_info("wrn_10_3")["family"] == "cifar"  # unlisted but valid WRN
    assert model_info("resnet50")["family"] == "imagenet"
    assert model_info("alexnet_small")["input_size"] == 224


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'resnet9000'"):
        build_model("resnet9000", 10)
    with pytest.raises(ValueError, match="unknown model"):
        model_info("vgg99")


# RepDistiller's resnet8 at 100 classes, counted by hand: convolutions (k x k x in x out, no bias),
# BatchNorms (weight + bias per channel), the classifier (64 x 100 + 100).
RESNET8_STEM = 3 * 3 * 3 * 16 + 2 * 16                                                # 464
RESNET8_LAYER1 = 2 * (3 * 3 * 16 * 16 + 2 * 16)                                       # 4,672: identity shortcut
RESNET8_LAYER2 = 3 * 3 * 16 * 32 + 3 * 3 * 32 * 32 + 2 * 2 * 32 + 16 * 32 + 2 * 32    # 14,528: 1x1 conv + BN shortcut
RESNET8_LAYER3 = 3 * 3 * 32 * 64 + 3 * 3 * 64 * 64 + 2 * 2 * 64 + 32 * 64 + 2 * 64    # 57,728
RESNET8_PARAMS = RESNET8_STEM + RESNET8_LAYER1 + RESNET8_LAYER2 + RESNET8_LAYER3 + 64 * 100 + 100
# Its buffers: running mean and variance per BN channel (16 + 2x16 + 3x32 + 3x64 = 336) and one
# num_batches_tracked per BN (9).
RESNET8_BUFFERS = 2 * 336 + 9


def test_count_params_includes_frozen_excludes_buffers():
    model = build_model("resnet8", 100)
    assert RESNET8_PARAMS == 83892  # the CATALOGUE's 0.084M
    assert count_params(model) == RESNET8_PARAMS
    for p in model.layer1.parameters():
        p.requires_grad_(False)
    assert count_params(model) == RESNET8_PARAMS  # frozen parameters still count
    assert sum(b.numel() for b in model.buffers()) == RESNET8_BUFFERS  # BN statistics exist but are not counted


def test_describe_models():
    rows = describe_models(10)
    assert [r["name"] for r in rows] == model_names()
    row = next(r for r in rows if r["name"] == "resnet20")
    # resnet20 = resnet8 with two more blocks per stage (16->16, 32->32, 64->64 without shortcuts),
    # and a 64 x 10 classifier: 272,474 (ATS Table 5 prints 0.27M for CIFAR-10)
    blocks = 2 * (2 * (3 * 3 * 16 * 16 + 2 * 16) + 2 * (3 * 3 * 32 * 32 + 2 * 32) + 2 * (3 * 3 * 64 * 64 + 2 * 64))
    resnet20_10 = RESNET8_PARAMS - (64 * 100 + 100) + blocks + 64 * 10 + 10
    assert resnet20_10 == 272_474
    assert row == {"name": "resnet20", "params": resnet20_10, "num_classes": 10, "family": "cifar", "input_size": 32}


def _input_side(name: str) -> int:
    # ImageNet models run at 64x64 here (TinyImageNet size) to keep the test fast on CPU.
    return 32 if model_info(name)["family"] == "cifar" else 64


def _input(name: str, n: int = 2, device=None) -> torch.Tensor:
    """Images, or for speech models a short MFCC input [n, 1, 21, 40] (tests/test_models_speech.py has the full size)."""
    if model_info(name)["family"] == "speech":
        return torch.randn(n, 1, 21, 40, device=device)
    side = _input_side(name)
    return torch.randn(n, 3, side, side, device=device)


@pytest.mark.parametrize("name", model_names())
def test_forward_and_extract(name):
    torch.manual_seed(0)
    num_classes = 13
    model = build_model(name, num_classes).eval()
    side = _input_side(name)
    x = _input(name)
    with torch.no_grad():
        logits = model(x)
        out = model.extract(x)
    assert logits.shape == (2, num_classes)
    torch.testing.assert_close(out["logits"], logits, rtol=1e-5, atol=1e-5)

    # penultimate is exactly what the final classifier reads.
    classifier = model.get_submodule(model.classifier_name)
    assert isinstance(classifier, nn.Linear) and classifier.out_features == num_classes
    assert out["penultimate"].shape == (2, classifier.in_features)
    with torch.no_grad():
        torch.testing.assert_close(classifier(out["penultimate"]), logits, rtol=1e-5, atol=1e-5)

    stages = out["stages"]
    assert len(stages) >= 3
    sides = [s.shape[-1] for s in stages]
    assert all(s.dim() == 4 and s.shape[0] == 2 for s in stages)
    if model_info(name)["family"] != "speech":  # ResNet15 keeps the input's resolution (dilations instead)
        assert sides == sorted(sides, reverse=True) and sides[-1] < side  # resolution only shrinks


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_1", "shufflev2", "mobilenetv2", "resnext29_4x4d"])
def test_train_step_batch_of_two(name):
    model = build_model(name, 5).train()
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 4]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a GPU machine)")
def test_cuda_forward():
    for name in model_names():
        model = build_model(name, 10).cuda().train()
        out = model.extract(_input(name, device="cuda"))
        assert out["logits"].shape == (2, 10) and out["logits"].is_cuda, name


# --- weights ---------------------------------------------------------------------------------


def test_weights_imagenet_to_fewer_classes(tmp_path):
    """resnet18 saved with 1000 classes (DataParallel names, wrapped): backbone loads, fc stays fresh."""
    torch.manual_seed(1)
    source = build_model("resnet18", 1000).state_dict()
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in source.items()}, "epoch": 3}, path)

    torch.manual_seed(2)
    fresh_fc = build_model("resnet18", 200).fc.weight.detach().clone()
    torch.manual_seed(2)
    model = build_model("resnet18", 200, weights=str(path))
    loaded = model.state_dict()
    for k, v in source.items():
        if not k.startswith("fc."):
            assert torch.equal(loaded[k], v), k
    assert model.fc.weight.shape == (200, 512)
    assert torch.equal(model.fc.weight, fresh_fc)


def test_weights_same_classes_load_everything(tmp_path):
    source = build_model("resnet8", 100)
    path = tmp_path / "r8.pth"
    torch.save({"model": source.state_dict()}, path)  # RepDistiller checkpoint layout
    model = build_model("resnet8", 100, weights=path).eval()
    source.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_weights_alexnet_small_takes_torchvision_style_features(tmp_path):
    """A checkpoint with torchvision AlexNet's three-linear head: features load, head is skipped."""
    source = build_model("alexnet_small", 1000).state_dict()
    state = {k: v for k, v in source.items() if k.startswith("features.")}
    state |= {"classifier.1.weight": torch.zeros(8, 9216), "classifier.6.weight": torch.zeros(1000, 8)}
    path = tmp_path / "alex.pth"
    torch.save(state, path)
    model = build_model("alexnet_small", 120, weights=path)
    assert torch.equal(model.features[0].weight, source["features.0.weight"])
    assert model.classifier.weight.shape == (120, 1024)


@pytest.mark.parametrize("change,key", [
    ("drop", "layer1.0.conv1.weight"),
    ("extra", "layer9.weight"),
    ("reshape", "conv1.weight"),
])
def test_weights_mismatch_names_the_key(tmp_path, change, key):
    state = build_model("resnet8", 10).state_dict()
    if change == "drop":
        del state[key]
    elif change == "extra":
        state[key] = torch.zeros(3)
    else:
        state[key] = torch.zeros(16, 3, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build_model("resnet8", 10, weights=path)


def test_weights_not_a_state_dict(tmp_path):
    path = tmp_path / "junk.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="not a state dict"):
        build_model("resnet8", 10, weights=path)


def test_weights_and_teachers_load_repdistillers_last_pth_with_its_namespace(tmp_path):
    import argparse
    import hashlib
    import pickle

    from benchmark.engine import config as C
    from benchmark.engine.train import load_teacher
    from benchmark.store.layout import Store
    from tests.helpers import repdistiller_last_pth, tiny

    torch.manual_seed(3)
    source = build_model("resnet8", 10).state_dict()  # 10 classes: tiny()'s cifar10
    opt = argparse.Namespace(model="resnet8", learning_rate=0.05, lr_decay_epochs=[150, 180, 210], trial="0")
    path = repdistiller_last_pth(tmp_path / "resnet8_last.pth", source, opt)
    with pytest.raises(pickle.UnpicklingError):  # what weights_only=True alone does with it
        torch.load(path, weights_only=True)
    model = build_model("resnet8", 10, weights=path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.items())
    teacher = {"checkpoint": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "model": "resnet8"}
    cfg = C.resolve(tiny(teacher=teacher, loss={"name": "kd", "tau": 4.0}))
    loaded = load_teacher(cfg, Store(tmp_path / "store"), torch.device("cpu"))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in source.items())
    # exactly the Namespace is allowed: any other class in the pickle is still refused
    other = repdistiller_last_pth(tmp_path / "other.pth", source, __import__("pathlib").PurePosixPath("x"))
    with pytest.raises(pickle.UnpicklingError):
        build_model("resnet8", 10, weights=other)


def test_the_torch_free_name_lists_are_the_builders_dicts():
    """models/__init__.py names the VGGs and torchvision's networks without importing them (config
    checks and planning need no torch): the lists must be the dicts their builders read, and the
    speech models' input shape speech.py's."""
    from benchmark.engine import models
    from benchmark.engine.models.imagenet import TORCHVISION
    from benchmark.engine.models.speech import INPUT_SHAPE
    from benchmark.engine.models.vgg import CONFIGS

    assert set(models.VGG_NAMES) == set(CONFIGS)
    assert set(models.TORCHVISION_NAMES) == set(TORCHVISION)
    assert models.SPEECH_INPUT_SHAPE == INPUT_SHAPE
