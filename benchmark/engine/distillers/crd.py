"""Contrastive representation distillation (Tian et al., ICLR 2020), ``--distill crd``.

Embeddings e_s = g_s(feat_s[-1]), e_t = g_t(feat_t[-1]) (linear to feat_dim, L2-normalised,
both trainable). Two memory banks of size n_data x feat_dim hold a momentum average of every
training sample's student (M_s) and teacher (M_t) embedding. For sample i with dataset index
pos and K negatives j (indices of training samples of *other* classes):

    h(e, m) = exp(e . m / T) / Z                      (Z fixed on the first batch: mean(exp(.)) * n_data)
    P(D=1 | pos) = h_pos / (h_pos + K / n_data),   P(D=0 | neg) = (K / n_data) / (h_neg + K / n_data)
    L_NCE(v) = -1/B sum_i [ log P(D=1 | pos_i) + sum_j log P(D=0 | neg_ij) ]      (Eq. 18, NCE form)
    L_CRD = L_NCE(e_s against M_t) + L_NCE(e_t against M_s)

then the banks are updated at the positives: M[pos] <- normalise(m * M[pos] + (1 - m) * e).
(eps = 1e-7 inside the logs, as RepDistiller's ContrastLoss.) Settings of the CRD benchmark:
feat_dim 128, nce_k 16384, nce_t 0.07, nce_m 0.5; weight beta = 0.8, CE 1, KD 0.
The banks, their normalisers Z and the embeddings are in the checkpoint; the negatives are
drawn from the run's own random stream (so a resumed run draws the same ones).

Named reading ``sampler`` (how the K negatives of a row of class c are drawn from the N_c
training samples of other classes; RepDistiller, commit 49f9be6):

- ``floyd`` (default): RepDistiller's CIFAR-100 loader, ``CIFAR100InstanceSample`` (dataset/
  cifar100.py l. 166-167: ``replace = k > len(cls_negative[target])``, ``np.random.choice(
  cls_negative[target], k, replace=replace)``): a uniform K-subset of the N_c (without
  replacement), or, for a class with fewer than K others, K uniform draws with replacement. The
  subset is drawn with Floyd's algorithm (Bentley & Floyd, "A sample of brilliance", CACM 1987:
  for s = 0..K-1 draw t_s uniform in [0, N_c - K + s]; take t_s, or N_c - K + s if t_s was
  already taken), made parallel: whether t_s was taken is "t_s equals an earlier draw, or t_s is
  N_c - K + i for an earlier step i that itself collided", a chain resolved by pointer jumping in
  ceil(log2 K) rounds. The order within a row differs from numpy's; the loss does not see it.
- ``with_replacement``: RepDistiller's ImageNet loader, ``ImageFolderSample`` (dataset/
  imagenet.py l. 99: ``np.random.choice(self.cls_negative[target], self.k, replace=True)``):
  K uniform draws with replacement from the N_c.

Either way the positive's own class (hence its index) is never a negative. Nothing of size
(B, n_data) is built: position r in [0, N_c) is the r-th other-class sample of a table of the
training indices grouped by class, and the step reads no value on the host. The scores
M[idx] . e are computed chunk by chunk (:class:`BankScores`), so the (B, 1 + K, feat_dim) rows
of the banks are never gathered whole (RepDistiller's crd/memory.py l. 39-46 gathers both).
"""

from __future__ import annotations

import math

import torch

from .base import Distiller, Embed, taps, up

EPS = 1e-7
SAMPLERS = ("floyd", "with_replacement")
# Elements of one gathered (B, chunk, feat_dim) block of bank rows (64 MiB in float32).
CHUNK_ELEMENTS = 1 << 24


def nce_loss(h: torch.Tensor, n_data: int) -> torch.Tensor:
    """h (B, 1 + K): column 0 the positive, the rest the negatives."""
    b, k = h.shape[0], h.shape[1] - 1
    noise = k / n_data
    log_pos = torch.log(h[:, 0] / (h[:, 0] + noise + EPS))
    log_neg = torch.log(noise / (h[:, 1:] + noise + EPS))
    return -(log_pos.sum() + log_neg.sum()) / b


