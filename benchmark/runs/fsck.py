"""`runner.py store check [--repair]`: find corrupt or inconsistent files in a store, re-derive
what can be re-derived, mark the rest for re-running. A finished result is never deleted: a
damaged one is set aside as ``<name>.corrupt-<unix time>`` next to it.

Per run folder (``runs/<id>/``):

| finding | repair |
|---|---|
| ``config.json`` unreadable or not hashing to the folder's id | set aside; ``reproduce`` of its table writes it again |
| a done run's ``test_logits.pt`` missing or unreadable | re-evaluated from ``model.pt`` (the config's test set) |
| a done run's ``model.pt`` missing or unreadable | ``result.json`` set aside: the run resumes from its last checkpoint, whose weights are the final ones, and writes ``model.pt``, ``test_logits.pt`` and ``result.json`` again |
| ``result.json`` unreadable or damaged (no metrics, another id) | set aside: the run resumes from its checkpoint |
| ``metrics.jsonl`` unreadable | rewritten from the checkpoint's history |
| ``lease.json`` or ``attempts.json`` of the wrong shape | removed (they hold nothing a worker could use) |
| left-over temporary files (``.*.tmp``) | removed |

and ``queue/sessions.json`` of the wrong shape is set aside. Without ``--repair`` nothing is
written; the exit code is 1 when something is wrong.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..engine import config as C
from ..store.layout import (
    ATTEMPTS,
    CHECKPOINT,
    CONFIG,
    LEASE,
    METRICS,
    MODEL,
    RESULT,
    TEST_LOGITS,
    Store,
    parse_metrics,
    read_json,
)


@dataclass
class Finding:
    where: str
    problem: str
    repair: str
    fix: object = None  # a callable that repairs it


def _loads(path: Path) -> bool:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(obj, dict) and bool(obj)


def _set_aside(path: Path):
    def fix():
        if path.exists():
            path.rename(path.with_name(f"{path.name}.corrupt-{int(time.time())}"))
    return fix


def _metrics_ok(path: Path, finished: bool) -> bool:
    """Every line a JSON object, except that an unfinished run's last line may be torn: a kill in
    the middle of an epoch's append leaves it so, the store reads past it (Store.metrics) and the
    run's resume rewrites the file. A finished run's file was written whole at its end."""
    if not path.exists():
        return True
    try:
        lines, torn = parse_metrics(path.read_text())
    except (OSError, ValueError):
        return False
    return all(isinstance(m, dict) for m in lines) and not (torn and finished)


def _rewrite_metrics(store: Store, rid: str):
    def fix():
        import torch

        state = torch.load(store.run_file(rid, CHECKPOINT), map_location="cpu", weights_only=True)
        store.rewrite_metrics(rid, state["history"], repair=True)
    return fix


def _reevaluate_logits(store: Store, rid: str, cfg: dict, data_root: str | None):
    def fix():
        import torch

        from ..engine.assembly import build_pipeline
        from ..engine.checkpoints import tensor_bytes
        from ..engine.data import get_spec
        from ..engine.evaluation import evaluate
        from ..engine.execution import ExecOptions
        from ..engine.models import build_model

        run_cfg = json.loads(json.dumps(cfg))
        if data_root:
            run_cfg["data"]["root"] = data_root
        model = build_model(cfg["model"], get_spec(cfg["dataset"]).num_classes)
        model.load_state_dict(torch.load(store.run_file(rid, MODEL), map_location="cpu", weights_only=True))
        ev = evaluate(model.eval(), build_pipeline(run_cfg, ExecOptions(num_workers=0)).test_batches())
        logits = ev["logits"].cpu()
        if logits.numel() > 4_000_000:  # as Student.finish keeps them
            logits = logits.half()
        store.write_run_file(rid, TEST_LOGITS, tensor_bytes({"logits": logits, "labels": ev["labels"].cpu()}),
                             repair=True)
    return fix


def _remove(path: Path):
    return lambda: path.unlink(missing_ok=True)


def check_run(store: Store, rid: str, data_root: str | None = None) -> list[Finding]:
    def file(name: str) -> Path:
        return store.run_file(rid, name)

    out: list[Finding] = []
    cfg = store.config(rid)
    if file(CONFIG).exists() and (cfg is None or not _hashes_to(cfg, rid)):
        out.append(Finding(f"{rid}/{CONFIG}", "unreadable or not this run's config",
                           "set aside; `reproduce` of its table writes it again", _set_aside(file(CONFIG))))
        cfg = None
    res = store.result(rid)
    has_ckpt = _loads(file(CHECKPOINT))
    if file(RESULT).exists() and res is None:
        out.append(Finding(f"{rid}/{RESULT}", "unreadable or damaged (no metrics, another id)",
                           "set aside; the run resumes from its checkpoint" if has_ckpt else
                           "set aside; the run is trained again", _set_aside(file(RESULT))))
    elif res is not None and res.get("status") == "done":
        if not _loads(file(MODEL)):
            out.append(Finding(f"{rid}/{MODEL}", "missing or unreadable",
                               "result set aside; the run resumes from its last checkpoint" if has_ckpt else
                               "result set aside; the run is trained again", _set_aside(file(RESULT))))
        elif not _loads(file(TEST_LOGITS)):
            out.append(Finding(f"{rid}/{TEST_LOGITS}", "missing or unreadable", f"re-evaluated from {MODEL}",
                               _reevaluate_logits(store, rid, cfg or res.get("config"), data_root)))
    if not _metrics_ok(file(METRICS), finished=res is not None and res.get("status") == "done"):
        out.append(Finding(f"{rid}/{METRICS}", "unreadable",
                           "rewritten from the checkpoint's history" if has_ckpt else "removed (no checkpoint)",
                           _rewrite_metrics(store, rid) if has_ckpt else _remove(file(METRICS))))
    lease = read_json(file(LEASE)) if file(LEASE).exists() else {}
    if not isinstance(lease, dict) or not isinstance(lease.get("expires", 0), (int, float)):
        out.append(Finding(f"{rid}/{LEASE}", "of the wrong shape", "removed", _remove(file(LEASE))))
    attempts = read_json(file(ATTEMPTS)) if file(ATTEMPTS).exists() else {}
    if not isinstance(attempts, dict) or not isinstance(attempts.get("failed_attempts", 0), int):
        out.append(Finding(f"{rid}/{ATTEMPTS}", "of the wrong shape", "removed", _remove(file(ATTEMPTS))))
    for tmp in sorted(store.run_dir(rid).glob(".*.tmp")):
        out.append(Finding(f"{rid}/{tmp.name}", "a left-over temporary file", "removed", _remove(tmp)))
    return out


def _hashes_to(cfg: dict, rid: str) -> bool:
    try:
        return C.run_id(cfg) == rid
    except Exception:  # a config of the wrong shape
        return False


def check_store(store: Store, data_root: str | None = None) -> list[Finding]:
    found: list[Finding] = []
    sessions = store.sessions_file
    if sessions.exists():
        doc = read_json(sessions)
        if not (isinstance(doc, list) and all(isinstance(s, dict) and isinstance(s.get("tables"), list)
                                              and isinstance(s.get("profile"), str) for s in doc)):
            found.append(Finding(str(sessions.relative_to(store.root)), "of the wrong shape",
                                 "set aside (it only remembers which profile a table last ran with)",
                                 _set_aside(sessions)))
    for rid in store.run_ids():
        found.extend(check_run(store, rid, data_root))
    return found


def repair(findings: list[Finding]) -> list[tuple[Finding, str | None]]:
    """Apply each repair; (finding, None) when it worked, else the one-line reason it did not."""
    done = []
    for f in findings:
        try:
            f.fix()
            done.append((f, None))
        except Exception as err:  # e.g. the test set is not on this machine: say so, go on
            done.append((f, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"))
    return done
