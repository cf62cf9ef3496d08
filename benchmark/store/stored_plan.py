"""The plan a ``reproduce`` ran, kept in the store (``Store.plan_file(table, profile)``), so that
the readers report what ran, not what today's manifests would plan.

``reproduce`` (and so ``nightly``) writes one file per table and profile at the start of every
phase, and again when a later phase resolves a `from:` cell; each write replaces the last,
atomically. The file holds:

- ``table``, ``profile``, ``time`` (seconds since the epoch) and ``figures``: the figure sets
  asked for;
- ``cells``: every cell as planned (``plan.CellPlan``'s fields: row, col, rule, value, target,
  points with their params and run ids, cited, waiting_on, taken_from, model, dataset) and
  ``figure_cells`` the same per figure. A figure's cells planned by an earlier session of the
  same table and profile are kept when this one did not ask for that figure: its runs ran;
- ``jobs``: every run the table needs, ``{"id", "role", "deps", "report_epoch"}``; the run's
  config is its ``config.json`` in the store (``report_epoch`` is not part of a run id, so two
  tables sharing a run may report different epochs of it: the table's own is kept here);
- ``manifest``: where it was read from and ``sha256``, the digest of the manifest file's bytes;
  ``catalog_sha256`` covers the catalogue entries the manifest names by name (its recipes and
  teacher-zoo keys, with the recipes and ``like`` keys those teachers name), as parsed;
- ``suite``: the package's version and the git code revision (``unknown`` outside a checkout).

Reading checks every field (``read_plan``): a damaged file is bad input naming the file and the
field, never a crash; a run id is checked (``spec.is_run_id``) before anything can use it.
Imports nothing heavy: the TensorBoard export asks it which tables a run belongs to.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from ..errors import BadInput
from ..spec import canonical_json, is_run_id
from .layout import Store, atomic_write_json, read_json

FORMAT = 1
RULES = ("value", "best", "ensemble", "aggregate", "cited", "setting", "params")
CELL_FIELDS = ("row", "col", "rule", "value", "target", "points", "cited", "model", "dataset", "waiting_on",
               "taken_from")
ROLES = ("teacher", "student")


# ---------------------------------------------------------------- writing


def cell_doc(cell) -> dict:
    """A planned cell (plan.CellPlan) as the stored plan keeps it."""
    return {k: getattr(cell, k) for k in CELL_FIELDS}


def _named(node, key: str) -> set[str]:
    """Every string value of ``key`` anywhere in a manifest's parsed defaults, columns and rows."""
    found = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                found.add(v)
            found |= _named(v, key)
    elif isinstance(node, list):
        for v in node:
            found |= _named(v, key)
    return found


def catalog_entries(manifest, catalog) -> dict:
    """The recipes and teacher-zoo entries ``manifest`` names (teachers' ``like`` chains and
    recipes included), as parsed: what ``catalog_sha256`` covers."""
    parts = [manifest.defaults, manifest.columns, manifest.rows]
    recipes, keys = {manifest.recipe} | _named(parts, "recipe"), _named(parts, "teacher")
    teachers: dict[str, dict] = {}
    while keys:
        key = keys.pop()
        for dataset, entries in sorted(catalog.zoo.items()):
            entry = entries.get(key)
            if entry is not None and f"{dataset}/{key}" not in teachers:
                teachers[f"{dataset}/{key}"] = entry
                recipes |= _named(entry, "recipe")
                keys |= {entry["like"]} if isinstance(entry.get("like"), str) else set()
    return {"recipes": {name: catalog.recipes.get(name) for name in sorted(recipes)}, "teachers": teachers}


def manifest_record(manifest, catalog) -> dict:
    """Where the manifest was read (``manifests/<paper>/<table>.yaml`` in a catalogue, else the
    file's path), the sha256 of its bytes and of the catalogue entries it names."""
    path = Path(manifest.path)
    shown = "/".join(path.parts[-3:]) if path.parent.parent.name == "manifests" else str(path)
    return {"path": shown, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "catalog_sha256": hashlib.sha256(canonical_json(catalog_entries(manifest, catalog)).encode()).hexdigest()}


