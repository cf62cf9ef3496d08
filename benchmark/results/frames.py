"""A store's results as pandas DataFrames, for notebooks and for the site and CSV reports.

    from benchmark import results as R
    R.runs("runs")                  # one row per run: config, status, accuracies, provenance
    R.epochs("runs")                # one row per run and logged epoch (stage epochs included)
    R.cells("runs", "klmse-table1") # the report's cells: published, reproduced mean/std/n, delta, status

``cells`` is the aggregator's output (benchmark.results.aggregate) turned into a frame, not a second
computation: the report, ``report --format csv`` and the site read the same numbers.
Nested config fields become dotted columns (``loss.tau``, ``recipe.optimizer.lr``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..runs.sessions import last_profile, last_profiles, read_sessions
from ..store.layout import Store
from ..store.stored_plan import read_plan, run_tables

RUN_COLUMNS = ["id", "tables", "profile", "role", "status", "dataset", "model", "teacher", "loss", "tau", "seed",
               "epochs", "top1", "top5", "last_top1", "best_top1", "best_epoch", "reported_epoch", "epochs_done",
               "device", "device_name", "wall_time_s", "code_revision", "fused_with", "reason"]
CELL_COLUMNS = ["table", "profile", "row", "col", "rule", "published", "reproduced", "std", "n", "delta", "status",
                "published_top5", "reproduced_top5", "winner", "note", "runs"]


def _store(store: Store | str | os.PathLike) -> Store:
    return store if isinstance(store, Store) else Store(store)


def sessions(store: Store | str | os.PathLike) -> list[dict]:
    """The reproduce sessions recorded in the store (profile, tables), oldest first."""
    return read_sessions(_store(store))


def table_index(store: Store | str | os.PathLike) -> dict[str, dict]:
    """run id -> {"tables": [...], "profile": p, "role": r} for the tables reproduced in the store,
    each under the profile it was last run with (a run asked for by two tables lists both), from
    the plans ``reproduce`` stored (benchmark/store/stored_plan.py); a damaged or lost one is bad input
    (benchmark/results/reported_plan.py). A table of a store made before plans were stored is planned from
    today's manifest, and left out when its manifest is gone (no labels, no crash)."""
    from ..catalog.plan import Planner
    from ..errors import BadInput
    from .reported_plan import check_not_recorded

    store = _store(store)
    last = last_profiles(store)
    index = run_tables(store, list(last.items()))
    for table, profile in last.items():
        if read_plan(store, table, profile) is not None:
            continue
        check_not_recorded(store, table, profile)  # a stored plan lost is bad input, as for report
        planner = Planner(profile, cost=False)
        try:
            plan = planner.plan(table)
        except BadInput:  # a table whose manifest was removed or renamed since
            continue
        for rid in plan.job_ids:
            entry = index.setdefault(rid, {"tables": [], "profile": profile, "role": planner.jobs[rid].role})
            entry["tables"].append(plan.manifest.id)
    return index


def _flat(prefix: str, d: dict | None) -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(f"{prefix}{k}.", v))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _teacher(cfg: dict) -> str | None:
    t = cfg.get("teacher")
    if not t:
        return None
    return t.get("run") or f"checkpoint:{t.get('model')}"


def run_row(store: Store, rid: str, where: dict | None = None, status: str | None = None) -> dict:
    cfg = store.config(rid) or {}
    res = store.result(rid) or {}
    metrics, prov = res.get("metrics") or {}, res.get("provenance") or {}
    status = status or res.get("status") or "pending"
    loss = cfg.get("loss") or {}
    where = where or {}
    row = {
        "id": rid, "tables": ",".join(where.get("tables", [])), "profile": where.get("profile"),
        "role": where.get("role"), "status": status, "dataset": cfg.get("dataset"), "model": cfg.get("model"),
        "teacher": _teacher(cfg), "loss": loss.get("name"), "tau": loss.get("tau"), "seed": cfg.get("seed"),
        "epochs": (cfg.get("recipe") or {}).get("epochs"),
        "top1": metrics.get("top1"), "top5": metrics.get("top5"),
        "last_top1": (metrics.get("last") or {}).get("top1"), "best_top1": (metrics.get("best") or {}).get("top1"),
        "best_epoch": (metrics.get("best") or {}).get("epoch"), "reported_epoch": metrics.get("reported_epoch"),
        "epochs_done": (metrics.get("last") or {}).get("epoch"),
        "device": prov.get("device"), "device_name": prov.get("device_name"), "wall_time_s": res.get("wall_time_s"),
        "code_revision": prov.get("code_revision"), "fused_with": (res.get("execution") or {}).get("fused_with"),
        "reason": res.get("reason"),
    }
    # every option of the loss (the named readings it ran with) and of the recipe
    row.update(_flat("loss.", {k: v for k, v in loss.items() if k != "name"}))
    row.update(_flat("recipe.", cfg.get("recipe")))
    return row


