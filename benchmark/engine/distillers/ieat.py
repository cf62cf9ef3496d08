"""IE-AT: the attention-transfer variant of IE-KD (Huang et al., CVPR 2021, "Revisiting Knowledge
Distillation: An Inheritance and Exploration Framework", arXiv 2107.00181), as run by the ATS
authors with IE-KD's public code (ATS App. D.3, Table 7 column "IE-AT").

Sources read (public code: aliyun/Revisiting-Knowledge-Distillation-an-Inheritance-and-
Exploration-Framework, commit cd67c73): processors/IE_KD.py (the two stages, which network
is frozen, the channel split, the total loss), model/auto_encoder.py (the auto-encoder),
loss/reconstruction.py (RecLoss), loss/factor_transfer.py (FTLoss / NormLoss / CosLoss, the
losses the inheritance and exploration slots take), utils/lr_scheduler.py (LossWeightDecay,
LearningRate), processors/base.py (``_load_one_sgd``: SGD momentum 0.9, Nesterov, weight decay
5e-4), main.py (defaults: ``--divide natural``), config/ie_kd.yaml (30 auto-encoder epochs at
lr 0.1, inheritance / exploration weights 1 without decay, 160 epochs at 0.1 decayed at 80 and
120, batch 128), config/ft/cifar100/{resnet110-20,WRN28_10-resnet32,mobilenet-resnet32B}.yaml
(32 factor channels whatever the input width), model/{resnet,wide_resnet,vgg}.py (the tapped
map). Names below are ours: *teacher* = the frozen, pre-trained network (IE_KD.py calls it
``student`` and loads it from ``--student-weights``), *student* = the network being trained
(IE_KD.py calls it ``teacher``; it is built fresh and trained with cross-entropy).

Tapped feature. f = the last feature map, after the network's final activation: the map its
global pooling reads (IE-KD's ResNet and WRN return exactly that: ``layer3`` output, and
``relu(bn1(block3))``). Here: ``relu(preact_taps[-1])`` (= ``taps[-1]`` for CIFAR ResNets and
VGGs; the post-BN map for WRNs), else the last entry of ``taps``. IE-KD's VGG returns no
feature, so the VGG13->VGG8 pair was adapted by the ATS authors in a way nobody published; we
use VGG's last map (512 x 4 x 4).

Stage 1 (``pretrain_stages``, IE_KD.py ``train_student`` for ``num_epoch_embedS`` = 30 epochs at
``lr_decayS`` = 0.1, constant): an auto-encoder A_t = (E_t, D_t) on the teacher's f_t (the
teacher frozen in eval mode; only A_t in train mode and optimised),

    L_rec = 1/(N C H W) * || D_t(E_t(f_t)) - f_t ||_1                   (RecLoss, norm 1)

E and D are each three 3x3 convs (no bias, stride 1), each followed by BatchNorm and
LeakyReLU(0.1), with one more LeakyReLU(0.1) in front; E: C -> C -> m -> m, D: m -> m -> C -> C;
conv weights N(0, 2 / (9 * out_channels)), BN weight 1 and bias 0; m = ``factor_dim`` = 32.

Main stage (IE_KD.py ``train_teacher``). The student's map is split along the channels, the
``natural`` way (``divide_features``): the first floor(C_s / 2) channels are the inheritance
part f_inh, the rest the exploration part f_exp. Each part has its own encoder (``embedTI``,
``embedTE``: the same Coder, C_s/2 -> m), trained with the student; their decoders are never
used (so not built here). The teacher's factor is z_t = E_t(f_t) with A_t frozen in eval mode
(computed here under no_grad: it gets no gradient, so the student's optimizer leaves it alone).
With the AT map Q(z) = vec(mean_c z_c^p) / || vec(mean_c z_c^p) ||_2 (p = 2, as ``at``):

    AT(a, b) = mean_i mean_k (Q(a)_{i,k} - Q(b)_{i,k})^2             (as ``at``: RepDistiller's form)
    L_inh = AT(E_inh(f_inh), z_t)              similarity: inherit the teacher's attention
    L_exp = -AT(E_exp(f_exp), z_t)             dis-similarity: explore away from it
    L = CE + weight * (w_inh(e) * AT(E_inh(f_inh), z_t) - w_exp(e) * AT(E_exp(f_exp), z_t))

(the larger of two maps average-pooled to the smaller's size first; every pair here has equal
sizes). w(e) follows LossWeightDecay's "Step" policy: ``inh_weight`` * ``decay_gamma`` **
(e // ``decay_step``), likewise for exploration; ``decay_step`` = 0 is no decay, which is what
config/ie_kd.yaml publishes (``base: 1``, no ``stepsize``). The trainer's per-epoch hook
``start_epoch`` sets them through ``set_epoch(e)``.

What is *not* published, and how we filled it (see the report that came with this file):
- The public code has no AT variant: its loss package holds FTLoss, NormLoss (FT distance,
  optionally negated), CosLoss, RecLoss, KDLoss, DMLLoss and CKALoss, and config/ie_kd.yaml
  only names ``loss: FTLoss`` (for a ``Dedistill`` processor, imported by
  processors/__init__.py but not among the stored files; IE_KD.py reads ``inh_loss`` /
  ``exp_loss`` instead, which that config leaves unset). IE-AT here plugs AT's loss into
  IE_KD.py's two slots, on the factors (inheritance: AT distance; exploration: its negative, as
  NormLoss's ``negative`` form does for FT). ``autoencoder=False`` is the encoder-free
  alternative: no stage 1, AT straight between the student's channel halves and the teacher's map.
- ``weight`` = 1000 is AT's published beta (Zagoruyko & Komodakis; the CRD benchmark), kept
  because the loss is AT's with AT's normalisation; IE-KD publishes only weights for its FT
  form (1 and 1, on a loss of at most ~0.04).
- IE_KD.py adds no KD term (CE + the two terms), hence kd_weight 0; the ATS paper does not say
  whether its IE-AT runs added one.
- IE-KD's auto-encoder stage optimiser is SGD with Nesterov momentum; the suite's stages are
  RepDistiller's init() (the recipe's momentum and weight decay, no Nesterov).
Student initialisation: none needed. IE_KD.py loads pre-trained weights only into the frozen
network (our teacher); the trained network starts from random initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .at import attention_map
from .base import PretrainStage, match_spatial, taps, up
from .stage import StagedDistiller


def last_map(f: dict) -> torch.Tensor:
    """The map the network's global pooling reads (IE-KD's tapped feature)."""
    pre = f.get("preact_taps")
    if pre:
        return F.relu(pre[-1])
    return taps(f)[-2]


class Coder(nn.Module):
    """IE-KD's three-conv coder: LeakyReLU, then three (3x3 conv, BN, LeakyReLU 0.1): cin -> cin -> cout -> cout."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        layers: list[nn.Module] = [nn.LeakyReLU(0.1)]
        for a, b in ((cin, cin), (cin, cout), (cout, cout)):
            conv = nn.Conv2d(a, b, 3, padding=1, bias=False)
            nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (9 * b)))
            layers += [conv, nn.BatchNorm2d(b), nn.LeakyReLU(0.1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class AutoEncoder(nn.Module):
    def __init__(self, channels: int, factor_dim: int):
        super().__init__()
        self.encoder = Coder(channels, factor_dim)
        self.decoder = Coder(factor_dim, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def at_distance(a: torch.Tensor, b: torch.Tensor, p: float) -> torch.Tensor:
    a, b = match_spatial(a, b)
    return (attention_map(a, p) - attention_map(b, p)).pow(2).mean()


class IEAT(StagedDistiller):
    PARAMS = {"weight": 1000.0, "inh_weight": 1.0, "exp_weight": 1.0, "p": 2.0, "factor_dim": 32,
              "autoencoder": True, "decay_step": 0, "decay_gamma": 0.1, "init_epochs": 30, "init_lr": 0.1}

    @classmethod
    def check(cls, params):
        super().check(params)
        for k in ("inh_weight", "exp_weight"):
            if not (params[k] >= 0 and math.isfinite(params[k])):
                raise ValueError(f"{k} must be finite and >= 0, got {params[k]!r}")
        if not (params["p"] > 0 and math.isfinite(params["p"])):
            raise ValueError(f"p must be finite and > 0, got {params['p']!r}")
        if params["factor_dim"] < 1:
            raise ValueError(f"factor_dim must be >= 1, got {params['factor_dim']}")
        if params["decay_step"] < 0:
            raise ValueError(f"decay_step must be >= 0 (0: no decay), got {params['decay_step']}")
        if not (params["decay_gamma"] > 0 and math.isfinite(params["decay_gamma"])):
            raise ValueError(f"decay_gamma must be finite and > 0, got {params['decay_gamma']!r}")

    def __init__(self, student_probe, teacher_probe, num_classes, **params):
        self.check(params)
        super().__init__(student_probe, teacher_probe, num_classes, **params)
        f_s, f_t = last_map(student_probe), last_map(teacher_probe)
        if f_s.dim() != 4 or f_t.dim() != 4:
            raise ValueError("IE-AT needs a spatial feature map from both networks")
        c_s, c_t = f_s.shape[1], f_t.shape[1]
        if c_s < 2:
            raise ValueError(f"the student's map has {c_s} channel(s); IE-AT splits it into two halves")
        self.split = c_s // 2  # IE_KD.py divide 'natural': index[:int(C/2)] inherits, the rest explores
        self.autoencoder = params["autoencoder"]
        if self.autoencoder:
            m = params["factor_dim"]
            self.teacher_ae = AutoEncoder(c_t, m)        # IE_KD.py embedS (on the frozen network)
            self.encoder_inh = Coder(self.split, m)        # embedTI's encoder
            self.encoder_exp = Coder(c_s - self.split, m)  # embedTE's encoder
        self.set_epoch(0)

    def start_epoch(self, epoch: int, epochs: int) -> None:  # noqa: ARG002 (the Method protocol's start_epoch)
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """LossWeightDecay, policy "Step": base * gamma ** (epoch // stepsize); stepsize 0 = constant."""
        step = self.params["decay_step"]
        factor = self.params["decay_gamma"] ** (epoch // step) if step > 0 else 1.0
        self.inh_w = self.params["inh_weight"] * factor
        self.exp_w = self.params["exp_weight"] * factor

    def reconstruction_loss(self, fs, ft, y):  # noqa: ARG002 (PretrainStage.loss's signature)
        """Stage 1: RecLoss (norm 1) of the teacher's auto-encoder."""
        f_t = up(last_map(ft)).detach()
        return (self.teacher_ae(f_t) - f_t).abs().mean()

    def pretrain_stages(self, student):  # noqa: ARG002 (the Method protocol's pretrain_stages)
        if not self.autoencoder:
            return []
        return [PretrainStage("ieat-teacher-autoencoder", self.params["init_epochs"], self.params["init_lr"],
                          [self.teacher_ae], self.reconstruction_loss, needs_student=False)]

    def teacher_factor(self, ft: dict) -> torch.Tensor:
        f_t = up(last_map(ft)).detach()
        if not self.autoencoder:
            return f_t
        was_training = self.teacher_ae.training
        self.teacher_ae.eval()  # IE_KD.py: embedS.eval() while the student trains (running BN statistics)
        try:
            with torch.no_grad():
                return self.teacher_ae.encoder(f_t)
        finally:
            self.teacher_ae.train(was_training)

    def parts(self, fs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's inheritance and exploration factors."""
        f_s = up(last_map(fs))
        f_inh, f_exp = f_s[:, :self.split], f_s[:, self.split:]
        if not self.autoencoder:
            return f_inh, f_exp
        return self.encoder_inh(f_inh), self.encoder_exp(f_exp)

    def feature_loss(self, fs, ft, y, index):  # noqa: ARG002 (Distiller.feature_loss's signature)
        z_t = self.teacher_factor(ft)
        z_inh, z_exp = self.parts(fs)
        p = self.params["p"]
        total = z_t.new_zeros(())
        if self.inh_w:
            total = total + self.inh_w * at_distance(z_inh, z_t, p)
        if self.exp_w:
            total = total - self.exp_w * at_distance(z_exp, z_t, p)
        return total
