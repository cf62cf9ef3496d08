"""A manifest's claims, figures and tolerance: what each section may say (claim operators, figure
kinds and fields, tolerance kinds and their defaults) and its structural check, run when the
manifest is read (manifest.py). What they declare is evaluated by results/: claims.py, figures.py
and verdict.py.

The formats are in those modules' docstrings and in ``manifests/SCHEMA.md``.
"""

from __future__ import annotations

import math
import operator

from ..errors import BadInput

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def check_claims(claims: list, path, rows: list[str], cols: list[str]) -> None:
    """Structure of a manifest's claims; BadInput naming the claim and the field."""
    for i, claim in enumerate(claims):
        where = f"claims[{i}]"
        if not isinstance(claim, dict) or not isinstance(claim.get("text"), str):
            raise BadInput(path, f"{where}.text", "every claim needs a text")
        kinds = [k for k in ("compare", "trend") if k in claim]
        if len(kinds) != 1 or set(claim) - {"text", "compare", "trend", "notes"}:
            raise BadInput(path, where, "a claim has a text and exactly one of compare or trend")
        body = claim[kinds[0]]
        if not isinstance(body, dict):
            raise BadInput(path, f"{where}.{kinds[0]}", "must be a mapping")

        def known(ref, field, where=where):
            if not isinstance(ref, dict) or not (set(ref) <= {"row", "col"}) or not ref:
                raise BadInput(path, f"{where}.{field}", "must be {row: ...} and/or {col: ...}")
            if "row" in ref and ref["row"] not in rows:
                raise BadInput(path, f"{where}.{field}.row", f"no row {ref['row']!r}")
            if "col" in ref and ref["col"] not in cols:
                raise BadInput(path, f"{where}.{field}.col", f"no column {ref['col']!r}")

        if kinds[0] == "compare":
            if body.get("op") not in OPS:
                raise BadInput(path, f"{where}.compare.op", f"must be one of {', '.join(OPS)}")
            known(body.get("left"), "compare.left")
            known(body.get("right"), "compare.right")
            if body.get("over") not in (None, "rows", "columns"):
                raise BadInput(path, f"{where}.compare.over", "must be rows or columns")
            subset = {"columns": "cols", "rows": "rows"}.get(body.get("over"))
            for key in {"cols", "rows"} - {subset}:
                if key in body:
                    raise BadInput(path, f"{where}.compare.{key}",
                                   f"only with over: {'columns' if key == 'cols' else 'rows'}")
            _check_subset(body, where + ".compare", path, rows, cols)
        else:
            known({k: v for k, v in body.items() if k in ("row", "col")}, "trend")
            if body.get("direction") not in ("increasing", "decreasing"):
                raise BadInput(path, f"{where}.trend.direction", "must be increasing or decreasing")
            if ("cols" in body and "row" not in body) or ("rows" in body and "col" not in body):
                raise BadInput(path, f"{where}.trend", "cols goes with a row trend, rows with a column trend")
            _check_subset(body, where + ".trend", path, rows, cols)


def _check_subset(body: dict, where: str, path, rows: list[str], cols: list[str]) -> None:
    for key, known, noun in (("cols", cols, "column"), ("rows", rows, "row")):
        if key not in body:
            continue
        if not isinstance(body[key], list) or len(body[key]) < 1:
            raise BadInput(path, f"{where}.{key}", f"must be a non-empty list of {noun} ids")
        for name in body[key]:
            if name not in known:
                raise BadInput(path, f"{where}.{key}", f"no {noun} {name!r}")


FIGURE_KINDS = ("lines", "analysis_vs_tau", "heatmap", "curves", "bars")
# the analyses an analysis_vs_tau figure may plot (results/figures.py computes them: METRICS)
FIGURE_METRICS = ("derived_average", "derived_std", "derived_variance", "target_probability")
HEATMAP_RUNS = ("on_request", "always")
# what a curves figure may plot per epoch: metrics.jsonl's keys (test_sharpness_gap: recipe.epoch_sharpness_gap)
CURVE_METRICS = ("test_top1", "test_sharpness_gap")
FIGURE_FIELDS = {"lines": {"kind", "name", "title", "cols", "rows", "ylabel"},
                 "analysis_vs_tau": {"kind", "name", "title", "col", "rows", "metrics", "taus", "ats",
                                     "logits"},
                 "heatmap": {"kind", "name", "title", "row", "col", "grid", "runs"},
                 # test top-1 per epoch: a panel per column, a line per row (KL-MSE's noisy-label curves)
                 "curves": {"kind", "name", "title", "cols", "rows", "ylabel", "metrics"},
                 # a group of bars per column, a bar per row: each cell's top-1 (ATS Fig. 2)
                 "bars": {"kind", "name", "title", "cols", "rows", "ylabel"}}


