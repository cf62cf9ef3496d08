"""Retry: a run's failed attempts (``attempts.json``), and an exception recorded as one more; at the
budget (``max_attempts``) the run is recorded as failed with its last reason."""

from __future__ import annotations

import traceback

from ..store.layout import ATTEMPTS, Store, WriteRefused, json_bytes, read_json
from .events import append_event
from .options import WorkerOptions


def attempts(store: Store, rid: str) -> int:
    """Failed attempts so far (an unreadable or odd ``attempts.json`` counts as none)."""
    doc = read_json(store.run_file(rid, ATTEMPTS))
    n = doc.get("failed_attempts") if isinstance(doc, dict) else 0
    return n if isinstance(n, int) and not isinstance(n, bool) else 0


def record_error(store: Store, rid: str, reason: str, opts: WorkerOptions, log) -> str:
    log(f"run {rid}: {reason}")
    try:
        n = attempts(store, rid) + 1
        store.write_run_file(rid, ATTEMPTS, json_bytes({"failed_attempts": n, "last_error": reason,
                                                         "traceback": traceback.format_exc()}))
        append_event(store, rid, kind="error", worker=opts.name, reason=reason)
        if n >= opts.max_attempts:
            store.write_result(rid, {"id": rid, "status": "failed", "config": store.config(rid),
                                     "reason": f"failed {n} times; last: {reason}"})
            return "failed"
    except WriteRefused as lost:  # the lease passed to another worker meanwhile: not ours to record
        log(f"run {rid}: {lost}")
        return "lost"
    except Exception as again:  # the disk may be full: say so and go on with other runs
        log(f"run {rid}: could not record the failure ({type(again).__name__}: {again})")
    return "retry"
