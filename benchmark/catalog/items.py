"""The papers' figures, analyses and appendix tables as top-level ids, listed like tables.

One file per id, ``manifests/<paper>/figures/<id>.yaml`` (format: manifests/SCHEMA.md "Figures and
analyses"). An entry is either *cited* (a specific reason it is not run) or *runnable*: it reads the
runs of a table the suite already plans (``from: TABLE``), restricted to the cells its figure names,
and draws a figure of that table's manifest (``figure: NAME``, e.g. ATS Fig. 10's heat map, whose
extra runs it always plans) or one of its own (``spec:``). The same cells give the same run ids:
nothing is trained twice, and a figure's analyses of those runs (training-set logits) live in the
store's ``derived/`` area.

``item_manifest`` turns an entry into a ``manifest.Manifest`` (the source table's rows and columns
it reads, its published numbers, the one figure), so ``plan``, ``reproduce``, ``report`` and
``status`` take a figure id as they take a table id: they look a name up with ``find`` and read
it with ``load``, which take a table or a figure id alike (manifest.py knows only tables, so
that this module may import it without a circle).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput
from ..yamlfile import load_yaml
from .manifest import PAPERS, Manifest, catalog_root, find_manifest, load_manifest, manifest_paths

ITEM_KEYS = {"id", "paper", "label", "kind", "title", "source", "notes", "cited", "from", "figure", "spec",
             "caption", "readings", "claims"}
KINDS = ("table", "figure", "analysis")
ID_RE = re.compile(r"^(ats|atkd|lskd|klmse)-[a-z0-9]+$")
READING_KEYS = {"quantity", "value", "source", "digitised", "approx", "notes"}
OPS = (">", ">=", "<", "<=")


@dataclass
class Item:
    path: Path
    id: str
    paper: str
    label: str
    kind: str
    title: str
    source: str
    notes: str = ""
    cited: str | None = None
    table: str | None = None        # runnable: the table whose planned runs it reads
    figure: dict | None = None      # runnable: the figure spec (the table's, or its own)
    caption: str = ""
    readings: list = field(default_factory=list)
    claims: list = field(default_factory=list)

    @property
    def status(self) -> str:
        return "cited" if self.cited else "runnable"


def item_paths(root: Path | None = None) -> dict[str, Path]:
    """{id: file} of every figure, analysis and appendix table of the catalogue."""
    root = root or catalog_root()
    return {p.stem: p for p in sorted((root / "manifests").glob("*/figures/*.yaml"))}


def is_item_path(path: Path) -> bool:
    return Path(path).parent.name == "figures" and Path(path).parent.parent.parent.name == "manifests"


def find(name: str, root: Path | None = None) -> Path:
    """The file a command-line name stands for: a table's manifest (an id or a file), else a
    figure, analysis or appendix table id's entry; BadInput naming the name otherwise."""
    paths = manifest_paths(root)
    if name.endswith((".yaml", ".yml")) or name in paths:
        return find_manifest(name, root)
    items = item_paths(root)
    if name in items:
        return items[name]
    what = "figure or analysis id" if re.search(r"-(fig|table[a-z]|noisy)", name) else "table"
    raise BadInput(name, None, f"unknown {what}; `python runner.py list` shows the {len(paths)} tables and "
                               f"{len(items)} figures, analyses and appendix tables")


def load(path: Path) -> Manifest:
    """The manifest of a file ``find`` returned: a figure id's (``item_manifest``) or a table's."""
    return item_manifest(path) if is_item_path(path) else load_manifest(path)


def _text(doc: dict, path, key: str, required: bool = True) -> str:
    value = doc.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(path, key, "must be a non-empty text")
    return value.strip()


def _check_readings(readings, path) -> list:
    """Published numbers the paper prints for a figure's quantities; a value read off a plot is
    ``digitised`` and must say where it was read (which panel, how)."""
    if not isinstance(readings, list):
        raise BadInput(path, "readings", "must be a list")
    for i, r in enumerate(readings):
        where = f"readings[{i}]"
        if not isinstance(r, dict) or set(r) - READING_KEYS:
            raise BadInput(path, where, f"must be a mapping of {', '.join(sorted(READING_KEYS))}")
        if not isinstance(r.get("quantity"), str):
            raise BadInput(path, f"{where}.quantity", "must name a quantity of the figure")
        if isinstance(r.get("value"), bool) or not isinstance(r.get("value"), (int, float)):
            raise BadInput(path, f"{where}.value", "must be a number")
        if not isinstance(r.get("source"), str) or not r["source"].strip():
            what = "a digitised reading needs its source (the figure, the panel and how it was read)" \
                if r.get("digitised") else "a published number needs its source (file and line of the paper)"
            raise BadInput(path, f"{where}.source", what)
        if r.get("digitised") not in (None, True, False):
            raise BadInput(path, f"{where}.digitised", "must be true or false")
    return readings


