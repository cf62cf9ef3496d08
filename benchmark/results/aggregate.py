"""From finished runs to the table's cells, by the manifest's rules.

Each cell gets the published number, the reproduced number, the difference and a status, and
records which runs and which hyper-parameters produced it:

- ``value``: one run spec, the mean over its seeds (with the standard deviation);
- ``best``: the grid point with the highest mean top-1 (the papers' best-of-grid), its value;
- ``ensemble``: top-1 of the members' averaged softmax probabilities on the test set;
- ``aggregate``: the mean of the row's other cells (the papers' Avg columns);
- ``params``: the model's parameter count in millions (measured, no training);
- ``cited`` / ``setting``: nothing measured; the published number is shown as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean, stdev

import torch

from ..catalog import profiles
from ..catalog.plan import CellPlan, Planner, TablePlan
from ..catalog.published import load_published, published_stds
from ..catalog.sections import resolve_tolerances
from ..engine import analysis
from ..runs.stale import StaleRuns
from ..store.layout import TEST_LOGITS, Store, reported_metrics
from .verdict import NOT_COMPARABLE, STALE, WITH_NUMBER, judge, kind_of


@dataclass
class CellResult:
    row: str
    col: str
    rule: str
    published: float | None
    published_top5: float | None
    published_raw: str
    reproduced: float | None = None
    reproduced_top5: float | None = None
    std: float | None = None
    delta: float | None = None
    status: str = "pending"
    runs: list[str] = field(default_factory=list)
    winner: dict | None = None      # best-of-grid: the winning grid point
    grid: list[dict] = field(default_factory=list)  # every point's value (the whole grid is shown)
    note: str | None = None
    n: int = 0                      # runs (seeds) behind the reproduced number
    published_std: float | None = None
    kind: str = "accuracy"          # accuracy | loss | gap | analysis | params (benchmark.results.verdict)
    tolerance: float | None = None
    interval: list[float] | None = None  # what the seeds support around the mean (paper profile)
    basis: str | None = None        # what decided within/outside
    stale_runs: list[str] = field(default_factory=list)  # runs trained at an older numerics revision

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


class Measurer:
    """Reads results and logits from the store, with a cache (a teacher serves many cells)."""

    def __init__(self, store: Store, configs: dict[str, dict] | None = None):
        self.store = store
        # The planned configs: a run shared by two tables may be reported at different epochs
        # (report_epoch is not part of the run id), so the cell's own config decides.
        self.configs = configs or {}
        self._logits: dict[str, tuple] = {}
        self._stale: StaleRuns | None = None

    def is_stale(self, rid: str) -> bool:
        """Whether a finished run is stale (benchmark/runs/stale.py); BadInput for a garbage record."""
        if self._stale is None:
            self._stale = StaleRuns(self.store)
        return self._stale.is_stale(rid)

    def config(self, rid: str) -> dict:
        return self.configs.get(rid) or self.store.config(rid) or {}

    def state(self, rid: str) -> str:
        res = self.store.result(rid)
        if res is None:
            return "pending"
        return "done" if res.get("status") == "done" else "failed"

    def logits(self, rid: str):
        if rid not in self._logits:
            path = self.store.run_file(rid, TEST_LOGITS)
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                self._logits[rid] = (saved["logits"].float(), saved["labels"])
            except Exception as err:  # deleted, garbage, truncated: the store check re-derives them
                from ..errors import Failed

                raise Failed(f"{path}: unreadable test logits of a finished run ({type(err).__name__}); "
                             f"`runner.py store check --store {self.store.root} --repair` re-evaluates them") from None
        return self._logits[rid]

    def teacher_of(self, rid: str) -> str | None:
        cfg = self.store.config(rid) or {}
        return (cfg.get("teacher") or {}).get("run")

    def measure(self, rid: str, value) -> tuple[float | None, float | None]:
        """(main number, top-5 or None) of one finished run."""
        result = self.store.result(rid)
        m, epoch = result["metrics"], reported_metrics(result, self.config(rid))
        if value in ("top1", None):
            return epoch["top1"], None
        if value == "top5":
            return epoch["top5"], None
        if value == "top1/top5":
            return epoch["top1"], epoch["top5"]
        if value == "train_loss":
            return m["train_loss"], None
        if value == "train_top1":
            return m["train_top1"], None
        return self.analyse(rid, value), None

    def analyse(self, rid: str, spec: dict) -> float:
        opts = {k: v for k, v in spec.items() if k != "analysis"}
        name = spec["analysis"]
        z, y = self.logits(rid)
        if name == "sharpness_gap":
            teacher_id = self.teacher_of(rid)
            if teacher_id is None:
                raise ValueError("sharpness_gap needs a run with a teacher")
            v, _ = self.logits(teacher_id)
            # "loss": the temperatures this run was distilled with (ATKD Table 8's fixed pairs);
            # a loss without a fixed temperature (atkd) means its adaptive ones
            teacher_tau, student_tau = analysis.loss_temperatures(self.config(rid).get("loss", {}))
            if opts.get("teacher_tau") == "loss":
                opts["teacher_tau"] = teacher_tau
            if opts.get("student_tau") == "loss":
                opts["student_tau"] = student_tau
            return float(analysis.sharpness_gap(z, v, **opts).mean())
        if name in ("derived_average", "derived_variance", "inherent_variance", "target_probability"):
            return float(getattr(analysis, name)(z, y, **opts).mean())
        return float(getattr(analysis, name)(z, **opts).mean())


def _params_in_millions(model: str, dataset: str) -> float:
    from ..engine.data import get_spec
    from ..engine.models import build_model, count_params

    with torch.device("meta"):
        return count_params(build_model(model, get_spec(dataset).num_classes)) / 1e6


def ensemble_top1(measurer: Measurer, members: list[str]) -> float:
    probs, labels = None, None
    for rid in members:
        z, y = measurer.logits(rid)
        p = z.softmax(dim=1)
        probs = p if probs is None else probs + p
        labels = y
    return (probs.argmax(dim=1) == labels).float().mean().item() * 100


def aggregate_cell(cell: CellPlan, measurer: Measurer) -> CellResult:
    out = CellResult(cell.row, cell.col, cell.rule, None, None, "")
    if cell.rule == "cited":
        out.status, out.note = "cited", cell.cited
        return out
    if cell.rule == "setting":
        out.status = "setting"
        return out
    if cell.rule == "params":
        out.reproduced, out.status = _params_in_millions(cell.model, cell.dataset), "measured"
        return out
    if cell.rule == "aggregate":
        return out  # filled from the row's cells by aggregate_table
    if cell.waiting_on:  # a `from:` row: its runs are planned once the referenced cell has finished
        ref = cell.waiting_on
        failed = any(measurer.state(r) == "failed" for r in ref["runs"])
        out.status = "failed" if failed else "pending"
        out.note = f"takes the {ref['select']} point of {ref['row']} / {ref['col']}, " + \
            ("which failed" if failed else "which has not finished")
        return out
    out.runs = cell.job_ids()
    states = [measurer.state(r) if not r.startswith("checkpoint:") else "checkpoint" for r in out.runs]
    if "checkpoint" in states:
        out.status, out.note = "pending", "teacher from a checkpoint file: not evaluated by the suite yet"
        return out
    if "failed" in states:
        out.status = "failed"
        return out
    if "pending" in states:
        out.status = "pending"
        return out
    points = []
    for p in cell.points:
        if cell.rule == "ensemble":
            val, top5, sd = ensemble_top1(measurer, p["runs"]), None, None
            key = val
        else:
            vals = [measurer.measure(r, cell.value) for r in p["runs"]]
            mains = [v[0] for v in vals]
            val = mean(mains)
            top5s = [v[1] for v in vals if v[1] is not None]
            top5 = mean(top5s) if top5s else None
            sd = stdev(mains) if len(mains) > 1 else None
            # best-of-grid picks by accuracy even when the cell shows another quantity
            key = mean(measurer.measure(r, "top1")[0] for r in p["runs"])
        points.append({"params": p["params"], "value": val, "top5": top5, "std": sd, "top1": key,
                       "n": 1 if cell.rule == "ensemble" else len(p["runs"])})
    # the planner's best_point picks a `from:` row's point by the same rule (catalog/plan.py)
    best = max(points, key=lambda q: q["top1"]) if cell.rule == "best" else points[0]
    out.reproduced, out.reproduced_top5, out.std, out.n = best["value"], best["top5"], best["std"], best["n"]
    if cell.rule == "best":
        out.winner, out.grid = best["params"], points
    out.status = "measured"
    if cell.taken_from:  # which point of which cell this cell ran at, for the report
        src = cell.taken_from
        out.note = f"at the best point of {src['row']} / {src['col']}: " + \
            ", ".join(f"{k}={v}" for k, v in src["point"].items())
    return out


def aggregate_table(plan: TablePlan, planner: Planner, store: Store,
                    measurer: Measurer | None = None) -> list[CellResult]:
    # a figure id carries its published numbers (its table's cells it reads); a table reads tables/<id>.csv
    published = plan.manifest.published if plan.manifest.published is not None else load_published(plan.manifest.id)
    measurer = measurer or Measurer(store, {rid: planner.jobs[rid].config for rid in plan.job_ids})
    cells = [aggregate_cell(c, measurer) for c in plan.cells]
    for c in cells:
        if c.status == "measured":
            c.stale_runs = [r for r in c.runs if measurer.is_stale(r)]
    cells_plan = {(c.row, c.col): c for c in plan.cells}
    by_row: dict[str, list[CellResult]] = {}
    for c in cells:
        by_row.setdefault(c.row, []).append(c)
    for c in cells:
        pub = published.cells.get((c.row, c.col))
        if pub is not None:
            c.published, c.published_top5, c.published_raw = pub.value, pub.top5, pub.raw
        if c.rule == "aggregate":
            others = [o for o in by_row[c.row] if o.rule not in ("aggregate",)]
            vals = [o.reproduced for o in others if o.reproduced is not None and o.status == "measured"]
            if others and len(vals) == len(others):
                c.reproduced, c.status = mean(vals), "measured"
                c.stale_runs = sorted({r for o in others for r in o.stale_runs})
            elif any(o.status == "failed" for o in others):
                c.status = "failed"
            elif all(o.status in ("cited", "setting") for o in others):
                c.status = "cited" if any(o.status == "cited" for o in others) else "setting"
    m = plan.manifest
    tolerances = m.tolerances or resolve_tolerances(m.tolerance, m.path)
    # in the cells, or apart (LS-KD's App. D: Tables 2 A, 2 B and 4); a figure id has no tables/<id>.csv
    stds = published_stds(m.id) if m.published is None else {}
    for c in cells:
        c.kind = "params" if c.rule == "params" else kind_of(cells_plan[(c.row, c.col)].value)
        c.published_std = stds.get((c.row, c.col))
        if c.status != "measured" or c.published is None or c.reproduced is None:
            continue
        c.delta = c.reproduced - c.published
        if c.rule == "params":
            c.tolerance = max(0.05 * abs(c.published), 0.005)
            c.status = "within" if abs(c.delta) <= c.tolerance + 1e-9 else "outside"
            c.basis = "tolerance"
            continue
        c.tolerance = tolerances[c.kind]
        if not profiles.judged(plan.profile):
            c.status = NOT_COMPARABLE
            continue
        c.status, interval, c.basis = judge(c.reproduced, c.published, c.tolerance, c.std, c.n, c.published_std,
                                            len(m.seeds))
        c.interval = list(interval) if interval else None
    for c in cells:  # the number stays; the verdict waits for the runs to be trained again
        if c.stale_runs and c.status in WITH_NUMBER:
            c.status = STALE
    return cells


def coverage(cells: list[CellResult]) -> dict:
    with_pub = [c for c in cells if c.published is not None and c.status not in ("cited", "setting")]
    compared = [c for c in with_pub if c.delta is not None and c.status != STALE]
    return {
        "cells": len(cells),
        "published_cells": sum(c.published is not None for c in cells),
        "reproducible_cells": len(with_pub),
        "reproduced_cells": len(compared),
        "within_tolerance": sum(c.status == "within" for c in compared),
        "not_comparable": sum(c.status == NOT_COMPARABLE for c in compared),
        "mean_abs_delta": (sum(abs(c.delta) for c in compared) / len(compared)) if compared else None,
        "pending": sum(c.status == "pending" for c in cells),
        "failed": sum(c.status == "failed" for c in cells),
        "cited": sum(c.status == "cited" for c in cells),
        "stale": sum(c.status == STALE for c in cells),
    }

