"""LS-KD's penultimate-layer figure kinds (specs: benchmark/catalog/figure_specs.py): the diffusion
index of Table 3 and Table K.1 and Mueller's projection of Fig. 1, over a table's finished runs, from
their penultimate features (benchmark/results/penultimate.py; the math: benchmark/engine/diffusion.py).

Class names are ImageNet's as torchvision's weights record them (``ResNet50_Weights.IMAGENET1K_V1
.meta["categories"]``, no download); class k of the ImageNet stand-in (smoke) stands for ImageNet
class k: the stand-in has the same 1,000 classes, in groups of 5 that share their cues, and the five
retrievers (205-209) happen to make one such group.
"""

from __future__ import annotations

import math

from ..errors import BadInput
from .penultimate import TORCHVISION, features_of, has_model, path_of, penultimate

SPLITS = ("train", "val")


def imagenet_categories() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def class_indices(names: list[str], where) -> list[int]:
    """ImageNet class indices of torchvision's class names; BadInput naming an unknown one."""
    cats = imagenet_categories()
    out = []
    for name in names:
        if name not in cats:
            raise BadInput(where, "spec", f"{name!r} is not an ImageNet class name as torchvision writes it "
                                          f"(e.g. {cats[207]!r})")
        out.append(cats.index(name))
    return out


def _cell_run(plan, measurer, row: str, col: str) -> str | None:
    """A finished run of the cell, or its torchvision weights (a teacher cell at the paper profile)."""
    for cell in plan.cells:
        if (cell.row, cell.col) == (row, col):
            for rid in cell.job_ids():
                if rid.startswith(TORCHVISION) or measurer.state(rid) == "done":
                    return rid
    return None


def _like(plan, measurer) -> str | None:
    """A finished run of the figure, whose data config the torchvision weights' features use."""
    for cell in plan.cells:
        for rid in cell.job_ids():
            if not rid.startswith("checkpoint:") and measurer.state(rid) == "done":
                return rid
    return None


def _cells(fig) -> list[tuple[str, str]]:
    if fig["kind"] == "projection":
        return [(r, c) for r in fig["rows"] for c in fig["cols"]]
    ref = fig["reference"]
    return [(r, c) for r in (fig["from_row"], fig["to_row"]) for c in fig["cols"]] + [(ref["row"], ref["col"])]


def check_inputs(fig: dict, plan, measurer) -> None:
    """Before anything is written: the class names resolve, and every finished run the figure
    reads has its saved model (or its features already), else BadInput naming the run."""
    from ..store.layout import MODEL

    where = plan.manifest.path
    class_indices(fig.get("targets") or fig.get("classes"), where)
    store = measurer.store
    for row, col in _cells(fig):
        rid = _cell_run(plan, measurer, row, col)
        if rid is None:
            continue
        if rid.startswith(TORCHVISION):
            from ..engine.hub import local_file, torchvision_meta

            enum = rid[len(TORCHVISION):]
            meta = torchvision_meta(enum)
            if not path_of(store, rid).exists():
                try:
                    local_file({"torchvision": enum, "file": meta["file"], "sha256": meta["sha256"]})
                except ValueError as err:
                    raise BadInput(where, "spec", f"{row} / {col} is torchvision's {enum}, which {plan.manifest.id} "
                                                  f"reads: {err}") from None
        elif not path_of(store, rid).exists() and not has_model(store, rid):
            raise BadInput(store.run_file(rid, MODEL), None,
                           f"run {rid} ({row} / {col}) finished without its saved model, from which "
                           f"{plan.manifest.id} computes its penultimate features (nothing else keeps them)")


# ---------------------------------------------------------------- Table 3, Table K.1


def _distances(fig, data: dict, split: str, target: int, num: int):
    from ..engine import diffusion

    if fig.get("distance", "centroid") == "centroid":
        return diffusion.centroid_distances(data[split]["centroids"], target)
    return diffusion.pairwise_distances(data[split]["features"], data[split]["labels"], target, num)


