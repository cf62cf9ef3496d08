"""The declared run-config schema: every field and every method option, its default, its check,
and whether it is part of a run's identity.

A run id (``spec.run_id``) hashes the resolved config with every identity field at its default
left out, plus ``ID_SCHEME``. So:

- adding a field or an option whose default reproduces today's training moves no id: runs that
  do not set it hash as before, with no per-option exception anywhere;
- changing a default is the dangerous direction (runs that relied on the old default keep their
  id but would train differently): ``goldens/config_schema.json`` holds every default, a test
  fails when one changes, and the fix is to bump ``ID_SCHEME`` in the same commit and say in
  ``MIGRATION_DEFAULTS`` what a config of the old scheme left implicit (``store migrate``).

A default is a value, or conditional: ``Follows("tau")`` (the option takes another option's
value: KD's student temperature) or ``Switch("form", {...})`` (one value per value of another
option: ATKD's code forms). A field that is not part of the identity (where the data lives, a
note, which epoch a table reports) never enters the id.

Checks are declarative (kind, choices, bounds, and ``Rule``s between options: ATKD's code forms
fix some of them, tau=inf needs student_tau=inf) so that a config, and every method's options, are
validated without torch: ``check_method_options`` is the one check, at config time and when a
method is built (benchmark/engine/methods).

Imports only the standard library: spec.py (a leaf) builds run ids from it.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

# Bump when a default changes (or the identity rule does), with the old defaults in
# MIGRATION_DEFAULTS[old scheme]; goldens/config_schema.json records the scheme its defaults belong to.
ID_SCHEME = 2

# What a config of an older scheme left implicit, per scheme: {dotted path: that scheme's default}.
# ``store migrate`` fills these into a stored config before resolving it today. Scheme 1 (run ids
# before this schema) had today's defaults, so nothing to fill.
MIGRATION_DEFAULTS: dict[int, dict[str, Any]] = {1: {}}

REQUIRED = object()  # a field without a default: always in the id


@dataclass(frozen=True)
class Follows:
    """The default is another option's value (KD's ``student_tau`` follows ``tau``)."""
    option: str


@dataclass(frozen=True)
class Switch:
    """The default depends on another option: ``values[that option's value]``, else ``otherwise``."""
    option: str
    values: dict
    otherwise: Any = None


@dataclass(frozen=True)
class When:
    """Part of the identity only while the field ``path`` has the value ``equals``."""
    path: str
    equals: Any


@dataclass(frozen=True)
class Rule:
    """Between a method's options: while ``when`` has the value ``equals``, each option of ``then``
    must have its value there; ``says`` words the problem (formatted with when, equals, option, value)."""
    when: str
    equals: Any
    then: dict
    says: str = "{when}={equals!r} needs {option}={value!r}"


@dataclass(frozen=True)
class Option:
    """One field: its default, its kind and bounds, whether it is part of a run's identity."""
    default: Any
    kind: str                        # float | int | bool | str | choice | list | mapping
    choices: tuple = ()
    minimum: float | None = None     # inclusive, unless above_minimum
    above_minimum: bool = False
    maximum: float | None = None
    allow_inf: bool = False
    nullable: bool = False
    identity: bool | When = True
    doc: str = ""


def _f(default, minimum=None, **kw) -> Option:
    return Option(default, "float", minimum=minimum, **kw)


def _pos(default, **kw) -> Option:
    return Option(default, "float", minimum=0.0, above_minimum=True, **kw)


def _weight(default) -> Option:
    return Option(default, "float", minimum=0.0)


def _choice(default, *choices) -> Option:
    return Option(default, "choice", choices=tuple(choices))


# ---------------------------------------------------------------- the run config

SYNTHETIC_ONLY = When("data.source", "synthetic")

CONFIG_FIELDS: dict[str, Option] = {
    "dataset": Option(REQUIRED, "str"),
    "model": Option(REQUIRED, "str"),
    "seed": Option(0, "int", minimum=0),
    "note": Option(None, "str", nullable=True, identity=False, doc="free text; never part of the id"),
    # {weights: FILE, sha256: HEX}: an ImageNet-pretrained start; the id keeps the digest, not the path
    "init": Option(None, "mapping", nullable=True),
    # {run: ID} | {checkpoint: FILE, sha256: HEX, model: NAME} | {torchvision: ENUM, file, sha256, model}
    "teacher": Option(None, "mapping", nullable=True),
    "data.source": _choice("real", "real", "synthetic"),
    "data.root": Option("./data", "str", identity=False, doc="where the files are: machine-local"),
    "data.normalize": Option(None, "mapping", nullable=True, doc="None: the dataset's usual constants"),
    "data.augment": Option("standard", "str"),
    "data.decode": Option("pil", "choice", choices=("pil", "nvjpeg"),
                          doc="how image-folder training JPEGs are decoded (benchmark/data/decode.py)"),
    "data.synthetic.seed": Option(0, "int", minimum=0, identity=SYNTHETIC_ONLY),
    "data.synthetic.per_class": Option(None, "int", minimum=1, nullable=True, identity=SYNTHETIC_ONLY),
    "data.synthetic.test_per_class": Option(None, "int", minimum=1, nullable=True, identity=SYNTHETIC_ONLY),
    "data.synthetic.image_size": Option(None, "int", minimum=1, maximum=1024, nullable=True,
                                        identity=SYNTHETIC_ONLY),
    # Training labels replaced at random (KL-MSE's noisy-label runs): benchmark/engine/data/noise.py.
    # The rate's upper bound (< 1) is checked with the config (engine/config.py); none changes nothing.
    "data.label_noise.kind": _choice("none", "none", "symmetric", "symmetric_other"),
    "data.label_noise.rate": _f(0.0, 0.0, maximum=1.0, doc="fraction of training samples whose label is redrawn"),
    "data.label_noise.seed": Option(0, "int", minimum=0, doc="the draw's seed: the same noisy labels for every run "
                                                             "of a dataset, rate and seed"),
    "recipe.epochs": Option(240, "int", minimum=1),
    "recipe.batch_size": Option(64, "int", minimum=1),
    "recipe.drop_last": Option(False, "bool"),
    "recipe.steps_per_epoch": Option(None, "int", minimum=1, nullable=True,
                                     doc="cap on steps per epoch, for the tests' short runs"),
    "recipe.optimizer.lr": _f(0.05, 0.0),
    "recipe.optimizer.momentum": _f(0.9, 0.0),
    "recipe.optimizer.nesterov": Option(False, "bool"),
    "recipe.optimizer.weight_decay": _f(5e-4, 0.0),
    "recipe.optimizer.wd_on_bn_bias": Option(True, "bool"),
    "recipe.schedule.name": _choice("multistep", "multistep", "cosine", "constant"),
    "recipe.schedule.milestones": Option(Switch("recipe.schedule.name", {"multistep": [150, 180, 210]}), "list"),
    "recipe.schedule.gamma": Option(Switch("recipe.schedule.name", {"multistep": 0.1}), "float", minimum=0.0),
    "recipe.schedule.min_lr": Option(Switch("recipe.schedule.name", {"cosine": 0.0}), "float", minimum=0.0),
    "recipe.schedule.warmup_epochs": Option(0, "int", minimum=0),
    "recipe.report_epoch": Option("last", "choice", choices=("last", "best"), identity=False,
                                  doc="which epoch a table reports: both are recorded, so not the training"),
    "recipe.final_train_eval": Option(True, "bool", identity=False,
                                      doc="measure the un-augmented training set at the end: not the training"),
    "recipe.eval_batch_size": Option(256, "int", minimum=1),
    "recipe.bn_recalibration": Option(False, "bool", doc="precise BN after each epoch (the smoke profile)"),
    "recipe.epoch_sharpness_gap": Option(False, "bool",
                                         doc="record the test set's mean teacher-student sharpness gap at the "
                                             "loss's temperatures after each epoch (ATKD Fig. 2): no weight "
                                             "changes, but part of the id, so a run that records it is never "
                                             "one that did not"),
    "recipe.init_scheme": _choice("torch", "torch", "ats_code"),
    "recipe.zero_init_residual": Option(False, "bool",
                                        doc="the last BatchNorm of each residual branch starts at 0 (the smoke profile)"),
    "recipe.loss_schedule": Option(None, "mapping", nullable=True,
                                   doc="{option: [[epoch, value], ...]}: loss options per epoch"),
    "loss.name": Option(REQUIRED, "str"),
}

# The schedule is replaced whole, not merged: its fields are those of its name.
SCHEDULE_FIELDS = {"multistep": ("name", "milestones", "gamma", "warmup_epochs"),
                   "cosine": ("name", "warmup_epochs", "min_lr"),
                   "constant": ("name", "warmup_epochs")}

# Mappings the id reads as one value (their keys are not fields of the schema).
LEAF_MAPPINGS = ("init", "teacher", "data.normalize", "recipe.loss_schedule")


# ---------------------------------------------------------------- the methods' options

_REDUCTION = ("batchmean", "mean", "sum")
_DIVERGENCE = ("kl", "soft_ce")

# The options each ATKD code form fixes or sets by default (benchmark/engine/losses.py atkd_loss says why).
ATKD_FORM_FIXED: dict[str, dict[str, Any]] = {
    "code2020": {"std": "biased", "tau_scale": "base", "ce_on": "normalized", "detach_stats": False},
    "code2023": {"std": "unbiased", "eps": 0.0, "multiplier": 1.0, "tau_scale": "base", "ce_on": "normalized",
                 "detach_stats": False},
}
ATKD_FORM_DEFAULTS: dict[str, dict[str, Any]] = {
    "code2020": {**ATKD_FORM_FIXED["code2020"], "eps": 1e-7, "multiplier": 2.0, "base_tau": 4.0, "divergence": "kl"},
    "code2023": {**ATKD_FORM_FIXED["code2023"], "base_tau": 4.0, "divergence": "kl"},
}


def _by_form(option: str, paper_default: Any) -> Switch:
    return Switch("form", {form: d[option] for form, d in ATKD_FORM_DEFAULTS.items() if option in d},
                  otherwise=paper_default)


_KD = {"ce_weight": _f(0.1), "kd_weight": _f(0.9)}

LOGIT_LOSSES: dict[str, dict[str, Option]] = {
    "ce": {},
    "ls": {"alpha": _f(0.1, 0.0, maximum=1.0)},
    "kd": {"tau": _pos(4.0, allow_inf=True), "student_tau": _pos(Follows("tau"), allow_inf=True, nullable=True),
           **_KD, "tau_squared": Option(True, "bool"), "tau_scale": _choice("student", "student", "teacher"),
           "reduction": _choice("batchmean", *_REDUCTION), "divergence": _choice("kl", *_DIVERGENCE)},
    "ats": {"tau1": _pos(4.0), "tau2": _pos(2.0), "student_tau": _pos(1.0), "ce_weight": _f(0.5),
            "kd_weight": _f(0.5), "tau_squared": Option(True, "bool"),
            # whose temperature tau_squared squares: the code's student (1.0) or a teacher side (ATS Table 8's "+")
            "tau_scale": _choice("student", "student", "tau1", "tau2"),
            "reduction": _choice("batchmean", *_REDUCTION), "divergence": _choice("soft_ce", *_DIVERGENCE)},
    "atkd": {**_KD,
             "std": Option(_by_form("std", "biased"), "choice", choices=("biased", "unbiased")),
             "eps": Option(_by_form("eps", 0.0), "float", minimum=0.0),
             "multiplier": Option(_by_form("multiplier", 1.0), "float", minimum=0.0, above_minimum=True),
             "base_tau": Option(_by_form("base_tau", 1.0), "float", minimum=0.0, above_minimum=True),
             "tau_scale": Option(_by_form("tau_scale", "none"), "choice", choices=("none", "base", "student")),
             "ce_on": Option(_by_form("ce_on", "raw"), "choice", choices=("raw", "normalized")),
             "detach_stats": Option(_by_form("detach_stats", False), "bool"),
             "reduction": _choice("batchmean", *_REDUCTION),
             "divergence": Option(_by_form("divergence", "soft_ce"), "choice", choices=_DIVERGENCE),
             "form": _choice("paper", "paper", "code2020", "code2023")},
    "mse": {"reduction": _choice("mean", *_REDUCTION), "ce_weight": _f(0.0), "kd_weight": _f(1.0)},
    "label_match": {"reduction": _choice("batchmean", *_REDUCTION), "ce_weight": _f(0.0), "kd_weight": _f(1.0)},
    # DKD (benchmark/engine/methods/dkd.py): mdistiller's CIFAR defaults, mdistiller/engine/cfg.py:163-167
    "dkd": {"ce_weight": _weight(1.0), "alpha": _weight(1.0), "beta": _weight(8.0), "tau": _pos(4.0),
            "warmup_epochs": _f(20.0, 0.0)},
    # ILS (benchmark/engine/methods/ils.py): ATS's first two terms of Eq. 2, weighted as its KD (App. C.3)
    "ils": {"tau": _pos(4.0), "student_tau": _pos(Follows("tau"), nullable=True), "ce_weight": _f(0.5),
            "kd_weight": _f(0.5), "tau_squared": Option(True, "bool"),
            "tau_scale": _choice("student", "student", "teacher"), "divergence": _choice("soft_ce", *_DIVERGENCE)},
}

# Rules between options, checked after the defaults are filled in (benchmark/engine/losses.py says why).
_KD_INF = "tau=inf is the limit of tau^2 * KL: it needs {option}={value!r}"
METHOD_RULES: dict[str, tuple[Rule, ...]] = {
    "kd": (Rule("tau", math.inf, {"student_tau": math.inf}, "tau=inf needs {option}=inf (or None)"),
           Rule("student_tau", math.inf, {"tau": math.inf}, "student_tau=inf needs {option}=inf"),
           Rule("tau", math.inf, {"tau_squared": True, "divergence": "kl"}, _KD_INF)),
    "atkd": tuple(Rule("form", form, fixed, "form {equals!r} computes {option}={value!r} (the authors' code)")
                  for form, fixed in ATKD_FORM_FIXED.items()),
}

# Every feature distiller: CE 1, KD 0 at tau 4, plus its own options (benchmark/engine/distillers/).
_BASE = {"ce_weight": _weight(1.0), "kd_weight": _weight(0.0), "tau": _pos(4.0)}
_STAGE = {"init_epochs": Option(30, "int", minimum=0), "init_lr": _pos(0.05)}

FEATURE_DISTILLERS: dict[str, dict[str, Option]] = {
    "fitnet": {**_BASE, "weight": _weight(100.0), "hint_layer": Option(2, "int", minimum=0)},
    "at": {**_BASE, "weight": _weight(1000.0), "p": _f(2.0)},
    "sp": {**_BASE, "weight": _weight(3000.0)},
    "cc": {**_BASE, "weight": _weight(0.02), "feat_dim": Option(128, "int", minimum=1),
           "embed": _choice("linear", "linear", "normalized")},
    "vid": {**_BASE, "weight": _weight(1.0), "init_var": _f(5.0, 1e-5, above_minimum=True)},  # > VID.EPS
    "rkd": {**_BASE, "weight": _weight(1.0), "w_dist": _f(25.0), "w_angle": _f(50.0)},
    "pkt": {**_BASE, "weight": _weight(30000.0)},
    "nst": {**_BASE, "weight": _weight(50.0)},
    "crd": {**_BASE, "weight": _weight(0.8), "feat_dim": Option(128, "int", minimum=1),
            "nce_k": Option(16384, "int", minimum=1), "nce_t": _pos(0.07), "nce_m": _f(0.5, 0.0, maximum=1.0),
            "sampler": _choice("floyd", "floyd", "with_replacement")},
    "sckd": {**_BASE, "ce_weight": _weight(0.5), "kd_weight": _weight(0.5), "weight": _weight(100.0),
             "hint_layer": Option(2, "int", minimum=0)},
    "ab": {**_BASE, **_STAGE, "weight": _weight(1.0), "margin": _f(1.0, 0.0)},
    "ft": {**_BASE, **_STAGE, "init_lr": _pos(None, nullable=True, doc="None: RepDistiller's rule on the student"),
           "weight": _weight(200.0), "k": _f(0.5, 0.0, above_minimum=True, maximum=1.0)},
    "fsp": {**_BASE, **_STAGE, "weight": _weight(50.0)},
    "ieat": {**_BASE, **_STAGE, "init_lr": _pos(0.1), "weight": _weight(1000.0), "inh_weight": _weight(1.0),
             "exp_weight": _weight(1.0), "p": _pos(2.0), "factor_dim": Option(32, "int", minimum=1),
             "autoencoder": Option(True, "bool"), "decay_step": Option(0, "int", minimum=0),
             "decay_gamma": _pos(0.1)},
    "reviewkd": {**_BASE, "weight": _weight(1.0), "warmup_epochs": _f(20.0, 0.0)},
    "overhaul": {**_BASE, "weight": _weight(1e-4)},
}

METHODS: dict[str, dict[str, Option]] = {**LOGIT_LOSSES, **FEATURE_DISTILLERS}


def method_options(name: str) -> dict[str, Option]:
    if name not in METHODS:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


# ---------------------------------------------------------------- defaults and checks


def default_of(opt: Option, siblings: dict, cfg: dict | None = None) -> Any:
    """An option's default for a config: a conditional default read from its sibling options
    (a method's other options) or, for a dotted path, from the config."""
    d = opt.default
    if isinstance(d, Follows):
        return siblings.get(d.option)
    if isinstance(d, Switch):
        key = get_path(cfg, d.option) if "." in d.option else siblings.get(d.option)
        return d.values.get(key, d.otherwise)
    return d


def check_value(opt: Option, value: Any) -> Any:
    """``value`` checked against the option's kind and bounds (ints pass as floats, bools only as
    bools); ValueError saying what is wrong ("must be ..."). Returns the value as stored (floats as
    floats)."""
    if value is None:
        if opt.nullable or opt.default is None:
            return None
        raise ValueError("must not be null")
    kind = opt.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if kind in ("int", "float"):
        ok = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
        if not ok or isinstance(value, bool):
            raise ValueError(f"must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
        if kind == "float":
            value = float(value)
            if math.isnan(value) or (math.isinf(value) and not opt.allow_inf):  # NaN passes every comparison
                raise ValueError(f"must be a finite number, got {value!r}")
        if opt.minimum is not None and (value <= opt.minimum if opt.above_minimum else value < opt.minimum):
            raise ValueError(f"must be {'>' if opt.above_minimum else '>='} {opt.minimum:g}, got {value!r}")
        if opt.maximum is not None and value > opt.maximum:
            raise ValueError(f"must be <= {opt.maximum:g}, got {value!r}")
        return value
    if kind == "choice":
        if value not in opt.choices:
            raise ValueError(f"must be one of {', '.join(map(str, opt.choices))}, got {value!r}")
        return value
    if kind == "str" and not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    if kind == "list" and not isinstance(value, list):
        raise ValueError(f"must be a list, got {value!r}")
    if kind == "mapping" and not isinstance(value, dict):
        raise ValueError(f"must be a mapping, got {value!r}")
    return value


def check_method_options(name: str, params: dict) -> dict:
    """A method's options checked declaratively, every default filled in (conditional ones from
    the given options); ValueError on an unknown option or a bad value. Needs no torch."""
    options = method_options(name)
    unknown = sorted(set(params) - set(options))
    if unknown:
        raise ValueError(f"loss {name!r}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(options) or '(none)'}")
    out: dict[str, Any] = {}
    # plain defaults and given values first: a conditional default reads them
    for key, opt in options.items():
        if key in params:
            try:
                out[key] = check_value(opt, params[key])
            except ValueError as err:
                raise ValueError(f"loss {name!r}: {key} {err}") from None
        elif not isinstance(opt.default, (Follows, Switch)):
            out[key] = opt.default
    for key, opt in options.items():
        if key not in out:
            out[key] = default_of(opt, out)
        if out[key] is None and isinstance(opt.default, Follows):  # None: "the other option's value"
            out[key] = out[opt.default.option]
    for rule in METHOD_RULES.get(name, ()):
        if _same(out[rule.when], rule.equals):
            for option, value in rule.then.items():
                if not _same(out[option], value):
                    problem = rule.says.format(when=rule.when, equals=rule.equals, option=option, value=value)
                    raise ValueError(f"loss {name!r}: {problem}; got {option}={out[option]!r}")
    return {key: out[key] for key in options}


def check_fields(node: dict, prefix: str, skip: tuple = ()) -> list[tuple[str, str]]:
    """Every declared field under ``prefix`` present in ``node`` (a nested mapping such as a
    recipe) checked in place, ints made floats where the kind says; returns [(path, problem)] of
    those that fail. ``skip``: path prefixes checked elsewhere (a schedule's fields depend on its name)."""
    problems = []
    for path, keys, opt in _declared_under(prefix, skip):
        parent = node
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or keys[-1] not in parent:
            continue
        try:
            parent[keys[-1]] = check_value(opt, parent[keys[-1]])
        except ValueError as err:
            problems.append((path, str(err)))
    return problems


# (prefix, skip) -> (CONFIG_FIELDS's items when found, [(path, keys under prefix, option)])
_UNDER: dict[tuple[str, tuple], tuple[tuple, list[tuple[str, tuple[str, ...], Option]]]] = {}


def _declared_under(prefix: str, skip: tuple) -> list[tuple[str, tuple[str, ...], Option]]:
    """[(path, its keys under ``prefix``, option)] of the declared fields under ``prefix`` but not
    under ``skip``, in declaration order: found once (a plan checks thousands of recipes), found
    again when CONFIG_FIELDS has changed since (a test declares a field)."""
    now = tuple(CONFIG_FIELDS.items())
    made = _UNDER.get((prefix, skip))
    if made is None or made[0] != now:
        made = _UNDER[(prefix, skip)] = (now, [
            (path, tuple(path[len(prefix) + 1:].split(".")), opt) for path, opt in now
            if path.startswith(prefix + ".") and not (skip and path.startswith(skip))])
    return made[1]


def method_defaults(name: str) -> dict[str, Any]:
    """A method's options at their defaults (a Follows default reads as None: 'the other option')."""
    return {k: (None if isinstance(o.default, Follows) else default_of(o, {})) for k, o in method_options(name).items()}


def tree_defaults(prefix: str) -> dict:
    """The defaults under ``prefix`` ("recipe", "data") as a nested mapping; a Switch default reads
    the plain defaults (the default schedule's fields are those of its default name), and a field
    that does not apply there (a cosine schedule's ``min_lr``) is left out."""
    out: dict = {}

    def put(path: str, value: Any) -> None:
        keys = path[len(prefix) + 1:].split(".")
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = copy.deepcopy(value)

    fields = {p: o for p, o in CONFIG_FIELDS.items() if p.startswith(prefix + ".")}
    for path, opt in fields.items():
        if not isinstance(opt.default, (Follows, Switch)):
            put(path, opt.default)
    for path, opt in fields.items():
        if isinstance(opt.default, Switch):
            value = default_of(opt, {}, {prefix: out})
            if value is not None:
                put(path, value)
    return out


# ---------------------------------------------------------------- identity


def get_path(cfg: dict | None, path: str) -> Any:
    node: Any = cfg
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


# Types whose values are equal as JSON exactly when they are equal (floats by repr: JSON writes a
# float's repr, so 0.0 and -0.0 differ), and the types JSON has a form of its own for: two values of
# two different ones of these are never equal as JSON (1 is not 1.0, true or "1"). Any other pair
# (a tuple, a dict with keys that are not strings, a value JSON writes by str()) is compared as JSON.
_EXACT_BY_EQUALITY = frozenset({str, int, bool, type(None)})
_JSON_NATIVE = frozenset({str, int, float, bool, type(None), list, dict})


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (so 1 is not 1.0 and True is not 1): what the hash would see."""
    kind = type(a)
    if kind is type(b):  # the common case, a value against its default, without encoding JSON
        if kind in _EXACT_BY_EQUALITY:
            return a == b
        if kind is float:
            return repr(a) == repr(b)
        if kind is list:  # a list's JSON is its items' JSON in order
            return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        if kind is dict and all(type(k) is str for k in a) and all(type(k) is str for k in b):
            return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)  # sort_keys: order aside
    elif kind in _JSON_NATIVE and type(b) in _JSON_NATIVE:
        return False
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _in_identity(opt: Option, cfg: dict) -> bool:
    if isinstance(opt.identity, When):
        return get_path(cfg, opt.identity.path) == opt.identity.equals
    return bool(opt.identity)


def _project(path: str, value: Any) -> Any:
    """What of a file reference is the run: a checkpoint teacher by its digest and network (not its
    path), init weights by their digest when given."""
    if path == "teacher" and isinstance(value, dict) and "checkpoint" in value:
        return {k: v for k, v in value.items() if k != "checkpoint"}
    if path == "init" and isinstance(value, dict) and value.get("sha256"):
        return {"sha256": value["sha256"]}
    return value


def _flatten(node: dict, prefix: str, out: dict) -> None:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in LEAF_MAPPINGS and path != "loss":
            _flatten(value, path + ".", out)
        else:
            out[path] = value


def identity(cfg: dict) -> dict:
    """The part of a resolved config that defines the run: identity fields that differ from their
    (conditional) defaults, as a nested mapping. ValueError on a field the schema does not declare
    (every field needs a declared default before it can enter a config)."""
    flat: dict[str, Any] = {}
    _flatten({k: v for k, v in cfg.items() if k != "loss"}, "", flat)
    kept: dict[str, Any] = {}
    for path, value in flat.items():
        opt = CONFIG_FIELDS.get(path)
        if opt is None:
            raise ValueError(f"config field {path!r} is not declared in benchmark/schema.py")
        if not _in_identity(opt, cfg):
            continue
        if opt.default is not REQUIRED and _same(value, default_of(opt, {}, cfg)):
            continue
        kept[path] = _project(path, value)
    loss = dict(cfg["loss"])
    name = loss.pop("name")
    options = method_options(name)
    kept_loss = {"name": name}
    for key, value in loss.items():
        if key not in options:
            raise ValueError(f"option {key!r} of loss {name!r} is not declared in benchmark/schema.py")
        if not _same(value, default_of(options[key], loss)):
            kept_loss[key] = value
    out: dict = {}
    for path, value in kept.items():
        keys = path.split(".")
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    out["loss"] = kept_loss
    return out


# ---------------------------------------------------------------- the golden


def _describe_default(d: Any) -> Any:
    if d is REQUIRED:
        return {"required": True}
    if isinstance(d, Follows):
        return {"follows": d.option}
    if isinstance(d, Switch):
        return {"by": d.option, "values": d.values, "otherwise": d.otherwise}
    return d


def _describe(opt: Option) -> dict:
    ident = opt.identity
    return {"default": _describe_default(opt.default),
            "identity": {"when": ident.path, "equals": ident.equals} if isinstance(ident, When) else ident}


def describe() -> dict:
    """Every default and identity rule, as goldens/config_schema.json holds them."""
    return {"id_scheme": ID_SCHEME,
            "fields": {path: _describe(opt) for path, opt in CONFIG_FIELDS.items()},
            "methods": {name: {k: _describe(o) for k, o in opts.items()} for name, opts in METHODS.items()}}
