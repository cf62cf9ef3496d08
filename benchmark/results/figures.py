"""The papers' figures, drawn from a table's finished runs (a manifest's ``figures:``).

The kinds, enough for the figures whose runs the tables already make:

```yaml
figures:
  # A curve per row over some columns: reproduced (solid) and published (dashed).
  # KL-MSE: student accuracy against the KL temperature.
  - {kind: lines, name: acc_vs_tau, title: "...", cols: [KL tau=1, KL tau=3, ...], rows: [...], ylabel: "top-1 (%)"}
  # An analysis of each row's run over a temperature sweep, computed from its saved test logits.
  # ATS Fig. 7: derived average and derived standard deviation of each teacher against tau, under
  # plain temperature scaling and, with `ats`, with tau1 = target_scale*tau, tau2 = other_scale*tau.
  # `logits: train` averages over the training set (computed from each run's saved model into the
  # store's derived area); the default, test, reads the runs' saved test logits.
  - {kind: analysis_vs_tau, name: fig7, col: Test acc, rows: [...], metrics: [derived_average, derived_std],
     taus: [0.1, 0.5, 1, 2, 4, 10], ats: {target_scale: 1.25, other_scale: 0.75}, logits: train}
  # Top-1 of one cell's runs over a two-axis grid of its own, as a heat map (ATS Fig. 10: KD+ATS,
  # WRN28-8 -> VGG8, tau1 x tau2). The grid replaces the row's; its runs are extra runs of the
  # table, planned only when the figure is asked for (--figures NAME) or with `runs: always`.
  - {kind: heatmap, name: fig10, row: KD+ATS, col: WRN28-8/VGG8,
     grid: {loss.tau1: [1, 2, 3, 4, 5, 6], loss.tau2: [1, 2, 3, 4, 5]}}   # first axis down, second across
  # A group of bars per column, a bar per row: each cell's top-1 as the table reports it (its best
  # grid point), published numbers as crosses; quantities top1/<row>/<col> (ATS Fig. 2).
  - {kind: bars, name: fig2, cols: [ResNet14-110/SFV1, WRN28-1-8/MV2], rows: [NoKD, ST-KD, ST-ILS, LT-KD, LT-ILS]}
  # test top-1 per epoch: a panel per column, a line per row
  - {kind: curves, name: test_acc, cols: [...], rows: [...]}
```

A figure is drawn when at least one of its cells has a finished run; otherwise it is listed as
waiting for runs (a heatmap whose runs were not asked for says how to ask). Nothing is drawn
from published numbers alone.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..catalog.sections import FIGURE_KINDS
from ..errors import BadInput
from .verdict import WITH_NUMBER


def _analysis():
    """benchmark.engine.analysis (torch), imported when a metric is computed, not when a manifest is read."""
    from ..engine import analysis

    return analysis


def _logits(fig: dict, measurer, rid: str):
    """A run's test logits, or with ``logits: train`` its training set's (ATS Fig. 7 averages over
    the training samples, ats.txt:568), computed once from the saved model into the store's
    derived area (benchmark/results/train_logits.py)."""
    if fig.get("logits", "test") == "train":
        from .train_logits import train_logits

        return train_logits(measurer.store, rid)
    return measurer.logits(rid)


METRICS = {
    "derived_average": lambda z, y, tau, target_tau: _analysis().derived_average(z, y, tau, target_tau).mean(),
    # ATS Fig. 7 plots sigma(q) = sqrt(v(q)) (App. C.4)
    "derived_std": lambda z, y, tau, target_tau: _analysis().derived_variance(z, y, tau, target_tau).sqrt().mean(),
    "derived_variance": lambda z, y, tau, target_tau: _analysis().derived_variance(z, y, tau, target_tau).mean(),
    "target_probability": lambda z, y, tau, target_tau: _analysis().target_probability(z, y, tau, target_tau).mean(),
}


def check_inputs(fig: dict, plan, measurer) -> None:
    """BadInput, before a report writes anything, when a figure cannot be drawn from what the store
    holds: LS-KD's penultimate-feature kinds need each finished run's saved model."""
    from ..catalog.figure_specs import PENULTIMATE_KINDS

    if fig["kind"] in PENULTIMATE_KINDS:
        from .penultimate_kinds import check_inputs as check

        check(fig, plan, measurer)


def figure_names(items: list[str] | None) -> list[str]:
    """``--figures NAME[,NAME...]`` (given any number of times; ``all``): the names asked for; a
    figure id that draws its table's figure (``ats-fig10``) stands for that figure (``fig10``)."""
    names = [name for item in items or [] for name in item.split(",") if name]
    if any("-" in n for n in names):
        from ..catalog.items import figure_alias

        names = [figure_alias(n) if "-" in n else n for n in names]
    return names