def _diffusion(fig, plan, measurer, plt):
    from ..engine import diffusion

    store, per_class = measurer.store, fig.get("per_class", {"train": 150, "val": 50})
    ref = _cell_run(plan, measurer, fig["reference"]["row"], fig["reference"]["col"])
    if ref is None:
        return None
    names = fig["targets"]
    targets = class_indices(names, plan.manifest.path)
    refdata = penultimate(store, ref, (), per_class, like=_like(plan, measurer), splits=("val",))
    num = refdata["val"]["centroids"].shape[0]
    # App. G.2: the reference network's centroids on the validation set (lskd.txt:236)
    sets = {t: diffusion.feature_space_sets(refdata["val"]["centroids"], t, fig.get("similar", 10),
                                            fig.get("dissimilar", 900)) for t in targets}
    normaliser = fig.get("normaliser", "all")
    if fig.get("distance", "centroid") == "centroid":
        classes = []
    elif normaliser == "all":
        classes = list(range(num))
    else:
        classes = sorted({k for t in targets for k in [t, *sets[t][0], *sets[t][1]]})
    q, bars = {}, {}
    for col in fig["cols"]:
        r1 = _cell_run(plan, measurer, fig["from_row"], col)
        r2 = _cell_run(plan, measurer, fig["to_row"], col)
        if r1 is None or r2 is None:
            continue
        before, after = penultimate(store, r1, classes, per_class), penultimate(store, r2, classes, per_class)
        for split in SPLITS:
            values = []
            for t, name in zip(targets, names):
                s, d = sets[t]
                rel = [diffusion.relative_distances(_distances(fig, data, split, t, num), t, normaliser, s, d)
                       for data in (before, after)]
                a_s, a_d = diffusion.diffusion_index(*rel, s), diffusion.diffusion_index(*rel, d)
                q[f"alpha_S/{split}/{col}/{name}"], q[f"alpha_D/{split}/{col}/{name}"] = a_s, a_d
                values.append((a_s, a_d))
            q[f"max_alpha_S/{split}/{col}"] = max(v[0] for v in values)
            q[f"min_alpha_D/{split}/{col}"] = min(v[1] for v in values)
            bars[(col, split)] = values
    if not bars:
        return None
    cats = imagenet_categories()
    keys = list(bars)
    f, axes = plt.subplots(len(keys) + 1, 1, squeeze=False, figsize=(9, 2.4 * len(keys) + 2.2))
    xs = range(len(names))
    for ax, key in zip((a[0] for a in axes), keys):
        ax.bar([x - 0.2 for x in xs], [v[0] for v in bars[key]], 0.4, color="C0", label=r"$\alpha_S$")
        ax.bar([x + 0.2 for x in xs], [v[1] for v in bars[key]], 0.4, color="C1", label=r"$\alpha_D$")
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_xticks(list(xs), names, rotation=20, ha="right", fontsize=6)
        ax.set_ylabel("diffusion index (%)", fontsize=7)
        ax.set_title(f"{key[0]}, {key[1]} set: {fig['from_row']} -> {fig['to_row']}", fontsize=8)
    axes[0][0].legend(fontsize=6)
    text = axes[-1][0]
    text.axis("off")
    lines = [f"S({n}) = {', '.join(cats[k] for k in sets[t][0])}" for t, n in zip(targets, names)]
    text.text(0, 1, f"App. G.2 sets from {fig['reference']['row']} / {fig['reference']['col']} ({ref}), "
                    f"|S| = {fig.get('similar', 10)}, |D| = {fig.get('dissimilar', 900)}:\n" + "\n".join(lines),
              va="top", fontsize=5, family="monospace")
    return f, q


# ---------------------------------------------------------------- Fig. 1


