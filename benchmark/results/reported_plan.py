"""Which plan a reader reports: the one ``reproduce`` stored, else today's manifest planned.

``report``, ``status TABLE``, the results frames and the site ask ``table_plan`` for a table at a
profile and aggregate the runs the answer names:

- **A stored plan** (stored_plan.py): its cells and runs are what is aggregated, each run's
  config is its ``config.json`` in the store. Today's manifest still gives the table's layout,
  published numbers, tolerances, claims, figures and notes, so a corrected transcription shows.
  When today's manifest would plan differently (cells compared by rule, cited reason, value,
  target and run ids, not by text), the plan carries one line saying so (``ReportedPlan.note``).
  A cell today's manifest has and the stored plan lacks is shown as not planned (status cited,
  with that reason); a stored cell today's layout lacks is counted in that line.
- **No stored plan, and no session of the store recorded one** for this table and profile (a
  store made before plans were stored, or a table never reproduced there): today's manifest is
  planned, and the note says so in one line.
- **No stored plan, but a session recorded one** (``reproduce`` after this change wrote it):
  bad input naming the missing file. The file was deleted or lost; falling back would report
  today's manifest as if it were what ran, silently, which is what stored plans prevent.
  ``reproduce`` writes it again (finished runs are kept, so that costs no training).
- **A stored plan whose table has no manifest any more**: bad input naming the plan file.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from ..catalog import items
from ..catalog.manifest import Manifest, cached_catalog, table_id
from ..catalog.plan import CellPlan, Job, Planner, TablePlan
from ..errors import BadInput
from ..runs.sessions import read_sessions
from ..spec import canonical_json
from ..store.layout import Store
from ..store.stored_plan import cell_doc, manifest_record, plan_path, read_plan


@dataclass
class ReportedPlan(TablePlan):
    """A table's plan as a reader reports it, with where it came from."""

    source: str = "manifest"        # stored | manifest (planned today: no stored plan)
    note: str | None = None         # one line: today's manifest plans differently, or no stored plan
    stored: dict | None = None      # the stored plan's file, time, manifest digests, suite, differing cells

    def info(self) -> dict:
        """The report JSON's ``plan`` field."""
        return {"source": self.source, "note": self.note, **(self.stored or {})}


class PlannedJobs:
    """What aggregation asks of a Planner (``jobs[rid].config``), for stored plans: each run's
    config from the store, at the epoch its table reports."""

    def __init__(self):
        self.jobs: dict[str, Job] = {}

    def add_stored(self, store: Store, jobs: list[dict]) -> None:
        for job in jobs:
            if job["id"] in self.jobs:
                continue
            cfg = store.config(job["id"])
            if isinstance(cfg, dict) and isinstance(cfg.get("recipe"), dict) and job.get("report_epoch"):
                cfg = {**cfg, "recipe": {**cfg["recipe"], "report_epoch": job["report_epoch"]}}
            self.jobs[job["id"]] = Job(job["id"], cfg if isinstance(cfg, dict) else None, job["deps"], job["role"])


def recorded_plan(store: Store, table: str, profile: str) -> bool:
    """Whether a session of the store says it stored a plan of ``table`` at ``profile``."""
    return any(s.get("plans") and s.get("profile") == profile and table in (s.get("tables") or [])
               for s in read_sessions(store))


def check_not_recorded(store: Store, table: str, profile: str) -> None:
    """BadInput when a session says the missing plan of ``table`` at ``profile`` was stored."""
    if recorded_plan(store, table, profile):
        raise BadInput(plan_path(store, table, profile), None,
                       f"missing, but the store's sessions say {table} was reproduced at the {profile} profile "
                       f"with its plan stored; run `reproduce {table} --profile {profile}` to write it again "
                       "(finished runs are kept)")


def _signature(cell: dict) -> str:
    """What makes two plans of a cell report the same thing: how it combines which runs."""
    return canonical_json([cell["rule"], cell["cited"], cell["value"], cell["target"], cell["model"],
                           cell["dataset"], cell["waiting_on"] is not None, [p["runs"] for p in cell["points"]]])


def differing_cells(stored: dict, today: TablePlan) -> int:
    """Cells (figure cells included) that today's plan makes differently from the stored one."""
    old = {(c["row"], c["col"]): _signature(c) for c in stored["cells"]}
    new = {(c.row, c.col): _signature(cell_doc(c)) for c in today.cells}
    old.update({("figure", name): _signature(c) for name, c in stored["figure_cells"].items()})
    new.update({("figure", name): _signature(cell_doc(c)) for name, c in today.figure_cells.items()})
    return sum(old.get(key) != new.get(key) for key in set(old) | set(new))