def check_figures_asked(names: list[str], plans) -> None:
    """BadInput naming a figure asked for that none of the planned tables has."""
    known = {f["name"] for p in plans for f in p.manifest.figures}
    for name in names:
        if name != "all" and name not in known:
            raise BadInput("--figures", None, f"no figure {name!r} in {', '.join(p.manifest.id for p in plans)}; "
                                              f"figures: {', '.join(sorted(known)) or 'none'}")


def heatmap_matrix(fig: dict, cell, measurer) -> tuple[list, list, list[list[float | None]]]:
    """(down values, across values, top-1 per (down, across) point or None while unfinished): the mean
    top-1 over the point's seeds, at each run's report epoch (the authors' plot_fig10.py reads the
    last epoch's test accuracy, the ATS recipes' report epoch)."""
    (down_path, downs), (across_path, acrosses) = fig["grid"].items()
    values: list[list[float | None]] = [[None] * len(acrosses) for _ in downs]
    for point in cell.points:
        runs = point["runs"]
        if not runs or any(measurer.state(r) != "done" for r in runs):
            continue
        i = downs.index(point["params"][down_path])
        j = acrosses.index(point["params"][across_path])
        values[i][j] = sum(measurer.measure(r, "top1")[0] for r in runs) / len(runs)
    return downs, acrosses, values


def _done_run(cell, measurer) -> str | None:
    for rid in cell.runs:
        if measurer.state(rid) == "done":
            return rid
    return None


def epoch_curve(measurer, rid: str, metric: str = "test_top1") -> tuple[list[int], list[float]]:
    """A run's ``metric`` per epoch (metrics.jsonl's epoch lines that have it; pre-training stage
    lines have no test_top1, a run without ``recipe.epoch_sharpness_gap`` no test_sharpness_gap)."""
    lines = [m for m in measurer.store.metrics(rid) if metric in m and "epoch" in m]
    return [m["epoch"] for m in lines], [m[metric] for m in lines]


CURVE_LABELS = {"test_top1": "test top-1 (%)", "test_sharpness_gap": "sharpness gap (teacher - student)"}


def _draw_curves(plt, fig: dict, rows: list[str], by_key: dict, measurer) -> bool:
    """One panel per column (and per metric, ``metrics``: test_top1 by default), one line per row:
    its finished run's metric against the epoch (KL-MSE's noisy-label figure: a panel per noise
    rate, a line per loss; ATKD Fig. 2: accuracy and sharpness gap per pair)."""
    panels = {col: {row: _done_run(by_key[(row, col)], measurer) for row in rows} for col in fig["cols"]}
    if not any(rid for runs in panels.values() for rid in runs.values()):
        return False
    metrics = fig.get("metrics") or ["test_top1"]
    _, axes = plt.subplots(len(metrics), len(panels), squeeze=False,
                           figsize=(4.2 * len(panels), 3.4 * len(metrics)))
    for i, metric in enumerate(metrics):
        for ax, (col, runs) in zip(axes[i], panels.items()):
            for j, (row, rid) in enumerate(runs.items()):
                if rid is not None:
                    epochs, values = epoch_curve(measurer, rid, metric)
                    ax.plot(epochs, values, "-", color=f"C{j % 10}", label=row)
            ax.set_xlabel("epoch")
            ax.set_ylabel(CURVE_LABELS[metric] if "metrics" in fig else fig.get("ylabel", CURVE_LABELS[metric]))
            ax.set_title(col, fontsize=8)
    axes[0][0].legend(fontsize=6)
    return True


def _draw_bars(plt, fig: dict, rows: list[str], by_key: dict) -> dict[str, float] | None:
    """A group per column, a bar per row: each cell's reproduced top-1 (its best grid point, as the
    table's cell), a cross where the paper prints the number. Returns the quantities
    ``top1/<row>/<col>`` (what a figure id's claims compare), None when no cell has a number."""
    cols = fig["cols"]
    values = {(r, c): by_key[(r, c)].reproduced if by_key[(r, c)].status in WITH_NUMBER else None
              for r in rows for c in cols}
    if all(v is None for v in values.values()):
        return None
    width = 0.8 / len(rows)
    _, ax = plt.subplots(figsize=(1.2 + 0.5 * len(rows) * len(cols), 3.6))
    for i, row in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(cols))]
        ax.bar(xs, [math.nan if values[(row, c)] is None else values[(row, c)] for c in cols], width,
               color=f"C{i % 10}", label=row)
        published = [by_key[(row, c)].published for c in cols]
        ax.plot(xs, [math.nan if v is None else v for v in published], "kx", markersize=5)
    shown = [v for v in values.values() if v is not None]
    ax.set_ylim(max(0.0, min(shown) - 5.0), max(shown) + 2.0)  # the differences, as the paper's bars
    ax.set_xticks(range(len(cols)), cols, fontsize=7)
    ax.set_ylabel(fig.get("ylabel", "top-1 (%)"))
    ax.legend(fontsize=6)
    return {f"top1/{row}/{col}": v for (row, col), v in values.items() if v is not None}


