"""Correlation congruence (Peng et al., ICCV 2019), as in the CRD benchmark (``--distill correlation``).

The cited numbers come from RepDistiller's simplified CC, which is what this implements:

    e_s = W_s feat_s[-1] + b_s,  e_t = W_t feat_t[-1] + b_t   (linear to feat_dim)
    d = |e_s - e_t|   (N, feat_dim)
    L_CC = 1/(N-1) * sum_{i=1}^{N-1} <d_i, d_{i+1}>            (consecutive samples of the batch)

The paper's CC (Eq. 5-8) builds a kernel correlation matrix over the batch; RepDistiller's
``Correlation`` (distiller_zoo/CC.py l. 14-17) replaces it with this product of consecutive
samples' embedding differences. Both embeddings are trainable adapters (in the student's optimizer).

Named reading ``embed``: ``linear`` (default) is RepDistiller's: train_student.py l. 211-214 builds
``LinearEmbed`` (models/util.py l. 185-194: a bare ``nn.Linear`` of the flattened feature) for
``--distill correlation``. ``normalized`` L2-normalises each embedding (RepDistiller's ``Embed``,
which only its CRD uses); this suite ran that before, and its loss differs from RepDistiller's by
about 98 % (unit vectors make d small).
Published weight (CRD benchmark): beta = 0.02, feat_dim 128.
"""

from __future__ import annotations

from torch import nn

from .base import Distiller, Embed, taps, up

EMBEDS = ("linear", "normalized")


class LinearEmbed(nn.Module):
    """RepDistiller's LinearEmbed: a linear map of the flattened feature, nothing else."""

    def __init__(self, dim_in: int, dim_out: int = 128):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return self.linear(x.flatten(1))


class CC(Distiller):
    PARAMS = {"weight": 0.02, "feat_dim": 128, "embed": "linear"}

    @classmethod
    def check(cls, params):
        super().check(params)
        if params["feat_dim"] < 1:
            raise ValueError(f"feat_dim must be >= 1, got {params['feat_dim']}")
        if params["embed"] not in EMBEDS:
            raise ValueError(f"embed must be one of {', '.join(EMBEDS)}, got {params['embed']!r}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        make = LinearEmbed if params["embed"] == "linear" else Embed
        # Both keep the weight at ``.linear``: checkpoints of either reading have the same layout.
        self.embed_s = make(student_probe["penultimate"].shape[1], params["feat_dim"])
        self.embed_t = make(teacher_probe["penultimate"].shape[1], params["feat_dim"])

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        d = (self.embed_s(up(taps(fs)[-1])) - self.embed_t(up(taps(ft)[-1]))).abs()
        return (d[:-1] * d[1:]).sum(1).mean()