def runs(store: Store | str | os.PathLike) -> pd.DataFrame:
    """One row per run of the store: RUN_COLUMNS, then ``loss.*`` and ``recipe.*`` (the resolved
    config). ``tables``/``profile``/``role`` come from the tables reproduced in the store."""
    from ..runs.queue import scan

    store = _store(store)
    where, states = table_index(store), scan(store)  # done | failed | running | pending | blocked
    rows = [run_row(store, rid, where.get(rid), states[rid].state if rid in states else None)
            for rid in store.run_ids()]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    return frame[RUN_COLUMNS + [c for c in frame.columns if c not in RUN_COLUMNS]]


def epochs(store: Store | str | os.PathLike, run_ids=None) -> pd.DataFrame:
    """One row per run and logged epoch (metrics.jsonl): ``run``, ``stage`` (None for the main
    training, the stage's name for a pre-training epoch), ``epoch``, then every logged quantity:
    ``lr``, ``train_loss``, ``loss_<term>`` (each term's epoch mean), ``grad_norm``,
    ``nonfinite_frac``, ``test_top1``, ... (a quantity a run did not log is NaN)."""
    store = _store(store)
    ids = list(store.run_ids()) if run_ids is None else list(run_ids)
    rows = []
    for rid in ids:
        for m in store.metrics(rid):
            rows.append({"run": rid, "stage": m.get("stage"), **{k: v for k, v in m.items() if k != "stage"}})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["run", "stage", "epoch"])
    first = ["run", "stage", "epoch"]
    return frame[first + sorted(c for c in frame.columns if c not in first)]


def _n(c) -> int | None:
    """How many runs the reproduced number is the mean of (seeds of the reported point)."""
    if getattr(c, "n", None) is not None:
        return c.n
    if c.reproduced is None or not c.runs:
        return None
    if c.rule == "best" and c.grid:
        return len(c.runs) // len(c.grid)
    return 1 if c.rule == "ensemble" else len(c.runs)


def cells_frame(plan, cells) -> pd.DataFrame:
    """The aggregator's CellResults of one table as a frame (CELL_COLUMNS), in table order."""
    rows = []
    for c in cells:
        d = c.to_json()
        rows.append({"table": plan.manifest.id, "profile": plan.profile, **{k: d.get(k) for k in
                     ("row", "col", "rule", "published", "reproduced", "std", "delta", "status",
                      "published_top5", "reproduced_top5", "winner", "note")},
                     "n": _n(c), "runs": ",".join(c.runs)})
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


def cells(store: Store | str | os.PathLike, table: str, profile: str | None = None) -> pd.DataFrame:
    """The report's cells of ``table`` (published, reproduced mean/std/n, delta, status), from the
    aggregator over the runs of the table's stored plan (benchmark/results/reported_plan.py);
    ``profile`` defaults to the one the table was last reproduced with in the store.
    ``frame.attrs["plan"]``: where the plan came from and its ``note`` (today's manifest plans
    differently, or no plan was stored)."""
    from .aggregate import aggregate_table
    from .reported_plan import table_plans

    store = _store(store)
    plans, jobs = table_plans(store, [table], [profile or last_profile(store, Path(table).stem)])
    frame = cells_frame(plans[0], aggregate_table(plans[0], jobs, store))
    frame.attrs["plan"] = plans[0].info()  # stored or planned today, and the one line a reader shows
    return frame