def draw_figure(fig: dict, plan, cells, measurer, path: Path):
    """Draw one figure to ``path``; False when none of its cells has a finished run. The figure
    ids' own kinds (benchmark/results/figure_kinds.py) and ``bars`` return their quantities instead
    of True (a figure id's readings and claims are evaluated on them)."""
    if fig["kind"] not in FIGURE_KINDS:
        from .figure_kinds import draw

        return draw(fig, plan, measurer, path) or False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    by_key = {(c.row, c.col): c for c in cells}
    rows = fig.get("rows") or [r["id"] for r in plan.manifest.rows]
    result: dict | bool = True
    title = fig.get("title") or f"{plan.manifest.id}: {fig['name']}"
    if fig["kind"] == "lines":
        cols = fig["cols"]
        xs = list(range(len(cols)))
        series = []
        for row in rows:
            rep = [by_key[(row, c)].reproduced if by_key[(row, c)].status in WITH_NUMBER
                   else None for c in cols]
            pub = [by_key[(row, c)].published for c in cols]
            series.append((row, rep, pub))
        if not any(v is not None for _, rep, _ in series for v in rep):
            return False
        fig_, ax = plt.subplots(figsize=(6, 4))
        for i, (row, rep, pub) in enumerate(series):
            colour = f"C{i % 10}"
            ax.plot(xs, [math.nan if v is None else v for v in rep], "o-", color=colour, label=f"{row} reproduced")
            ax.plot(xs, [math.nan if v is None else v for v in pub], "x--", color=colour, alpha=0.6,
                    label=f"{row} published")
        ax.set_xticks(xs, cols, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(fig.get("ylabel", "top-1 (%)"))
        ax.legend(fontsize=6)
    elif fig["kind"] == "curves":
        if not _draw_curves(plt, fig, rows, by_key, measurer):
            return False
        fig_ = plt.gcf()
    elif fig["kind"] == "bars":
        result = _draw_bars(plt, fig, rows, by_key)
        if result is None:
            return False
        fig_ = plt.gcf()
    elif fig["kind"] == "heatmap":
        cell = plan.figure_cells.get(fig["name"])
        if cell is None:
            return False
        downs, acrosses, values = heatmap_matrix(fig, cell, measurer)
        if all(v is None for line in values for v in line):
            return False
        (down_path, _), (across_path, _) = fig["grid"].items()
        fig_, ax = plt.subplots(figsize=(1.1 * len(acrosses) + 2.5, 0.6 * len(downs) + 1.8))
        image = ax.imshow([[math.nan if v is None else v for v in line] for line in values], cmap="RdPu")
        fig_.colorbar(image, ax=ax, label="top-1 (%)")
        for i, line in enumerate(values):
            for j, v in enumerate(line):
                ax.text(j, i, "—" if v is None else f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(acrosses)), [f"{across_path}={a}" for a in acrosses], rotation=30, fontsize=7)
        ax.set_yticks(range(len(downs)), [f"{down_path}={d}" for d in downs], fontsize=7)
        ax.set_title(f"{fig['row']} / {fig['col']}", fontsize=8)
    else:
        runs = {row: _done_run(by_key[(row, fig["col"])], measurer) for row in rows}
        runs = {row: rid for row, rid in runs.items() if rid is not None}
        if not runs:
            return False
        taus = [float(t) for t in fig["taus"]]
        variants = [("TS", None)] + ([("ATS", fig["ats"])] if fig.get("ats") else [])
        fig_, axes = plt.subplots(len(fig["metrics"]), len(variants), squeeze=False,
                                  figsize=(4.2 * len(variants), 3.2 * len(fig["metrics"])))
        for row_i, metric in enumerate(fig["metrics"]):
            for col_i, (variant, ats) in enumerate(variants):
                ax = axes[row_i][col_i]
                for j, (row, rid) in enumerate(runs.items()):
                    z, y = _logits(fig, measurer, rid)
                    ys = []
                    for tau in taus:
                        if ats is None:
                            value = METRICS[metric](z, y, tau, None)
                        else:  # ATS: tau2 = other_scale * tau on the wrong classes, tau1 on the target
                            value = METRICS[metric](z, y, ats["other_scale"] * tau, ats["target_scale"] * tau)
                        ys.append(float(value))
                    ax.plot(taus, ys, "-", color=f"C{j % 10}", label=row)
                ax.set_xscale("log")
                ax.set_xlabel("tau")
                ax.set_ylabel(metric)
                ax.set_title(variant, fontsize=8)
        axes[0][0].legend(fontsize=6)
    from .figure_kinds import title_above

    title_above(fig_, f"{title} ({plan.profile} profile)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig_.savefig(path, dpi=110)
    plt.close(fig_)
    return result
