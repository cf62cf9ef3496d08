"""What a figure id's own figure spec may say (``spec:`` of manifests/<paper>/figures/<id>.yaml,
benchmark/catalog/items.py) and its structural check, run when the entry is read. The kinds
beyond a table's own (sections.FIGURE_KINDS) are ATS's analyses of teachers' logits (Figs. 3, 4,
5, 6, 8, 12); benchmark/results/figure_kinds.py computes and draws them. ``logits: train`` (the
default of these kinds) reads each run's training-set logits, ``test`` its saved test logits.

```yaml
# ATS Fig. 4: histograms (200 bins) of the target logit f_y and of sigma(g), the std of the wrong logits
spec: {kind: logit_histograms, col: Test acc, rows: [...], bins: 200}
# ATS Fig. 5: mean and std over the samples of the derived and the inherent variance at tau
spec: {kind: variance_bars, col: Test acc, rows: [...], tau: 1.0}
# ATS Fig. 6: Spearman, top-5 overlap, Kendall's tau and the L1 distillation distance of p^T at tau
# between the first teacher of each group and every other one
spec: {kind: teacher_agreement, col: Test acc, groups: [[...], [...]], tau: 4.0}
# ATS Figs. 8 and 12: one training sample's probability vector under TS, and under ATS for one row
spec: {kind: probability_bars, col: Test acc, rows: [...], target_class: 1, tau: 4.0, ats_row: ..., ats: {tau1: 5.0, tau2: 3.0}}
# ATS Fig. 3: per (teacher, student, tau) point, the teacher's derived average and variance against
# the KD improvement ratio (Acc_KD - Acc_NoKD) / Acc_NoKD
spec: {kind: kd_scatter, cols: [...], kd_row: KD, nokd_row: NoKD, taus: [1, 2, 4, 8, 16]}
# LS-KD Table 3 / Table K.1: the diffusion index (Eq. 1) of each column's student from row T1 to row
# T2, for ImageNet target classes (torchvision's class names), S and D by App. G.2 (the nearest
# `similar` and farthest `dissimilar` classes by the reference cell's centroids); distance centroid
# (Table 3) or pairwise (App. K, over the first per_class samples of each class); normaliser all or union
spec: {kind: diffusion_index, cols: [...], from_row: T=1, to_row: T=3, reference: {row: Teacher, col: ...},
       targets: [golden retriever, ...], distance: centroid, normaliser: all, similar: 10, dissimilar: 900,
       per_class: {train: 150, val: 50}}
# LS-KD Fig. 1: Mueller's projection (App. F) of three classes' penultimate features, a panel per
# (row, column, split); bias: classes (the plotted classes' biases) or code (the authors' classes 0-2)
spec: {kind: projection, rows: [...], cols: [...], classes: [miniature poodle, standard poodle, submarine],
       per_class: {train: 150, val: 50}, bias: classes}
```

The penultimate kinds (diffusion_index, projection) read each run's penultimate features
(benchmark/results/penultimate.py); their class names are resolved when the figure is drawn.
"""

from __future__ import annotations

from ..errors import BadInput
from .sections import FIGURE_KINDS, check_figures

KINDS = ("logit_histograms", "variance_bars", "teacher_agreement", "probability_bars", "kd_scatter",
         "diffusion_index", "projection")
PENULTIMATE_KINDS = ("diffusion_index", "projection")
FIELDS = {"logit_histograms": {"col", "rows", "bins"},
          "variance_bars": {"col", "rows", "tau"},
          "teacher_agreement": {"col", "groups", "rows", "tau"},
          "probability_bars": {"col", "rows", "target_class", "tau", "ats_row", "ats"},
          "kd_scatter": {"cols", "kd_row", "nokd_row", "taus"},
          "diffusion_index": {"cols", "from_row", "to_row", "reference", "targets", "distance", "normaliser",
                              "similar", "dissimilar", "per_class"},
          "projection": {"rows", "cols", "classes", "per_class", "bias"}}
COMMON = {"kind", "logits"}


