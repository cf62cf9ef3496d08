"""A run config: one fully resolved training run, validated, with defaults filled in, and its id.

A run config is a plain dict (it round-trips through YAML and JSON):

```yaml
dataset: cifar100
data: {source: real, root: ./data, normalize: {mean: [...], std: [...]}, augment: standard, decode: pil}
model: resnet20
init: null                      # or {weights: FILE, sha256: HEX}: ImageNet-pretrained start
teacher: null                   # or {run: ID} or {checkpoint: FILE, sha256: HEX, model: NAME}
loss: {name: kd, tau: 4.0}      # any loss of benchmark.engine.losses with its parameters
recipe:
  epochs: 240
  batch_size: 64
  optimizer: {lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 5.0e-4, wd_on_bn_bias: true}
  schedule: {name: multistep, milestones: [150, 180, 210], gamma: 0.1, warmup_epochs: 0}
  report_epoch: last            # which epoch's accuracy the paper reported: last | best
  init_scheme: torch            # torch | ats_code (benchmark/engine/init_schemes.py)
  zero_init_residual: false     # true: residual branches start at zero (benchmark/engine/init_schemes.py)
  loss_schedule: null           # or {kd_weight: {0: 0.9, 60: 0.5}, ...}: loss options per epoch
seed: 0
```

The id (``run_id``, defined in benchmark/spec.py) is a hash of the config with defaults resolved,
so one run asked for twice is one run, and a changed config is a new run. Machine-local facts
(where the data lives, the teacher's checkpoint path) are not part of the id: only what changes
the mathematics is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import schema
from ..errors import BadInput

# Run ids live in the leaf module spec.py (from the schema's identity); re-exported because callers
# reach them as config.run_id (copy_tree is this module's own: deepcopy's result, faster).
from ..schema import identity  # noqa: F401
from ..spec import ID_LENGTH, canonical_json, copy_tree, is_run_id, run_id  # noqa: F401
from . import methods
from .init_schemes import effective_scheme
from .schedules import loss_params_at, schedule_steps

SCHEDULES = schema.CONFIG_FIELDS["recipe.schedule.name"].choices
REPORT_EPOCHS = schema.CONFIG_FIELDS["recipe.report_epoch"].choices
DATA_SOURCES = schema.CONFIG_FIELDS["data.source"].choices

# Every default, and what each field means, is declared once in benchmark/schema.py.
RECIPE_DEFAULTS: dict[str, Any] = schema.tree_defaults("recipe")
DATA_DEFAULTS: dict[str, Any] = schema.tree_defaults("data")

TOP_LEVEL = ("dataset", "data", "model", "init", "teacher", "loss", "recipe", "seed", "note")


def _merge(defaults: dict, given: dict, where: str, field: str) -> dict:
    """Defaults overlaid with what was given; a key the defaults do not know is an error."""
    out = copy_tree(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise BadInput(where, f"{field}.{key}", f"unknown field; known: {', '.join(defaults)}")
        if isinstance(defaults[key], dict) and value is not None:
            if not isinstance(value, dict):
                raise BadInput(where, f"{field}.{key}", f"must be a mapping, got {value!r}")
            out[key] = _merge(defaults[key], value, where, f"{field}.{key}")
        else:
            out[key] = value
    return out


def _number(value, where, field, *, integer=False, minimum=None, allow_none=False):
    """A value outside the schema's declared fields (a seed, a normalisation constant, a schedule's
    epoch) checked by the schema's own rule for numbers."""
    opt = schema.Option(0, "int" if integer else "float", minimum=minimum, nullable=allow_none)
    return _checked(opt, value, where, field)


def _choice(value, choices, where, field):
    return _checked(schema.Option(choices[0], "choice", choices=tuple(choices)), value, where, field)


def _checked(opt: schema.Option, value, where, field):
    try:
        return schema.check_value(opt, value)
    except ValueError as err:
        raise BadInput(where, field, str(err)) from None


def _sha256(value, where, field):
    if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise BadInput(where, field, "must be a sha256 digest (64 lowercase hex characters)")
    return value


