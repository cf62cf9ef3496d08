"""Correlation congruence (Peng et al., ICCV 2019), as in the CRD benchmark (``--distill correlation``).

The cited numbers come from RepDistiller's simplified CC, which is what this implements:

    e_s = Embed_s(feat_s[-1]),  e_t = Embed_t(feat_t[-1])     (linear to feat_dim, L2-normalised)
    d = |e_s - e_t|   (N, feat_dim)
    L_CC = 1/(N-1) * sum_{i=1}^{N-1} <d_i, d_{i+1}>            (consecutive samples of the batch)

The paper's CC (Eq. 5-8) builds a kernel correlation matrix over the batch; RepDistiller's
``Correlation`` replaces it with this product of consecutive samples' embedding differences.
Both embeddings are trainable adapters (in the student's optimizer).
Published weight (CRD benchmark): beta = 0.02, feat_dim 128.
"""

from __future__ import annotations

from .base import up, Distiller, Embed, taps


class CC(Distiller):
    PARAMS = {"weight": 0.02, "feat_dim": 128}

    @classmethod
    def check(cls, params):
        super().check(params)
        if params["feat_dim"] < 1:
            raise ValueError(f"feat_dim must be >= 1, got {params['feat_dim']}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        self.embed_s = Embed(student_probe["penultimate"].shape[1], params["feat_dim"])
        self.embed_t = Embed(teacher_probe["penultimate"].shape[1], params["feat_dim"])

    def feature_loss(self, fs, ft, y, index):
        d = (self.embed_s(up(taps(fs)[-1])) - self.embed_t(up(taps(ft)[-1]))).abs()
        return (d[:-1] * d[1:]).sum(1).mean()
