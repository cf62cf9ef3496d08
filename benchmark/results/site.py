"""A static HTML site of a store's results: ``python runner.py site --store S --out DIR``.

``index.html`` lists every table reproduced in the store (paper, profile, coverage, mean |Δ|,
claims held, date of the newest run); ``<table>.html`` shows the table laid out like the paper
(published, reproduced ± std, Δ, a colour per status), its plots, the paper's claims checked
on both sets of numbers, the readings of the paper (the manifest's notes), the provenance and,
with ``--nightly DIR`` (a ``runner.py nightly --out`` folder), the nightly history of each cell.
Plain HTML and one stylesheet, no script: it opens from disk and any web server can serve it.
The numbers are the report's: the cells come from the aggregator through benchmark.results.frames.
"""

from __future__ import annotations

import datetime
import json
import re
from html import escape
from pathlib import Path

import pandas as pd

from ..catalog import profiles
from ..catalog.plan import Planner
from ..runs.sessions import last_profiles
from ..store.layout import RESULT, Store
from .aggregate import Measurer, aggregate_table, coverage
from .figures import draw_figure
from .frames import cells_frame
from .report import claim_results, plan_info, plot_table, provenance
from .reported_plan import PlannedJobs, table_plans

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.within, td.outside, td.not.comparable, td.stale, td.measured, td.pending, td.failed, td.cited, td.setting { text-align: right; }
.not.comparable { background: #ece8dc; } .within { background: #d8f0d8; } .outside { background: #f6d2d2; } .failed { background: #f0b0b0; }
.pending { background: #fff3c4; } .cited, .setting { background: #eee; color: #666; }
.measured { background: #e3ecf8; } .stale { background: #e6dcf0; }
.pub { color: #555; } .delta { font-size: 0.8rem; } .warn { background: #fff3c4; padding: 0.5rem; }
.legend span { display: inline-block; padding: 0.1rem 0.5rem; margin-right: 0.3rem; border: 1px solid #ccc; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5rem 0; }
pre { white-space: pre-wrap; background: #f8f8f8; padding: 0.8rem; }
"""
STATUS_TEXT = {"within": "within tolerance or the seeds' spread", "outside": "outside",
               "not comparable": "not comparable (smoke/quick: never judged)",
               "stale": "stale (a run trained at an older numerics revision: shown, not judged)", "measured": "measured (nothing published)",
               "pending": "pending", "failed": "failed", "cited": "cited, not run", "setting": "a setting"}


# a night's folder under a nightly output (``runner.py nightly --out``, commands/nightly.py writes them)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _num(x, digits: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and pd.isna(x)) else f"{x:.{digits}f}"


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<link rel=\"stylesheet\" href=\"style.css\">\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; the cells are HTML already (escaped by the caller)."""
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>\n<thead>{head}</thead>\n<tbody>{body}</tbody>\n</table>"


def cell_html(c: pd.Series) -> str:
    status = c["status"]
    rep = _num(c["reproduced"])
    if c["reproduced"] is not None and not pd.isna(c["std"]) and c["std"] is not None:
        rep += f" ± {_num(c['std'])}"
    lines = [f"<span class=\"pub\">{_num(c['published']) if c['published'] is not None else '—'}</span>"]
    if status not in ("cited", "setting"):
        lines.append(f"<b>{rep}</b>")
    if c["delta"] is not None and not pd.isna(c["delta"]):
        lines.append(f"<span class=\"delta\">Δ {c['delta']:+.2f}</span>")
    title = STATUS_TEXT.get(status, status) + (f": {c['note']}" if isinstance(c["note"], str) else "")
    return (f"<td class=\"{escape(status)}\" title=\"{escape(title)}\">" + "<br>".join(lines)
            + f"<br><small>{escape(status)}</small></td>")


def nightly_history(nightly: Path | None, table: str) -> pd.DataFrame:
    """One row per night and cell of ``table``: date, cell, reproduced, status."""
    rows = []
    if nightly is not None and nightly.is_dir():
        for day in sorted(p for p in nightly.iterdir() if p.is_dir() and DATE.match(p.name)):
            try:
                snap = json.loads((day / "nightly.json").read_text())
            except (OSError, ValueError):
                continue
            for key, cell in (snap.get("tables", {}).get(table, {}).get("cells") or {}).items():
                rows.append({"date": day.name, "cell": key, "reproduced": cell.get("reproduced"),
                             "status": cell.get("status")})
    return pd.DataFrame(rows, columns=["date", "cell", "reproduced", "status"])


def _newest_run_date(store: Store, job_ids: list[str]) -> str:
    times = [store.run_file(r, RESULT).stat().st_mtime for r in job_ids if store.run_file(r, RESULT).exists()]
    return datetime.datetime.fromtimestamp(max(times)).strftime("%Y-%m-%d %H:%M") if times else "—"


def table_page(plan, planner: Planner | PlannedJobs, store: Store, out: Path, nightly: Path | None) -> dict:
    """Write ``<out>/<table>.html`` (and its plots); return the table's index entry."""
    m, table_id = plan.manifest, plan.manifest.id
    measurer = Measurer(store, {rid: planner.jobs[rid].config for rid in plan.job_ids})
    results = aggregate_table(plan, planner, store, measurer)
    frame = cells_frame(plan, results)
    cov, claims, prov = coverage(results), claim_results(plan, results), provenance(plan, store)
    by_key = {(r["row"], r["col"]): r for _, r in frame.iterrows()}
    cols = [c["id"] for c in m.columns]
    body = ["<p><a href=\"index.html\">all tables</a></p>", f"<h1>{escape(table_id)}: {escape(m.paper)}</h1>",
            f"<p>{escape(m.title)}</p>",
            f"<p class=\"warn\">{escape(profiles.WARNING[plan.profile].strip('*'))}</p>",
            *([f"<p class=\"warn\">Plan: {escape(plan_info(plan)['note'])}</p>"] if plan_info(plan)["note"] else []),
            "<p class=\"legend\">Each cell: published, <b>reproduced</b> (± std over seeds), Δ, status: "
            + "".join(f"<span class=\"{s}\">{escape(t)}</span>" for s, t in STATUS_TEXT.items()) + "</p>",
            "<p>Tolerance by kind of quantity: " + escape(", ".join(f"{k} {v:g}" for k, v in
                                                                   sorted((m.tolerances or {}).items()))) + ".</p>"]
    body.append("<h2>The table</h2>")
    body.append(_table(["<span class=\"row\"></span>"] + [escape(c) for c in cols],
                       [[f"<td class=\"row\">{escape(r['id'])}</td>"] + [cell_html(by_key[(r["id"], c)]) for c in cols]
                        for r in m.rows]))
    mad = cov["mean_abs_delta"]
    body += ["<h2>Summary</h2>", "<ul>",
             f"<li>coverage: {cov['reproduced_cells']} of {cov['reproducible_cells']} reproducible published cells "
             f"measured ({cov['cited']} cited, {cov['pending']} pending, {cov['failed']} failed, "
             f"{cov['stale']} stale)</li>",
             (f"<li>within tolerance or the seeds' spread: {cov['within_tolerance']} of {cov['reproduced_cells']}</li>"
              if profiles.judged(plan.profile) else
              f"<li>not comparable ({plan.profile} profile): {cov.get('not_comparable', 0)} of "
              f"{cov['reproduced_cells']}</li>"),
             f"<li>mean |Δ|: {_num(mad)}</li>", "</ul>"]
    images = []
    if plot_table(plan, results, out / f"{table_id}.png"):
        images.append((f"{table_id}.png", "reproduced against published"))
    for fig in m.figures or []:
        name = f"{table_id}.{fig['name']}.png"
        if draw_figure(fig, plan, results, measurer, out / name):
            images.append((name, fig.get("title") or fig["name"]))
    if images:
        body.append("<h2>Plots</h2>")
        body += [f"<figure><img src=\"{escape(src)}\" alt=\"{escape(alt)}\"><figcaption>{escape(alt)}</figcaption>"
                 "</figure>" for src, alt in images]
    if claims:
        body.append("<h2>The paper's claims</h2>")
        body.append(_table(["claim", "on the reproduced numbers", "on the published numbers"],
                           [[f"<td class=\"row\">{escape(c['text'])}</td>",
                             f"<b>{escape(c['status'])}</b>: {escape(str(c['detail']))}",
                             escape(c["published_status"])] for c in claims]))
    winners = frame[frame["winner"].notna()]
    if len(winners):
        body.append("<h2>Best-of-grid winners</h2>")
        body.append(_table(["row", "column", "winning point"],
                           [[f"<td class=\"row\">{escape(w['row'])}</td>", escape(w["col"]),
                             escape(", ".join(f"{k}={v}" for k, v in w["winner"].items()))] for _, w in winners.iterrows()]))
    if m.notes:
        body += ["<h2>Readings of the paper</h2>", f"<pre>{escape(m.notes.strip())}</pre>"]
    body += ["<h2>Provenance</h2>", "<ul>",
             f"<li>profile: {escape(plan.profile)}; store: <code>{escape(str(store.root))}</code></li>",
             f"<li>code revision(s): {escape(', '.join(prov['code_revisions']) or 'no finished runs')}</li>",
             f"<li>devices: {escape(', '.join(prov['devices']) or '—')}; device time {prov['device_hours']:.3f} h</li>",
             "<li>execution: " + escape("; ".join(f"{k} ({n} runs)" for k, n in prov["executions"].items()) or "—")
             + "</li>", f"<li>runs: {len(plan.job_ids)}</li>", "</ul>"]
    history = nightly_history(nightly, table_id)
    if len(history):
        pivot = history.pivot_table(index="cell", columns="date", values="reproduced", aggfunc="first")
        body.append("<h2>Nightly history</h2>")
        body.append(_table(["cell"] + [escape(d) for d in pivot.columns],
                           [[f"<td class=\"row\">{escape(str(k))}</td>"] + [_num(v) for v in row]
                            for k, row in pivot.iterrows()]))
    body.append(f"<p><small>generated {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; "
                f"the cells as CSV: <a href=\"{escape(table_id)}.csv\">{escape(table_id)}.csv</a></small></p>")
    frame.to_csv(out / f"{table_id}.csv", index=False)
    (out / f"{table_id}.html").write_text(_page(f"{table_id}: {m.paper}", body))
    held = sum(c["status"] == "held" for c in claims)
    return {"table": table_id, "paper": m.paper, "title": m.title, "profile": plan.profile,
            "coverage": f"{cov['reproduced_cells']}/{cov['reproducible_cells']}", "mean_abs_delta": mad,
            "claims": f"{held}/{len(claims)}" if claims else "—", "date": _newest_run_date(store, plan.job_ids)}


def write_site(store: Store, out: Path, nightly: Path | None = None) -> list[Path]:
    """The index and one page per table reproduced in the store (each under its last profile,
    from its stored plan: benchmark/results/reported_plan.py). Every plan is read before anything is
    written, so a damaged one writes no site."""
    last = sorted(last_profiles(store).items())
    plans, jobs = table_plans(store, [t for t, _ in last], [p for _, p in last])
    out.mkdir(parents=True, exist_ok=True)
    (out / "style.css").write_text(CSS.lstrip())
    entries = [table_page(plan, jobs, store, out, nightly) for plan in plans]
    index = pd.DataFrame(entries, columns=["table", "paper", "title", "profile", "coverage", "mean_abs_delta",
                                           "claims", "date"])
    body = ["<h1>Reproduced tables</h1>", f"<p>Store <code>{escape(str(store.root))}</code>: {len(index)} table(s). "
            "Smoke and quick profiles test the pipeline; their numbers are not comparable to the papers'.</p>"]
    body.append(_table(["table", "paper", "title", "profile", "coverage (measured/reproducible)", "mean |Δ|",
                        "claims held", "newest run"],
                       [[f"<td class=\"row\"><a href=\"{escape(r['table'])}.html\">{escape(r['table'])}</a></td>",
                         escape(r["paper"]), f"<td class=\"row\">{escape(r['title'])}</td>", escape(r["profile"]),
                         escape(r["coverage"]), _num(r["mean_abs_delta"]), escape(r["claims"]), escape(r["date"])]
                        for _, r in index.iterrows()]) if len(index) else "<p>No table has been reproduced in this store.</p>")
    (out / "index.html").write_text(_page("kd-repro results", body))
    return [out / "index.html"] + [out / f"{t}.html" for t in index["table"]]
