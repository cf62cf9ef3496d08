"""Numerics revisions: the code that decides a run's numbers, in parts, each with a revision.

A run id is a hash of the config, so a change to the *code* (CRD's negative sampling, AB's
pre-training) leaves it alone: without more, results trained by the old code would be reported as
reproductions by the new. Each part below carries a revision (an integer from 1); a run records the
revisions of the parts it uses (``result.json``'s ``revisions``, and its checkpoint from its first
epoch, so a run resumed after an upgrade keeps the lowest revision it was trained under); a
finished run trained at an older revision of one of its parts than the code's is *stale*
(benchmark/runs/stale.py). Revisions are not part of the run id. A run finished before revisions were
recorded has no record: it is read as revision 1 of every part.

The parts (``PARTS``; paths under ``benchmark/engine/``, where every one of them lives):

==========================  ==============================================================================
``model:<file>``            the network of ``models/<file>.py`` (a run's student; a teacher given by a file)
``taps:<file>``             the feature taps the same file gives distillers (``taps``, ``preact_taps``,
                            ``feat_module_names``): used only by feature runs, so a tap change makes no
                            CE or KD run stale
``models``                  the registry and shared layers: ``models/__init__.py``, ``common.py``, ``weights.py``
``loss:<name>``             one logit loss of losses.py: its function and what it references there
                            (``loss:kd`` also ``kd_term``, the KD term every feature run adds);
                            ``loss:dkd`` the file ``methods/dkd.py``, ``loss:ils`` ``methods/ils.py``
``distiller:<name>``        ``distillers/<name>.py`` and the distillers modules it imports (base.py aside)
``distiller-base``          ``distillers/base.py``: the shared taps, adapters and loss assembly
``data``                    pipeline.py, data/registry.py, transforms.py, synthetic.py, sources.py (loaders), noise.py
``folders``                 the image-folder loader: data/loader.py, streams.py (per-sample random streams),
                            tensor_decode.py (``data.decode: nvjpeg``); used only by runs that read image
                            files (CUB, Dogs, ImageNet, ``data.source: real``), so a change there makes no
                            CIFAR run stale
``step``                    the trainer's step: train.py (and what was split out of it: execution.py,
                            assembly.py, evaluation.py, run_result.py), optimizers.py, run_rng.py, pretraining.py,
                            precision.py, init_schemes.py, accel.py, terms.py, teachers.py, analysis.py,
                            checkpoints.py, numerics.py (the policies' switches), detops.py (deterministic
                            forms of CUDA ops), horizontal.py (batched students), methods/__init__.py (the
                            Method protocol: the terms' sum)
``recipe``                  schedules.py: ``lr_at``, ``loss_params_at``, ``scale_loss_schedule``
==========================  ==============================================================================

Which parts a run uses is a function of its resolved config (``parts_of``): every run uses
``models``, ``data``, ``step``, ``recipe`` and its student's ``model:``; a run reading image files
``folders``; a logit-loss run its
``loss:``; a feature run its ``distiller:``, ``distiller-base``, ``loss:kd`` and the ``taps:`` of
its student and teacher; a teacher given by a file (a checkpoint, torchvision's weights) adds its
network's ``model:``. A teacher given by a run adds nothing: that run's own staleness reaches its
students (stale.py).

The ledger (``revisions.json`` beside this file, read by the installed code; ``$KD_REPRO_REVISIONS``
names another) holds per part its
revision, the digest of its source (benchmark/codedigest.py: comments, docstrings and layout do
not count) and its history: ``{revision, digest, date, why}`` per entry, where an entry that keeps
the revision records a new digest with "no numeric change". ``runner.py revisions`` lists the
parts and whether each digest matches the code; ``revisions bump PART --why TEXT`` and
``revisions same PART --why TEXT`` record a change (tests/test_revisions.py fails until every
changed part has one).
"""

from __future__ import annotations

import ast
import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..codedigest import DIGEST_LENGTH, function_digest, source_digest
from ..errors import BadInput

PACKAGE = Path(__file__).resolve().parent  # benchmark/engine/: the parts' files are under it
LEDGER = PACKAGE / "revisions.json"
# Another ledger instead (the tests, whose workers are processes of their own; a maintainer trying
# a bump on a copy): its path in this environment variable.
LEDGER_ENV = "KD_REPRO_REVISIONS"
FORMAT = 1


def ledger_path() -> Path:
    return Path(os.environ.get(LEDGER_ENV) or LEDGER)


@dataclass(frozen=True)
class Part:
    files: tuple[str, ...]            # paths under benchmark/engine/
    functions: tuple[str, ...] = ()   # only these functions of the one file (and what they reference)
    siblings: bool = False            # also the modules of the same folder that the file imports (base.py aside)
    what: str = ""