def plan_doc(plan, planner, figures, suite: dict, earlier: dict | None = None) -> dict:
    """The stored form of a planned table (plan.TablePlan, its plan.Planner); ``earlier``: the
    stored plan it replaces, whose figure cells this plan did not re-plan are kept."""
    jobs = {rid: {"id": rid, "role": planner.jobs[rid].role, "deps": list(planner.jobs[rid].deps),
                  "report_epoch": planner.jobs[rid].config["recipe"].get("report_epoch")} for rid in plan.job_ids}
    figure_cells = {name: cell_doc(c) for name, c in plan.figure_cells.items()}
    asked = set(figures or ())
    if earlier:
        kept = {name: c for name, c in earlier["figure_cells"].items() if name not in figure_cells}
        old_jobs = {j["id"]: j for j in earlier["jobs"]}
        todo = [r for c in kept.values() for p in c["points"] for r in p["runs"] if r in old_jobs]
        while todo:  # the kept cells' runs and their dependencies
            rid = todo.pop()
            if rid not in jobs:
                jobs[rid] = old_jobs[rid]
                todo += [d for d in old_jobs[rid]["deps"] if d in old_jobs]
        figure_cells.update(kept)
        asked |= set(earlier["figures"])
    return {"format": FORMAT, "table": plan.manifest.id, "profile": plan.profile, "time": time.time(),
            "figures": sorted(asked), "manifest": manifest_record(plan.manifest, planner.catalog), "suite": suite,
            "cells": [cell_doc(c) for c in plan.cells], "figure_cells": figure_cells, "jobs": list(jobs.values())}


def write_plans(store: Store, plans: list, planner, figures, suite: dict) -> list[Path]:
    """Store each planned table (replacing its earlier plan at the same profile); all are checked
    before any is written. ``suite``: {"version", "code_revision"} of the code that planned them.
    Returns the files."""
    docs = []
    for plan in plans:
        path = plan_path(store, plan.manifest.id, plan.profile, where=plan.manifest.path)
        try:
            earlier = read_plan(store, plan.manifest.id, plan.profile)
        except BadInput:  # a damaged earlier plan is replaced, as a new session replaces any
            earlier = None
        docs.append((path, plan_doc(plan, planner, figures, suite, earlier)))
    for path, doc in docs:
        atomic_write_json(path, doc)
    return [path for path, _ in docs]


def plan_path(store: Store, table: str, profile: str, where="table id") -> Path:
    """``Store.plan_file``; a table id that cannot name a file is bad input."""
    try:
        return store.plan_file(table, profile)
    except ValueError as err:
        raise BadInput(where, "id", f"{err}: a stored plan is named by the table id") from None


# ---------------------------------------------------------------- reading


def _fail(path, field: str, problem: str) -> BadInput:
    return BadInput(path, field, f"{problem} (a damaged stored plan: run reproduce again to rewrite it)")


def _check_ids(path, field: str, ids, checkpoints: bool = False) -> None:
    if not isinstance(ids, list):
        raise _fail(path, field, "must be a list of run ids")
    for i, rid in enumerate(ids):
        if not is_run_id(rid) and not (checkpoints and isinstance(rid, str) and rid.startswith("checkpoint:")):
            raise _fail(path, f"{field}[{i}]", f"not a run id: {rid!r}")


def _check_cell(path, field: str, cell) -> None:
    if not isinstance(cell, dict) or set(cell) != set(CELL_FIELDS):
        raise _fail(path, field, f"must be a mapping of {', '.join(CELL_FIELDS)}")
    for key in ("row", "col", "target"):
        if not isinstance(cell[key], str):
            raise _fail(path, f"{field}.{key}", "must be a string")
    if cell["rule"] not in RULES:
        raise _fail(path, f"{field}.rule", f"must be one of {', '.join(RULES)}, got {cell['rule']!r}")
    if not isinstance(cell["points"], list):
        raise _fail(path, f"{field}.points", "must be a list")
    for i, point in enumerate(cell["points"]):
        if not isinstance(point, dict) or not isinstance(point.get("params"), dict):
            raise _fail(path, f"{field}.points[{i}]", "must be {params: {...}, runs: [...]}")
        _check_ids(path, f"{field}.points[{i}].runs", point.get("runs"), checkpoints=True)
    for key in ("cited", "model", "dataset"):
        if cell[key] is not None and not isinstance(cell[key], str):
            raise _fail(path, f"{field}.{key}", "must be a string or null")
    for key in ("waiting_on", "taken_from"):
        if cell[key] is not None and not (isinstance(cell[key], dict) and isinstance(cell[key].get("row"), str)
                                          and isinstance(cell[key].get("col"), str)):
            raise _fail(path, f"{field}.{key}", "must be null or a mapping naming a row and a col")
    if cell["waiting_on"] is not None:
        _check_ids(path, f"{field}.waiting_on.runs", cell["waiting_on"].get("runs"))
    if cell["taken_from"] is not None and not isinstance(cell["taken_from"].get("point"), dict):
        raise _fail(path, f"{field}.taken_from.point", "must be a mapping")


