"""Pre-flight: everything the runs need from outside the store, checked before anything is written.

For the configs of the runs still to train, each distinct

- dataset with ``data.source: real``: its files are where ``data.root`` says (``data.check``);
- teacher checkpoint file: it exists, matches its sha256, loads with ``weights_only=True``, holds
  a non-empty state dict, and that state dict loads strictly into the named architecture built
  for the dataset's class count;
- initial-weights file (``init``): it exists, matches its sha256 when one is given, loads with
  ``weights_only=True`` and fits the model (the classifier may differ: it is re-initialised);

is checked once. A file that pickles objects the safe loader does not allow is refused in our
own words (``models.weights.RefusedPickle``), never with torch's advice to load it unsafely. Every problem is one line naming the file and what fixes it; ``reproduce``,
``worker``, ``nightly`` and ``train`` stop with exit code 2 and write nothing when there is any.
A teacher that is another run of the plan (``teacher: {run: ID}``) is trained by the plan itself
and needs nothing here.
"""

from __future__ import annotations

from typing import Iterable

from ..errors import BadInput, Problems


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_dataset(name: str, root: str) -> BadInput | None:
    from ..engine.data import check

    row = check(root, [name], strict_counts=False)[0]
    if row["status"] == "ok":
        return None
    return BadInput(f"dataset {name}", None, f"{row['detail']} (data root {root})")


def check_teacher_checkpoint(teacher: dict, dataset: str) -> BadInput | None:

    from ..engine.data import get_spec
    from ..engine.models import build_model
    from ..engine.models.weights import RefusedPickle, load_file, sha256_of, unwrap_state_dict

    path, where = teacher["checkpoint"], f"teacher checkpoint {teacher['checkpoint']}"
    fix = "point the zoo entry or the config's teacher.checkpoint at the right file"
    try:
        digest = sha256_of(path)
    except FileNotFoundError:
        return BadInput(where, None, f"does not exist; {fix}")
    except OSError as err:
        return BadInput(where, None, f"cannot be read ({_first_line(err)})")
    if digest != teacher["sha256"]:
        return BadInput(where, None, f"its sha256 is {digest}, not the {teacher['sha256']} the config names; {fix}")
    try:
        obj = load_file(path)  # as the trainer reads it (teachers.py): RepDistiller's files included
    except RefusedPickle as err:  # our one line: never torch's advice to load it unsafely
        return BadInput(where, None, f"refused: {err}")
    except Exception as err:  # garbage, a truncated zip, an unsafe pickle
        return BadInput(where, None, f"is not a loadable checkpoint ({_first_line(err)})")
    if not isinstance(obj, dict):
        return BadInput(where, None, f"holds a {type(obj).__name__}, not a state dict")
    state = unwrap_state_dict(obj, strict=False)
    if not state:
        return BadInput(where, None, "holds no weights (an empty state dict)")
    model = build_model(teacher["model"], get_spec(dataset).num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # missing keys, size mismatch: another architecture or class count
        detail = " ".join(str(err).split())
        return BadInput(where, None, f"does not fit {teacher['model']} with {get_spec(dataset).num_classes} classes "
                        f"({detail[:300]})")
    return None


def check_pretrained_weights(pretrained: dict, model_name: str, dataset: str) -> BadInput | None:
    from ..engine.data import get_spec
    from ..engine.models import build_model
    from ..engine.models.weights import RefusedPickle, sha256_of

    path, where = pretrained["weights"], f"init weights {pretrained['weights']}"
    try:
        digest = sha256_of(path)
    except FileNotFoundError:
        return BadInput(where, None, "does not exist; put the pretrained file there or fix init.weights")
    except OSError as err:
        return BadInput(where, None, f"cannot be read ({_first_line(err)})")
    if pretrained.get("sha256") and digest != pretrained["sha256"]:
        return BadInput(where, None, f"its sha256 is {digest}, not the {pretrained['sha256']} the config names")
    try:
        build_model(model_name, get_spec(dataset).num_classes, weights=path)
    except RefusedPickle as err:
        return BadInput(where, None, f"refused: {err}")
    except Exception as err:  # unpicklable, not a state dict, keys that do not fit
        return BadInput(where, None, f"does not load into {model_name} ({_first_line(err)[:300]})")
    return None


def problems(configs: Iterable[dict], data_root: str | None = None) -> list[BadInput]:
    """Every problem with what the configs need from outside the store, each item checked once."""
    seen: set = set()
    found: list[BadInput] = []

    def once(key, check):
        if key not in seen:
            seen.add(key)
            problem = check()
            if problem is not None:
                found.append(problem)

    for cfg in configs:
        data = cfg["data"]
        if data["source"] == "real":
            root = data_root or data["root"]
            once(("data", cfg["dataset"], root), lambda cfg=cfg, root=root: check_dataset(cfg["dataset"], root))
        teacher = cfg.get("teacher") or {}
        if "checkpoint" in teacher:
            once(("teacher", teacher["checkpoint"], teacher["sha256"], teacher["model"], cfg["dataset"]),
                 lambda cfg=cfg, teacher=teacher: check_teacher_checkpoint(teacher, cfg["dataset"]))
        if cfg.get("init"):
            once(("init", cfg["init"]["weights"], cfg["model"], cfg["dataset"]),
                 lambda cfg=cfg: check_pretrained_weights(cfg["init"], cfg["model"], cfg["dataset"]))
    return found


def require(configs: Iterable[dict], data_root: str | None = None) -> None:
    """Raise Problems (exit 2, one line per problem) unless everything the configs need is there."""
    found = problems(configs, data_root)
    if found:
        raise Problems(found)
