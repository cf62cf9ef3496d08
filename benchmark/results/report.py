"""Reports: the paper's table with the published and the reproduced number in every cell.

Markdown laid out like the paper's table, a JSON form (the contract of docs/CONTRACTS.md), and a plot
of reproduced against published per table. The header says which profile produced the numbers;
a smoke or quick report says plainly that its numbers are not comparable to the paper's.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from ..catalog import profiles
from ..catalog.manifest import table_id
from ..catalog.plan import Planner, TablePlan
from ..engine.data import get_spec
from ..store.layout import Store
from .aggregate import CellResult, Measurer, aggregate_table, coverage
from .claims import evaluate_claim
from .figures import check_inputs, draw_figure
from .reported_plan import PlannedJobs, ReportedPlan, table_plans
from .verdict import NOT_COMPARABLE, STALE, WITH_NUMBER, difference_decided

MARK = {"within": "✓", "outside": "✗", NOT_COMPARABLE: "~", STALE: "stale", "measured": "", "pending": "pending",
        "failed": "FAILED", "cited": "cited", "setting": "setting"}


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    if x != 0 and abs(x) < 0.01:
        return f"{x:.2g}"
    return f"{x:.{digits}f}"


def cell_text(c: CellResult) -> str:
    pub = c.published_raw or "—"
    if c.status in ("cited", "setting"):
        return f"{pub} ({MARK[c.status]})"
    if c.status in ("pending", "failed"):
        return f"{pub} → {MARK[c.status]}"
    rep = _fmt(c.reproduced)
    if c.reproduced_top5 is not None:
        rep += f"/{_fmt(c.reproduced_top5)}"
    if c.std is not None:
        rep += f" ± {_fmt(c.std)} (n={c.n})"
    if c.delta is None:
        return f"{pub} → {rep}"
    return f"{pub} → {rep} ({c.delta:+.2f}) {MARK[c.status]}"


def provenance(plan: TablePlan, store: Store) -> dict:
    """Code revisions, devices and device-hours of the runs behind a table."""
    revisions, devices, executions, seconds = set(), set(), {}, 0.0
    for rid in plan.job_ids:
        res = store.result(rid)
        if res and res.get("status") == "done":
            prov = res.get("provenance") or {}
            revisions.add(prov.get("code_revision", "unknown"))
            devices.add(f"{prov.get('device')} ({prov.get('device_name')})")
            seconds += res.get("wall_time_s") or 0
            ex = res.get("execution") or {}
            # how the runs were executed (accelerations, determinism); fused_with is bookkeeping
            key = ", ".join(f"{k}={ex[k]}" for k in ("numerics", "amp", "channels_last", "compile", "sgd",
                                                     "cudnn_benchmark", "deterministic", "tf32") if k in ex) \
                or "not recorded"
            executions[key] = executions.get(key, 0) + 1
    return {"code_revisions": sorted(revisions), "devices": sorted(devices), "device_hours": seconds / 3600,
            "executions": executions}


# The named readings a result records (an ambiguity of the papers resolved one way): the report
# counts, over the table's finished runs, which value of each ran.
READING_FIELDS = (
    ("recipe", "report_epoch"), ("recipe", "init_scheme"), ("recipe", "loss_schedule"),
    ("recipe", "optimizer", "nesterov"), ("data", "normalize"), ("data", "augment"),
    ("loss", "form"), ("loss", "embed"), ("loss", "student_tau"), ("loss", "tau_squared"),
    ("loss", "tau_scale"), ("loss", "reduction"), ("loss", "divergence"), ("loss", "ce_weight"),
)


# What a result's execution read back from torch (accel.read_back): the report counts each setting.
NUMERICS_READINGS = ("deterministic_algorithms", "cudnn_deterministic", "cudnn_benchmark", "fp32_precision",
                     "autocast_dtype", "memory_format", "cublas_workspace_config")


def readings_that_ran(plan: TablePlan, store: Store) -> dict[str, dict[str, int]]:
    """field -> {value -> number of the table's finished runs that ran with it}; the teacher's
    source (a run of the store, a checkpoint file, torchvision's weights) as ``teacher``; the
    numerics policy, its overrides, what the device could not apply and the switches as torch read
    them back, as ``numerics`` and ``numerics.<setting>``."""
    out: dict[str, dict[str, int]] = {}

    def count(field: str, value) -> None:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out.setdefault(field, {})
        out[field][text] = out[field].get(text, 0) + 1

    for rid in plan.job_ids:
        res = store.result(rid)
        if not res or res.get("status") != "done":
            continue
        cfg = res.get("config") or {}
        for path in READING_FIELDS:
            node = cfg
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if node is not None or (path == ("data", "normalize") and "data" in cfg):
                count(".".join(path), "the dataset's usual constants" if node is None else node)
        teacher = cfg.get("teacher") or {}
        count("teacher", next((kind for kind in ("torchvision", "checkpoint", "run") if kind in teacher), "none"))
        ex = res.get("execution") or {}
        count("numerics", ex.get("numerics", "not recorded (trained before numerics policies)"))
        for name in ("overrides", "not_applied"):
            if ex.get(name):
                count(f"numerics.{name}", ex[name])
        for name in NUMERICS_READINGS if isinstance(ex.get("read_back"), dict) else ():
            count(f"numerics.{name}", ex["read_back"].get(name))
    return out


def teacher_rows(plan: TablePlan, store: Store) -> list[dict]:
    """The teachers the table's students distilled from that were trained in the store (a run's
    ``teacher: {run: ID}``), each with its top-1 and that as a multiple of chance (1/classes): a
    table rarely prints its teachers, and a reader of a smoke report asks first whether they learned."""
    ids = []
    for rid in plan.job_ids:
        res = store.result(rid) or {}
        teacher = (res.get("config") or {}).get("teacher") or {}
        if teacher.get("run") and teacher["run"] not in ids:
            ids.append(teacher["run"])
    rows = []
    for rid in ids:
        res = store.result(rid) or {}
        top1 = (res.get("metrics") or {}).get("top1")
        if res.get("status") != "done" or top1 is None:
            continue
        cfg = res.get("config") or {}
        chance = 100.0 / get_spec(cfg["dataset"]).num_classes
        rows.append({"run": rid, "model": cfg.get("model"), "dataset": cfg["dataset"], "top1": top1,
                     "times_chance": top1 / chance})
    return rows


def claim_results(plan: TablePlan, cells: list[CellResult]) -> list[dict]:
    """Every claim of the manifest on the reproduced numbers and, as a check, on the published ones."""
    m = plan.manifest
    by_key = {(c.row, c.col): c for c in cells}
    rows = [r["id"] for r in m.rows]
    cols = [c["id"] for c in m.columns if not c.get("aggregate")]

    def reproduced(r, c):
        cell = by_key[(r, c)]
        return cell.reproduced if cell.status in WITH_NUMBER else None

    def published(r, c):
        return by_key[(r, c)].published

    def spread(r, c):
        cell = by_key[(r, c)]
        return (cell.std, cell.n) if cell.std is not None else None

    out = []
    for claim in m.claims:
        rep = evaluate_claim(claim, reproduced, rows, cols, decided=lambda a, b, va, vb: difference_decided(
            va, vb, spread(*a), spread(*b)))
        pub = evaluate_claim(claim, published, rows, cols)
        out.append({"text": claim["text"], "status": rep["status"], "detail": rep["detail"],
                    "published_status": pub["status"], "published_detail": pub["detail"]})
    return out


def plan_info(plan: TablePlan) -> dict:
    """Where the reported plan came from (reported_plan.ReportedPlan.info): the stored plan, or
    today's manifest; ``note``: the one line a reader shows (the manifest changed since, or no
    stored plan). A plan made by a Planner in this process (the Python API) is today's."""
    return plan.info() if isinstance(plan, ReportedPlan) else {"source": "manifest", "note": None}