def resolve(raw: Any, where: str = "config") -> dict:
    """Validate a run config and return it with every default filled in.

    Raises BadInput naming the file (``where``), the field and the problem.
    """
    from .data import dataset_names

    if not isinstance(raw, dict) or not raw:
        raise BadInput(where, None, "a run config must be a non-empty mapping")
    for key in raw:
        if key not in TOP_LEVEL:
            raise BadInput(where, key, f"unknown field; known: {', '.join(TOP_LEVEL)}")
    for key in ("dataset", "model", "loss"):
        if key not in raw:
            raise BadInput(where, key, "missing")

    cfg: dict[str, Any] = {}
    cfg["dataset"] = _choice(raw["dataset"], dataset_names(), where, "dataset")

    data = _merge(DATA_DEFAULTS, raw.get("data") or {}, where, "data")
    _check_declared(data, "data", where, skip=("data.normalize",))
    if data["normalize"] is not None:
        norm = data["normalize"]
        if not isinstance(norm, dict) or set(norm) != {"mean", "std"}:
            raise BadInput(where, "data.normalize", "must be null or {mean: [r, g, b], std: [r, g, b]}")
        for k in ("mean", "std"):
            if not (isinstance(norm[k], list) and len(norm[k]) == 3):
                raise BadInput(where, f"data.normalize.{k}", "must be a list of three numbers")
            norm[k] = [_number(v, where, f"data.normalize.{k}") for v in norm[k]]
        if any(v <= 0 for v in norm["std"]):  # x / 0: every input would be inf or NaN
            raise BadInput(where, "data.normalize.std", f"must be positive, got {norm['std']}")
    _check_synthetic_size(cfg["dataset"], data["synthetic"], where)
    _check_label_noise(data["label_noise"], where)
    from .data.decode import problem

    if (why := problem(cfg["dataset"], data)) is not None:
        raise BadInput(where, "data.decode", why)
    cfg["data"] = data

    model = raw["model"]
    if not known_model(model):
        raise BadInput(where, "model", f"unknown model {model!r}; see `python runner.py models`")
    cfg["model"] = model

    init = raw.get("init")
    if init is not None:
        if not isinstance(init, dict) or set(init) - {"weights", "sha256"} or "weights" not in init:
            raise BadInput(where, "init", "must be null or {weights: FILE, sha256: HEX}")
        if init.get("sha256") is not None:
            _sha256(init["sha256"], where, "init.sha256")
        init = {"weights": str(Path(str(init["weights"])).expanduser()), "sha256": init.get("sha256")}
    cfg["init"] = init

    cfg["teacher"] = _resolve_teacher(raw.get("teacher"), where)

    loss = raw["loss"]
    if isinstance(loss, str):
        loss = {"name": loss}
    if not isinstance(loss, dict) or "name" not in loss:
        raise BadInput(where, "loss", "must be a loss name or a mapping with a 'name'")
    params = {k: v for k, v in loss.items() if k != "name"}
    try:  # the method's options, checked as declared (benchmark/schema.py): no torch, nothing built
        name, resolved = loss["name"], methods.resolve(loss["name"], params)
    except (ValueError, TypeError) as err:
        raise BadInput(where, "loss", str(err)) from None
    if methods.entry(name).needs_teacher and cfg["teacher"] is None:
        raise BadInput(where, "teacher", f"loss {loss['name']!r} needs a teacher")
    cfg["loss"] = {"name": name, **resolved}

    cfg["recipe"] = resolve_recipe(raw.get("recipe") or {}, where)
    # ats_code re-initialises distilled students only; the resolved config says what runs.
    scheme = effective_scheme(cfg["recipe"]["init_scheme"], cfg["teacher"] is not None)
    if scheme != "torch" and cfg["init"] is not None:
        raise BadInput(where, "recipe.init_scheme", f"{scheme} would overwrite the pretrained init weights")
    cfg["recipe"]["init_scheme"] = scheme
    if cfg["recipe"]["zero_init_residual"] and cfg["init"] is not None:
        raise BadInput(where, "recipe.zero_init_residual", "would zero BatchNorm weights of the pretrained init weights")
    if cfg["recipe"]["epoch_sharpness_gap"] and cfg["teacher"] is None:
        raise BadInput(where, "recipe.epoch_sharpness_gap", "needs a teacher: the gap is the teacher's sharpness "
                                                            "minus the student's")
    cfg["recipe"]["loss_schedule"] = _resolve_loss_schedule(cfg["recipe"]["loss_schedule"], cfg["loss"], where)
    cfg["seed"] = _number(raw.get("seed", 0), where, "seed", integer=True, minimum=0)
    if raw.get("note") is not None:
        cfg["note"] = str(raw["note"])
    return cfg