def _check_claims(claims, path) -> list:
    """Claims over a figure's named quantities: ``{text, compare: {left: Q, op, right: Q, factor: k}}``
    holds when left op factor * right."""
    if not isinstance(claims, list):
        raise BadInput(path, "claims", "must be a list")
    for i, c in enumerate(claims):
        where = f"claims[{i}]"
        body = c.get("compare") if isinstance(c, dict) else None
        if not isinstance(c, dict) or not isinstance(c.get("text"), str) or not isinstance(body, dict):
            raise BadInput(path, where, "a figure claim is {text: ..., compare: {left, op, right}}")
        if body.get("op") not in OPS or not isinstance(body.get("left"), str) \
                or not isinstance(body.get("right"), (str, int, float)) or isinstance(body.get("right"), bool):
            raise BadInput(path, f"{where}.compare", "needs left (a quantity), op (> >= < <=) and right (a quantity "
                                                     "or a number)")
        factor = body.get("factor", 1.0)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
            raise BadInput(path, f"{where}.compare.factor", "must be a positive number")
    return claims


def load_item(path: Path) -> Item:
    from .figure_specs import check_spec

    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise BadInput(path, None, "must be a mapping")
    extra = set(doc) - ITEM_KEYS
    if extra:
        raise BadInput(path, sorted(extra)[0], f"unknown field; known: {', '.join(sorted(ITEM_KEYS))}")
    iid = doc.get("id")
    if iid != path.stem or not ID_RE.match(str(iid)):
        raise BadInput(path, "id", f"must equal the file name ({path.stem!r}), <paper>-fig<N>, <paper>-table<label> "
                                   f"or <paper>-<name>; got {iid!r}")
    if doc.get("paper") not in PAPERS:
        raise BadInput(path, "paper", f"must be one of {', '.join(PAPERS)}")
    if doc.get("kind") not in KINDS:
        raise BadInput(path, "kind", f"must be one of {', '.join(KINDS)}")
    item = Item(path=path, id=iid, paper=doc["paper"], label=_text(doc, path, "label"), kind=doc["kind"],
                title=_text(doc, path, "title"), source=_text(doc, path, "source"),
                notes=_text(doc, path, "notes", required=False), caption=_text(doc, path, "caption", required=False),
                readings=_check_readings(doc.get("readings") or [], path),
                claims=_check_claims(doc.get("claims") or [], path))
    if ("cited" in doc) == ("from" in doc):
        raise BadInput(path, "cited", "an entry is either cited (with the reason) or runnable (from: TABLE)")
    if "cited" in doc:
        item.cited = _text(doc, path, "cited")
        if any(k in doc for k in ("figure", "spec")):
            raise BadInput(path, "cited", "a cited entry has no figure to draw")
        return item
    table = doc["from"]
    if table not in manifest_paths():
        raise BadInput(path, "from", f"no table {table!r} (a runnable entry reads a table's planned runs)")
    item.table = table
    if ("figure" in doc) == ("spec" in doc):
        raise BadInput(path, "figure", "a runnable entry names a figure of its table (figure: NAME) or has its own "
                                       "spec (spec: {...}), one of the two")
    source = load_manifest(manifest_paths()[table])
    if "figure" in doc:
        named = [f for f in source.figures if f["name"] == doc["figure"]]
        if not named:
            raise BadInput(path, "figure", f"no figure {doc['figure']!r} in {table}; its figures: "
                                           f"{', '.join(f['name'] for f in source.figures) or 'none'}")
        item.figure = dict(named[0])
    else:
        spec = doc["spec"]
        check_spec(spec, path, [r["id"] for r in source.rows], [c["id"] for c in source.columns])
        item.figure = {**spec, "name": "figure", "title": f"{item.label}: {item.title}"}
    return item


def cells_read(fig: dict) -> tuple[list[str], list[str]]:
    """(rows, columns) of its table that a figure reads."""
    from .figure_specs import PENULTIMATE_KINDS, penultimate_cells

    if fig.get("kind") in PENULTIMATE_KINDS:
        return penultimate_cells(fig)
    rows = list(fig.get("rows") or [])
    rows += [fig[k] for k in ("row", "kd_row", "nokd_row") if k in fig and fig[k] not in rows]
    cols = fig.get("cols") or ([fig["col"]] if "col" in fig else [])
    return rows, list(cols)


def _restricted(published, rows: list[str], cols: list[str]):
    from .published import Published

    return Published(published.table_id, published.header, rows, cols,
                     {k: v for k, v in published.cells.items() if k[0] in rows and k[1] in cols}, published.path)