def _projection_panel(data: dict, classes: list[int], bias: str) -> dict:
    """Both splits' 2-D coordinates of the three classes' samples and centroids: Mueller's basis from
    the final layer, the projection, then a PCA fitted on the training split's projected samples and
    centroids (alpha-LS-KD_imagenet_centroids.py:196-205) and applied to both splits."""
    import torch

    from ..engine import diffusion

    # bias "code": the authors take bias[category] with category = [0, 1, 2] (their folder's labels),
    # i.e. the biases of ImageNet classes 0-2 (alpha-LS-KD_imagenet_centroids.py:125, 177-178)
    b = data["bias"][classes] if bias == "classes" else data["bias"][[0, 1, 2]]
    basis = diffusion.muller_basis(data["weight"][classes], b)
    out = {}
    for split in SPLITS:
        feats = [features_of(data, split, k) for k in classes]
        if any(len(x) == 0 for x in feats):
            return {}
        out[split] = ([diffusion.muller_project(x, basis) for x in feats],
                      diffusion.muller_project(torch.stack([x.double().mean(0) for x in feats]), basis))
    mean, comps = diffusion.pca_fit(torch.cat([*out["train"][0], out["train"][1]]), 2)
    return {split: ([diffusion.pca_apply(x, mean, comps) for x in pts], diffusion.pca_apply(cen, mean, comps))
            for split, (pts, cen) in out.items()}


def _geometry(pts, cen) -> tuple[float, float]:
    """(relative centroid distance of the first two classes, d01 / (d01 + d02 + d12); tightness, the
    mean distance of a sample to its class centroid over the mean centroid distance): both free of
    the model's feature scale."""
    d = [float((cen[i] - cen[j]).norm()) for i, j in ((0, 1), (0, 2), (1, 2))]
    spread = sum(float((p - cen[i]).norm(dim=1).sum()) for i, p in enumerate(pts)) / sum(len(p) for p in pts)
    total = sum(d)
    return (d[0] / total, spread / (total / 3)) if total > 0 else (math.nan, math.nan)


def _projection(fig, plan, measurer, plt):
    store, per_class = measurer.store, fig.get("per_class", {"train": 150, "val": 50})
    names = fig["classes"]
    classes = class_indices(names, plan.manifest.path)
    like = _like(plan, measurer)
    panels = {}
    for row in fig["rows"]:
        for col in fig["cols"]:
            rid = _cell_run(plan, measurer, row, col)
            if rid is not None and (like or not rid.startswith(TORCHVISION)):
                coords = _projection_panel(penultimate(store, rid, classes, per_class, like=like), classes,
                                           fig.get("bias", "classes"))
                if coords:
                    panels[(row, col)] = coords
    if not panels:
        return None
    q = {}
    f, axes = plt.subplots(len(fig["rows"]), 2 * len(fig["cols"]), squeeze=False,
                           figsize=(3.0 * 2 * len(fig["cols"]), 2.8 * len(fig["rows"]) + 0.6))
    for i, row in enumerate(fig["rows"]):
        for j, col in enumerate(fig["cols"]):
            for s, split in enumerate(SPLITS):
                ax = axes[i][2 * j + s]
                ax.set_title(f"{row} / {col}, {split}", fontsize=7)
                ax.tick_params(labelsize=5)
                if (row, col) not in panels:
                    ax.text(0.5, 0.5, "not finished", ha="center", transform=ax.transAxes, fontsize=7)
                    continue
                pts, cen = panels[(row, col)][split]
                for k, (p, name) in enumerate(zip(pts, names)):
                    ax.scatter(p[:, 0].numpy(), p[:, 1].numpy(), s=6, alpha=0.6, color=f"C{k}", label=name)
                    ax.scatter([float(cen[k, 0])], [float(cen[k, 1])], s=90, marker="*", color=f"C{k}",
                               edgecolors="k", linewidths=0.5)
                rel, tight = _geometry(pts, cen)
                q[f"relative_centroid_distance/{split}/{row}/{col}"] = rel
                q[f"tightness/{split}/{row}/{col}"] = tight
    axes[0][0].legend(fontsize=5)
    return f, q


DRAW = {"diffusion_index": _diffusion, "projection": _projection}
