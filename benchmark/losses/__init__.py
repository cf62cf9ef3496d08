"""The public face of the logit losses (docs/CONTRACTS.md, "Python API"): ``make_loss(name, **params)``
returns ``loss(student_logits, teacher_logits, targets) -> scalar``. The losses live in
benchmark/engine/losses.py; nothing inside the package imports this alias. A folder, not a flat
losses.py, so that git sees benchmark/losses.py moved to engine/ (branches that edit it merge)."""

from ..engine.losses import loss_defaults, loss_names, make_loss

__all__ = ["loss_defaults", "loss_names", "make_loss"]