def flat_params(params: dict, prefix: str = "") -> dict:
    """A grid point's parameters as {dotted path: value} (``{"loss": {"tau": 2}}`` -> ``{"loss.tau": 2}``)."""
    out = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        out.update(flat_params(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def kd_scatter_reads(fig: dict, params: dict) -> bool:
    """Whether ATS Fig. 3's scatter reads a KD grid point: a temperature of ``taus`` with the
    student's temperature equal to the teacher's (the named reading of the spec's notes)."""
    flat = flat_params(params)
    tau = flat.get("loss.tau")
    return tau in fig["taus"] and flat.get("loss.student_tau", tau) == tau


def _positive(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and v > 0


def check_spec(spec, path, rows: list[str], cols: list[str]) -> None:
    """An entry's own figure spec; a table figure's kinds (sections.FIGURE_KINDS) are checked by
    sections.check_figures, with ``logits`` besides."""
    if not isinstance(spec, dict):
        raise BadInput(path, "spec", "must be a mapping")
    if spec.get("kind") in FIGURE_KINDS:
        own = {k: v for k, v in spec.items() if k != "logits"}
        check_figures([{**own, "name": "figure"}], path, rows, cols)
        if spec.get("logits", "test") not in ("train", "test"):
            raise BadInput(path, "spec.logits", "must be train or test")
        return
    kind = spec.get("kind")
    if kind not in KINDS:
        raise BadInput(path, "spec.kind", f"must be one of {', '.join(KINDS + FIGURE_KINDS)}")
    extra = set(spec) - FIELDS[kind] - COMMON
    if extra:
        raise BadInput(path, f"spec.{sorted(extra)[0]}", f"not a field of a {kind} figure")
    if kind in PENULTIMATE_KINDS:
        return _check_penultimate(spec, path, rows, cols)
    if spec.get("logits", "train") not in ("train", "test"):
        raise BadInput(path, "spec.logits", "must be train or test")
    if kind == "teacher_agreement":
        groups = spec.get("groups")
        if not isinstance(groups, list) or not groups or any(not isinstance(g, list) or len(g) < 2 for g in groups):
            raise BadInput(path, "spec.groups", "must be a list of groups of at least two rows (the first is the reference)")
        spec["rows"] = [r for g in groups for r in g]
    for key, known, noun in (("rows", rows, "row"), ("cols", cols, "column")):
        if key in FIELDS[kind] | ({"rows"} if kind == "teacher_agreement" else set()):
            items = spec.get(key)
            if not isinstance(items, list) or not items or any(i not in known for i in items):
                raise BadInput(path, f"spec.{key}", f"must be a non-empty list of {noun}s of the table")
    for key in ("col", "kd_row", "nokd_row", "ats_row"):
        if key in FIELDS[kind] and (key != "ats_row" or key in spec):
            known = cols if key == "col" else rows
            if spec.get(key) not in known:
                raise BadInput(path, f"spec.{key}", f"must name a {'column' if key == 'col' else 'row'} of the table")
    for key in ("tau", "bins", "target_class"):
        if key in spec and not (_positive(spec[key]) or (key == "target_class" and spec[key] == 0)):
            raise BadInput(path, f"spec.{key}", "must be a positive number")
    if kind == "kd_scatter" and (not isinstance(spec.get("taus"), list) or not all(map(_positive, spec["taus"]))):
        raise BadInput(path, "spec.taus", "must be a list of positive temperatures")
    if "ats" in spec and (not isinstance(spec["ats"], dict) or set(spec["ats"]) != {"tau1", "tau2"}
                          or not all(map(_positive, spec["ats"].values()))):
        raise BadInput(path, "spec.ats", "must be {tau1: number, tau2: number}")


def _names(spec, path, key: str, known: list[str], noun: str) -> None:
    items = spec.get(key)
    if not isinstance(items, list) or not items or any(i not in known for i in items):
        raise BadInput(path, f"spec.{key}", f"must be a non-empty list of {noun}s of the table")


def _check_penultimate(spec: dict, path, rows: list[str], cols: list[str]) -> None:
    """LS-KD's diffusion index and projection (the class names are checked when drawn: resolving
    them imports torchvision, which reading the catalogue does not need)."""
    if "logits" in spec:
        raise BadInput(path, "spec.logits", "not a field of a penultimate-feature figure (it reads features)")
    _names(spec, path, "cols", cols, "column")
    per_class = spec.get("per_class", {"train": 150, "val": 50})
    if not isinstance(per_class, dict) or set(per_class) != {"train", "val"} \
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in per_class.values()):
        raise BadInput(path, "spec.per_class", "must be {train: N, val: N}, positive whole numbers")
    key, names = ("targets", spec.get("targets")) if spec["kind"] == "diffusion_index" else ("classes", spec.get("classes"))
    size = 3 if key == "classes" else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names) \
            or (size and len(names) != size) or len(set(names)) != len(names):
        raise BadInput(path, f"spec.{key}", f"must be {'3' if size else 'a list of'} distinct class names "
                                            "(torchvision's ImageNet names)")
    if spec["kind"] == "projection":
        _names(spec, path, "rows", rows, "row")
        if spec.get("bias", "classes") not in ("classes", "code"):
            raise BadInput(path, "spec.bias", "must be classes (the plotted classes' biases) or code (the authors' "
                                              "code: the biases of classes 0-2)")
        return
    for k in ("from_row", "to_row"):
        if spec.get(k) not in rows:
            raise BadInput(path, f"spec.{k}", "must name a row of the table")
    ref = spec.get("reference")
    if not isinstance(ref, dict) or set(ref) != {"row", "col"} or ref["row"] not in rows or ref["col"] not in cols:
        raise BadInput(path, "spec.reference", "must be {row: R, col: C}, a cell of the table (App. G.2's reference "
                                               "network)")
    if spec.get("distance", "centroid") not in ("centroid", "pairwise"):
        raise BadInput(path, "spec.distance", "must be centroid (Table 3) or pairwise (App. K)")
    if spec.get("normaliser", "all") not in ("all", "union"):
        raise BadInput(path, "spec.normaliser", "must be all (every other class) or union (S u D)")
    for k, default in (("similar", 10), ("dissimilar", 900)):
        v = spec.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BadInput(path, f"spec.{k}", "must be a positive whole number of classes")


def penultimate_cells(fig: dict) -> tuple[list[str], list[str]]:
    """(rows, columns) a penultimate kind reads: the diffusion index also its reference cell."""
    if fig["kind"] == "projection":
        return list(fig["rows"]), list(fig["cols"])
    rows = [fig["from_row"], fig["to_row"]]
    ref = fig["reference"]
    return rows + ([ref["row"]] if ref["row"] not in rows else []), \
        list(fig["cols"]) + ([ref["col"]] if ref["col"] not in fig["cols"] else [])