SYNTHETIC_MAX_BYTES = 8 << 30  # a generated stand-in is held in memory: refuse terabytes up front


def _check_label_noise(noise: dict, where: str) -> None:
    """A rate of 1 would leave no clean label (the schema bounds it to [0, 1]); a rate without a
    kind would be silently ignored."""
    if noise["rate"] >= 1.0:
        raise BadInput(where, "data.label_noise.rate", f"must be in [0, 1), got {noise['rate']!r}")
    if noise["kind"] == "none" and noise["rate"] > 0:
        raise BadInput(where, "data.label_noise.rate", "is set but data.label_noise.kind is none (symmetric?)")


def _check_synthetic_size(dataset: str, syn: dict, where: str) -> None:
    """bytes = (train + test images per class) x classes x side^2 x 3 (uint8) must stay below
    SYNTHETIC_MAX_BYTES, so that `per_class: 1e11` is bad input, not an allocation failure."""
    from .data import get_spec

    spec = get_spec(dataset)
    side = syn["image_size"] or spec.synthetic_size
    per_class = (syn["per_class"] or spec.synthetic_train_per_class) + \
        (syn["test_per_class"] or spec.synthetic_test_per_class)
    need = per_class * spec.num_classes * side * side * 3
    if side > 1024:
        raise BadInput(where, "data.synthetic.image_size", f"must be <= 1024, got {side}")
    if need > SYNTHETIC_MAX_BYTES:
        raise BadInput(where, "data.synthetic", f"the generated data would take {need / 2**30:.3g} GiB "
                       f"(more than {SYNTHETIC_MAX_BYTES >> 30} GiB); lower per_class or image_size")


def known_model(name) -> bool:
    from .models import model_info
    if not isinstance(name, str):
        return False
    try:
        model_info(name)
    except ValueError:
        return False
    return True


def _resolve_teacher(teacher, where):
    if teacher is None:
        return None
    if not isinstance(teacher, dict):
        raise BadInput(where, "teacher", "must be null, {run: ID} or {checkpoint: FILE, sha256: HEX, model: NAME}")
    if "run" in teacher:
        if set(teacher) != {"run"} or not is_run_id(teacher["run"]):
            raise BadInput(where, "teacher.run", f"must be a run id ({ID_LENGTH} hex characters)")
        return {"run": teacher["run"]}
    if "torchvision" in teacher:  # torchvision's published weights from torch.hub's cache (benchmark/engine/hub.py)
        if set(teacher) != {"torchvision", "file", "sha256", "model"} or not known_model(teacher["model"]):
            raise BadInput(where, "teacher", "a torchvision teacher needs exactly torchvision (the weights enum), "
                                             "file, sha256 (the prefix in the file name) and a known model")
        from .hub import check_entry

        check_entry({"weights": teacher["torchvision"], "file": teacher["file"], "sha256": teacher["sha256"]},
                    where, "teacher")
        return {k: str(teacher[k]) for k in ("torchvision", "file", "sha256", "model")}
    if set(teacher) != {"checkpoint", "sha256", "model"}:
        raise BadInput(where, "teacher", "a checkpoint teacher needs exactly checkpoint, sha256 and model")
    name = teacher["model"]
    if not known_model(name):
        raise BadInput(where, "teacher.model", f"unknown model {name!r}")
    return {"checkpoint": str(teacher["checkpoint"]), "sha256": _sha256(teacher["sha256"], where, "teacher.sha256"),
            "model": name}


