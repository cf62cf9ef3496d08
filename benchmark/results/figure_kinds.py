"""The figure kinds of the figure ids (benchmark/catalog/items.py) beyond a table's own
(benchmark/results/figures.py): ATS's analyses of teachers' logits (Figs. 3, 4, 5, 6, 8, 12) over
a table's finished runs. Their specs' formats and checks: benchmark/catalog/figure_specs.py.

Each kind computes named *quantities* (``mean_target_logit/CIFAR-100 Teachers/RES110``) that an
entry's ``readings`` (numbers the paper prints, or digitised off its plot with their source) and
``claims`` (``left op factor * right``) are evaluated on, then draws one PNG with the paper's axes.
ATS computes them over the training samples (ats.txt:190, 566-568), so ``logits: train`` (the
default here) reads each run's training-set logits (benchmark/results/train_logits.py); ``test``
its saved test logits.
"""

from __future__ import annotations

import math
from pathlib import Path

# ---------------------------------------------------------------- metrics


def _logits(fig: dict, measurer, rid: str):
    if fig.get("logits", "train") == "test":
        return measurer.logits(rid)
    from .train_logits import train_logits

    return train_logits(measurer.store, rid)


def _wrong(z, y):
    import torch

    mask = torch.ones_like(z, dtype=torch.bool)
    mask[torch.arange(len(y)), y] = False
    return z[mask].view(len(y), -1)


def _ranks(x):
    return x.argsort(dim=1).argsort(dim=1).float()


def spearman(p, q):
    """Per-sample Spearman correlation of two probability vectors (Pearson of their ranks; no ties)."""
    a, b = _ranks(p), _ranks(q)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def kendall(p, q, chunk: int = 4096):
    """Per-sample Kendall's tau-a: (concordant - discordant) pairs over C(C-1)/2."""
    import torch

    out = []
    c = p.shape[1]
    for i in range(0, len(p), chunk):
        a, b = p[i:i + chunk], q[i:i + chunk]
        s = torch.sign(a[:, :, None] - a[:, None, :]) * torch.sign(b[:, :, None] - b[:, None, :])
        out.append(s.sum((1, 2)) / (c * (c - 1)))
    return torch.cat(out)


def top5_overlap(p, q):
    """|C1 & C2| / |C1 | C2| of the top-5 classes (ats.txt:221)."""
    import torch

    k = min(5, p.shape[1])
    a = torch.zeros_like(p, dtype=torch.bool).scatter_(1, p.topk(k, 1).indices, True)
    b = torch.zeros_like(q, dtype=torch.bool).scatter_(1, q.topk(k, 1).indices, True)
    return (a & b).sum(1).float() / (a | b).sum(1).float()


def _runs(fig, plan, measurer) -> dict[str, str]:
    """{row: a finished run of (row, col)} for the rows a figure reads."""
    by_key = {(c.row, c.col): c for c in plan.cells}
    out = {}
    for row in fig["rows"]:
        cell = by_key.get((row, fig["col"]))
        done = [r for r in (cell.job_ids() if cell else []) if measurer.state(r) == "done"]
        if done:
            out[row] = done[0]
    return out


# ---------------------------------------------------------------- the kinds


def _histograms(fig, plan, measurer, plt):
    runs = _runs(fig, plan, measurer)
    if not runs:
        return None
    q, bins = {}, int(fig.get("bins", 200))
    f, axes = plt.subplots(len(runs), 2, squeeze=False, figsize=(8, 1.9 * len(runs) + 0.8))
    for i, (row, rid) in enumerate(runs.items()):
        z, y = _logits(fig, measurer, rid)
        fy = z.gather(1, y[:, None]).squeeze(1)
        sg = _wrong(z, y).std(dim=1, unbiased=False)
        q[f"mean_target_logit/{row}"], q[f"min_target_logit/{row}"] = float(fy.mean()), float(fy.min())
        q[f"mean_wrong_std/{row}"] = float(sg.mean())
        for j, (values, name) in enumerate(((fy, "target logit $f_y$"), (sg, r"$\sigma(\mathbf{g})$"))):
            # one filled outline per histogram: 200 bars each made a report's drawing 5x slower
            axes[i][j].hist(values.numpy(), bins=bins, color=f"C{j}", histtype="stepfilled")
            axes[i][j].set_title(f"{row}: {name}", fontsize=7)
            axes[i][j].set_ylabel("samples", fontsize=7)
            axes[i][j].set_xlabel(name, fontsize=7)
    return f, q


