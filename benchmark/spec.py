"""Run specs and run ids: the leaf that plan, manifest, config and store all import.

Two things live here because several layers need them and none of those layers should own them:

- **spec merging** (``merge_spec``, ``set_path``): how a manifest's defaults, a column's and a row's
  ``set``, a grid point and a teacher zoo's ``like`` chain combine into one run spec;
- **run ids** (``run_id``, ``is_run_id``, ``identity``): the content address of a resolved config.
  ``identity`` holds every rule that keeps an old run's id when a config field is added later.

It imports only the standard library: no plan, manifest, config, losses, models, data or torch,
so any module can import it without a cycle.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

ID_LENGTH = 16

# Loss options added after runs were planned, with the value that reproduces the loss as it was
# before them: identity() leaves such an option out of the run id when it has this value, so the
# runs that do not use it keep their ids. The value must be the loss's default (tests/test_config.py).
ID_NEUTRAL: dict[str, dict[str, Any]] = {"atkd": {"form": "paper"}}


# ---------------------------------------------------------------- specs


def merge_spec(base: dict, over: dict) -> dict:
    """Deep merge; a mapping with a different `name` (a loss, a schedule) replaces the old one,
    and `teacher` always replaces (an inline teacher is a whole run spec)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if key == "loss" and isinstance(value, str):
            value = {"name": value}
        old = out.get(key)
        if key != "teacher" and isinstance(old, dict) and isinstance(value, dict) \
                and old.get("name", value.get("name")) == value.get("name", old.get("name")):
            out[key] = merge_spec(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_path(spec: dict, path: str, value) -> dict:
    """`loss.tau` -> spec['loss']['tau'] = value (on a copy)."""
    keys = path.split(".")
    nested: dict = value
    for key in reversed(keys):
        nested = {key: nested}
    if keys[0] == "loss" and isinstance(spec.get("loss"), str):
        spec = {**spec, "loss": {"name": spec["loss"]}}
    return merge_spec(spec, nested) if keys[0] != "teacher" or len(keys) > 1 else {**spec, "teacher": value}


# ---------------------------------------------------------------- run ids


def is_run_id(text: str) -> bool:
    return isinstance(text, str) and len(text) == ID_LENGTH and all(c in "0123456789abcdef" for c in text)


def identity(cfg: dict) -> dict:
    """The part of a resolved config that defines the run: machine-local paths are left out."""
    ident = copy.deepcopy(cfg)
    ident["data"].pop("root", None)
    if ident["data"]["source"] == "real":
        ident["data"].pop("synthetic", None)
    ident.pop("note", None)
    # Which epoch a table reports, and whether the final training-set accuracy is measured, do
    # not change the training: two tables that differ only there share the run (both the last
    # and the best epoch are recorded; the cell picks the one its recipe names).
    ident["recipe"] = {k: v for k, v in ident["recipe"].items() if k not in ("report_epoch", "final_train_eval")}
    if not ident["recipe"].get("bn_recalibration"):
        ident["recipe"].pop("bn_recalibration", None)  # added later: runs without it keep their ids
    if ident["recipe"].get("init_scheme", "torch") == "torch":
        ident["recipe"].pop("init_scheme", None)  # added later: runs with the network's init keep their ids
    if not ident["recipe"].get("loss_schedule"):
        ident["recipe"].pop("loss_schedule", None)  # added later: runs without one keep their ids
    for option, neutral in ID_NEUTRAL.get(ident["loss"].get("name"), {}).items():
        if ident["loss"].get(option) == neutral:
            ident["loss"].pop(option)  # an option added later, at the value the loss had before it
    if ident.get("teacher") and "checkpoint" in ident["teacher"]:
        ident["teacher"].pop("checkpoint")
    if ident.get("init"):
        ident["init"] = {"sha256": ident["init"]["sha256"]} if ident["init"]["sha256"] else ident["init"]
    return ident


def canonical_json(obj: Any) -> str:
    def fix(v):
        if isinstance(v, float) and math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        return v
    return json.dumps(fix(obj), sort_keys=True, separators=(",", ":"))


def run_id(cfg: dict) -> str:
    """Content address of a resolved config."""
    return hashlib.sha256(canonical_json(identity(cfg)).encode()).hexdigest()[:ID_LENGTH]
