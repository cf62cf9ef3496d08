"""Nightly regression runs: today's reports against the previous night's.

``runner.py nightly`` reproduces the tables into ``<out>/<date>/`` (the dated markdown reports
and a ``nightly.json`` snapshot of every cell, claim and failed run), then compares the
snapshot with the most recent earlier one under ``<out>`` and lists the regressions:

- a cell whose reproduced number moved by more than the table's tolerance,
- a cell that had a number and now has none (its runs failed or went missing),
- a claim that flipped between held and not held,
- a run that fails now and did not before.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def snapshot(day_dir: Path, table_ids: list[str], failed_runs: list[str], profile: str, date: str) -> dict:
    tables = {}
    for tid in table_ids:
        doc = json.loads((day_dir / f"{tid}.json").read_text())
        tables[tid] = {
            "tolerance": doc["tolerance"],
            "cells": {f"{c['row']} | {c['col']}": {"reproduced": c["reproduced"], "status": c["status"]}
                      for c in doc["cells"]},
            "claims": {c["text"]: c["status"] for c in doc["claims"]},
        }
    return {"date": date, "profile": profile, "tables": tables, "failed_runs": sorted(failed_runs)}


def previous_snapshot(out: Path, date: str) -> dict | None:
    days = sorted(p.name for p in out.iterdir() if p.is_dir() and DATE.match(p.name) and p.name < date
                  and (p / "nightly.json").exists()) if out.exists() else []
    return json.loads((out / days[-1] / "nightly.json").read_text()) if days else None


def regressions(old: dict, new: dict) -> list[str]:
    found = []
    for tid, table in new["tables"].items():
        before = old["tables"].get(tid)
        if before is None:
            continue
        tol = table["tolerance"]
        for key, cell in table["cells"].items():
            prev = before["cells"].get(key)
            if prev is None or prev["reproduced"] is None:
                continue
            if cell["reproduced"] is None:
                found.append(f"{tid}: cell {key} had {prev['reproduced']:.2f}, now none ({cell['status']})")
            elif abs(cell["reproduced"] - prev["reproduced"]) > tol + 1e-9:
                found.append(f"{tid}: cell {key} moved {prev['reproduced']:.2f} -> {cell['reproduced']:.2f} "
                             f"(more than the tolerance {tol:g})")
        for text, status in table["claims"].items():
            was = before["claims"].get(text)
            if {was, status} == {"held", "not held"}:
                found.append(f"{tid}: claim flipped from {was} to {status}: {text}")
    for rid in sorted(set(new["failed_runs"]) - set(old["failed_runs"])):
        found.append(f"run {rid} fails now (it did not before)")
    return found


def write_summary(day_dir: Path, new: dict, old: dict | None, found: list[str]) -> Path:
    lines = [f"# Nightly {new['date']} ({new['profile']} profile)", ""]
    if old is None:
        lines.append("No earlier nightly under this folder: nothing to compare with (this run is the baseline).")
    else:
        lines.append(f"Compared with the nightly of {old['date']}.")
    lines += ["", f"## Regressions: {len(found)}", ""] + ([f"- {r}" for r in found] or ["None."])
    lines += ["", "## Tables", ""] + [f"- [{tid}]({tid}.md)" for tid in new["tables"]]
    path = day_dir / "nightly.md"
    path.write_text("\n".join(lines) + "\n")
    return path
