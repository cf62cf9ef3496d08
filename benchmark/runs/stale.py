"""Stale runs of a store, and retraining them without losing the old result.

A finished run is *stale* when it was trained at an older numerics revision (benchmark/engine/revisions.py)
of a part it uses than the code's, or when its ``teacher: {run: ID}`` is stale (transitively: a
student of a stale teacher learnt from numbers the code would no longer make). ``status`` counts
them, reports show their cells as ``stale``, and ``reproduce --rerun-stale`` retrains them: each
run folder is first copied whole to ``<store>/archive/<id>/<UTC time>/`` (finished runs stay
immutable: the copy is the old run, byte for byte), then, under the run's lock, the live run is
reset (its result, weights, checkpoints and metrics removed; its config kept) and trained again.
"""

from __future__ import annotations

import datetime
import os
import shutil

from filelock import FileLock

from ..engine.revisions import current_revisions, older_parts, recorded
from ..errors import Failed
from ..store.layout import (
    ATTEMPTS,
    CHECKPOINT,
    LEASE,
    LOCK,
    METRICS,
    MODEL,
    PREVIOUS_CHECKPOINT,
    RESULT,
    TEST_LOGITS,
    Store,
    read_json,
)


class StaleRuns:
    """Which finished runs of a store are stale, and why; results read once each. A garbage
    ``revisions`` record in a result.json, or a garbage ledger, is BadInput naming the file."""

    def __init__(self, store: Store, now: dict[str, int] | None = None):
        self.store = store
        self.now = now if now is not None else current_revisions()
        self._why: dict[str, list[str]] = {}

    def why(self, rid: str) -> list[str]:
        """The reasons ``rid`` is stale ('loss:kd r1 < r2', 'teacher <id> is stale'); [] if it is not
        (or has not finished)."""
        if rid not in self._why:
            self._why[rid] = []  # a cycle of teachers (a damaged store) ends here
            res = self.store.result(rid)
            if res is None or res.get("status") != "done":
                return []
            cfg = res.get("config") if isinstance(res.get("config"), dict) else self.store.config(rid) or {}
            reasons = older_parts(cfg, recorded(res, self.store.run_file(rid, RESULT)), self.now) \
                if cfg.get("model") else []
            teacher = (cfg.get("teacher") or {}).get("run")
            if teacher and self.why(teacher):
                reasons.append(f"teacher {teacher} is stale")
            self._why[rid] = reasons
        return self._why[rid]

    def is_stale(self, rid: str) -> bool:
        return bool(self.why(rid))

    def among(self, ids) -> dict[str, list[str]]:
        """The stale runs among ``ids``, with their reasons, in id order."""
        return {rid: self.why(rid) for rid in sorted(ids) if self.why(rid)}


def utc_stamp() -> str:
    """The archive folder's name: the UTC time, to the microsecond, without characters a file
    system may refuse."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%fZ")


# What a reset removes: everything a training writes, except config.json (the same run is trained
# again), events.jsonl (the run's history of claims and failures goes on) and lease.json (an expired
# lease whose generation the next claim counts on from).
RESET = (CHECKPOINT, PREVIOUS_CHECKPOINT, RESULT, MODEL, TEST_LOGITS, METRICS, ATTEMPTS)


def archive_and_reset(store: Store, rid: str) -> str:
    """Copy the run's folder to ``store.archive_dir(rid, <now>)``, then reset the live run under its
    lock so that a worker trains it again; returns the archive folder. Failed if a live lease holds
    the run (someone is training it)."""
    from ..store.leases import lease_is_live

    run_dir = store.run_dir(rid)
    dest = store.archive_dir(rid, utc_stamp())
    tmp = dest.with_name(f".{dest.name}.tmp")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store.run_file(rid, LOCK)), timeout=60):
        if lease_is_live(read_json(store.run_file(rid, LEASE))):
            raise Failed(f"run {rid} is being trained (a live lease); try --rerun-stale when it has finished")
        shutil.copytree(run_dir, tmp, ignore=shutil.ignore_patterns(LOCK, ".*.tmp"))
        os.replace(tmp, dest)  # the whole copy appears at once, or not at all
        # The checkpoints go before result.json: a kill in between leaves a finished (still stale)
        # run, not an unfinished one that would resume from its last epoch.
        for name in RESET:
            store.run_file(rid, name).unlink(missing_ok=True)
    return str(dest)