def check_plan(path, doc, table: str, profile: str) -> dict:
    """``doc`` if it is a whole stored plan of ``table`` at ``profile``, else BadInput naming the field."""
    if not isinstance(doc, dict):
        raise _fail(path, "", "not a JSON object")
    if doc.get("format") != FORMAT:
        raise _fail(path, "format", f"must be {FORMAT}, got {doc.get('format')!r}")
    if doc.get("table") != table or doc.get("profile") != profile:
        raise _fail(path, "table", f"names {doc.get('table')!r} at {doc.get('profile')!r}, but it is the file "
                                   f"of {table!r} at {profile!r}")
    if not isinstance(doc.get("time"), (int, float)):
        raise _fail(path, "time", "must be a number")
    if not isinstance(doc.get("figures"), list) or not all(isinstance(f, str) for f in doc["figures"]):
        raise _fail(path, "figures", "must be a list of figure names")
    manifest = doc.get("manifest")
    if not isinstance(manifest, dict) or not all(isinstance(manifest.get(k), str)
                                                 for k in ("path", "sha256", "catalog_sha256")):
        raise _fail(path, "manifest", "must hold path, sha256 and catalog_sha256")
    if not isinstance(doc.get("suite"), dict):
        raise _fail(path, "suite", "must be a mapping")
    if not isinstance(doc.get("cells"), list):
        raise _fail(path, "cells", "must be a list")
    for i, cell in enumerate(doc["cells"]):
        _check_cell(path, f"cells[{i}]", cell)
    if not isinstance(doc.get("figure_cells"), dict):
        raise _fail(path, "figure_cells", "must be a mapping")
    for name, cell in doc["figure_cells"].items():
        _check_cell(path, f"figure_cells.{name}", cell)
    if not isinstance(doc.get("jobs"), list):
        raise _fail(path, "jobs", "must be a list")
    ids = set()
    for i, job in enumerate(doc["jobs"]):
        if not isinstance(job, dict) or job.get("role") not in ROLES:
            raise _fail(path, f"jobs[{i}]", "must be {id, role (teacher or student), deps, report_epoch}")
        _check_ids(path, f"jobs[{i}].id", [job.get("id")])
        _check_ids(path, f"jobs[{i}].deps", job.get("deps"))
        ids.add(job["id"])
    for cell in doc["cells"] + list(doc["figure_cells"].values()):
        missing = [r for p in cell["points"] for r in p["runs"] if is_run_id(r) and r not in ids]
        if missing:
            raise _fail(path, "jobs", f"lacks run {missing[0]} of the cell {cell['row']} / {cell['col']}")
    return doc


def read_plan(store: Store, table: str, profile: str) -> dict | None:
    """The stored plan of ``table`` at ``profile``, checked; None when there is none."""
    path = plan_path(store, table, profile)
    if not path.exists():
        return None
    doc = read_json(path)
    if doc is None:
        raise _fail(path, "", "not readable JSON")
    return check_plan(path, doc, table, profile)


def stored_tables(store: Store) -> list[tuple[str, str]]:
    """(table, profile) of every stored plan file."""
    found = []
    if store.plans_dir.is_dir():
        for path in sorted(store.plans_dir.glob("*/*.json")):
            try:
                if store.plan_file(path.parent.name, path.stem) == path:
                    found.append((path.parent.name, path.stem))
            except ValueError:  # not a name this module writes
                continue
    return found


def run_tables(store: Store, which: list[tuple[str, str]], strict: bool = True) -> dict[str, dict]:
    """run id -> {"tables": [...], "profile": p, "role": r} over the stored plans of ``which``
    ((table, profile) pairs; a pair without a stored plan adds nothing). ``strict=False`` skips a
    damaged plan instead of raising: the TensorBoard export during training must not fail a run."""
    index: dict[str, dict] = {}
    for table, profile in which:
        try:
            doc = read_plan(store, table, profile)
        except BadInput:
            if strict:
                raise
            continue
        for job in (doc or {}).get("jobs", []):
            entry = index.setdefault(job["id"], {"tables": [], "profile": profile, "role": job["role"]})
            if table not in entry["tables"]:
                entry["tables"].append(table)
    return index
