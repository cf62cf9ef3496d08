"""GPU-hours with and without packing and horizontal fusion: plan's four estimates.

Each run is costed again by the cost model with its per-step overhead shared (costmodel.Scaling,
named assumptions in calibrations.json):

- ``neither``: as planned (plan's ``gpu_hours``);
- ``packing``: K worker processes per GPU;
- ``fusion``: the run fused with the other runs of its fusion group: the table's runs of one
  student architecture, dataset, data, batch and length (seeds, teachers, losses and tau may
  differ: they fuse too);
- ``fusion_and_packing``: both shares at once.

Compute and data bounds stay, so a compute- or loader-bound run gains nothing. A store's measured
throughput stands for compute and overhead together, so under it the four are equal.
"""

from __future__ import annotations

from collections import Counter

from . import costmodel
from .runcost import estimate_workload, workload

SCENARIOS = ("neither", "packing", "fusion", "fusion_and_packing")


def fusion_key(cfg: dict) -> tuple:
    """What must be equal for runs to train as one batched model (one kernel per layer)."""
    recipe = cfg["recipe"]
    return (cfg["model"], cfg["dataset"], cfg["data"].get("source"), recipe["batch_size"], recipe["epochs"],
            recipe.get("steps_per_epoch"))


def scenario_hours(jobs, planner) -> dict:
    """{scenario: the jobs' hours} (module docstring); ``jobs``: a plan's Job objects."""
    scaling = planner.cost_settings.cal().scaling_or_default()
    groups = Counter(fusion_key(j.config) for j in jobs)
    hours = dict.fromkeys(SCENARIOS, 0.0)
    for j in jobs:
        fused = scaling.fusion_divisor(groups[fusion_key(j.config)])
        packed = scaling.packing_divisor()
        work = None  # the run's workload, built once for its three shared-overhead estimates
        for name, divisor in (("neither", 1.0), ("packing", packed), ("fusion", fused),
                              ("fusion_and_packing", fused * packed)):
            if divisor == 1.0:
                hours[name] += j.gpu_hours
                continue
            known = planner.shared_overhead_hours.get((j.id, divisor))
            if known is None:
                if work is None:
                    work = _workload(j, planner)
                known = planner.shared_overhead_hours[(j.id, divisor)] = estimate_workload(
                    work, planner.flops_per_s, planner.cost_settings, overhead_divisor=divisor).hours
            hours[name] += known
    return {k: round(v, 4) for k, v in hours.items()}


def _workload(job, planner) -> costmodel.Workload:
    dep = job.deps[0] if job.deps else None
    teacher = planner.jobs[dep].config if dep in planner.jobs else None
    return workload(job.config, teacher)


def assumptions(planner) -> dict:
    """The named assumptions behind the four estimates (plan --json ``scaling``)."""
    s: costmodel.Scaling = planner.cost_settings.cal().scaling_or_default()
    return {"workers_per_gpu": s.workers_per_gpu, "packing_overlap": s.overlap,
            "packing_overhead_divisor": s.packing_divisor(), "fusion_factor": s.fusion_factor,
            "fusion_upper_bound": s.fusion_upper_bound, "fusion_group_max": s.fusion_group_max,
            "measured": s.measured, "measured_rate": bool(planner.flops_per_s)}


def line(hours: dict, planner, fmt) -> str:
    """plan's sentence: the hours with and without packing and fusion, and on what they rest."""
    a = assumptions(planner)
    text = (f"with packing ({a['workers_per_gpu']} workers per GPU) {fmt(hours['packing'])}, with horizontal "
            f"fusion {fmt(hours['fusion'])}, with both {fmt(hours['fusion_and_packing'])}, with neither "
            f"{fmt(hours['neither'])}")
    if a["measured_rate"]:
        return text + " (a measured throughput stands for the overhead: packing and fusion not modelled on it)"
    how = "measured" if a["measured"] else "modelled, not measured on a GPU"
    return (f"{text} ({how}: packing shares the per-step overhead {a['packing_overhead_divisor']:g}x, fusion "
            f"{a['fusion_factor']:g}x per group of runs of one architecture and batch, conservative against "
            f"HFTA's up to {a['fusion_upper_bound']:g}x (Wang et al., MLSys 2021); benchmark/calibrations.json "
            "\"scaling\")")
