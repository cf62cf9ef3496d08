"""The job queue, kept in the store itself: the state of every job.

A job is a run folder with a ``config.json`` and no finished ``result.json``. A worker (worker.py)
claims a job by writing ``lease.json`` under a file lock (lease.py); it renews the lease from a
heartbeat thread and gives it up when the run ends. A lease whose worker died is taken over: at
once when the worker was on this host and its process is gone, otherwise when the lease expires
(``expires`` in the lease, renewed every heartbeat; a foreign host's process cannot be probed, so
its lease is waited for until then, and the worker says so: store/leases.py). Each claim
increments the lease's ``generation``; every write into the run checks it
(``Store.write_run_file``), so a worker that lost its lease while paused cannot write over the run
once it resumes. Every claim, finish and failure is appended to the run's ``events.jsonl``
(events.py).

This module reads the states: done, failed, running (a live lease), pending, or blocked (a run
that depends on a failed run, directly or further up: reported, never attempted).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store.layout import CONFIG, LEASE, Store, read_json
from ..store.leases import lease_is_live


def dependencies(cfg: dict) -> list[str]:
    teacher = cfg.get("teacher") or {}
    return [teacher["run"]] if "run" in teacher else []


UNREADABLE_CONFIG = ("config.json is unreadable, so no worker can train it; `python runner.py store check --repair` "
                     "sets it aside and `python runner.py reproduce` of its table writes it again")


@dataclass
class JobState:
    id: str
    state: str                    # done | failed | running | pending | blocked
    config: dict | None = None
    result: dict | None = None
    lease: dict | None = None
    reason: str | None = None


def scan(store: Store, only: set[str] | None = None) -> dict[str, JobState]:
    """The state of every job of the store (or of `only`, with their dependencies)."""
    ids = set(store.run_ids()) if only is None else set(only)
    states: dict[str, JobState] = {}
    todo = list(ids)
    while todo:
        rid = todo.pop()
        if rid in states:
            continue
        cfg = store.config(rid)
        res = store.result(rid)
        if res is not None and res.get("status") == "done":
            states[rid] = JobState(rid, "done", cfg, res)
            continue
        if res is not None:
            states[rid] = JobState(rid, "failed", cfg, res, reason=res.get("reason"))
            continue
        lease = read_json(store.run_file(rid, LEASE)) if store.run_dir(rid).exists() else None
        if cfg is None and store.run_file(rid, CONFIG).exists():
            # Garbage in config.json: no worker can run it, so it must not wait as pending forever.
            states[rid] = JobState(rid, "failed", None, lease=lease, reason=UNREADABLE_CONFIG)
            continue
        if cfg is None:
            states[rid] = JobState(rid, "pending", None, reason="no config in the store")
            continue
        states[rid] = JobState(rid, "running" if lease_is_live(lease) else "pending", cfg, lease=lease)
        todo.extend(dependencies(cfg))
    for rid in sorted(states):  # blocked: a dependency failed, directly or further up
        _blocked(states, rid, set())
    return {rid: s for rid, s in states.items() if only is None or rid in only or s.state != "done"}


def _blocked(states, rid, seen) -> bool:
    s = states.get(rid)
    if s is None or rid in seen:
        return False
    seen.add(rid)
    if s.state == "failed":
        return True
    if s.state in ("pending", "blocked") and s.config is not None:
        for dep in dependencies(s.config):
            if dep in states and (states[dep].state == "failed" or _blocked(states, dep, seen)):
                s.state, s.reason = "blocked", f"depends on {dep}, which failed or is blocked"
                return True
    return s.state == "blocked"


def unreadable_configs(states: dict[str, JobState]) -> list[str]:
    """The runs that no worker can train because their config.json is damaged (failed, without a
    result: ``store check --repair`` or ``reproduce`` of their table must see to them)."""
    return sorted(rid for rid, s in states.items() if s.reason == UNREADABLE_CONFIG)


def counts(states: dict[str, JobState]) -> dict:
    out = {"done": 0, "running": 0, "pending": 0, "blocked": 0, "failed": 0}
    for s in states.values():
        out[s.state] += 1
    return out


def runnable(states: dict[str, JobState]) -> list[str]:
    def deps_done(s):
        return all(states[d].state == "done" if d in states else False for d in dependencies(s.config))
    return sorted(rid for rid, s in states.items() if s.state == "pending" and s.config is not None and deps_done(s))