def _grid_points(grid) -> list[dict]:
    """A row's grid as its points (catalog.plan.grid_points, which imports this module)."""
    if isinstance(grid, list):
        return [dict(p) for p in grid]
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def _points_read(row: dict, fig: dict, path: Path, label: str) -> dict:
    """The row as the figure plans it: ATS Fig. 3's KD row with only the grid points its scatter
    reads (5 of the 11 per cell: ats-table2 also tunes tau 12 and a student tau of 1), so that
    ``reproduce ats-fig3`` trains no run the figure does not read. Every other row as its table's."""
    if fig["kind"] != "kd_scatter" or row["id"] != fig["kd_row"] or not row.get("grid"):
        return row
    from .figure_specs import kd_scatter_reads

    points = [p for p in _grid_points(row["grid"]) if kd_scatter_reads(fig, p)]
    if not points:
        raise BadInput(path, "spec.taus", f"no grid point of row {row['id']} has a tau of {fig['taus']} with the "
                                          f"student's tau equal to it")
    why = (f"{label} plans only the {len(points)} grid points its scatter reads (tau in "
           f"{', '.join(f'{t:g}' for t in fig['taus'])}, the student's tau equal to it): a cell's best is over "
           f"these, not the table's {len(_grid_points(row['grid']))}.")
    return {**row, "grid": points, "notes": f"{row['notes'].rstrip('.')}. {why}" if row.get("notes") else why}


def _unread_cited(row: dict, fig: dict, cols: list[str], label: str) -> dict:
    """LS-KD's diffusion index reads the T1 and T2 students of its columns and one reference cell
    (App. G.2's network): the other cells of those rows and columns are cited as not read, so that
    ``reproduce lskd-table3`` trains no run it does not read."""
    if fig["kind"] != "diffusion_index":
        return row
    ref = fig["reference"]
    read = {(r, c) for r in (fig["from_row"], fig["to_row"]) for c in fig["cols"]} | {(ref["row"], ref["col"])}
    why = f"not read by {label} (it reads rows {fig['from_row']} and {fig['to_row']} of its columns and the " \
          f"reference cell {ref['row']} / {ref['col']})"
    unread = {c: why for c in cols if (row["id"], c) not in read}
    return {**row, "cited": unread} if unread else row


def item_manifest(path: Path) -> Manifest:
    """The manifest a figure id plans and reports: its table's rows and columns that the figure
    reads, their published numbers, and the figure; a cited entry is one cited cell."""
    from .published import Published, load_published

    item = load_item(path)
    title = f"{item.label}: {item.title}"
    if item.cited:
        row = {"id": item.label, "cited": item.cited}
        empty = Published(item.id, {}, [item.label], [item.kind], {}, None)
        return Manifest(path=item.path, id=item.id, paper=item.paper, title=title, dataset="cifar100", recipe="",
                        seeds=[0], tolerance=0.5, defaults={}, columns=[{"id": item.kind}], rows=[row], value=None,
                        notes=item.notes, source=item.source, published=empty)
    source = load_manifest(manifest_paths()[item.table])
    rows, cols = cells_read(item.figure)
    fig = dict(item.figure)
    if fig["kind"] == "heatmap":
        fig["runs"] = "always"  # the entry is the figure: its runs are what it is for
    notes = "\n\n".join(n for n in (item.notes, f"Reads the runs of {item.table} (same cells, same run ids).")
                        if n)
    return dataclasses.replace(
        source, path=item.path, id=item.id, title=title, notes=notes, claims=[], figures=[fig],
        rows=[_unread_cited(_points_read(r, fig, item.path, item.label), fig, cols, item.label)
              for r in source.rows if r["id"] in rows],
        columns=[c for c in source.columns if c["id"] in cols],
        source=item.source, published=_restricted(load_published(source.id), rows, cols))


def load_items() -> list[Item]:
    return [load_item(p) for p in item_paths().values()]


def item_for(table_id: str) -> Item | None:
    path = item_paths().get(table_id)
    return load_item(path) if path else None


def figure_alias(name: str) -> str:
    """``--figures ats-fig10`` as ``--figures fig10``: an entry that draws its table's figure."""
    path = item_paths().get(name)
    if path is None:
        return name
    item = load_item(path)
    return item.figure["name"] if item.figure and item.figure["name"] != "figure" else name


def check_sources(store, item: Item, profile: str, plan) -> None:
    """A figure reported without a stored plan of its own reads its table's stored plan: each
    cell it reads must be there with the same runs (BadInput otherwise: the table ran other runs
    for that cell, or none; `reproduce ID` plans and trains the figure's)."""
    from ..store.stored_plan import plan_path, read_plan

    if item.table is None:
        return
    stored = read_plan(store, item.table, profile)
    if stored is None:
        return
    cells = {(c["row"], c["col"]): c for c in stored["cells"]}
    cells.update({("figure", name): c for name, c in stored["figure_cells"].items()})
    mine = [((c.row, c.col), c) for c in plan.cells] + [(("figure", n), c) for n, c in plan.figure_cells.items()]
    for key, cell in mine:
        have = {r for p in (cells.get(key) or {}).get("points", []) for r in p["runs"]}
        missing = [r for r in cell.job_ids() if r not in have]
        if missing:
            where = f"figure {key[1]}" if key[0] == "figure" else f"cell {key[0]} / {key[1]}"
            raise BadInput(plan_path(store, item.table, profile), "cells",
                           f"{item.id} reads {where}, whose run {missing[0]} is not in the stored plan of "
                           f"{item.table}; `runner.py reproduce {item.id} --profile {profile}` plans and trains it")