def changed_line(stored: dict, now: dict, n: int) -> str:
    """One line: what changed since the runs were planned, how many cells differ, what to do."""
    if stored["manifest"]["sha256"] != now["sha256"]:
        what = f"{now['path']} changed"
    elif stored["manifest"]["catalog_sha256"] != now["catalog_sha256"]:
        what = f"the recipes or teachers that {now['path']} names changed"
    else:
        what = f"the suite's planning of {now['path']} changed (same manifest, recipes and teachers)"
    return (f"{what} since these runs were planned: {n} cell{'s' if n != 1 else ''} "
            f"differ{'' if n != 1 else 's'}; run reproduce to update")


def table_plan(store: Store, name: str, profile: str, figures: list[str], jobs: PlannedJobs) -> ReportedPlan:
    """The plan to report ``name`` (a table id or manifest file) at ``profile`` from (module
    docstring); its jobs are added to ``jobs``. ``figures``: the figures asked for, used only
    when no plan was stored (a stored plan has the figure runs that ran)."""
    tid = table_id(name)
    stored = read_plan(store, tid, profile)
    if stored is None:
        check_not_recorded(store, tid, profile)
        planner = Planner(profile, store=store, figures=figures, cost=False)
        plan = planner.plan(name)
        _check_item_sources(store, tid, profile, plan)
        for rid in plan.job_ids:
            jobs.jobs.setdefault(rid, planner.jobs[rid])
        now = manifest_record(plan.manifest, planner.catalog)
        return ReportedPlan(plan.manifest, profile, plan.cells, plan.job_ids, plan.figure_cells, source="manifest",
                            note=f"no stored plan of {tid} at the {profile} profile in this store (reproduced before "
                                 f"plans were stored, or never): planned from today's {now['path']}")
    try:
        manifest = items.load(items.find(name))
    except BadInput as err:
        if not err.problem.startswith("unknown ") and "no such file" not in err.problem:
            raise
        raise BadInput(plan_path(store, tid, profile), "table",
                       f"{tid} has no manifest any more ({err.problem}); restore it, or set KD_REPRO_CATALOG to "
                       "the catalogue it was planned from") from None
    return _from_stored(store, stored, manifest, jobs)


def _check_item_sources(store: Store, tid: str, profile: str, plan) -> None:
    """A figure id without a stored plan of its own reads its table's (benchmark/catalog/items.py)."""
    item = items.item_for(tid)
    if item is not None:
        items.check_sources(store, item, profile, plan)


def _from_stored(store: Store, stored: dict, manifest: Manifest, jobs: PlannedJobs) -> ReportedPlan:
    profile = stored["profile"]
    known = {f["name"] for f in manifest.figures}
    planner = Planner(profile, store=store, figures=[f for f in stored["figures"] if f in known], cost=False)
    today = planner.plan_manifest(manifest)
    n = differing_cells(stored, today)
    now = manifest_record(manifest, cached_catalog())
    cells = {(c["row"], c["col"]): CellPlan(**c) for c in stored["cells"]}
    layout = []
    for row in manifest.rows:  # today's layout; a cell the runs were not planned for says so
        for col in manifest.columns:
            key = (row["id"], col["id"])
            layout.append(cells.get(key) or CellPlan(
                *key, "cited", "top1", cited="not in the stored plan (the manifest gained this cell since these "
                                             "runs were planned); run reproduce to plan it"))
    jobs.add_stored(store, stored["jobs"])
    return ReportedPlan(manifest, profile, layout, [j["id"] for j in stored["jobs"]],
                        {name: CellPlan(**c) for name, c in stored["figure_cells"].items()}, source="stored",
                        note=changed_line(stored, now, n) if n else None,
                        stored={"file": str(plan_path(store, stored["table"], profile)),
                                "planned_at": datetime.datetime.fromtimestamp(stored["time"]).isoformat(
                                    timespec="seconds"),
                                "manifest": stored["manifest"], "suite": stored["suite"], "differing_cells": n})


def table_plans(store: Store, names: list[str], profiles: list[str], figures: list[str] | None = None
                ) -> tuple[list[ReportedPlan], PlannedJobs]:
    """``table_plan`` of each table at its profile, all read (and checked) before any is used."""
    jobs = PlannedJobs()
    return [table_plan(store, n, p, list(figures or []), jobs) for n, p in zip(names, profiles)], jobs
