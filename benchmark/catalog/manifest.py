"""Reading and checking the suite's data files: manifests, recipes and the teacher zoo.

The format is documented in ``manifests/SCHEMA.md``. This module checks the structure of each
file (known keys, types, ids that exist in the published table) and says what is wrong as a
``BadInput`` naming the file and the field; ``plan.py`` then checks every run a manifest
implies by resolving it into a run config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..engine.hub import check_entry as check_torchvision
from ..errors import BadInput
from ..spec import merge_spec
from ..yamlfile import load_yaml
from .sections import check_claims, check_figures, resolve_tolerances

REPO = Path(__file__).resolve().parents[2]


def catalog_root() -> Path:
    """Where manifests/ and teachers/ are read from: the repository, or KD_REPRO_CATALOG (a folder
    of your own manifests, recipes and teacher zoo, e.g. with your teachers' checkpoint files)."""
    return Path(os.environ.get("KD_REPRO_CATALOG", REPO))

MANIFEST_KEYS = {"id", "paper", "title", "source", "dataset", "recipe", "seeds", "tolerance", "notes",
                 "defaults", "columns", "rows", "value", "claims", "figures"}
REQUIRED_MANIFEST_KEYS = ("id", "paper", "title", "dataset", "recipe", "columns", "rows")
ROW_KEYS = {"id", "set", "grid", "select", "value", "target", "ensemble", "cited", "notes", "vars", "from"}
COLUMN_KEYS = {"id", "set", "grid", "select", "value", "target", "aggregate", "cited", "notes", "vars"}
SPEC_KEYS = {"dataset", "recipe", "recipe_changes", "data_changes", "model", "loss", "teacher", "init", "seed"}
ZOO_EXTRA_KEYS = {"like", "published", "checkpoint", "torchvision", "notes"}
RECIPE_KEYS = {"source", "notes", "data", "recipe"}
PAPERS = ("ATS", "ATKD", "LS-KD", "KL-MSE")
PLAIN_VALUES = ("top1", "top5", "top1/top5", "train_loss", "train_top1", "params", "setting")
ANALYSES = ("sharpness", "sharpness_gap", "entropy", "logit_sum", "adaptive_temperature", "derived_average",
            "derived_variance", "inherent_variance", "target_probability")


@dataclass
class Manifest:
    path: Path
    id: str
    paper: str
    title: str
    dataset: str
    recipe: str
    seeds: list[int]
    tolerance: float
    defaults: dict
    columns: list[dict]
    rows: list[dict]
    value: Any
    notes: str
    claims: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    tolerances: dict = field(default_factory=dict)  # by kind of quantity (benchmark.results.verdict)
    source: str = ""
    published: Any = None  # a figure id's published numbers (benchmark/catalog/items.py); a table's are tables/<id>.csv


@dataclass
class Catalog:
    """Every recipe and teacher the manifests can name."""
    recipes: dict[str, dict]
    recipe_files: dict[str, Path]
    zoo: dict[str, dict[str, dict]]         # dataset -> key -> entry
    zoo_files: dict[tuple[str, str], Path]  # (dataset, key) -> file


def _mapping(value, where, field_name, keys: set | None = None) -> dict:
    if not isinstance(value, dict):
        raise BadInput(where, field_name, f"must be a mapping, got {type(value).__name__}")
    if keys is not None:
        for key in value:
            if key not in keys:
                raise BadInput(where, f"{field_name}.{key}" if field_name else key,
                               f"unknown field; known: {', '.join(sorted(keys))}")
    return value


def check_spec(spec, where, field_name) -> dict:
    """Structure of a run spec (contents are checked when plan resolves it into configs)."""
    if spec is None:
        return {}
    _mapping(spec, where, field_name, SPEC_KEYS)
    teacher = spec.get("teacher")
    if isinstance(teacher, dict):
        check_spec(teacher, where, f"{field_name}.teacher")
    elif teacher is not None and not isinstance(teacher, str):
        raise BadInput(where, f"{field_name}.teacher", "must be null, a teacher-zoo key or an inline run spec")
    for key in ("recipe_changes", "data_changes", "init"):
        if key in spec and spec[key] is not None:
            _mapping(spec[key], where, f"{field_name}.{key}")
    if "loss" in spec and not isinstance(spec["loss"], (dict, str)):
        raise BadInput(where, f"{field_name}.loss", "must be a loss name or a mapping")
    return spec


# ---------------------------------------------------------------- recipes and zoo


def load_catalog(root: Path | None = None) -> Catalog:
    root = root or catalog_root()
    recipes, recipe_files = {}, {}
    for path in sorted((root / "manifests" / "recipes").glob("*.yaml")):
        doc = load_yaml(path)
        _mapping(doc, path, None)
        for name, recipe in doc.items():
            if name in recipes:
                raise BadInput(path, name, f"recipe defined twice (also in {recipe_files[name]})")
            _mapping(recipe, path, name, RECIPE_KEYS)
            for part in ("data", "recipe"):
                _mapping(recipe.get(part) or {}, path, f"{name}.{part}")
            recipes[name], recipe_files[name] = recipe, path
    zoo: dict[str, dict] = {}
    zoo_files: dict[tuple[str, str], Path] = {}
    for path in sorted((root / "teachers").glob("*.yaml")):
        doc = _mapping(load_yaml(path), path, None, {"dataset", "teachers", "notes"})
        dataset = doc.get("dataset")
        if not isinstance(dataset, str):
            raise BadInput(path, "dataset", "missing")
        for key, entry in _mapping(doc.get("teachers") or {}, path, "teachers").items():
            field_name = f"teachers.{key}"
            _mapping(entry, path, field_name, SPEC_KEYS | ZOO_EXTRA_KEYS)
            check_spec({k: v for k, v in entry.items() if k in SPEC_KEYS}, path, field_name)
            if entry.get("checkpoint") is not None:
                _mapping(entry["checkpoint"], path, f"{field_name}.checkpoint", {"file", "sha256"})
            if entry.get("torchvision") is not None:
                if entry.get("checkpoint") is not None:
                    raise BadInput(path, field_name, "names both a checkpoint file and torchvision weights")
                check_torchvision(entry["torchvision"], path, f"{field_name}.torchvision")
            if (dataset, key) in zoo_files:
                raise BadInput(path, field_name, f"teacher defined twice (also in {zoo_files[(dataset, key)]})")
            zoo.setdefault(dataset, {})[key] = entry
            zoo_files[(dataset, key)] = path
    for (dataset, key), path in zoo_files.items():
        like = zoo[dataset][key].get("like")
        if like is not None and like not in zoo[dataset]:
            raise BadInput(path, f"teachers.{key}.like", f"no teacher {like!r} for {dataset}")
    return Catalog(recipes, recipe_files, zoo, zoo_files)


def zoo_entry(catalog: Catalog, dataset: str, key: str, where, field_name) -> tuple[dict, dict]:
    """(run spec, extras) of a zoo teacher, with `like` chains expanded."""
    entries = catalog.zoo.get(dataset, {})
    if key not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise BadInput(where, field_name, f"no teacher {key!r} in the {dataset} zoo (teachers/*.yaml); known: {known}")
    seen, chain = set(), []
    while key is not None:
        if key in seen:
            raise BadInput(catalog.zoo_files[(dataset, key)], f"teachers.{key}.like", "circular 'like'")
        seen.add(key)
        chain.append(entries[key])
        key = entries[key].get("like")
    spec: dict = {}
    for entry in reversed(chain):
        spec = merge_spec(spec, {k: v for k, v in entry.items() if k in SPEC_KEYS})
    return spec, chain[0]


# ---------------------------------------------------------------- manifests


def manifest_paths(root: Path | None = None) -> dict[str, Path]:
    root = root or catalog_root()
    return {p.stem: p for p in sorted((root / "manifests").glob("*/*.yaml")) if p.parent.name != "recipes"}


def table_id(name: str) -> str:
    """The table a command-line name stands for: a table id as it is, a manifest file by its stem."""
    return Path(name).stem if name.endswith((".yaml", ".yml")) else name


def find_manifest(name: str, root: Path | None = None) -> Path:
    """A table id or a manifest file path."""
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise BadInput(name, None, "no such file")
        return path
    paths = manifest_paths(root)
    if name not in paths:
        raise BadInput(name, None, f"unknown table; `python runner.py list` shows the {len(paths)} tables")
    return paths[name]


def _grid_ok(grid, where, field_name):
    if grid is None:
        return
    if isinstance(grid, dict):
        if not grid:
            raise BadInput(where, field_name, "an empty grid")
        for path, values in grid.items():
            if isinstance(values, str) and values.startswith("$"):
                continue  # a variable of the column or row, checked when the cell is planned
            if not isinstance(values, list) or not values:
                raise BadInput(where, f"{field_name}.{path}", "a grid axis must be a non-empty list")
    elif isinstance(grid, list):
        if not grid:
            raise BadInput(where, field_name, "an empty grid")
        for i, point in enumerate(grid):
            _mapping(point, where, f"{field_name}[{i}]")
    else:
        raise BadInput(where, field_name, "must be a mapping of lists or a list of mappings")


def _cited_ok(cited, where, field_name, other_ids) -> None:
    """A reason (the whole row or column is cited), or {other-axis id: reason} (those cells only)."""
    reasons = cited.items() if isinstance(cited, dict) else [(None, cited)]
    if isinstance(cited, dict) and not cited:
        raise BadInput(where, field_name, "an empty mapping")
    for key, reason in reasons:
        if key is not None and key not in other_ids:
            raise BadInput(where, f"{field_name}.{key}", f"not an id of the other axis; known: {', '.join(other_ids)}")
        if not (isinstance(reason, str) and reason.strip()):
            raise BadInput(where, field_name if key is None else f"{field_name}.{key}",
                           "must say why the cell is cited, not run")


# How a cell's grid becomes one number (``select`` of a row, a column or a ``from``): only the best
# point (highest mean top-1, aggregate.py) exists. `all` was accepted once and never read.
SELECTS = ("best",)
SELECT_PROBLEM = ("must be best, the only selection there is (the grid point with the highest mean top-1); "
                  "remove the key or write best")


def _from_ok(row: dict, rows: list[dict], where, field_name) -> None:
    """``from: {row: R, select: best}``: this row's cells take the grid point that won in row R's
    cell of the same column (plan.Planner._cell_from)."""
    src = _mapping(row["from"], where, field_name, {"row", "select"})
    target = next((r for r in rows if r.get("id") == src.get("row")), None)
    if target is None or target is row:
        raise BadInput(where, f"{field_name}.row", f"must name another row of the manifest, got {src.get('row')!r}")
    if "from" in target:
        raise BadInput(where, f"{field_name}.row", f"row {target['id']!r} itself takes its point from another row")
    if src.get("select", "best") not in SELECTS:
        raise BadInput(where, f"{field_name}.select", f"{SELECT_PROBLEM}, got {src['select']!r}")
    if row.get("grid") is not None:
        raise BadInput(where, field_name, "a row with `from` has no grid of its own")


def check_value(value, where, field_name):
    if value is None or value in PLAIN_VALUES:
        return
    if isinstance(value, dict) and value.get("analysis") in ANALYSES:
        return
    raise BadInput(where, field_name, f"must be one of {', '.join(PLAIN_VALUES)} or {{analysis: "
                                      f"{'|'.join(ANALYSES)}, ...}}, got {value!r}")


def load_manifest(path: Path) -> Manifest:
    from .published import load_published

    doc = load_yaml(path)
    _mapping(doc, path, None, MANIFEST_KEYS)
    for key in REQUIRED_MANIFEST_KEYS:
        if key not in doc:
            raise BadInput(path, key, "missing")
    tid = doc["id"]
    if not isinstance(tid, str) or (path.parent.parent.name == "manifests" and tid != path.stem):
        raise BadInput(path, "id", f"must equal the file name ({path.stem!r}), got {tid!r}")
    if doc["paper"] not in PAPERS:
        raise BadInput(path, "paper", f"must be one of {', '.join(PAPERS)}, got {doc['paper']!r}")
    seeds = doc.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                                                       for s in seeds):
        raise BadInput(path, "seeds", "must be a non-empty list of non-negative integers")
    tolerances = resolve_tolerances(doc.get("tolerance", 0.5), path)
    check_value(doc.get("value"), path, "value")
    defaults = check_spec(doc.get("defaults"), path, "defaults")

    try:
        published = load_published(tid)
    except ValueError as err:
        raise BadInput(path, "id", f"no published table for {tid!r}: {err}") from None

    def items(kind, keys, names):
        entries = doc[kind]
        if not isinstance(entries, list) or not entries:
            raise BadInput(path, kind, "must be a non-empty list")
        seen = []
        for i, entry in enumerate(entries):
            where_field = f"{kind}[{i}]"
            _mapping(entry, path, where_field, keys)
            eid = entry.get("id")
            if not isinstance(eid, str):
                raise BadInput(path, f"{where_field}.id", "missing (must be a string)")
            where_field = f"{kind}[{eid}]"
            if eid not in names:
                raise BadInput(path, where_field, f"not a {kind[:-1]} of tables/{tid}.csv; its {kind}: "
                                                  f"{', '.join(names)}")
            if eid in seen:
                raise BadInput(path, where_field, "listed twice")
            seen.append(eid)
            check_spec(entry.get("set"), path, f"{where_field}.set")
            _mapping(entry.get("vars") or {}, path, f"{where_field}.vars")
            _grid_ok(entry.get("grid"), path, f"{where_field}.grid")
            check_value(entry.get("value"), path, f"{where_field}.value")
            if entry.get("target", "student") not in ("student", "teacher"):
                raise BadInput(path, f"{where_field}.target", "must be student or teacher")
            if entry.get("select", "best") not in SELECTS:
                raise BadInput(path, f"{where_field}.select", f"{SELECT_PROBLEM}, got {entry['select']!r}")
            if "cited" in entry:
                _cited_ok(entry["cited"], path, f"{where_field}.cited",
                          published.cols if kind == "rows" else published.rows)
            if entry.get("aggregate") not in (None, "mean"):
                raise BadInput(path, f"{where_field}.aggregate", "must be mean")
            if "ensemble" in entry:
                members = entry["ensemble"]
                if not isinstance(members, list) or len(members) < 2:
                    raise BadInput(path, f"{where_field}.ensemble", "must list at least two members")
                for j, member in enumerate(members):
                    check_spec(member, path, f"{where_field}.ensemble[{j}]")
        for entry in entries:
            if "from" in entry:
                _from_ok(entry, entries, path, f"{kind}[{entry['id']}].from")
        missing = [n for n in names if n not in seen]
        if missing:
            raise BadInput(path, kind, f"tables/{tid}.csv has {kind} the manifest lacks: {', '.join(missing)}")
        return entries

    columns = items("columns", COLUMN_KEYS, published.cols)
    rows = items("rows", ROW_KEYS, published.rows)
    claims = doc.get("claims") or []
    if not isinstance(claims, list):
        raise BadInput(path, "claims", "must be a list")
    check_claims(claims, path, published.rows, published.cols)
    figures = doc.get("figures") or []
    check_figures(figures, path, published.rows, published.cols)
    return Manifest(path=path, id=tid, paper=doc["paper"], title=str(doc["title"]), dataset=doc["dataset"],
                    recipe=doc["recipe"], seeds=seeds, tolerance=tolerances["accuracy"], tolerances=tolerances, defaults=defaults,
                    columns=columns, rows=rows, value=doc.get("value"), notes=str(doc.get("notes") or ""),
                    claims=claims, figures=figures, source=str(doc.get("source") or ""))


def cached_catalog() -> Catalog:
    return _cached(catalog_root())


@lru_cache(maxsize=None)
def _cached(root: Path) -> Catalog:
    return load_catalog(root)