def table_json(plan: TablePlan, cells: list[CellResult], store: Store) -> dict:
    m = plan.manifest
    return {"table": m.id, "profile": plan.profile, "paper": m.paper, "title": m.title, "store": str(store.root),
            "plan": plan_info(plan),
            "tolerance": m.tolerance, "tolerances": m.tolerances, "comparable_to_paper": profiles.judged(plan.profile),
            "provenance": provenance(plan, store), "coverage": coverage(cells),
            "claims": claim_results(plan, cells), "readings_that_ran": readings_that_ran(plan, store),
            "cells": [c.to_json() for c in cells]}


def table_markdown(plan: TablePlan, cells: list[CellResult], store: Store, plot_name: str | None,
                   figures: dict[str, str | None] | None = None, drawn: dict | None = None) -> str:
    m = plan.manifest
    prov = provenance(plan, store)
    cov = coverage(cells)
    note = plan_info(plan)["note"]
    lines = [f"# {m.id}: {m.paper}, {m.title}", "", profiles.WARNING[plan.profile], "",
             *([f"**Plan:** {note}", ""] if note else []),
             f"- store: `{store.root}`",
             f"- code revision: {', '.join(prov['code_revisions']) or 'no finished runs'}",
             f"- devices: {', '.join(prov['devices']) or '—'}; device time {prov['device_hours']:.3f} h",
             "- execution: " + ("; ".join(f"{k} ({n} runs)" for k, n in prov["executions"].items()) or "—"),
             f"- generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {platform.node()}",
             "", "Each cell: published → reproduced (difference) status. " + _legend(plan), ""]
    by_key = {(c.row, c.col): c for c in cells}
    cols = [c["id"] for c in m.columns]
    lines.append("| | " + " | ".join(cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for row in m.rows:
        lines.append(f"| {row['id']} | " + " | ".join(cell_text(by_key[(row['id'], col)]) for col in cols) + " |")
    mad = cov["mean_abs_delta"]
    lines += ["", "## Summary", "",
              f"- coverage: {cov['reproduced_cells']} of {cov['reproducible_cells']} reproducible published cells "
              f"measured ({cov['cited']} cells cited, not run; {cov['pending']} pending; {cov['failed']} failed)",
              (f"- within tolerance or the seeds' spread: {cov['within_tolerance']} of {cov['reproduced_cells']}"
               if profiles.judged(plan.profile) else
               f"- not comparable ({plan.profile} profile): {cov['not_comparable']} of {cov['reproduced_cells']} "
               "cells are not judged against the paper"),
              f"- mean absolute difference: {_fmt(mad) if mad is not None else '—'}"]
    if cov["stale"]:
        lines.append(f"- stale: {cov['stale']} cells have runs trained at an older numerics revision of their code "
                     "(shown, not judged, not counted above); `runner.py reproduce TABLE --rerun-stale` retrains them")
    claims = claim_results(plan, cells)
    if claims:
        lines += ["", "## The paper's claims", "", "| claim | reproduced | on the published numbers |", "|---|---|---|"]
        for c in claims:
            lines.append(f"| {c['text']} | **{c['status']}**: {c['detail']} | {c['published_status']} |")
    winners = [c for c in cells if c.winner is not None]
    if winners:
        lines += ["", "## Best-of-grid winners", "", "| row | column | winning point | grid (point: value) |",
                  "|---|---|---|---|"]
        for c in winners:
            grid = "; ".join(f"{_point(p['params'])}: {_fmt(p['value'])}" for p in c.grid)
            lines.append(f"| {c.row} | {c.col} | {_point(c.winner)} | {grid} |")
    cited = sorted({(c.row if c.status == 'cited' else None, c.note) for c in cells if c.status == "cited"},
                   key=str)
    if cited:
        lines += ["", "## Cited, not run", ""] + [f"- {r or 'column'}: {n}" for r, n in cited]
    if plot_name:
        lines += ["", "## Plot", "", f"![reproduced vs published]({plot_name})"]
    if plan.manifest.figures:
        lines += ["", "## The paper's figures", ""]
        for fig in plan.manifest.figures:
            title = fig.get("title") or fig["name"]
            png = (figures or {}).get(fig["name"])
            if png:
                lines.append(f"![{title}]({png})")
            elif fig["kind"] == "heatmap" and fig["name"] not in plan.figure_cells:
                lines.append(f"- {title}: its runs are not planned (ask with `--figures {fig['name']}`)")
            else:
                lines.append(f"- {title}: waiting for finished runs")
        lines += _item_lines(plan, drawn)
    teachers = teacher_rows(plan, store)
    if teachers:
        lines += ["", "## Teachers", "", "The teachers the students distilled from, trained in this store.", "",
                  "| teacher | dataset | top-1 | × chance | run |", "|---|---|---|---|---|"]
        lines += [f"| {t['model']} | {t['dataset']} | {_fmt(t['top1'])} | {t['times_chance']:.1f} | `{t['run']}` |"
                  for t in teachers]
    ran = readings_that_ran(plan, store)
    if ran:
        lines += ["", "## Readings that ran", "",
                  "The named options of the finished runs (each result records its whole config).", "",
                  "| option | value | runs |", "|---|---|---|"]
        for field_name, values in sorted(ran.items()):
            for value, n in sorted(values.items()):
                lines.append(f"| {field_name} | `{value}` | {n} |")
    if m.notes:
        lines += ["", "## Readings of the paper (from the manifest)", "", m.notes.strip()]
    return "\n".join(lines) + "\n"


def _legend(plan: TablePlan) -> str:
    tols = ", ".join(f"{k} {v:g}" for k, v in sorted((plan.manifest.tolerances or {}).items()))
    spread = ("Mean ± std (n seeds) where there are several. ✓ within: |difference| <= the tolerance of the cell's "
              f"kind ({tols}; parameters 5 %), or the published number inside the interval the seeds support "
              "(mean ± t·Welch standard error, the paper's printed std where it gives one); ✗ outside.")
    stale = (" stale: a run of the cell was trained at an older numerics revision of its code; its number is "
             "shown, not judged.")
    if profiles.judged(plan.profile):
        return spread + stale
    return (f"~ not comparable: {plan.profile} numbers are never judged against the paper's (parameter counts "
            "still are). Mean ± std (n seeds) where there are several." + stale)


def _point(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "—"


def plot_table(plan: TablePlan, cells: list[CellResult], path: Path) -> bool:
    """Reproduced against published: one panel per kind of quantity (accuracy, loss, gap, ...),
    each point coloured by its row and marked by its status, with the y = x line and the kind's
    tolerance band. False if nothing to plot."""
    pts = [c for c in cells if c.published is not None and c.reproduced is not None and c.rule != "aggregate"]
    if not pts:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("accuracy", "loss", "gap", "analysis", "params") if any(c.kind == k for c in pts)]
    rows = [r["id"] for r in plan.manifest.rows if any(c.row == r["id"] for c in pts)]
    colours = {r: plt.cm.tab10(i % 10) for i, r in enumerate(rows)}
    markers = {"within": "o", "outside": "X", NOT_COMPARABLE: "s", STALE: "^"}
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.4 * len(kinds) + 1.6, 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        mine = [c for c in pts if c.kind == kind]
        for c in mine:
            ax.scatter(c.published, c.reproduced, color=colours[c.row], marker=markers.get(c.status, "o"), s=26,
                       edgecolors="k", linewidths=0.3)
            if c.std is not None:
                ax.errorbar(c.published, c.reproduced, yerr=c.std, color=colours[c.row], lw=0.8)
        lo = min(min(c.published, c.reproduced) for c in mine)
        hi = max(max(c.published, c.reproduced) for c in mine)
        pad = (hi - lo) * 0.05 or 0.5
        xs = [lo - pad, hi + pad]
        ax.plot(xs, xs, "k--", lw=0.8)
        tol = mine[0].tolerance
        if tol and kind != "params":
            ax.fill_between(xs, [x - tol for x in xs], [x + tol for x in xs], color="0.85", zorder=0,
                            label=f"± tolerance {tol:g}")
            ax.legend(fontsize=7, loc="upper left")
        ax.set_xlabel(f"published {kind}")
        ax.set_ylabel(f"reproduced ({plan.profile} profile)")
        ax.set_title(f"{plan.manifest.id}: {kind}", fontsize=9)
    handles = [plt.Line2D([], [], color=colours[r], marker="o", ls="", label=r) for r in rows]
    handles += [plt.Line2D([], [], color="0.3", marker=m, ls="", label=st) for st, m in markers.items()
                if any(c.status == st for c in pts)]
    fig.legend(handles=handles, fontsize=7, loc="center right", title="row / status", title_fontsize=7)
    fig.tight_layout(rect=(0, 0, 1 - 1.6 / (4.4 * len(kinds) + 1.6), 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _item_lines(plan: TablePlan, drawn: dict | None) -> list[str]:
    """A figure id's caption, readings and claims (benchmark/catalog/items.py, results/figure_kinds.py)."""
    from ..catalog.items import is_item_path, load_item

    if not is_item_path(plan.manifest.path):
        return []
    from .figure_kinds import item_markdown

    fig = plan.manifest.figures[0]
    result = (drawn or {}).get(fig["name"])
    return item_markdown(load_item(plan.manifest.path), dict(result) if isinstance(result, dict) else
                         ({} if result else None), plan.profile)


def write_reports(plans: list[TablePlan], planner: Planner | PlannedJobs, store: Store, out: Path) -> list[Path]:
    """<out>/<table>.md, <table>.json and <table>.png per table, and <out>/index.md."""
    tables = []
    for plan in plans:  # every table's cells first: bad input (a garbage record) before a file is written
        # one measurer for the cells and the figures: each run's logits are read once
        measurer = Measurer(store, {rid: planner.jobs[rid].config for rid in plan.job_ids})
        tables.append((plan, measurer, aggregate_table(plan, planner, store, measurer)))
        for fig in plan.manifest.figures:
            check_inputs(fig, plan, measurer)
    out.mkdir(parents=True, exist_ok=True)
    written, index = [], []
    for plan, measurer, cells in tables:
        table_id = plan.manifest.id
        png = out / f"{table_id}.png"
        has_plot = plot_table(plan, cells, png)
        figures, drawn = {}, {}
        if plan.manifest.figures:
            for fig in plan.manifest.figures:
                fig_png = out / f"{table_id}.{fig['name']}.png"
                drawn[fig["name"]] = draw_figure(fig, plan, cells, measurer, fig_png)
                figures[fig["name"]] = fig_png.name if drawn[fig["name"]] else None
        md = out / f"{table_id}.md"
        md.write_text(table_markdown(plan, cells, store, png.name if has_plot else None, figures, drawn))
        doc = table_json(plan, cells, store)
        doc["figures"] = {name: (dict(d) if isinstance(d, dict) else bool(d)) for name, d in drawn.items()}
        (out / f"{table_id}.json").write_text(json.dumps(doc, indent=1, default=str))
        written.append(md)
        cov = coverage(cells)
        index.append(f"| [{table_id}]({md.name}) | {plan.manifest.paper} | {plan.profile} | {cov['reproduced_cells']}/"
                     f"{cov['reproducible_cells']} | {cov['within_tolerance']} | "
                     f"{_fmt(cov['mean_abs_delta'])} |")
    lines = ["# Reproduction reports", "", "| table | paper | profile | cells measured | within tolerance | "
             "mean abs. difference |", "|---|---|---|---|---|---|"]
    existing = out / "index.md"
    if existing.exists():  # keep the rows of tables reported earlier into the same folder
        keep = [line for line in existing.read_text().splitlines()
                if line.startswith("| [") and not any(f"[{p.manifest.id}]" in line for p in plans)]
        index = keep + index
    existing.write_text("\n".join(lines + sorted(index)) + "\n")
    return written + [existing]


def plan_for_report(store: Store, tables: list[str], profile: str | None = None,
                    figures: list[str] | None = None) -> tuple[list[TablePlan], PlannedJobs]:
    """The tables' plans as stored by the reproduce that ran them, else planned from today's
    manifests (benchmark/results/reported_plan.py), at ``profile``, else at the one they were last
    reproduced with in the store (BadInput when those differ: one report has one profile), and
    their jobs (what aggregation asks of a Planner)."""
    from ..errors import BadInput
    from ..runs.sessions import last_profile
    from .figures import check_figures_asked

    last = {profile or last_profile(store, table_id(t)) for t in tables}
    if len(last) > 1:
        raise BadInput("--profile", None, f"the tables were last run with different profiles "
                                          f"({', '.join(sorted(last))}); name one with --profile")
    plans, jobs = table_plans(store, tables, [last.pop()] * len(tables), figures)
    check_figures_asked(list(figures or []), plans)
    return plans, jobs


def report_tables(store: Store, tables: list[str], profile: str | None = None, figures: list[str] | None = None,
                  fmt: str = "md", out: Path | None = None) -> tuple[str, list[Path]]:
    """(the text for stdout, the files written) of ``report``: with ``out``, every table's files
    there (``fmt`` csv: one CSV per table; else markdown, JSON, plots and index.md); without, the
    tables as ``fmt`` (md, json, or csv: one CSV of every table's cells)."""
    plans, planner = plan_for_report(store, tables, profile, figures)
    if fmt == "csv":
        return _cells_csv(plans, planner, store, out)
    if out:
        return "", write_reports(plans, planner, store, Path(out))
    texts = []
    for plan in plans:
        cells = aggregate_table(plan, planner, store)
        texts.append(json.dumps(table_json(plan, cells, store), indent=1, default=str) if fmt == "json"
                     else table_markdown(plan, cells, store, None))
    return "".join(text + "\n" for text in texts), []


def _cells_csv(plans: list[TablePlan], planner: Planner | PlannedJobs, store: Store, out: Path | None) -> tuple[str, list[Path]]:
    """The cells of every table (benchmark.results.frames.CELL_COLUMNS) as one CSV text, or with ``out``
    as ``<out>/<table>.csv`` per table."""
    import pandas as pd

    from .frames import cells_frame

    frames = [cells_frame(plan, aggregate_table(plan, planner, store)) for plan in plans]
    if not out:
        return pd.concat(frames, ignore_index=True).to_csv(index=False), []
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    for plan, frame in zip(plans, frames):
        path = Path(out) / f"{plan.manifest.id}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return "", written
