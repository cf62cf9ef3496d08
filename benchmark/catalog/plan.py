"""Expand manifests into runs: every cell's runs, every run a resolved config with a content id.

A run is identified by the hash of its resolved config (spec.run_id), so a run that two
tables need (the same teacher, the same NoKD student) is one job, and the jobs form a DAG:
a student depends on its teacher's job, an assistant's student on the assistant's job.

Profiles (smoke, quick, paper) change the configs, the grid points and the seeds; every such
decision is benchmark/catalog/profiles.py's, which this module asks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from ..engine import config as C
from ..errors import BadInput
from ..spec import copy_tree, merge_spec, run_id, set_path
from ..store.layout import reported_metrics
from . import costmodel, items, profiles, resolvememo
from .manifest import Catalog, Manifest, cached_catalog, zoo_entry
from .runcost import DEFAULT_RATE_SOURCE, CostSettings, estimate_run, sizes

# ---------------------------------------------------------------- grids and cells


def grid_points(grid) -> list[dict]:
    """A grid as a list of {dotted path: value}: Cartesian product of a mapping, or the given points."""
    if grid is None:
        return [{}]
    if isinstance(grid, list):
        return [dict(p) for p in grid]
    axes = list(grid.items())
    return [dict(zip([a for a, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


def _check_unscaled_recipe(recipe: dict, where, field_name) -> None:
    """The recipe as the manifest gives it, checked before a profile rewrites its epochs (the
    smoke profile sets one epoch, quick rounds up to one: `epochs: -5` must not pass as 1)."""
    try:
        C.resolve_recipe(copy_tree(recipe), str(where))
    except BadInput as err:
        raise BadInput(where, f"{field_name} ({err.field})" if err.field else field_name, err.problem) from None


def best_point(points: list[dict], top1) -> dict:
    """Best of grid: the point whose runs (seeds) have the highest mean top-1, the first of equal
    ones; ``top1(run id)`` reads a finished run's. The report's best cells pick by the same rule
    (results/aggregate.py)."""
    return max(points, key=lambda p: mean(top1(r) for r in p["runs"]))


def cited_reason(cited, other_id: str) -> str | None:
    """A row's (column's) ``cited``: one reason for all its cells, or {column (row) id: reason}."""
    return cited.get(other_id) if isinstance(cited, dict) else cited


# ---------------------------------------------------------------- plans


@dataclass
class Job:
    id: str
    config: dict
    deps: list[str]
    role: str            # teacher | student
    labels: list[str] = field(default_factory=list)
    gpu_hours: float = 0.0
    bound: str = ""      # the cost model's bound: compute | data | overhead | measured ("" when not costed)

    def summary(self, detail: bool = True) -> dict:
        cfg = self.config
        if not detail:  # plan --json without --detail: what a scheduler needs
            return {"id": self.id, "role": self.role, "model": cfg["model"], "loss": cfg["loss"]["name"],
                    "epochs": cfg["recipe"]["epochs"], "deps": self.deps, "gpu_hours": round(self.gpu_hours, 4),
                    "bound": self.bound}
        return {"id": self.id, "role": self.role, "dataset": cfg["dataset"], "model": cfg["model"],
                "loss": cfg["loss"], "seed": cfg["seed"], "epochs": cfg["recipe"]["epochs"], "deps": self.deps,
                "labels": self.labels, "gpu_hours": round(self.gpu_hours, 4), "bound": self.bound}


@dataclass
class CellPlan:
    row: str
    col: str
    rule: str                 # value | best | ensemble | aggregate | cited | setting | params
    value: object             # what is measured (top1, {analysis: ...}, ...)
    target: str = "student"
    points: list[dict] = field(default_factory=list)  # [{"params": {...}, "runs": [ids]}]
    cited: str | None = None
    model: str | None = None  # for value params
    dataset: str | None = None
    # a row with `from:` whose referenced cell has not finished: {"row", "col", "select", "runs"}
    # (its runs are planned in a later phase, when the referenced cell's best point is known)
    waiting_on: dict | None = None
    taken_from: dict | None = None  # a row with `from:`, resolved: {"row", "col", "point"}

    def job_ids(self) -> list[str]:
        return [r for p in self.points for r in p["runs"]]

    def summary(self, detail: bool = True) -> dict:
        out = {"row": self.row, "col": self.col, "rule": self.rule, "value": self.value, "target": self.target}
        if detail:
            out["points"] = self.points
        else:
            out["runs"] = len(self.job_ids())
        if self.cited:
            out["cited"] = self.cited
        if self.waiting_on:
            out["waiting_on"] = self.waiting_on
        if self.taken_from:
            out["taken_from"] = self.taken_from
        if self.model:
            out["model"], out["dataset"] = self.model, self.dataset
        return out


@dataclass
class TablePlan:
    manifest: Manifest
    profile: str
    cells: list[CellPlan]
    job_ids: list[str]        # every job the table needs, dependencies included, each once
    # the runs of the figures asked for (manifest `figures:` of kind heatmap): name -> its grid as a cell
    figure_cells: dict[str, CellPlan] = field(default_factory=dict)

    def waiting(self) -> list[CellPlan]:
        """Cells whose runs cannot be planned yet (a `from:` row whose referenced cell is unfinished)."""
        return [c for c in self.cells if c.waiting_on]


class Planner:
    """Resolves manifests into jobs; one Planner over several tables shares their jobs."""

    def __init__(self, profile: str = "paper", catalog: Catalog | None = None, data_root: str | None = None,
                 rate: tuple[float, str] | None = None, store=None, figures=(), cost: bool = True,
                 device_kind: str = costmodel.DEFAULT_DEVICE, numerics: str = costmodel.DEFAULT_POLICY,
                 loader_workers: int = costmodel.DEFAULT_LOADER_WORKERS, calibration: str | None = None,
                 decode: str | None = None):
        profiles.check(profile)
        self.profile = profile
        # the store whose finished runs resolve `from:` rows (the best point of another cell); without
        # one, such cells wait (plan shows them as waiting on the referenced cell)
        self.store = store
        # names of figures whose extra runs are planned (heatmaps); "all" for every figure
        self.figures = set(figures or ())
        self.catalog = catalog or cached_catalog()
        self.jobs: dict[str, Job] = {}
        self.data_root = data_root  # where the datasets are; not part of any run id
        self.decode = decode  # data.decode of the image-folder runs (reproduce --decode); None: the default
        # a measured throughput (effective FLOP/s) and where it comes from: it stands for the cost
        # model's compute and overhead bounds; None: the calibration's rates (benchmark/catalog/costmodel.py)
        self.flops_per_s, self.rate_source = rate or (None, DEFAULT_RATE_SOURCE)
        # the calibration (a file, or the package's defaults), the device kind, the numerics policy
        # and the loader workers: checked here, so a bad one is one line before any planning
        self.cost_settings = CostSettings(costmodel.read_calibration(calibration) if cost else None,
                                          device_kind, numerics, loader_workers)
        if cost:
            self.cost_settings.check()
        # cost=False (`list`): no FLOPs, every job's gpu_hours stays 0, and a model that cannot take
        # the dataset's input size is found by `plan` and `reproduce`, not here
        self.cost = cost
        self._memo = resolvememo.ResolveMemo()  # each distinct raw config resolved once
        # a job's hours with its per-step overhead shared (catalog/scaling.py), {(job id, divisor): hours}:
        # plan costs each table's runs and then all of them
        self.shared_overhead_hours: dict[tuple[str, float], float] = {}

    # -- runs

    def _raw_config(self, spec: dict, where, field_name) -> dict:
        for key in ("dataset", "recipe", "model"):
            if not spec.get(key):
                raise BadInput(where, f"{field_name}.{key}", "missing (the merged run spec names none)")
        name = spec["recipe"]
        if name not in self.catalog.recipes:
            raise BadInput(where, f"{field_name}.recipe",
                           f"unknown recipe {name!r}; known: {', '.join(sorted(self.catalog.recipes))}")
        recipe = self.catalog.recipes[name]
        data = merge_spec(recipe.get("data") or {}, spec.get("data_changes") or {})
        train = merge_spec(recipe.get("recipe") or {}, spec.get("recipe_changes") or {})
        recipe_key = resolvememo.key(train)
        if not self._memo.recipe_checked(recipe_key):
            _check_unscaled_recipe(train, where, field_name)
            self._memo.recipe_passed(recipe_key)
        loss = spec.get("loss") or {"name": "ce"}
        raw = {"dataset": spec["dataset"], "data": data, "model": spec["model"],
               "loss": {"name": loss} if isinstance(loss, str) else loss, "recipe": train,
               "seed": spec.get("seed", 0), "init": spec.get("init")}
        if self.data_root:
            raw["data"] = {**raw["data"], "root": self.data_root}
        raw = profiles.apply(self.profile, raw)
        if self.decode:  # after the profile: a generated stand-in has no files to decode
            from ..engine.data.decode import with_decode

            raw = with_decode(raw, self.decode)
        return raw

    def teacher_ref(self, spec: dict, base: dict, where, field_name) -> tuple[dict | None, str | None]:
        """(config's teacher field, teacher job id) for a spec's teacher."""
        teacher = spec.get("teacher")
        if teacher is None:
            return None, None
        # all a teacher depends on (an inline one takes the table's dataset and recipe); a table's
        # students share a few teachers, each found once
        teacher_key = resolvememo.key((teacher, spec.get("dataset"), base.get("dataset"), base.get("recipe")))
        known = self._memo.teacher(teacher_key)
        if known is not None and (known[1] is None or known[1] in self.jobs):
            return dict(known[0]), known[1]
        ref, teacher_id = self._teacher_ref(teacher, spec, base, where, field_name)
        self._memo.remember_teacher(teacher_key, ref, teacher_id)
        return ref, teacher_id

    def _teacher_ref(self, teacher, spec: dict, base: dict, where, field_name) -> tuple[dict, str | None]:
        if isinstance(teacher, str):
            tspec, entry = zoo_entry(self.catalog, spec["dataset"], teacher, where, f"{field_name}.teacher")
            tspec = merge_spec({"dataset": spec["dataset"], "seed": 0}, tspec)
            tv = entry.get("torchvision")
            if tv and profiles.uses_files(self.profile):  # torchvision's published weights (benchmark/engine/hub.py): no job
                if not tspec.get("model"):
                    raise BadInput(self.catalog.zoo_files[(spec["dataset"], teacher)], f"teachers.{teacher}.model",
                                   "missing")
                return {"torchvision": tv["weights"], "file": tv["file"], "sha256": tv["sha256"],
                        "model": tspec["model"]}, None
            ckpt = entry.get("checkpoint")
            if ckpt and profiles.uses_files(self.profile):
                if not tspec.get("model"):
                    raise BadInput(self.catalog.zoo_files[(spec["dataset"], teacher)], f"teachers.{teacher}.model",
                                   "missing")
                return {"checkpoint": str(Path(ckpt["file"]).expanduser()), "sha256": ckpt.get("sha256"),
                        "model": tspec["model"]}, None
            label = f"teacher {teacher}"
        else:
            tspec = merge_spec({"dataset": base.get("dataset"), "recipe": base.get("recipe"), "seed": 0}, teacher)
            label = f"inline teacher {teacher.get('model')}"
        teacher_id = self.job_for(tspec, base, where, f"{field_name}.teacher", role="teacher", label=label)
        return {"run": teacher_id}, teacher_id

    def job_for(self, spec: dict, base: dict, where, field_name, role="student", label="") -> str:
        raw = self._raw_config(spec, where, field_name)
        teacher, dep = self.teacher_ref(spec, base, where, field_name)
        raw["teacher"] = teacher
        raw_key = resolvememo.key(raw)  # taken before resolve, which may coerce raw's values in place
        rid = self._memo.run_id(raw_key)
        if rid not in self.jobs:  # not resolved by this planner yet (None names no job)
            try:
                cfg = C.resolve(raw, where=str(where))
            except BadInput as err:
                raise BadInput(where, f"{field_name}: {err.field}" if err.field else field_name, err.problem) from None
            rid = run_id(cfg)
            self._memo.remember(raw_key, rid)
            if rid not in self.jobs:
                self._new_job(rid, cfg, dep, role, where, field_name)
        job = self.jobs[rid]
        if role == "teacher":
            job.role = "teacher"
        if label and label not in job.labels:
            job.labels.append(label)
        return rid

    def _new_job(self, rid: str, cfg: dict, dep: str | None, role: str, where, field_name) -> None:
        job = self.jobs[rid] = Job(rid, cfg, [dep] if dep else [], role)
        if self.cost:
            est = self._estimate(cfg, dep, where, field_name)
            job.gpu_hours, job.bound = est.hours, est.bound

    def _estimate(self, cfg: dict, dep: str | None, where, field_name) -> costmodel.Estimate:
        try:
            return estimate_run(cfg, self.jobs[dep].config if dep else None, self.flops_per_s, self.cost_settings)
        except RuntimeError as err:  # the model cannot take this input size
            side = sizes(cfg)[0]
            raise BadInput(where, f"{field_name}.model", f"{cfg['model']} cannot take the {side}x{side} "
                                                         f"input of {cfg['dataset']} ({err})") from None

    def dependencies(self, rid: str) -> list[str]:
        """The job and everything it depends on, dependencies first."""
        out, stack = [], [rid]
        while stack:
            cur = stack.pop()
            if cur in out:
                continue
            out.append(cur)
            stack.extend(self.jobs[cur].deps)
        return list(reversed(out))

    # -- tables

    def plan(self, name: str) -> TablePlan:
        """A table's plan, or a figure, analysis or appendix table id's (catalog/items.py)."""
        return self.plan_manifest(items.load(items.find(name)))

    def plan_manifest(self, m: Manifest) -> TablePlan:
        base = merge_spec({"dataset": m.dataset, "recipe": m.recipe}, m.defaults)
        seeds = profiles.seeds(self.profile, m.seeds)
        cells: dict[tuple[str, str], CellPlan] = {}
        # two phases: rows that take another row's best point (`from:`) after every other row
        for phase in (False, True):
            for row in m.rows:
                if ("from" in row) != phase:
                    continue
                for col in m.columns:
                    if phase:
                        cells[(row["id"], col["id"])] = self._cell_from(m, base, row, col, seeds, cells)
                    else:
                        cells[(row["id"], col["id"])] = self._cell(m, base, row, col, seeds)
        ordered = [cells[(row["id"], col["id"])] for row in m.rows for col in m.columns]
        figure_cells = {}
        for fig in m.figures:
            if fig.get("kind") == "heatmap" and (fig.get("runs") == "always" or fig["name"] in self.figures
                                                 or "all" in self.figures):
                figure_cells[fig["name"]] = self._figure_cell(m, base, fig, seeds)
        ids: list[str] = []
        for cell in ordered + list(figure_cells.values()):
            for rid in cell.job_ids():
                if rid.startswith("checkpoint:"):  # a teacher file measured as a cell: no job
                    continue
                for dep in self.dependencies(rid):
                    if dep not in ids:
                        ids.append(dep)
        for rid in ids:
            if m.id not in self.jobs[rid].labels:
                self.jobs[rid].labels.append(m.id)
        return TablePlan(m, self.profile, ordered, ids, figure_cells)

    def _figure_cell(self, m: Manifest, base: dict, fig: dict, seeds: list[int]) -> CellPlan:
        """A heatmap figure's runs: its cell (row x column) with the figure's grid in place of the
        row's. Points the row's own grid has are the same runs (same ids), trained once."""
        row = next(r for r in m.rows if r["id"] == fig["row"])
        col = next(c for c in m.columns if c["id"] == fig["col"])
        where = f"figures[{fig['name']}]"
        if cited_reason(row.get("cited"), col["id"]) or cited_reason(col.get("cited"), row["id"]) \
                or col.get("aggregate") or row.get("ensemble") or "from" in row:
            raise BadInput(m.path, f"{where}.row", "must be a trained, non-ensemble row and column")
        col = {k: v for k, v in col.items() if k != "grid"}
        return self._cell(m, base, {**row, "grid": fig["grid"]}, col, seeds, label=f"{m.id}: figure {fig['name']}")

    def _cell_from(self, m: Manifest, base: dict, row: dict, col: dict, seeds: list[int], cells: dict) -> CellPlan:
        """A row that takes another row's selected grid point in the same column (``from: {row: R,
        select: best}``): the winner of cell (R, column), by the same rule as the report's best-of-grid
        (highest mean top-1). Known only once every run of that cell has finished in the store; until
        then the cell waits (no runs, ``waiting_on`` naming the cell and its runs)."""
        src = row["from"]
        field_name = f"rows[{row['id']}].from"
        ref = cells.get((src["row"], col["id"]))
        if ref is None:
            raise BadInput(m.path, f"{field_name}.row", f"row {src['row']!r} takes its point from another row")
        plain = {k: v for k, v in row.items() if k != "from"}
        if cited_reason(row.get("cited"), col["id"]) or cited_reason(col.get("cited"), row["id"]) \
                or col.get("aggregate") or ref.rule in ("cited", "aggregate", "setting"):
            return self._cell(m, base, plain, col, seeds)  # nothing is trained in this cell
        if ref.rule != "best":
            raise BadInput(m.path, field_name, f"the cell {src['row']} / {col['id']} has no grid to take a best "
                                               "point from")
        runs = ref.job_ids()
        waiting = {"row": ref.row, "col": ref.col, "select": src.get("select", "best"), "runs": runs}
        if self.store is None or not all(self.store.is_done(r) for r in runs):
            value = row.get("value") or col.get("value") or m.value or "top1"
            target = row.get("target") or col.get("target") or "student"
            return CellPlan(row["id"], col["id"], "ensemble" if row.get("ensemble") else "value", value, target,
                            waiting_on=waiting)
        configs = {r: self.jobs[r].config for r in runs}
        point = best_point(ref.points, lambda r: reported_metrics(self.store.result(r), configs[r])["top1"])["params"]
        cell = self._cell(m, base, plain, col, seeds, point=point)
        cell.taken_from = {"row": ref.row, "col": ref.col, "point": point}
        return cell

    def _cell(self, m: Manifest, base: dict, row: dict, col: dict, seeds: list[int], label: str | None = None,
              point: dict | None = None) -> CellPlan:
        """The runs of one cell. ``point``: a grid point taken from another cell (`from:`), applied
        after the row's `set` like a grid point of the row's own."""
        row_id, col_id = row["id"], col["id"]
        field_name = f"rows[{row_id}] x columns[{col_id}]"
        value = row.get("value") or col.get("value") or m.value or "top1"
        target = row.get("target") or col.get("target") or "student"
        cited = cited_reason(row.get("cited"), col_id) or cited_reason(col.get("cited"), row_id)
        if cited:
            return CellPlan(row_id, col_id, "cited", value, target, cited=cited)
        if col.get("aggregate"):
            return CellPlan(row_id, col_id, "aggregate", value, target)
        if value == "setting":
            return CellPlan(row_id, col_id, "setting", value, target)
        variables = {**(row.get("vars") or {}), **(col.get("vars") or {})}

        def subst(x, where):
            """`$name` -> the column's (or row's) variable: what a row needs that depends on the column."""
            if isinstance(x, str) and x.startswith("$"):
                if x[1:] not in variables:
                    raise BadInput(m.path, where, f"no variable {x!r} in the column's or row's vars")
                return copy_tree(variables[x[1:]])
            if isinstance(x, dict):
                return {k: subst(v, where) for k, v in x.items()}
            if isinstance(x, list):
                return [subst(v, where) for v in x]
            return x

        col_set = subst(col.get("set") or {}, f"columns[{col_id}].set")
        row_set = subst(row.get("set") or {}, f"rows[{row_id}].set")
        spec = merge_spec(merge_spec(base, col_set), row_set)
        for path, v in (point or {}).items():
            spec = set_path(spec, path, v)
        if value == "params":
            if not spec.get("model"):
                raise BadInput(m.path, f"{field_name}.model", "a params cell needs a model")
            return CellPlan(row_id, col_id, "params", value, target, model=spec["model"], dataset=spec["dataset"])
        if row.get("grid") is not None and col.get("grid") is not None:
            raise BadInput(m.path, field_name, "both the row and the column have a grid")
        grid = subst(row.get("grid") if row.get("grid") is not None else col.get("grid"), f"{field_name}.grid")
        if isinstance(grid, dict) and any(not isinstance(v, list) or not v for v in grid.values()):
            raise BadInput(m.path, f"{field_name}.grid", "a grid axis (after variables) must be a non-empty list")
        points = profiles.grid(self.profile, grid_points(grid))
        ensemble = row.get("ensemble")
        cell = CellPlan(row_id, col_id, "ensemble" if ensemble else ("best" if grid is not None else "value"), value, target)
        for i, point in enumerate(points):
            pspec = spec
            for path, v in point.items():
                pspec = set_path(pspec, path, v)
            variants = ensemble if ensemble else [{"seed": s} for s in seeds]
            runs = []
            for j, change in enumerate(variants):
                vspec = merge_spec(pspec, change)
                where_field = f"{field_name}" + (f".grid[{i}]" if grid is not None else "") + \
                    (f".ensemble[{j}]" if ensemble else "")
                if target == "teacher":
                    if vspec.get("teacher") is None:
                        raise BadInput(m.path, where_field, "target teacher, but the run spec has no teacher")
                    ref, teacher_id = self.teacher_ref(vspec, base, m.path, where_field)
                    if teacher_id is None:  # a file, not a run: "checkpoint:<path>" or "checkpoint:torchvision:<enum>"
                        runs.append(f"checkpoint:{ref['checkpoint']}" if "checkpoint" in ref
                                    else f"checkpoint:torchvision:{ref['torchvision']}")
                        continue
                    runs.append(teacher_id)
                else:
                    runs.append(self.job_for(vspec, base, m.path, where_field,
                                             label=label or f"{m.id}: {row_id} / {col_id}"))
            cell.points.append({"params": point, "runs": runs})
        return cell