def uniform_below(n: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Integers uniform in [0, n) (n broadcast against ``shape``), from float64 uniforms: from
    float32's 2^24 values, with n = 1.28M (ImageNet) some integers would come 14/13 as often as others."""
    u = torch.rand(shape, dtype=torch.float64, device=n.device)
    return (u * n).long().clamp_max(n - 1)


def repeats(t: torch.Tensor) -> torch.Tensor:
    """True where t[b, s] equals some t[b, i], i < s (a stable sort puts the earliest first)."""
    ordered, perm = torch.sort(t, dim=1, stable=True)
    later = torch.cat([torch.zeros_like(t[:, :1], dtype=torch.bool), ordered[:, 1:] == ordered[:, :-1]], 1)
    return torch.empty_like(later).scatter_(1, perm, later)


def floyd_sample(n: torch.Tensor, k: int) -> torch.Tensor:
    """(B, k) distinct positions in [0, n_b) per row b, a uniform k-subset (Floyd's algorithm,
    in parallel: see the module docstring); ``n`` (B, 1), every n_b >= k."""
    s = torch.arange(k, device=n.device)
    base = n - k
    t = uniform_below(base + s + 1, (len(n), k))  # t_s in [0, n - k + s]
    taken = repeats(t)  # t_s equals an earlier draw ...
    # ... or t_s = n - k + i, the value step i < s took because its own draw was taken: follow
    # that chain (pointers go to earlier steps; a step without one points at itself).
    i = t - base
    ptr = torch.where((i >= 0) & (i < s), i, s.expand_as(t))
    for _ in range((k - 1).bit_length()):  # 2^rounds >= k >= any chain's length
        taken = taken | taken.gather(1, ptr)
        ptr = ptr.gather(1, ptr)
    return torch.where(taken, base + s, t)


class BankScores(torch.autograd.Function):
    """scores[b, j] = bank[idx[b, j]] . e[b], gathered ``chunk`` columns at a time in the forward
    and again in the backward (d/d e[b] = sum_j g[b, j] bank[idx[b, j]]), so no (B, J, D) block
    is kept. The bank gets no gradient. Its rows ``index`` may be overwritten between forward
    and backward (CRD's momentum update); their forward values are kept and used there. Any
    other row must not change."""

    @staticmethod
    def forward(ctx, e, bank, idx, index):
        chunk = max(1, CHUNK_ELEMENTS // (e.shape[0] * e.shape[1]))
        order = torch.argsort(index)
        ctx.save_for_backward(e, idx, index[order], bank[index[order]])
        ctx.bank, ctx.chunk = bank, chunk
        return torch.cat([torch.bmm(bank[idx[:, lo:lo + chunk]], e[:, :, None]).squeeze(2)
                          for lo in range(0, idx.shape[1], chunk)], 1)

    @staticmethod
    def backward(ctx, g):
        e, idx, kept_index, kept_rows = ctx.saved_tensors
        grad = torch.zeros_like(e)
        for lo in range(0, idx.shape[1], ctx.chunk):
            ids = idx[:, lo:lo + ctx.chunk].contiguous()
            at = torch.searchsorted(kept_index, ids).clamp_max(len(kept_index) - 1)
            rows = torch.where((kept_index[at] == ids)[..., None], kept_rows[at], ctx.bank[ids])
            grad += torch.bmm(g[:, None, lo:lo + ctx.chunk], rows).squeeze(1)
        return grad, None, None, None


class CRD(Distiller):
    PARAMS = {"weight": 0.8, "feat_dim": 128, "nce_k": 16384, "nce_t": 0.07, "nce_m": 0.5, "sampler": "floyd"}
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
        if params["sampler"] not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {params['sampler']!r}")

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
        count = torch.bincount(labels, minlength=num_classes)
        others = self.n_data - count[count > 0]
        if (others < 1).any():
            raise ValueError("crd: a class holds every training sample; no negatives to draw")
        # The training indices grouped by class, and where each class starts in that table.
        self.register_buffer("by_class", torch.argsort(labels, stable=True), persistent=False)
        self.register_buffer("class_start", torch.cumsum(count, 0) - count, persistent=False)
        self.register_buffer("class_count", count, persistent=False)
        # Which draws a step needs, known here from the labels (never read in the step).
        k = params["nce_k"]
        self.draw_subsets = params["sampler"] == "floyd" and bool((others >= k).any())
        self.draw_repeats = params["sampler"] == "with_replacement" or bool((others < k).any())

    def negatives(self, y: torch.Tensor) -> torch.Tensor:
        """(B, K) dataset indices of samples whose class differs from y, drawn as ``sampler``
        says (module docstring)."""
        k = self.params["nce_k"]
        n = (self.n_data - self.class_count[y])[:, None]  # N_c per row
        if not self.draw_subsets:
            r = uniform_below(n, (len(y), k))
        elif not self.draw_repeats:
            r = floyd_sample(n, k)
        else:  # classes on both sides of K: each row takes its own draw
            r = torch.where(n < k, uniform_below(n, (len(y), k)), floyd_sample(n, k))
        start = self.class_start[y][:, None]
        return self.by_class[r + (r >= start) * self.class_count[y][:, None]]  # skip y's own block

    def feature_loss(self, fs, ft, y, index):
        if index is None:
            raise ValueError("crd needs the samples' dataset indices")
        e_s = self.embed_s(up(taps(fs)[-1]))
        e_t = self.embed_t(up(taps(ft)[-1]))
        idx = torch.cat([index[:, None], self.negatives(y)], dim=1)  # (B, 1 + K)
        t = self.params["nce_t"]
        h_s = torch.exp(BankScores.apply(e_s, self.memory_t, idx, index) / t)
        h_t = torch.exp(BankScores.apply(e_t, self.memory_s, idx, index) / t)
        with torch.no_grad():  # RepDistiller: the normalisers are estimated once, on the first batch
            z = torch.where(self.z < 0, torch.stack([h_s.mean(), h_t.mean()]) * self.n_data, self.z)
            self.z.copy_(z)
        loss = nce_loss(h_s / z[0], self.n_data) + nce_loss(h_t / z[1], self.n_data)
        with torch.no_grad():
            m = self.params["nce_m"]
            for bank, e in ((self.memory_s, e_s), (self.memory_t, e_t)):
                new = bank[index] * m + e.detach() * (1 - m)
                bank[index] = new / new.pow(2).sum(1, keepdim=True).sqrt()
        return loss