MODEL_FILES = ("cifar_resnet", "cifar_resnet50", "imagenet", "mobilenetv2", "resnext", "shufflenetv1",
               "shufflenetv2", "speech", "vgg", "wrn")
LOSS_FUNCTIONS = {"ce": ("ce_terms",), "ls": ("ls_terms",), "kd": ("kd_terms", "kd_term"), "ats": ("ats_terms",),
                  "atkd": ("atkd_terms",), "mse": ("mse_terms",), "label_match": ("label_match_terms",)}
DISTILLERS = ("ab", "at", "cc", "crd", "fitnet", "fsp", "ft", "ieat", "nst", "overhaul", "pkt", "reviewkd",
              "rkd", "sckd", "sp", "vid")
DATA_FILES = ("pipeline.py", "data/registry.py", "data/transforms.py", "data/synthetic.py", "data/sources.py",
              "data/noise.py",
              "data/audio.py", "data/speech.py")
FOLDER_FILES = ("data/loader.py", "data/streams.py", "data/tensor_decode.py")
STEP_FILES = ("train.py", "execution.py", "assembly.py", "evaluation.py", "run_result.py", "optimizers.py",
              "run_rng.py", "pretraining.py", "precision.py", "init_schemes.py", "accel.py", "terms.py", "teachers.py",
              "analysis.py", "checkpoints.py", "numerics.py", "detops.py", "horizontal.py",
              "methods/__init__.py")
RECIPE_FUNCTIONS = ("lr_at", "loss_params_at", "scale_loss_schedule")


def _parts() -> dict[str, Part]:
    parts = {"models": Part(("models/__init__.py", "models/common.py", "models/weights.py"),
                            what="the model registry and shared layers")}
    for f in MODEL_FILES:
        parts[f"model:{f}"] = Part((f"models/{f}.py",), what=f"the networks of models/{f}.py")
        parts[f"taps:{f}"] = Part((f"models/{f}.py",), what=f"the feature taps of models/{f}.py (feature runs)")
    for name, functions in LOSS_FUNCTIONS.items():
        parts[f"loss:{name}"] = Part(("losses.py",), functions, what=f"the {name} loss ({', '.join(functions)})")
    parts["loss:dkd"] = Part(("methods/dkd.py",), what="the DKD loss (methods/dkd.py)")
    parts["loss:ils"] = Part(("methods/ils.py",), what="ATS's ILS loss (methods/ils.py)")
    parts["distiller-base"] = Part(("distillers/base.py",), what="the distillers' shared taps, adapters, loss sum")
    for name in DISTILLERS:
        parts[f"distiller:{name}"] = Part((f"distillers/{name}.py",), siblings=True, what=f"the {name} distiller")
    parts["data"] = Part(DATA_FILES, what="the data pipeline, transforms, generated data and loaders")
    parts["folders"] = Part(FOLDER_FILES, what="the image-folder loader: per-sample streams, workers, decoding")
    parts["step"] = Part(STEP_FILES, what="the trainer's step, optimizers, random streams, pre-training, metrics")
    parts["recipe"] = Part(("schedules.py",), RECIPE_FUNCTIONS, what="the recipe's schedules")
    return parts


PARTS: dict[str, Part] = _parts()

# A model name -> the file of models/ that builds it (tests/test_revisions.py checks this against the
# registry); the names not matched here are the ImageNet file's (torchvision's and its own).
_MODEL_RULES = ((r"resnet50_cifar", "cifar_resnet50"), (r"resnet(8|14|20|32|44|56|110)(x4)?", "cifar_resnet"),
                (r"wrn_26_2", "imagenet"), (r"wrn_\d+_\d+", "wrn"), (r"vgg\d+", "vgg"), (r"shufflev1", "shufflenetv1"),
                (r"shufflev2", "shufflenetv2"), (r"mobilenetv2", "mobilenetv2"), (r"resnext29_\d+x4d", "resnext"),
                (r"resnet15_128|dscnn", "speech"))


def model_file(model: str) -> str:
    """The models/ file (without .py) whose code builds ``model``."""
    return next((f for rule, f in _MODEL_RULES if re.fullmatch(rule, model)), "imagenet")


# ---------------------------------------------------------------- digests


