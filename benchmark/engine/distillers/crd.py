"""Contrastive representation distillation (Tian et al., ICLR 2020), ``--distill crd``.

Embeddings e_s = g_s(feat_s[-1]), e_t = g_t(feat_t[-1]) (linear to feat_dim, L2-normalised,
both trainable). Two memory banks of size n_data x feat_dim hold a momentum average of every
training sample's student (M_s) and teacher (M_t) embedding. For sample i with dataset index
pos and K negatives j (indices of training samples of *other* classes, a uniform draw without
replacement, as RepDistiller's ``mode='exact'`` CIFAR100InstanceSample: dataset/cifar100.py
l. 159-168, ``np.random.choice(cls_negative[target], k, replace=k > len(cls_negative[target]))``;
so the positive's own index and class are never among them, and only a class with fewer than K
other-class samples gets a draw with replacement):

    h(e, m) = exp(e . m / T) / Z                      (Z fixed on the first batch: mean(exp(.)) * n_data)
    P(D=1 | pos) = h_pos / (h_pos + K / n_data),   P(D=0 | neg) = (K / n_data) / (h_neg + K / n_data)
    L_NCE(v) = -1/B sum_i [ log P(D=1 | pos_i) + sum_j log P(D=0 | neg_ij) ]      (Eq. 18, NCE form)
    L_CRD = L_NCE(e_s against M_t) + L_NCE(e_t against M_s)

then the banks are updated at the positives: M[pos] <- normalise(m * M[pos] + (1 - m) * e).
(eps = 1e-7 inside the logs, as RepDistiller's ContrastLoss.) Settings of the CRD benchmark:
feat_dim 128, nce_k 16384, nce_t 0.07, nce_m 0.5; weight beta = 0.8, CE 1, KD 0.
The banks, their normalisers Z and the embeddings are in the checkpoint; the negatives are
drawn from the run's own random stream (so a resumed run draws the same ones).
"""

from __future__ import annotations

import math

import torch

from .base import Distiller, Embed, taps, up

EPS = 1e-7


def nce_loss(h: torch.Tensor, n_data: int) -> torch.Tensor:
    """h (B, 1 + K): column 0 the positive, the rest the negatives."""
    b, k = h.shape[0], h.shape[1] - 1
    noise = k / n_data
    log_pos = torch.log(h[:, 0] / (h[:, 0] + noise + EPS))
    log_neg = torch.log(noise / (h[:, 1:] + noise + EPS))
    return -(log_pos.sum() + log_neg.sum()) / b


class CRD(Distiller):
    PARAMS = {"weight": 0.8, "feat_dim": 128, "nce_k": 16384, "nce_t": 0.07, "nce_m": 0.5}
    needs_index = True
    needs_train_labels = True

    @classmethod
    def check(cls, params):
        super().check(params)
        for k in ("feat_dim", "nce_k"):
            if params[k] < 1:
                raise ValueError(f"{k} must be >= 1, got {params[k]}")
        if not params["nce_t"] > 0:
            raise ValueError(f"nce_t must be > 0, got {params['nce_t']!r}")
        if not 0 <= params["nce_m"] <= 1:
            raise ValueError(f"nce_m must be in [0, 1], got {params['nce_m']!r}")

    def __init__(self, student_probe, teacher_probe, num_classes, *, train_labels=None, **params):
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        if train_labels is None:
            raise ValueError("crd needs the training set's labels (its negatives are other-class samples)")
        dim = params["feat_dim"]
        self.embed_s = Embed(student_probe["penultimate"].shape[1], dim)
        self.embed_t = Embed(teacher_probe["penultimate"].shape[1], dim)
        labels = train_labels.long().cpu()
        self.n_data = len(labels)
        stdv = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_s", torch.rand(self.n_data, dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_t", torch.rand(self.n_data, dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("z", torch.full((2,), -1.0))  # Z_s, Z_t; < 0: not yet set
        self.register_buffer("labels", labels, persistent=False)
        self.register_buffer("class_count", torch.bincount(labels, minlength=num_classes), persistent=False)

    def negatives(self, y: torch.Tensor) -> torch.Tensor:
        """(B, K) indices of samples whose class differs from y: per row a uniform K-subset of
        them (without replacement), or, for a row whose class has fewer than K others, K uniform
        draws with replacement (RepDistiller's ``replace = k > len(cls_negative[target])``)."""
        k = self.params["nce_k"]
        others = self.n_data - self.class_count[y]
        if (others < 1).any():
            raise ValueError("crd: a class holds every training sample; no negatives to draw")
        own = self.labels[None, :] == y[:, None]  # (B, n_data)
        few = k > others
        out = None
        if few.any():  # with replacement: the r-th other-class sample, r uniform in [0, others)
            r = (torch.rand(len(y), k, device=y.device) * others[:, None]).long().clamp_max(others[:, None] - 1)
            seen = torch.cumsum(~own, dim=1)  # other-class samples up to and including each index
            out = torch.searchsorted(seen, r + 1)  # the first index where the (r+1)-th one is seen
        if not few.all():
            # A uniform K-subset: the K smallest of i.i.d. uniform keys, the own class keyed out.
            keys = torch.rand(len(y), self.n_data, device=y.device).masked_fill_(own, 2.0)
            drawn = keys.topk(k, dim=1, largest=False).indices
            out = drawn if out is None else torch.where(few[:, None], out, drawn)
        return out

    def feature_loss(self, fs, ft, y, index):
        if index is None:
            raise ValueError("crd needs the samples' dataset indices")
        e_s = self.embed_s(up(taps(fs)[-1]))
        e_t = self.embed_t(up(taps(ft)[-1]))
        idx = torch.cat([index[:, None], self.negatives(y)], dim=1)  # (B, 1 + K)
        t = self.params["nce_t"]
        h_s = torch.exp(torch.bmm(self.memory_t[idx].detach(), e_s[:, :, None]).squeeze(2) / t)
        h_t = torch.exp(torch.bmm(self.memory_s[idx].detach(), e_t[:, :, None]).squeeze(2) / t)
        if self.z[0] < 0:  # RepDistiller: the normalisers are estimated once, on the first batch
            with torch.no_grad():
                self.z.copy_(torch.stack([h_s.mean(), h_t.mean()]) * self.n_data)
        loss = nce_loss(h_s / self.z[0], self.n_data) + nce_loss(h_t / self.z[1], self.n_data)
        with torch.no_grad():
            m = self.params["nce_m"]
            for bank, e in ((self.memory_s, e_s), (self.memory_t, e_t)):
                new = bank[index] * m + e.detach() * (1 - m)
                bank[index] = new / new.pow(2).sum(1, keepdim=True).sqrt()
        return loss