def resolve_recipe(raw: dict, where: str) -> dict:
    """A run config's ``recipe`` checked, with every default filled in (plan also checks a
    manifest's recipe with it before a profile rescales the epochs)."""
    if not isinstance(raw, dict):
        raise BadInput(where, "recipe", "must be a mapping")
    # A schedule is replaced whole, not merged: cosine takes no milestones.
    schedule = raw.get("schedule")
    recipe = _merge(RECIPE_DEFAULTS, {k: v for k, v in raw.items() if k != "schedule"}, where, "recipe")
    if schedule is not None:
        if not isinstance(schedule, dict):
            raise BadInput(where, "recipe.schedule", "must be a mapping")
        recipe["schedule"] = dict(schedule)
    _check_declared(recipe, "recipe", where, skip=("recipe.schedule.", "recipe.loss_schedule"))

    sched = recipe["schedule"]
    name = _choice(sched.get("name"), SCHEDULES, where, "recipe.schedule.name")
    known = {"multistep": {"name", "milestones", "gamma", "warmup_epochs"},
             "cosine": {"name", "warmup_epochs", "min_lr"},
             "constant": {"name", "warmup_epochs"}}[name]
    for key in sched:
        if key not in known:
            raise BadInput(where, f"recipe.schedule.{key}", f"not a field of the {name} schedule")
    sched.setdefault("warmup_epochs", 0)
    if name == "multistep":
        ms = sched.get("milestones")
        if not isinstance(ms, list) or any(isinstance(m, bool) or not isinstance(m, int) for m in ms) \
                or ms != sorted(ms):
            raise BadInput(where, "recipe.schedule.milestones", "must be an increasing list of epochs")
        sched.setdefault("gamma", 0.1)
    if name == "cosine":
        sched.setdefault("min_lr", 0.0)
    _check_declared({"schedule": sched}, "recipe", where, skip=("recipe.schedule.milestones",))
    return recipe


def _check_declared(node: dict, prefix: str, where: str, skip: tuple = ()) -> None:
    """The declared kinds and bounds of every field under ``prefix`` (benchmark/schema.py),
    checked in place: the first that fails is BadInput naming it."""
    for path, problem in schema.check_fields(node, prefix, skip):
        raise BadInput(where, path, problem)


def _resolve_loss_schedule(schedule, loss: dict, where: str) -> dict | None:
    """``recipe.loss_schedule`` checked against the run's loss, in its canonical form
    ``{option: [[epoch, value], ...]}`` (sorted epochs, the first 0; JSON keeps it as it is, so a
    run id does not depend on how the schedule was spelled). Every step's options must make a valid
    loss, and the loss's own value of a scheduled option must be the one of epoch 0 (the config
    then says what the first epoch trains with, and one run has one id)."""
    if schedule is None:
        return None
    field = "recipe.loss_schedule"
    if not isinstance(schedule, dict) or not schedule:
        raise BadInput(where, field, "must be null or a mapping {loss option: {epoch: value, ...}}")
    if not methods.entry(loss["name"]).schedulable:
        raise BadInput(where, field, f"applies to methods without adapters (the logit losses), not to "
                                     f"{loss['name']!r}")
    out = {}
    for option, raw_steps in schedule.items():
        here = f"{field}.{option}"
        if option == "name" or option not in loss:
            known = ", ".join(k for k in loss if k != "name") or "(none)"
            raise BadInput(where, here, f"not an option of loss {loss['name']!r}; known: {known}")
        steps = schedule_steps(raw_steps)
        if not steps:
            raise BadInput(where, here, "must be a non-empty mapping {first epoch: value, ...}")
        for epoch, _ in steps:
            _number(epoch, where, f"{here} (epoch {epoch!r})", integer=True, minimum=0)
        steps.sort(key=lambda p: p[0])
        epochs = [e for e, _ in steps]
        if len(set(epochs)) != len(epochs):
            raise BadInput(where, here, f"an epoch appears twice: {epochs}")
        if epochs[0] != 0:
            raise BadInput(where, here, "must start at epoch 0 (the value of the first epoch)")
        if steps[0][1] != loss[option]:
            raise BadInput(where, here, f"its epoch-0 value {steps[0][1]!r} differs from the loss's "
                                        f"{option}={loss[option]!r}; make them equal")
        out[option] = steps
    params = {k: v for k, v in loss.items() if k != "name"}
    for epoch in sorted({e for steps in out.values() for e, _ in steps}):
        try:  # the loss as it will be at this epoch: checked now, not mid-training
            made = methods.resolve(loss["name"], {**params, **loss_params_at({"loss_schedule": out}, epoch)})
        except (ValueError, TypeError) as err:
            raise BadInput(where, field, f"at epoch {epoch}: {err}") from None
        for option, steps in out.items():  # the values as the loss coerces them (ints -> floats)
            for step in steps:
                if step[0] == epoch:
                    step[1] = made[option]
    return out
