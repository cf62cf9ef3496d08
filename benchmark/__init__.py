"""Reproducibility benchmark suite for knowledge distillation (ATS, ATKD, LS-KD, KL-MSE)."""

__version__ = "0.1.0"
