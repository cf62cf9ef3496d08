"""The rows of ``runner.py list`` (every table, figure, analysis and appendix table with its paper,
its own label, kind, runnable or cited (and why), cells and paper-profile runs) and of ``runner.py
models`` (every model with its parameter count).

Counting a table's runs means planning it (every config resolved, run ids hashed), which needs
torch and takes seconds. The rows depend only on the catalogue's files (manifests, recipes,
teacher zoo, published tables), the package's code and torch's version, so they are kept in the
disk cache (benchmark/diskcache.py) under a digest of exactly those: any edit re-plans. The
models' rows (each model built on the meta device) depend on the model code and torch's version
only: they are kept under the FLOPs cache's stamp (benchmark/catalog/flops.py).
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from .. import diskcache
from .items import item_paths
from .manifest import REPO, catalog_root, load_manifest, manifest_paths

PACKAGE = Path(__file__).resolve().parent.parent  # the whole package, benchmark/


def stamp() -> str:
    digest = hashlib.sha256()
    root = catalog_root()
    files = [*sorted(root.glob("manifests/**/*.yaml")), *sorted(root.glob("teachers/**/*.yaml")),
             *sorted(REPO.glob("tables/*.csv")), *sorted(PACKAGE.glob("**/*.py"))]
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    return f"torch {torch_version}, files {digest.hexdigest()}"


def table_rows() -> list[dict]:
    key = stamp()
    cached = diskcache.read("list", key).get("rows")
    if isinstance(cached, list):
        return cached
    rows = [_row(tid, path) for tid, path in manifest_paths().items()]
    rows += [_item_row(path) for path in item_paths().values()]
    diskcache.update("list", key, {"rows": rows})
    return rows


def _row(tid: str, path: Path) -> dict:
    from .plan import Planner

    m = load_manifest(path)
    plan = Planner("paper", cost=False).plan_manifest(m)  # list prints no hours: no FLOPs counted
    runnable = sum(c.rule not in ("cited", "setting", "aggregate") for c in plan.cells)
    return {"table": tid, "paper": m.paper, "title": m.title, "cells": len(plan.cells),
            "runnable_cells": runnable, "runs": len(plan.job_ids),
            "id": tid, "label": f"{m.paper} {m.title.split(':')[0]}", "kind": "table",
            "status": "runnable" if runnable else "cited",
            "reason": None if runnable else "every cell is cited (the reasons are in its manifest)", "reads": None}


def _item_row(path: Path) -> dict:
    """A figure, analysis or appendix table (benchmark/catalog/items.py): ``table`` holds its id, as for tables."""
    from .items import item_manifest, load_item
    from .plan import Planner

    item = load_item(path)
    plan = Planner("paper", cost=False).plan_manifest(item_manifest(path))
    runs = len(plan.job_ids)
    return {"table": item.id, "paper": item.paper, "title": item.title, "cells": len(plan.cells),
            "runnable_cells": 0 if item.cited else sum(c.rule not in ("cited", "setting", "aggregate")
                                                          for c in plan.cells),
            "runs": runs, "id": item.id, "label": item.label, "kind": item.kind, "status": item.status,
            "reason": item.cited, "reads": item.table}


def model_rows(num_classes: int) -> list[dict]:
    from . import flops

    key = str(num_classes)
    cached = diskcache.read("models", flops.stamp()).get(key)
    if isinstance(cached, list):
        return cached
    from ..engine.models import describe_models

    rows = describe_models(num_classes)
    diskcache.update("models", flops.stamp(), {key: rows})
    return rows
