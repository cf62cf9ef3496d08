"""A planned table as the ``plan --json`` object (docs/CONTRACTS.md: its keys), and the one line that
says how its hours were estimated."""

from __future__ import annotations

from . import scaling
from .plan import Planner, TablePlan


def table_summary(plan: TablePlan, planner: Planner, store=None, detail: bool = True) -> dict:
    """The plan --json object of one table (docs/CONTRACTS.md: table, profile, cells, jobs, pending, gpu_hours).

    ``detail=False`` (plan --json without --detail) keeps one short record per job and per cell:
    a 1,245-run table was about 1 MB with every job's whole loss and labels."""
    jobs = [planner.jobs[j] for j in plan.job_ids]
    pending = [j.id for j in jobs if store is None or not store.is_done(j.id)]
    return {
        "table": plan.manifest.id, "profile": plan.profile, "paper": plan.manifest.paper,
        "title": plan.manifest.title,
        "cells": [c.summary(detail) for c in plan.cells],
        "jobs": [j.summary(detail) for j in jobs],
        "pending": pending,
        "gpu_hours": round(sum(j.gpu_hours for j in jobs), 4),
        "pending_gpu_hours": round(sum(planner.jobs[j].gpu_hours for j in pending), 4),
        "counts": {"cells": len(plan.cells), "jobs": len(jobs), "pending": len(pending),
                   "cited_cells": sum(c.rule == "cited" for c in plan.cells),
                   "waiting_cells": len(plan.waiting())},
        # the cells whose runs are planned once another cell has finished (rows with `from:`)
        "waiting": [{"row": c.row, "col": c.col, "on": {k: c.waiting_on[k] for k in ("row", "col", "select")},
                     "unfinished": [r for r in c.waiting_on["runs"] if store is None or not store.is_done(r)]}
                    for c in plan.waiting()],
        # the figures whose extra runs were asked for (--figures): their grid points and runs
        "figures": {name: c.points for name, c in plan.figure_cells.items()},
        "cost_model": cost_model_line(planner),
        # the calibration the estimates used, and how the table's hours split between the bounds
        "calibration": {**planner.cost_settings.describe(),
                        "measured": ({"flops_per_s": planner.flops_per_s, "source": planner.rate_source}
                                     if planner.flops_per_s else None)},
        "bound": main_bound(jobs),
        "gpu_hours_by_bound": hours_by_bound(jobs),
        # the hours with and without packing and horizontal fusion, and their named assumptions
        "gpu_hours_with": scaling.scenario_hours(jobs, planner) if planner.cost else None,
        "scaling": scaling.assumptions(planner) if planner.cost else None,
    }


def hours_by_bound(jobs) -> dict:
    """{bound: the hours of the jobs that hit it}, largest first."""
    out: dict[str, float] = {}
    for j in jobs:
        out[j.bound or "none"] = out.get(j.bound or "none", 0.0) + j.gpu_hours
    return {k: round(v, 4) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def main_bound(jobs) -> str | None:
    """The bound that holds most of the jobs' hours (None without any)."""
    split = hours_by_bound(jobs)
    return next(iter(split), None)


def cost_model_line(planner: Planner) -> str:
    """One line: how the hours were estimated and from which calibration."""
    d = planner.cost_settings.describe()
    what = (f"max(compute, data, per-step overhead) per epoch, {d['device']} ({d['device_kind']}, calibration "
            f"{d['file']}), policy {d['policy']} ({d['precision']})")
    if planner.flops_per_s:
        return (f"{what}; compute and overhead from a measured {planner.flops_per_s / 1e12:.3g} TFLOP/s "
                f"({planner.rate_source}); data: {d['loader_workers']} loader workers, "
                f"{d['loader_images_per_s']:.0f} images/s")
    return (f"{what}: {d['effective_tflops']:.3g} TFLOP/s effective, {d['layer_pass_us']:.3g} us per layer pass, "
            f"{d['loader_workers']} loader workers x {d['loader_images_per_s'] / d['loader_workers']:.0f} images/s "
            "(no CUDA measurement in the store)")
