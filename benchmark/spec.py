"""Run specs and run ids: the leaf that plan, manifest, config and store all import.

Two things live here because several layers need them and none of those layers should own them:

- **spec merging** (``merge_spec``, ``set_path``): how a manifest's defaults, a column's and a row's
  ``set``, a grid point and a teacher zoo's ``like`` chain combine into one run spec;
- **run ids** (``run_id``, ``is_run_id``): the content address of a resolved config, from the
  declared schema's ``identity`` (benchmark/schema.py: what differs from the defaults).

It imports only the standard library and the schema (a leaf): no plan, manifest, config, losses,
models, data or torch, so any module can import it without a cycle.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from .schema import ID_SCHEME, identity

ID_LENGTH = 16

# ---------------------------------------------------------------- specs


_ATOMS = frozenset({str, int, float, bool, type(None)})


def copy_tree(tree: Any, memo: dict | None = None) -> Any:
    """``copy.deepcopy`` of a config tree, several times faster: plain dicts, lists and scalars are
    copied here, anything else by deepcopy itself under the same memo, so an object the tree holds
    twice (a YAML anchor) is copied once and held twice, as deepcopy does."""
    kind = type(tree)
    if kind in _ATOMS:
        return tree
    memo = {} if memo is None else memo
    done = memo.get(id(tree))
    if done is not None:
        return done
    if kind is dict:
        mapping: dict = {}
        memo[id(tree)] = mapping
        for key, value in tree.items():  # scalars inline: most of a tree, and a call each is slow
            mapping[key if type(key) in _ATOMS else copy_tree(key, memo)] = \
                value if type(value) in _ATOMS else copy_tree(value, memo)
        return mapping
    if kind is list:
        items: list = []
        memo[id(tree)] = items
        for value in tree:
            items.append(value if type(value) in _ATOMS else copy_tree(value, memo))
        return items
    return copy.deepcopy(tree, memo)


def merge_spec(base: dict, over: dict) -> dict:
    """Deep merge; a mapping with a different `name` (a loss, a schedule) replaces the old one,
    and `teacher` always replaces (an inline teacher is a whole run spec)."""
    out = copy_tree(base)
    for key, value in (over or {}).items():
        if key == "loss" and isinstance(value, str):
            value = {"name": value}
        old = out.get(key)
        if key != "teacher" and isinstance(old, dict) and isinstance(value, dict) \
                and old.get("name", value.get("name")) == value.get("name", old.get("name")):
            out[key] = merge_spec(old, value)
        else:
            out[key] = copy_tree(value)
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


def canonical_json(obj: Any) -> str:
    try:  # without an infinity (or a NaN) there is nothing to fix: the same text, several times faster
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:
        pass

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
    """Content address of a resolved config: the hash of its identity (benchmark/schema.py: the
    fields that differ from their defaults) and the id scheme."""
    keyed = canonical_json({"id_scheme": ID_SCHEME, "config": identity(cfg)})
    return hashlib.sha256(keyed.encode()).hexdigest()[:ID_LENGTH]
