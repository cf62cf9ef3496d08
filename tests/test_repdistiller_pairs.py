"""Every teacher -> student pair of RepDistiller's benchmark (its README, tables 1 and 2): the
suite's models tap RepDistiller's feature maps, and every feature method of that benchmark
builds on the pair and runs one forward/backward (batch 2, 32x32)."""

from functools import lru_cache

import pytest
import torch

from benchmark.engine.distillers import make_distiller
from benchmark.engine.models import build_model

# RepDistiller README "Benchmark Results on CIFAR-100": table 1 (same architectural type) and
# table 2 (different type). ResNet50 is RepDistiller's CIFAR ResNet50 (models/resnetv2.py).
TABLE1 = [("wrn_40_2", "wrn_16_2"), ("wrn_40_2", "wrn_40_1"), ("resnet56", "resnet20"), ("resnet110", "resnet20"),
          ("resnet110", "resnet32"), ("resnet32x4", "resnet8x4"), ("vgg13", "vgg8")]
TABLE2 = [("vgg13", "mobilenetv2"), ("resnet50_cifar", "mobilenetv2"), ("resnet50_cifar", "vgg8"),
          ("resnet32x4", "shufflev1"), ("resnet32x4", "shufflev2"), ("wrn_40_2", "shufflev1")]
PAIRS = TABLE1 + TABLE2

# The shapes (C, H, W) of RepDistiller's ``feat`` list for a 32x32 input, pooled vector last, read
# from its models' forward(is_feat=True); preact=True gives the same shapes.
_R16 = [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8), (64,)]        # models/resnet.py l. 178-203
_R64 = [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8), (256,)]     # same, [32, 64, 128, 256]
_VGG = [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 4, 4), (512,)]  # models/vgg.py l. 64-101
FEAT = {
    **{f"resnet{d}": _R16 for d in (20, 32, 56, 110)}, "resnet8x4": _R64, "resnet32x4": _R64,
    # models/wrn.py l. 103-122: [conv1, block1, block2, block3, pooled], widths [16, 16k, 32k, 64k]
    "wrn_40_2": [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8), (128,)],
    "wrn_16_2": [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8), (128,)],
    "wrn_40_1": [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8), (64,)],
    "vgg13": _VGG, "vgg8": _VGG,
    # models/mobilenetv2.py l. 132-158: stem (stride 2), blocks[1], [2], [4], [6], pooled conv2
    "mobilenetv2": [(16, 16, 16), (12, 16, 16), (16, 8, 8), (48, 4, 4), (160, 2, 2), (1280,)],
    # models/resnetv2.py l. 141-160: stem, layer1-4 (bottlenecks, x4 expansion), pooled
    "resnet50_cifar": [(64, 32, 32), (256, 32, 32), (512, 16, 16), (1024, 8, 8), (2048, 4, 4), (2048,)],
    # models/ShuffleNetv1.py l. 95-113 and ShuffleNetv2.py l. 140-159: 1x1 stem, layer1-3, pooled
    "shufflev1": [(24, 32, 32), (240, 16, 16), (480, 8, 8), (960, 4, 4), (960,)],
    "shufflev2": [(24, 32, 32), (116, 16, 16), (232, 8, 8), (464, 4, 4), (1024,)],
}

# The CRD benchmark's methods (README list; KD is a logit loss). FSP runs only where the student's
# and teacher's maps have equal channel counts (distiller_zoo/FSP.py raises otherwise): the README
# prints N/A for WRN-40-2 -> WRN-40-1 and has no FSP row in table 2.
METHODS = ["fitnet", "at", "sp", "cc", "vid", "rkd", "pkt", "ab", "ft", "fsp", "nst", "crd"]
FSP_PAIRS = set(TABLE1) - {("wrn_40_2", "wrn_40_1")}
CLASSES = 100


def shapes(maps):
    return [tuple(m.shape[1:]) for m in maps]


@pytest.mark.parametrize("name", sorted(FEAT))
def test_taps_are_repdistillers_feature_lists(name):
    torch.manual_seed(0)
    f = build_model(name, CLASSES).eval().extract(torch.randn(2, 3, 32, 32))
    assert shapes([*f["taps"], f["penultimate"]]) == FEAT[name]
    assert shapes([*f["preact_taps"], f["penultimate"]]) == FEAT[name]


@lru_cache(maxsize=None)
def networks(teacher: str, student: str):
    torch.manual_seed(0)
    t, s = build_model(teacher, CLASSES).eval(), build_model(student, CLASSES)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        probe_t, probe_s = t.extract(x), s.eval().extract(x)
    return t, s, x, probe_s, probe_t


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("teacher, student", PAIRS)
def test_every_method_runs_on_every_benchmark_pair(teacher, student, method):
    t, s, x, probe_s, probe_t = networks(teacher, student)
    labels = torch.arange(4 * CLASSES) % CLASSES
    params = {"nce_k": 16} if method == "crd" else {}
    if method == "fsp" and (teacher, student) not in FSP_PAIRS:
        with pytest.raises(ValueError, match="equal channel counts"):
            make_distiller(method, probe_s, probe_t, CLASSES, **params)
        return
    torch.manual_seed(1)
    d = make_distiller(method, probe_s, probe_t, CLASSES, train_labels=labels, **params)
    d.attach(s)
    s.zero_grad(set_to_none=True)
    s.train()
    with torch.no_grad():
        ft = t.extract(x)
    index = torch.tensor([0, 101])
    stages = d.pretrain_stages(s)
    for stage in stages:  # AB, FT, FSP: the pre-training stage's loss
        loss = stage.loss(s.extract(x) if stage.needs_student else None, ft, labels[index])
        assert torch.isfinite(loss)
        loss.backward()
        trained = [p for m in stage.modules for p in m.parameters()]
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    loss = d(s.extract(x), ft, labels[index], index)
    assert torch.isfinite(loss)
    loss.backward()
    def moved(params):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    assert moved(s.parameters())
    if not stages:  # the adapters (regressors, embeddings) are trained by the main loss
        assert moved(d.parameters()) or not list(d.parameters())
