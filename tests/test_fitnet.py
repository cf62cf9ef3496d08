"""FitNet's regressor (benchmark/engine/distillers/fitnet.py): RepDistiller's ConvReg for each ratio of
the student's map to the teacher's, and the 1x1 fall-back where RepDistiller raises."""

import torch
from torch import nn

from benchmark.engine.distillers.fitnet import ConvReg


def test_the_regressor_maps_the_student_onto_the_teachers_shape():
    cases = [((1, 8, 16, 16), (1, 32, 8, 8), nn.Conv2d, (3, 3), (2, 2)),          # twice the size: 3x3 stride 2
             ((1, 8, 4, 4), (1, 32, 8, 8), nn.ConvTranspose2d, (4, 4), (2, 2)),   # half: transposed 4x4 stride 2
             ((1, 8, 10, 9), (1, 32, 8, 8), nn.Conv2d, (3, 2), (1, 1)),           # larger: a (1 + dh, 1 + dw) kernel
             ((1, 8, 7, 7), (1, 32, 8, 8), nn.Conv2d, (1, 1), (1, 1))]            # smaller, not half: 1x1
    for s, t, kind, kernel, stride in cases:
        reg = ConvReg(s, t).eval()
        assert type(reg.conv) is kind and reg.conv.kernel_size == kernel and reg.conv.stride == stride
        with torch.no_grad():
            out = reg(torch.randn(s))
        want = t if s[2:] != (7, 7) else (1, 32, 7, 7)  # the 1x1 case keeps the student's size
        assert out.shape == want and (out >= 0).all()
    with torch.no_grad():
        assert (ConvReg((1, 8, 8, 8), (1, 4, 8, 8), use_relu=False).eval()(torch.randn(1, 8, 8, 8)) < 0).any()
