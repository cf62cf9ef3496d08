"""``runner.py status``: where a store's runs stand (done, running with their progress, pending,
blocked, failed; how many of the done ones are stale) and the device time spent and estimated
left. Reads the store only; imports nothing heavy (no torch), since ``status`` is asked often
and must answer at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runs.queue import JobState, counts, scan
from ..runs.sessions import last_profile
from ..runs.stale import StaleRuns
from ..store.layout import Store
from ..store.leases import lease_wait_note


def planned_runs(store: Store, tables: list[str], profile: str | None, figures: list[str]) -> tuple[set[str], list[str]]:
    """(the run ids of ``tables``, one line per table whose plan a reader should know about). Each
    table at ``profile``, else at the one it was last reproduced with in this store (as
    ``report``), from the plan ``reproduce`` stored, else today's manifest
    (benchmark/results/reported_plan.py): the line says that today's manifest plans differently, or that
    no plan was stored."""
    from ..catalog.manifest import table_id
    from ..results.reported_plan import table_plans

    plans, _ = table_plans(store, tables, [profile or last_profile(store, table_id(t)) for t in tables], figures)
    return {r for p in plans for r in p.job_ids}, [f"{p.manifest.id}: {p.note}" for p in plans if p.note]


def device_hours_spent(states: dict[str, JobState]) -> float:
    """The wall time of the finished runs, in hours."""
    return sum((s.result or {}).get("wall_time_s") or 0 for s in states.values() if s.state == "done") / 3600


def gpu_hours_left(store: Store, states: dict[str, JobState], flops_per_s: float | None) -> float:
    """The cost model's hours for the pending and running runs. A run the model cannot cost (an
    old store's unknown model or dataset, a config of an older layout) counts as none: status
    must answer for any store."""
    from ..catalog.runcost import estimate_gpu_hours

    left = 0.0
    for s in states.values():
        if s.state not in ("pending", "running") or not s.config:
            continue
        teacher_run = (s.config.get("teacher") or {}).get("run")
        try:
            left += estimate_gpu_hours(s.config, store.config(teacher_run) if teacher_run else None, flops_per_s)
        except (KeyError, ValueError, TypeError):
            continue
    return left


def _worker_of(lease) -> str | None:
    """Who holds a lease, as ``status`` names it: the worker's name, else its host (a lease written
    elsewhere may carry no name); None when the lease says neither."""
    owner = lease.get("owner") if isinstance(lease, dict) else None
    if not isinstance(owner, dict):
        return None
    name = owner.get("name") or owner.get("host")
    return str(name) if name else None


def _progress_of(lease) -> dict:
    progress = lease.get("progress") if isinstance(lease, dict) else None
    return progress if isinstance(progress, dict) else {}  # a damaged lease shows no progress


@dataclass
class StoreStatus:
    summary: dict                  # the ``status --json`` object
    states: dict[str, JobState]
    hours_spent: float             # unrounded, for the text
    hours_left: float

    def lines(self, all_failures: bool = False) -> list[str]:
        """The text ``status`` prints: counts, each running run's progress, the failures, the hours."""
        from tabulate import tabulate

        from ..catalog.hours import fmt_hours
        from .reproduce import failure_summary, progress_line

        lines = [tabulate([[k, self.summary[k]] for k in ("done", "running", "pending", "blocked", "failed")],
                          headers=["runs", "n"])]
        if self.summary["stale"]:
            lines.append(f"  stale: {self.summary['stale']} of the done runs were trained at an older numerics revision "
                         "of their code (or by a stale teacher); `runner.py reproduce TABLE ... --rerun-stale` "
                         "retrains them")
        for r in self.summary["running_runs"]:  # model, epoch k/n, batches, images/s, ETA from the measured speed
            on = f" on {r['worker']}" if r.get("worker") else ""
            lines.append(f"  running {r['id']}{on}: {progress_line({r['id']: self.states[r['id']]})}"
                         + (f" ({r['lease_note']})" if r.get("lease_note") else ""))
        lines += failure_summary(self.states, full=all_failures)
        lines.append(f"device time spent {fmt_hours(self.hours_spent)}, estimated GPU time left "
                     f"{fmt_hours(self.hours_left)} ({self.summary['cost_model_throughput']})")
        return lines


def store_status(store: Store, only: set[str] | None = None) -> StoreStatus:
    """Where the store's runs (or only those of ``only``) stand."""
    from ..catalog.runcost import DEFAULT_RATE_SOURCE
    from ..runs.throughput import measured_rate

    flops_per_s, rate_source = measured_rate(store) or (None, DEFAULT_RATE_SOURCE)
    states = scan(store, only)
    spent, left = device_hours_spent(states), gpu_hours_left(store, states, flops_per_s)
    running = [{"id": s.id, "model": (s.config or {}).get("model"), "worker": _worker_of(s.lease),
                **_progress_of(s.lease),
                **({"lease_note": lease_wait_note(s.lease)} if lease_wait_note(s.lease) else {})}
               for s in states.values() if s.state == "running"]
    failed = [{"id": s.id, "state": s.state, "reason": s.reason} for s in states.values()
              if s.state in ("failed", "blocked")]
    # finished runs trained at an older numerics revision (benchmark/runs/stale.py); BadInput for a garbage record
    stale = StaleRuns(store).among(rid for rid, s in states.items() if s.state == "done")
    summary = {**counts(states), "total": len(states), "running_runs": running, "failed_runs": failed,
               "stale": len(stale), "stale_runs": [{"id": rid, "why": why} for rid, why in stale.items()],
               "device_hours_spent": round(spent, 4), "gpu_hours_left_estimate": round(left, 4),
               "cost_model_throughput": rate_source, "store": str(store.root)}
    return StoreStatus(summary, states, spent, left)