def files_of(name: str, root: Path = PACKAGE) -> list[str]:
    """The files (under ``root``, the package folder) whose source a part's digest covers."""
    part = PARTS[name]
    files = list(part.files)
    if part.siblings:
        todo = list(files)
        while todo:
            path = todo.pop()
            folder = Path(path).parent
            for node in ast.walk(ast.parse((root / path).read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module and node.module != "base":
                    sibling = str(folder / f"{node.module}.py")
                    if sibling not in files:
                        files.append(sibling)
                        todo.append(sibling)
    return sorted(files)


def part_digest(name: str, root: Path = PACKAGE) -> str:
    """The digest of a part's source as it is now under ``root``."""
    part = PARTS[name]
    if part.functions:
        return function_digest((root / part.files[0]).read_text(), list(part.functions))
    h = hashlib.sha256()
    for path in files_of(name, root):
        h.update(f"{path}\0{source_digest((root / path).read_text())}\0".encode())
    return h.hexdigest()[:DIGEST_LENGTH]


# ---------------------------------------------------------------- the ledger

_CACHE: dict[tuple, dict] = {}


def _bad(path, field, problem):
    return BadInput(str(path), field, problem)


def _check_entry(path, name: str, entry) -> None:
    where = f"parts.{name}"
    if not isinstance(entry, dict) or set(entry) != {"revision", "digest", "history"}:
        raise _bad(path, where, "must be a mapping with exactly revision, digest and history")
    history = entry["history"]
    if not isinstance(history, list) or not history:
        raise _bad(path, f"{where}.history", "must be a non-empty list")
    previous = 0
    for k, h in enumerate(history):
        at = f"{where}.history[{k}]"
        if not isinstance(h, dict) or set(h) != {"revision", "digest", "date", "why"}:
            raise _bad(path, at, "must be a mapping with exactly revision, digest, date and why")
        rev = h["revision"]
        if isinstance(rev, bool) or not isinstance(rev, int) or rev not in (previous, previous + 1) or rev < 1:
            raise _bad(path, f"{at}.revision", f"must be {max(previous, 1)}"
                       + (f" or {previous + 1}" if previous else "") + f", got {rev!r}")
        previous = rev
        if not (isinstance(h["digest"], str) and re.fullmatch(r"[0-9a-f]+", h["digest"])):
            raise _bad(path, f"{at}.digest", f"must be a hex digest, got {h['digest']!r}")
        if not (isinstance(h["date"], str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", h["date"])):
            raise _bad(path, f"{at}.date", f"must be a date YYYY-MM-DD, got {h['date']!r}")
        if not (isinstance(h["why"], str) and h["why"].strip()):
            raise _bad(path, f"{at}.why", "must say why")
    if entry["revision"] != history[-1]["revision"] or entry["digest"] != history[-1]["digest"]:
        raise _bad(path, where, "revision and digest must be those of the last history entry")


def load_ledger(path: Path | None = None) -> dict[str, dict]:
    """Part -> its ledger entry; BadInput naming the file and the field when it is malformed."""
    path = Path(path or ledger_path())
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError as err:
        raise _bad(path, None, f"cannot read the numerics-revisions ledger: {err.strerror or err}") from None
    if key in _CACHE:
        return _CACHE[key]
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise _bad(path, None, f"not a readable JSON ledger ({type(err).__name__}: {err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("parts"), dict):
        raise _bad(path, None, f"must be {{\"format\": {FORMAT}, \"parts\": {{...}}}}")
    for name, entry in doc["parts"].items():
        _check_entry(path, name, entry)
    _CACHE.clear()
    _CACHE[key] = doc["parts"]
    return doc["parts"]


def current_revisions(path: Path | None = None) -> dict[str, int]:
    """Part -> the code's revision (a part the ledger does not list yet is at 1)."""
    ledger = load_ledger(path)
    return {name: ledger[name]["revision"] if name in ledger else 1 for name in PARTS}


@dataclass
class PartState:
    name: str
    revision: int | None     # None: not in the ledger yet
    recorded: str | None     # the ledger's digest
    digest: str              # the code's
    files: list[str]

    @property
    def matches(self) -> bool:
        return self.recorded == self.digest

    def to_json(self) -> dict:
        return {"part": self.name, "revision": self.revision, "digest": self.digest, "recorded_digest": self.recorded,
                "matches": self.matches, "files": self.files, "what": PARTS[self.name].what}


def check(path: Path | None = None, root: Path = PACKAGE) -> list[PartState]:
    """Every part: its revision, the ledger's digest and the code's."""
    ledger = load_ledger(path)
    return [PartState(name, ledger.get(name, {}).get("revision"), ledger.get(name, {}).get("digest"),
                      part_digest(name, root), files_of(name, root)) for name in PARTS]


def record_command(name: str, kind: str) -> str:
    """The maintainer's command that records a change of ``name`` (``bump`` or ``same``)."""
    return f'python runner.py revisions {kind} {name} --why "..."'


def unrecorded(path: Path | None = None, root: Path = PACKAGE) -> list[str]:
    """One line per part whose code digest the ledger does not hold, with the commands that record it."""
    out = []
    for s in check(path, root):
        if s.revision is None:
            out.append(f"{s.name}: a new part, not in the ledger: {record_command(s.name, 'bump')} (revision 1)")
        elif not s.matches:
            out.append(f"{s.name}: its code changed ({', '.join(s.files)}; ledger {s.recorded}, code {s.digest}): "
                       f"if its numbers change, {record_command(s.name, 'bump')}; "
                       f"if not, {record_command(s.name, 'same')}")
    return out


def record(name: str, kind: str, why: str, path: Path | None = None, today: str | None = None) -> dict:
    """Record the code's digest of ``name`` in the ledger: ``bump`` (its numbers change: the next
    revision; a part not in the ledger starts at 1) or ``same`` (no numeric change: the revision
    stays). Returns the new history entry; BadInput for an unknown part, an empty reason, or
    nothing to record."""
    path = Path(path or ledger_path())
    if name not in PARTS:
        raise BadInput("revisions", "PART", f"unknown part {name!r}; `runner.py revisions` lists them")
    if not why.strip():
        raise BadInput("revisions", "--why", "must say why")
    ledger = dict(load_ledger(path))
    digest = part_digest(name)
    entry = ledger.get(name)
    if entry is None and kind == "same":
        raise BadInput("revisions", "PART", f"{name} is not in the ledger yet: record it with "
                                            f"{record_command(name, 'bump')}")
    if entry is not None and kind == "same" and entry["digest"] == digest:
        raise BadInput("revisions", "PART", f"{name}: the ledger already holds this digest; nothing to record")
    revision = (entry["revision"] if entry else 0) + (1 if kind == "bump" else 0)
    new = {"revision": revision, "digest": digest, "date": today or datetime.date.today().isoformat(), "why": why}
    history = [*(entry["history"] if entry else []), new]
    ledger[name] = {"revision": revision, "digest": digest, "history": history}
    text = json.dumps({"format": FORMAT, "parts": dict(sorted(ledger.items()))}, indent=1, ensure_ascii=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return new


# ---------------------------------------------------------------- runs


def parts_of(cfg: dict) -> list[str]:
    """The parts whose code decides the numbers of a run with this resolved config."""
    used = {"models", "data", "step", "recipe", f"model:{model_file(cfg['model'])}"}
    loss = (cfg.get("loss") or {}).get("name")
    feature = f"distiller:{loss}" in PARTS
    teacher = cfg.get("teacher") or {}
    teacher_model = teacher.get("model") if "run" not in teacher else None
    if feature:
        used |= {f"distiller:{loss}", "distiller-base", "loss:kd", f"taps:{model_file(cfg['model'])}"}
        if teacher_model:
            used.add(f"taps:{model_file(teacher_model)}")
    elif f"loss:{loss}" in PARTS:
        used.add(f"loss:{loss}")
    if teacher_model:
        used.add(f"model:{model_file(teacher_model)}")
    if reads_files(cfg):
        used.add("folders")
    return sorted(used)


def reads_files(cfg: dict) -> bool:
    """Whether a run reads image files through the loader (data/loader.py)."""
    from .data import get_spec

    data = cfg.get("data") or {}
    return get_spec(cfg["dataset"]).kind == "folder" and data.get("source", "real") == "real"


def revisions_for(cfg: dict, path: Path | None = None) -> dict[str, int]:
    """The code's revision of every part a run with this config uses."""
    now = current_revisions(path)
    return {p: now[p] for p in parts_of(cfg)}


def lowest(trained: dict | None, now: dict[str, int]) -> dict[str, int]:
    """A resumed run's record: per part the lowest revision it was trained under (``trained``: its
    checkpoint's record; None for a checkpoint from before records were kept: revision 1)."""
    rec = trained if isinstance(trained, dict) else {}
    return {p: min(n, v) if isinstance(v := rec.get(p, 1), int) and not isinstance(v, bool) and v >= 1 else 1
            for p, n in now.items()}


def recorded(result: dict, where) -> dict[str, int]:
    """A finished run's ``revisions`` record ({} for a run finished before records were kept: revision
    1 of every part); BadInput naming the file when it is not {part: positive integer}."""
    rec = result.get("revisions")
    if rec is None:
        return {}
    if not isinstance(rec, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                            and v >= 1 for k, v in rec.items()):
        raise BadInput(str(where), "revisions", f"must be {{part: revision >= 1}}, got {json.dumps(rec)[:80]}")
    return rec


def older_parts(cfg: dict, record: dict[str, int], now: dict[str, int]) -> list[str]:
    """The parts of this run trained at an older revision than the code's, as 'part r<n> < r<m>'."""
    return [f"{p} r{record.get(p, 1)} < r{now.get(p, 1)}" for p in parts_of(cfg) if record.get(p, 1) < now.get(p, 1)]
