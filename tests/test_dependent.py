"""Rows at another row's best grid point (`from:`) and heatmap figures whose runs are planned only
when asked for, on a tiny manifest in ATS Table 3's layout (tests/catalog) and on ats-table2."""

import json

import pytest
import yaml

from benchmark.catalog.manifest import load_manifest
from benchmark.catalog.plan import Planner
from benchmark.errors import BadInput
from benchmark.results.aggregate import Measurer, aggregate_table
from benchmark.results.report import write_reports
from benchmark.runs.options import WorkerOptions
from benchmark.runs.worker import run_worker
from benchmark.store.layout import Store
from tests.helpers import REPO
from tests.helpers import cli as in_process

CATALOG = REPO / "tests" / "catalog"
TEST_MANIFEST = CATALOG / "manifests" / "test" / "ats-table3.yaml"
COL = "TinyImageNet/WRN50-2/ANet"


def _cell(plan, row, col=COL):
    return next(c for c in plan.cells if c.row == row and c.col == col)


def _train(store, planner, ids):
    for rid in ids:
        store.ensure_config(rid, planner.jobs[rid].config)
    run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1))


def test_from_row_waits_then_runs_at_the_referenced_cells_best_point(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    store = Store(tmp_path / "store")
    # paper profile of the test manifest: generated data, 2 epochs, both KD+ATS grid points
    first = Planner("paper", store=store).plan("ats-table3")
    ens = _cell(first, "KD+ATS+Ens")
    assert ens.waiting_on["row"] == "KD+ATS" and ens.job_ids() == [] and first.waiting() == [ens]
    ats = _cell(first, "KD+ATS")
    assert set(ens.waiting_on["runs"]) == set(ats.job_ids()) and len(ats.points) == 2
    planner = Planner("paper", store=store)
    plan = planner.plan("ats-table3")
    _train(store, planner, plan.job_ids)  # phase 1: the teacher and the KD+ATS grid

    planner = Planner("paper", store=store)  # a new phase: the store now holds every KD+ATS run
    plan = planner.plan("ats-table3")
    ens, ats = _cell(plan, "KD+ATS+Ens"), _cell(plan, "KD+ATS")
    assert not plan.waiting() and ens.waiting_on is None
    # the winner, computed here from the results: the point with the highest top-1 (lr 0 cannot learn)
    top1 = [store.result(p["runs"][0])["metrics"]["last"]["top1"] for p in ats.points]
    assert top1[1] > top1[0]
    best = ats.points[top1.index(max(top1))]
    assert ens.taken_from == {"row": "KD+ATS", "col": COL, "point": best["params"]}
    members = ens.points[0]["runs"]
    assert members[0] == best["runs"][0]  # the seed-0 member IS the winning KD+ATS run
    cfg = planner.jobs[members[1]].config
    assert cfg["seed"] == 1 and (cfg["loss"]["tau1"], cfg["loss"]["tau2"]) == (4.0, 2.0)
    assert cfg["recipe"]["optimizer"]["lr"] == 0.05
    _train(store, planner, plan.job_ids)
    cells = {(c.row, c.col): c for c in aggregate_table(plan, planner, store, Measurer(store))}
    done = cells[("KD+ATS+Ens", COL)]
    assert done.status in ("within", "outside") and "at the best point of KD+ATS" in done.note
    assert "loss.tau1=4.0" in done.note


@pytest.mark.heavy
def test_reproduce_smoke_plans_the_dependent_runs_in_a_second_phase_and_draws_the_heatmap(tmp_path, monkeypatch):
    # main() in this process (the workers it starts are processes): what is tested is the
    # phases, not the interpreter, and three fewer torch imports save seconds each
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    store = tmp_path / "store"

    def cli(*args):
        return in_process(*args, "--store", store)

    before = cli("plan", "ats-table3", "--profile", "smoke")
    assert before.returncode == 0 and "KD+ATS+Ens / TinyImageNet/WRN50-2/ANet waits for the best point" in before.stdout
    run = cli("reproduce", "ats-table3", "--profile", "smoke", "--device", "cpu", "--quiet", "--figures", "fig10")
    assert run.returncode == 0, run.stderr + run.stdout
    # phase 1: teacher, KD+ATS (smoke: its first point), the heatmap's point; phase 2: the ensemble's seed 1
    assert "ats-table3 (smoke profile): 3 runs, 0 already done" in run.stdout
    assert "ats-table3 (smoke profile): 4 runs, 3 already done" in run.stdout
    # the stored plan was rewritten when the second phase resolved the `from:` cell
    stored = json.loads(Store(store).plan_file("ats-table3", "smoke").read_text())
    ens = next(c for c in stored["cells"] if c["row"] == "KD+ATS+Ens" and c["col"] == COL)
    assert ens["waiting_on"] is None and ens["taken_from"]["row"] == "KD+ATS" and len(ens["points"][0]["runs"]) == 2
    assert stored["figures"] == ["fig10"] and len(stored["figure_cells"]["fig10"]["points"]) == 1
    assert {j["id"] for j in stored["jobs"]} == set(Store(store).run_ids())
    md = (store / "reports" / "ats-table3.md").read_text()
    assert "](ats-table3.fig10.png)" in md and (store / "reports" / "ats-table3.fig10.png").stat().st_size > 0
    after = json.loads(cli("plan", "ats-table3", "--profile", "smoke", "--json", "--figures", "fig10").stdout)[0]
    assert after["counts"]["waiting_cells"] == 0 and after["pending"] == []
    ens = next(c for c in after["cells"] if c["row"] == "KD+ATS+Ens" and c["col"] == COL)
    assert ens["taken_from"]["point"] == {"loss.tau1": 2.0, "loss.tau2": 1.0, "recipe_changes.optimizer.lr": 0.0}
    assert len(after["figures"]["fig10"]) == 1  # smoke: the figure's first point only
    cells = json.loads((store / "reports" / "ats-table3.json").read_text())["cells"]
    cell = next(c for c in cells if c["row"] == "KD+ATS+Ens" and c["col"] == COL)
    assert cell["reproduced"] is not None and "at the best point of KD+ATS" in cell["note"]
    # without --figures the heatmap's runs are not planned and the report says how to ask
    planner = Planner("smoke", store=Store(store))
    write_reports([planner.plan("ats-table3")], planner, Store(store), tmp_path / "plain")
    assert "its runs are not planned (ask with `--figures fig10`)" in (tmp_path / "plain" / "ats-table3.md").read_text()


def _bad(tmp_path, change):
    doc = yaml.safe_load(TEST_MANIFEST.read_text())
    change(doc)
    path = tmp_path / "ats-table3.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _row(doc, rid):
    return next(r for r in doc["rows"] if r["id"] == rid)


@pytest.mark.parametrize("change, field", [
    (lambda d: _row(d, "KD+ATS+Ens").update({"from": {"row": "KD+ATS+Ens"}}), "rows[KD+ATS+Ens].from.row"),
    (lambda d: _row(d, "KD+ATS+Ens").update({"from": {"row": "nope"}}), "rows[KD+ATS+Ens].from.row"),
    (lambda d: _row(d, "KD+ATS+Ens").update({"from": {"row": "KD+ATS", "select": "worst"}}),
     "rows[KD+ATS+Ens].from.select"),
    (lambda d: _row(d, "KD+ATS+Ens").update({"grid": {"loss.tau1": [1.0]}}), "rows[KD+ATS+Ens].from"),
    (lambda d: _row(d, "Ens").update({"from": {"row": "KD+ATS+Ens"}, "set": {}}), "rows[Ens].from.row"),
    (lambda d: d["figures"][0].update({"grid": {"loss.tau1": [1.0]}}), "figures[0].grid"),
    (lambda d: d["figures"][0].update({"row": "nope"}), "figures[0].row"),
    (lambda d: d["figures"][0].update({"runs": "sometimes"}), "figures[0].runs"),
])
def test_bad_from_and_heatmap_fields_name_the_field(tmp_path, monkeypatch, change, field):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    path = _bad(tmp_path, change)
    with pytest.raises(BadInput) as err:
        load_manifest(path)
    assert err.value.field == field


def test_from_on_a_cell_without_a_grid_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    path = _bad(tmp_path, lambda d: _row(d, "KD+ATS").pop("grid"))
    with pytest.raises(BadInput) as err:
        Planner("paper").plan_manifest(load_manifest(path))
    assert err.value.field == "rows[KD+ATS+Ens].from" and "no grid" in err.value.problem


def test_ats_table2_fig10_is_the_authors_30_point_grid_planned_only_when_asked():
    plain = Planner("paper").plan("ats-table2")
    asked = Planner("paper", figures=["fig10"]).plan("ats-table2")
    assert plain.figure_cells == {} and set(plain.job_ids) < set(asked.job_ids)
    fig = asked.figure_cells["fig10"]
    points = [(p["params"]["loss.tau1"], p["params"]["loss.tau2"]) for p in fig.points]
    # train_distill_ats.py: tp_tau (tau1) in 1..6 outer, t_tau (tau2) in 1..5 inner, tau1 <= tau2 included
    assert points == [(float(a), float(b)) for a in range(1, 7) for b in range(1, 6)]
    kd_ats = _cell(asked, "KD+ATS", "WRN28-8/VGG8")
    assert set(kd_ats.job_ids()) < set(fig.job_ids())  # the table's 6 points are the same runs
    assert len(set(asked.job_ids) - set(plain.job_ids)) == 30 - 6
    assert len(set(Planner("quick", figures=["fig10"]).plan("ats-table2").figure_cells["fig10"].job_ids())) == 15


def test_a_heatmap_on_a_cited_row_is_bad_input_when_its_runs_are_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    path = _bad(tmp_path, lambda d: d["figures"][0].update({"row": "KD"}))
    manifest = load_manifest(path)
    assert Planner("smoke").plan_manifest(manifest).figure_cells == {}  # not asked for: nothing planned
    with pytest.raises(BadInput) as err:
        Planner("smoke", figures=["fig10"]).plan_manifest(manifest)
    assert err.value.field == "figures[fig10].row"