def check_figures(figures, path, rows: list[str], cols: list[str]) -> None:
    """Structure of a manifest's figures; BadInput naming the figure and the field."""
    if not isinstance(figures, list):
        raise BadInput(path, "figures", "must be a list")
    names = set()
    for i, fig in enumerate(figures):
        where = f"figures[{i}]"
        if not isinstance(fig, dict) or fig.get("kind") not in FIGURE_KINDS:
            raise BadInput(path, f"{where}.kind", f"must be one of {', '.join(FIGURE_KINDS)}")
        extra = set(fig) - FIGURE_FIELDS[fig["kind"]]
        if extra:
            raise BadInput(path, f"{where}.{sorted(extra)[0]}", f"not a field of a {fig['kind']} figure")
        name = fig.get("name")
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum() or name in names:
            raise BadInput(path, f"{where}.name", "must be a unique name of letters, digits, - and _")
        names.add(name)
        for key, known, noun in (("rows", rows, "row"), ("cols", cols, "column")):
            if key in fig:
                if not isinstance(fig[key], list) or not fig[key]:
                    raise BadInput(path, f"{where}.{key}", f"must be a non-empty list of {noun} ids")
                for item in fig[key]:
                    if item not in known:
                        raise BadInput(path, f"{where}.{key}", f"no {noun} {item!r}")
        if fig["kind"] == "heatmap":
            _check_heatmap(fig, path, where, rows, cols)
        if fig["kind"] == "lines" and "cols" not in fig:
            raise BadInput(path, f"{where}.cols", "a lines figure needs its x axis: a list of columns")
        if fig["kind"] == "curves" and "cols" not in fig:
            raise BadInput(path, f"{where}.cols", "a curves figure needs its panels: a list of columns")
        if fig["kind"] == "curves" and "metrics" in fig and (
                not isinstance(fig["metrics"], list) or not fig["metrics"]
                or any(m not in CURVE_METRICS for m in fig["metrics"])):
            raise BadInput(path, f"{where}.metrics", f"must be a list of {', '.join(CURVE_METRICS)}")
        if fig["kind"] == "bars" and "cols" not in fig:
            raise BadInput(path, f"{where}.cols", "a bars figure needs its groups: a list of columns")
        if fig["kind"] == "analysis_vs_tau":
            if fig.get("col") not in cols:
                raise BadInput(path, f"{where}.col", "must name the column whose runs are analysed")
            metrics = fig.get("metrics")
            if not isinstance(metrics, list) or not metrics or any(m not in FIGURE_METRICS for m in metrics):
                raise BadInput(path, f"{where}.metrics", f"must be a list of {', '.join(FIGURE_METRICS)}")
            taus = fig.get("taus")
            if (not isinstance(taus, list) or len(taus) < 2
                    or any(isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0 for t in taus)):
                raise BadInput(path, f"{where}.taus", "must be a list of at least two positive numbers")
            if fig.get("logits", "test") not in ("test", "train"):
                raise BadInput(path, f"{where}.logits", "must be test (the runs' saved test logits) or train (the "
                                                        "training set's, computed from the saved model)")
            ats = fig.get("ats")
            if ats is not None and (not isinstance(ats, dict) or set(ats) != {"target_scale", "other_scale"}
                                    or any(not isinstance(v, (int, float)) or v <= 0 for v in ats.values())):
                raise BadInput(path, f"{where}.ats", "must be {target_scale: number, other_scale: number}")


def _check_heatmap(fig: dict, path, where: str, rows: list[str], cols: list[str]) -> None:
    if fig.get("row") not in rows:
        raise BadInput(path, f"{where}.row", "must name the row whose runs the grid varies")
    if fig.get("col") not in cols:
        raise BadInput(path, f"{where}.col", "must name the column of the runs")
    grid = fig.get("grid")
    if (not isinstance(grid, dict) or len(grid) != 2 or any(not isinstance(k, str) for k in grid)
            or any(not isinstance(v, list) or not v or len(set(map(repr, v))) != len(v) for v in grid.values())):
        raise BadInput(path, f"{where}.grid", "must map two dotted paths (down, across) to non-empty lists of "
                                              "distinct values")
    if fig.get("runs", "on_request") not in HEATMAP_RUNS:
        raise BadInput(path, f"{where}.runs", f"must be one of {', '.join(HEATMAP_RUNS)}")


# the kinds of quantity a cell can hold (results/verdict.py: kind_of), each with its tolerance
TOLERANCE_KINDS = ("accuracy", "loss", "gap", "analysis")
DEFAULT_TOLERANCES = {"accuracy": 0.5, "loss": 0.1, "gap": 0.05, "analysis": 0.5}


def resolve_tolerances(raw, path) -> dict[str, float]:
    """A manifest's ``tolerance`` (number or mapping by kind) as a full mapping; BadInput if malformed."""
    if raw is None:
        return dict(DEFAULT_TOLERANCES)
    if isinstance(raw, dict):
        out = dict(DEFAULT_TOLERANCES)
        for kind, tol in raw.items():
            if kind not in TOLERANCE_KINDS:
                raise BadInput(path, f"tolerance.{kind}", f"unknown kind; known: {', '.join(TOLERANCE_KINDS)}")
            out[kind] = _tolerance(tol, path, f"tolerance.{kind}")
        return out
    tol = _tolerance(raw, path, "tolerance")
    return {kind: tol for kind in TOLERANCE_KINDS}


def _tolerance(value, path, field) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadInput(path, field, f"must be a number >= 0, got {value!r}")
    return float(value)