def _variance_bars(fig, plan, measurer, plt):
    from ..engine import analysis

    runs = _runs(fig, plan, measurer)
    if not runs:
        return None
    tau, q = float(fig.get("tau", 1.0)), {}
    f, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for j, (name, fn) in enumerate((("derived_variance", lambda z, y: analysis.derived_variance(z, y, tau)),
                                    ("inherent_variance", lambda z, y: analysis.inherent_variance(z, y, tau)))):
        means, stds = [], []
        for row, rid in runs.items():
            v = fn(*_logits(fig, measurer, rid))
            means.append(float(v.mean()))
            stds.append(float(v.std()))
            q[f"{name}/{row}"] = means[-1]
        if len(means) > 1 and means[-1] > 0:  # the smallest network's over the largest's (ats.txt:192)
            q[f"{name}_ratio/{list(runs)[0]}/{list(runs)[-1]}"] = means[0] / means[-1]
        axes[j].bar(range(len(runs)), means, yerr=stds, color=f"C{j}", capsize=3)
        axes[j].set_xticks(range(len(runs)), [r.split("/")[-1] for r in runs], rotation=30, fontsize=7)
        axes[j].set_ylabel(f"{name.replace('_', ' ')} (tau={tau:g})", fontsize=8)
    return f, q


def _agreement(fig, plan, measurer, plt):
    import torch

    runs = _runs(fig, plan, measurer)
    tau, q = float(fig.get("tau", 4.0)), {}
    metrics = {"spearman": spearman, "top5_overlap": top5_overlap, "kendall": kendall,
               "distillation_distance": lambda p, r: (p - r).abs().sum(1)}
    series = {m: [] for m in metrics}
    labels = []
    for group in fig["groups"]:
        ref = group[0]
        if ref not in runs:
            continue
        z0, y0 = _logits(fig, measurer, runs[ref])
        p0 = torch.softmax(z0 / tau, 1)
        for row in group[1:]:
            if row not in runs:
                continue
            p1 = torch.softmax(_logits(fig, measurer, runs[row])[0] / tau, 1)
            labels.append(f"{ref.split('/')[-1]}-{row.split('/')[-1]}")
            for m, fn in metrics.items():
                value = float(fn(p0, p1).mean())
                series[m].append(value)
                q[f"{m}/{row}"] = value
    if not labels:
        return None
    f, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, (m, values) in zip(axes, series.items()):
        ax.bar(range(len(labels)), values)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=6)
        ax.set_title(m.replace("_", " "), fontsize=8)
    return f, q


def _probability_bars(fig, plan, measurer, plt):
    import torch

    from ..engine import analysis

    runs = _runs(fig, plan, measurer)
    if not runs:
        return None
    tau, target = float(fig.get("tau", 4.0)), int(fig.get("target_class", 1))
    panels = [(row, rid, None) for row, rid in runs.items()]
    if fig.get("ats_row") in runs:
        panels.append((fig["ats_row"], runs[fig["ats_row"]], fig["ats"]))
    q, sample = {}, None
    f, axes = plt.subplots(len(panels), 1, squeeze=False, figsize=(7, 1.6 * len(panels) + 0.6))
    for i, (row, rid, ats) in enumerate(panels):
        z, y = _logits(fig, measurer, rid)
        if sample is None:  # the first training sample of the class (the paper draws one at random)
            hits = (y == target).nonzero()
            if len(hits) == 0:
                return None
            sample = int(hits[0])
        zs, ys = z[sample:sample + 1], y[sample:sample + 1]
        p = analysis.ats_probs(zs, ys, ats["tau1"], ats["tau2"]) if ats else torch.softmax(zs / tau, 1)
        name = f"{row} ATS" if ats else row
        v = analysis.derived_variance(zs, ys, ats["tau2"] if ats else tau, ats["tau1"] if ats else None)
        q[f"sample_derived_variance/{name}"] = float(v[0])
        axes[i][0].bar(range(p.shape[1]), p[0].numpy(), color="C1" if ats else "C0")
        label = f"ATS tau1={ats['tau1']:g}, tau2={ats['tau2']:g}" if ats else f"TS tau={tau:g}"
        axes[i][0].set_title(f"{row} ({label}); training sample {sample}, y={target}", fontsize=7)
        axes[i][0].set_ylabel("probability", fontsize=7)
    axes[-1][0].set_xlabel("class")
    return f, q


def _kd_scatter(fig, plan, measurer, plt):
    import torch

    from ..catalog.figure_specs import flat_params, kd_scatter_reads
    from ..engine import analysis

    by_key = {(c.row, c.col): c for c in plan.cells}
    xs, ys, colours = [], [], []
    for col in fig["cols"]:
        nokd = [r for r in by_key[(fig["nokd_row"], col)].job_ids() if measurer.state(r) == "done"]
        if not nokd:
            continue
        base = sum(measurer.measure(r, "top1")[0] for r in nokd) / len(nokd)
        for point in by_key[(fig["kd_row"], col)].points:
            if not kd_scatter_reads(fig, point["params"]):
                continue
            tau = flat_params(point["params"])["loss.tau"]
            done = [r for r in point["runs"] if measurer.state(r) == "done"]
            teacher = measurer.teacher_of(done[0]) if done else None
            if not done or teacher is None:
                continue
            acc = sum(measurer.measure(r, "top1")[0] for r in done) / len(done)
            z, y = _logits(fig, measurer, teacher)
            xs.append(float(analysis.derived_average(z, y, float(tau)).mean()))
            ys.append(float(analysis.derived_variance(z, y, float(tau)).mean()))
            colours.append((acc - base) / base * 100 if base else 0.0)
    if not xs:
        return None
    imp = torch.tensor(colours)
    q = {"points": float(len(xs)), "corr_dv_improvement": _corr(torch.tensor(ys), imp),
         "corr_da_improvement": _corr(torch.tensor(xs), imp)}
    f, ax = plt.subplots(figsize=(5.5, 4))
    sc = ax.scatter(xs, ys, c=colours, cmap="RdYlGn", s=[40 if c > 2 else 12 for c in colours])
    f.colorbar(sc, ax=ax, label="KD improvement ratio (%)")
    ax.set_xlabel("derived average $e(\\mathbf{q})$ (smooth regularization)")
    ax.set_ylabel("derived variance $v(\\mathbf{q})$ (class discriminability)")
    ax.set_yscale("log")
    return f, q


