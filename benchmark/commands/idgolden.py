"""The goldens a user's store depends on: every run id of every table (and of every figure,
analysis and appendix table id, under ``items``), and the schema's defaults.

``goldens/run_ids.json`` holds, for every table that ``runner.py list`` lists, at every profile,
each cell's run ids (and the runs of every optional figure); a cell that takes another cell's
best point (``from:``) is listed as waiting on that cell. ``goldens/config_schema.json`` holds
every default and identity rule of benchmark/schema.py. A change that moves an id, or a default,
shows in CI (tests/test_idgolden.py) with the tables and cells that moved; ``runner.py goldens
--update`` rewrites both files, for a commit that says why.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import schema
from ..catalog import items as catalog_items
from ..catalog.manifest import manifest_paths
from ..catalog.plan import Planner
from ..catalog.profiles import PROFILES

GOLDENS = Path(__file__).resolve().parents[2] / "goldens"
RUN_IDS_FILE = GOLDENS / "run_ids.json"
SCHEMA_FILE = GOLDENS / "config_schema.json"
UPDATE_COMMAND = "python runner.py goldens --update"


def _cell_entry(cell) -> list[str] | str:
    if cell.waiting_on:
        return f"waiting on {cell.waiting_on['row']} / {cell.waiting_on['col']}"
    return [rid for rid in cell.job_ids()]


def cell_ids(plan) -> dict:
    """{"row / col": [run ids] | "waiting on ...": one table plan's cells that have runs."""
    return {f"{c.row} / {c.col}": _cell_entry(c) for c in plan.cells if c.waiting_on or c.job_ids()}


def run_ids() -> dict:
    """{"id_scheme", "tables": {table: {profile: {"cells": {"row / col": [ids] | "waiting on ..."},
    "figures": {name: {"grid point": [ids]}}}}}}: cited, aggregate and setting cells have no runs
    and are left out. Planned without a store (so every `from:` cell waits) and without FLOPs."""
    out: dict = {"id_scheme": schema.ID_SCHEME, "tables": {}, "items": {}}
    paths = manifest_paths()
    figure_ids = catalog_items.item_paths()
    for profile in PROFILES:
        planner = Planner(profile, cost=False, figures=["all"])
        for part, group in (("tables", paths), ("items", figure_ids)):
            for table, path in sorted(group.items()):
                out[part].setdefault(table, {})[profile] = _entry(planner.plan_manifest(catalog_items.load(path)))
    return out


def _entry(plan) -> dict:
    figures = {name: {json.dumps(p["params"], sort_keys=True): p["runs"] for p in cell.points}
               for name, cell in sorted(plan.figure_cells.items())}
    entry = {"cells": cell_ids(plan)}
    if figures:
        entry["figures"] = figures
    return entry


def dumps(doc: dict) -> str:
    """One line per cell, so a diff of the file names the cells that moved."""
    lines = ["{", f' "id_scheme": {doc["id_scheme"]},']
    parts = ["tables"] + (["items"] if doc.get("items") else [])
    for n, part in enumerate(parts):
        lines += _dump_part(doc[part], part)
        lines[-1] += "," if n < len(parts) - 1 else ""
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dump_part(group: dict, part: str) -> list[str]:
    lines = [f' "{part}": {{']
    tables = list(group.items())
    for t, (table, profiles) in enumerate(tables):
        lines.append(f"  {json.dumps(table)}: {{")
        for p, (profile, entry) in enumerate(profiles.items()):
            lines.append(f"   {json.dumps(profile)}: {{")
            parts = [("cells", entry["cells"])] + ([("figures", entry["figures"])] if "figures" in entry else [])
            for k, (key, cells) in enumerate(parts):
                lines.append(f"    {json.dumps(key)}: {{")
                items = list(cells.items())
                for i, (name, value) in enumerate(items):
                    lines.append(f"     {json.dumps(name)}: {json.dumps(value)}" + ("," if i < len(items) - 1 else ""))
                lines.append("    }" + ("," if k < len(parts) - 1 else ""))
            lines.append("   }" + ("," if p < len(profiles) - 1 else ""))
        lines.append("  }" + ("," if t < len(tables) - 1 else ""))
    return lines + [" }"]


def moved(golden: dict, now: dict, limit: int = 12) -> list[str]:
    """What differs between two run-id documents, one line per table and profile (with up to
    ``limit`` of its cells): the message a failing golden test prints."""
    out = []
    if golden.get("id_scheme") != now.get("id_scheme"):
        out.append(f"id scheme {golden.get('id_scheme')} -> {now.get('id_scheme')}")
    for part in ("tables", "items"):
        out += _moved_part(golden.get(part, {}), now.get(part, {}), limit)
    return out


def _moved_part(g_tables: dict, n_tables: dict, limit: int) -> list[str]:
    out = []
    for table in sorted(set(g_tables) | set(n_tables)):
        if table not in n_tables or table not in g_tables:
            out.append(f"{table}: {'removed' if table not in n_tables else 'new'}")
            continue
        for profile in sorted(set(g_tables[table]) | set(n_tables[table])):
            g, n = g_tables[table].get(profile, {}), n_tables[table].get(profile, {})
            changed = []
            for part in ("cells", "figures"):
                gp, np_ = g.get(part, {}), n.get(part, {})
                changed += [f"{part[:-1]} {name}" for name in sorted(set(gp) | set(np_)) if gp.get(name) != np_.get(name)]
            if changed:
                shown = "; ".join(changed[:limit]) + (f"; ... {len(changed) - limit} more" if len(changed) > limit else "")
                out.append(f"{table} ({profile}): {len(changed)} moved: {shown}")
    return out


def schema_changes(golden: dict, now: dict) -> list[str]:
    """Defaults or identity rules that differ between two schema documents (added options are
    not changes: a new option at a default that reproduces today's training moves no id)."""
    out = []
    for part in ("fields", "methods"):
        g, n = golden.get(part, {}), now.get(part, {})
        for key in sorted(g):
            if key not in n:
                out.append(f"{part}: {key} removed")
            elif part == "fields" and g[key] != n[key]:
                out.append(f"{key}: {g[key]} -> {n[key]}")
            elif part == "methods":
                for opt in sorted(g[key]):
                    if opt not in n[key]:
                        out.append(f"loss {key}: option {opt} removed")
                    elif g[key][opt] != n[key][opt]:
                        out.append(f"loss {key}.{opt}: {g[key][opt]} -> {n[key][opt]}")
    return out


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write() -> list[Path]:
    RUN_IDS_FILE.write_text(dumps(run_ids()))
    SCHEMA_FILE.write_text(json.dumps(schema.describe(), indent=1, sort_keys=True) + "\n")
    return [RUN_IDS_FILE, SCHEMA_FILE]