def _corr(a, b) -> float:
    if len(a) < 2 or float(a.std()) == 0 or float(b.std()) == 0:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


DRAW = {"logit_histograms": _histograms, "variance_bars": _variance_bars, "teacher_agreement": _agreement,
        "probability_bars": _probability_bars, "kd_scatter": _kd_scatter}


class Drawn(dict):
    """A drawn figure's quantities (truthy even when it has none: the figure was drawn)."""

    def __bool__(self) -> bool:
        return True


def title_above(f, text: str, fontsize: int = 9) -> None:
    """The figure's title, wrapped to its width, and the panels laid out below it (a long title
    set with ``suptitle`` alone runs past both edges and over the first panels)."""
    import textwrap

    width, height = f.get_size_inches()
    lines = textwrap.wrap(text, max(30, int(width * 72 / (0.55 * fontsize))))
    f.suptitle("\n".join(lines), fontsize=fontsize)
    f.tight_layout(rect=(0, 0, 1, 1 - min(0.4, len(lines) * 1.3 * fontsize / 72 / height)))


def draw(fig: dict, plan, measurer, path: Path) -> Drawn | None:
    """Draw ``fig`` to ``path`` and return its quantities; None while none of its runs has finished."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if fig["kind"] in DRAW:
        made = DRAW[fig["kind"]](fig, plan, measurer, plt)
        read = f"{fig.get('logits', 'train')} set"
    else:  # LS-KD's penultimate-feature kinds
        from .penultimate_kinds import DRAW as PENULTIMATE

        made = PENULTIMATE[fig["kind"]](fig, plan, measurer, plt)
        read = "penultimate features"
    if made is None:
        return None
    f, quantities = made
    title_above(f, f"{fig.get('title') or fig['name']} ({plan.profile} profile; {read})")
    path.parent.mkdir(parents=True, exist_ok=True)
    f.savefig(path, dpi=100)
    plt.close(f)
    return Drawn(quantities)


# ---------------------------------------------------------------- readings and claims


def judge_claims(claims: list, quantities: dict) -> list[dict]:
    """Each claim held / not held on the reproduced quantities, or undecided while one is missing."""
    out = []
    for c in claims:
        body = c["compare"]
        left = quantities.get(body["left"])
        right = body["right"] if not isinstance(body["right"], str) else quantities.get(body["right"])
        factor = body.get("factor", 1.0)
        if left is None or right is None or (isinstance(left, float) and math.isnan(left)):
            out.append({"text": c["text"], "status": "undecided", "detail": "a quantity is missing"})
            continue
        ok = {">": left > factor * right, ">=": left >= factor * right, "<": left < factor * right,
              "<=": left <= factor * right}[body["op"]]
        out.append({"text": c["text"], "status": "held" if ok else "not held",
                    "detail": f"{left:.4g} {body['op']} {factor:g} x {right:.4g}"})
    return out


def item_markdown(item, quantities: dict | None, profile: str) -> list[str]:
    """The caption, the readings against the reproduced quantities and the claims of a figure id."""
    lines = ["", f"**{item.label}.** {item.caption or item.title}", ""]
    if quantities is None:
        return lines + ["Not drawn yet: none of the runs it reads has finished."]
    if item.readings:
        lines += ["| quantity | published | reproduced | source |", "|---|---|---|---|"]
        for r in item.readings:
            mine = quantities.get(r["quantity"])
            kind = "digitised reading" if r.get("digitised") else ("approx., text" if r.get("approx") else "text")
            lines.append(f"| {r['quantity']} | {r['value']:g} ({kind}) | "
                         f"{'—' if mine is None else f'{mine:.4g}'} | {r['source']} |")
        lines.append("")
    if item.claims:
        note = "" if profile == "paper" else f" ({profile} profile: not comparable to the paper)"
        lines += [f"Claims{note}:", ""]
        lines += [f"- {c['text']}: **{c['status']}** ({c['detail']})" for c in judge_claims(item.claims, quantities)]
    shown = sorted(quantities.items())[:40]
    if shown:
        lines += ["", "Quantities: " + "; ".join(f"{k} = {v:.4g}" for k, v in shown)]
    return lines
