"""Manifests -> runs: expansion, sharing, profiles, and clean errors for malformed files."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from benchmark.catalog import profiles
from benchmark.catalog.manifest import load_catalog, load_manifest
from benchmark.catalog.plan import Planner, grid_points
from benchmark.catalog.profiles import scale_recipe
from benchmark.errors import BadInput
from benchmark.spec import merge_spec
from tests.helpers import cli

RECIPES = {"r": {"source": "test", "data": {"augment": "standard"},
                 "recipe": {"epochs": 240, "batch_size": 64, "optimizer": {"lr": 0.05},
                            "schedule": {"name": "multistep", "milestones": [150, 180, 210], "gamma": 0.1,
                                         "warmup_epochs": 5}}}}
ZOO = {"dataset": "cifar100", "teachers": {
    "wrn_28_4@t": {"model": "wrn_28_4", "recipe": "r"},
    "wrn_28_4@t-es60": {"like": "wrn_28_4@t", "recipe_changes": {"epochs": 60, "schedule": {"name": "cosine"}}},
    "resnet56@file": {"model": "resnet56", "recipe": "r",
                      "checkpoint": {"file": "/nowhere/r56.pth", "sha256": "a" * 64}},
}}
REPO = Path(__file__).resolve().parent.parent
KL = {"name": "kd", "ce_weight": 0.0, "kd_weight": 1.0}
# klmse-table4's layout: one row (WRN-16-2), seven columns
MANIFEST = {
    "id": "klmse-table4", "paper": "KL-MSE", "title": "test", "dataset": "cifar100", "recipe": "r",
    "seeds": [0, 1], "defaults": {"model": "wrn_16_2", "teacher": "wrn_28_4@t"},
    "columns": [{"id": f"KL tau={t}", "set": {"loss": {**KL, "tau": float(t)}}} for t in ("0.1", "0.5", "1", "5", "20")]
    + [{"id": "KL tau=inf", "set": {"loss": {**KL, "tau": float("inf")}}},
       {"id": "MSE", "set": {"loss": {"name": "mse"}}}],
    "rows": [{"id": "WRN-16-2"}],
}


@pytest.fixture
def root(tmp_path):
    (tmp_path / "manifests" / "recipes").mkdir(parents=True)
    (tmp_path / "teachers").mkdir()
    (tmp_path / "manifests" / "recipes" / "r.yaml").write_text(yaml.safe_dump(RECIPES))
    (tmp_path / "teachers" / "t-cifar100.yaml").write_text(yaml.safe_dump(ZOO))
    return tmp_path


def plan_of(root, manifest, profile="paper"):
    path = root / "m.yaml"
    path.write_text(yaml.safe_dump(manifest))
    planner = Planner(profile, catalog=load_catalog(root))
    return planner, planner.plan_manifest(load_manifest(path))


def test_expansion_seeds_teacher_dag_and_sharing(root):
    planner, plan = plan_of(root, MANIFEST)
    assert len(plan.cells) == 7
    # 7 students x 2 seeds + one shared teacher
    assert len(plan.job_ids) == 15
    teacher_ids = [j for j in plan.job_ids if planner.jobs[j].role == "teacher"]
    assert len(teacher_ids) == 1
    assert plan.job_ids[0] == teacher_ids[0]  # dependencies come first
    for cell in plan.cells:
        assert len(cell.points) == 1 and len(cell.points[0]["runs"]) == 2
        for rid in cell.job_ids():
            assert planner.jobs[rid].deps == teacher_ids
            assert planner.jobs[rid].config["teacher"] == {"run": teacher_ids[0]}
    inf = planner.jobs[plan.cells[5].job_ids()[0]].config
    assert inf["loss"]["tau"] == float("inf") and inf["recipe"]["schedule"]["warmup_epochs"] == 5
    # a second table needing the same runs adds none
    other = copy.deepcopy(MANIFEST)
    other["title"] = "another table, same runs"
    before = len(planner.jobs)
    path = root / "m2.yaml"
    path.write_text(yaml.safe_dump(other))
    plan2 = planner.plan_manifest(load_manifest(path))
    assert len(planner.jobs) == before and set(plan2.job_ids) == set(plan.job_ids)


def test_grid_best_rule_target_teacher_and_profiles(root):
    m = copy.deepcopy(MANIFEST)
    m["rows"] = [{"id": "WRN-16-2", "grid": {"loss.kd_weight": [1.0, 2.0, 4.0]}}]
    planner, plan = plan_of(root, m)
    cell = plan.cells[0]
    assert cell.rule == "best" and len(cell.points) == 3
    assert [p["params"] for p in cell.points] == [{"loss.kd_weight": v} for v in (1.0, 2.0, 4.0)]
    assert planner.jobs[cell.points[2]["runs"][0]].config["loss"]["kd_weight"] == 4.0
    _, quick = plan_of(root, m, "quick")
    assert len(quick.cells[0].points) == 2 and len(quick.cells[0].points[0]["runs"]) == 1
    qp, _ = plan_of(root, m, "quick")
    qcfg = next(j.config for j in qp.jobs.values() if j.role == "student")
    assert qcfg["recipe"]["epochs"] == 60 and qcfg["recipe"]["schedule"]["milestones"] == [38, 45, 52]
    sp, smoke = plan_of(root, m, "smoke")
    assert len(smoke.cells[0].points) == 1 and len(smoke.cells[0].points[0]["runs"]) == 1
    assert all(j.config["data"]["source"] == "synthetic" and j.config["recipe"]["epochs"] == profiles.SMOKE_EPOCHS
               for j in sp.jobs.values())
    # smoke ids differ from paper ids: a smoke run can never stand in for a paper run
    assert not set(sp.jobs) & set(planner.jobs)


def test_teacher_rows_zoo_like_and_checkpoint(root):
    m = copy.deepcopy(MANIFEST)
    m["defaults"]["teacher"] = "wrn_28_4@t-es60"
    m["rows"] = [{"id": "WRN-16-2", "target": "teacher"}]
    planner, plan = plan_of(root, m)
    (tid,) = {r for c in plan.cells for r in c.job_ids()}
    cfg = planner.jobs[tid].config
    assert cfg["recipe"]["epochs"] == 60 and cfg["recipe"]["schedule"] == {"name": "cosine", "warmup_epochs": 0,
                                                                            "min_lr": 0.0}
    assert cfg["model"] == "wrn_28_4" and cfg["loss"]["name"] == "ce"
    m["defaults"]["teacher"] = "resnet56@file"
    m["rows"] = [{"id": "WRN-16-2"}]
    planner, plan = plan_of(root, m)
    student = planner.jobs[plan.cells[0].job_ids()[0]]
    assert student.config["teacher"] == {"checkpoint": "/nowhere/r56.pth", "sha256": "a" * 64, "model": "resnet56"}
    assert student.deps == []
    # in smoke the checkpoint teacher is trained instead (no files needed)
    sp, splan = plan_of(root, m, "smoke")
    assert sp.jobs[splan.cells[0].job_ids()[0]].deps


def test_inline_teacher_chain_and_ensemble(root):
    m = copy.deepcopy(MANIFEST)
    m["defaults"]["teacher"] = {"model": "wrn_16_4", "teacher": "wrn_28_4@t", "loss": {**KL, "tau": 3.0}}
    m["rows"] = [{"id": "WRN-16-2", "ensemble": [{"seed": 0}, {"seed": 1}]}]
    planner, plan = plan_of(root, m)
    cell = plan.cells[0]
    assert cell.rule == "ensemble" and len(cell.points[0]["runs"]) == 2
    chain = planner.dependencies(cell.points[0]["runs"][0])
    assert [planner.jobs[j].config["model"] for j in chain] == ["wrn_28_4", "wrn_16_4", "wrn_16_2"]


def test_merge_and_grid_helpers():
    assert merge_spec({"loss": {"name": "kd", "tau": 4}}, {"loss": {"tau": 8}}) == {"loss": {"name": "kd", "tau": 8}}
    assert merge_spec({"loss": {"name": "kd", "tau": 4}}, {"loss": {"name": "mse"}}) == {"loss": {"name": "mse"}}
    assert merge_spec({"teacher": {"model": "a", "seed": 1}}, {"teacher": {"model": "b"}}) == {"teacher": {"model": "b"}}
    assert grid_points({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert grid_points([{"a": 1}, {"a": 2, "b": 0}]) == [{"a": 1}, {"a": 2, "b": 0}]
    assert scale_recipe({"epochs": 240, "schedule": {"milestones": [150, 180, 210], "warmup_epochs": 5}}, 0.25) == \
        {"epochs": 60, "schedule": {"milestones": [38, 45, 52], "warmup_epochs": 1}}


def _broken(change):
    m = copy.deepcopy(MANIFEST)
    change(m)
    return m


@pytest.mark.parametrize("mutate, field, words", [
    (lambda m: m.update(model="x"), "model", "unknown field"),
    (lambda m: m.pop("recipe"), "recipe", "missing"),
    (lambda m: m.update(id="klmse-table99"), "id", "no published table"),
    (lambda m: m.update(paper="Nature"), "paper", "must be one of"),
    (lambda m: m.update(seeds="three"), "seeds", "list"),
    (lambda m: m["defaults"].update(model="resnet9000"), "model", "unknown model"),
    (lambda m: m["defaults"].update(teacher="nobody@here"), "teacher", "no teacher"),
    (lambda m: m.update(recipe="nope"), "recipe", "unknown recipe"),
    (lambda m: m["columns"][0]["set"]["loss"].update(tau="warm"), "loss", "tau"),
    (lambda m: m["columns"][6]["set"].update(loss={"name": "l2-magic"}), "loss", "unknown loss"),
    (lambda m: m["rows"].append({"id": "WRN-99-9"}), "rows[WRN-99-9]", "not a row"),
    (lambda m: m["columns"].pop(), "columns", "lacks: MSE"),
    (lambda m: m["rows"][0].update(grid={"loss.tau": 4}), "grid", "non-empty list"),
    (lambda m: m["rows"][0].update(grid={"loss.tau": ["hot"]}), "loss", "tau"),
    (lambda m: m["rows"][0].update(value="accuracy"), "value", "must be one of"),
    (lambda m: m["rows"][0].update(cited=""), "cited", "why"),
    (lambda m: m["rows"][0].update(cited={"NoSuchColumn": "x"}), "cited.NoSuchColumn", "not an id of the other axis"),
    (lambda m: m["rows"][0].update(cited={"MSE": " "}), "cited.MSE", "why"),
    (lambda m: m["rows"][0].update(ensemble=[{"seed": 0}]), "ensemble", "two members"),
    (lambda m: m["columns"][0].update(set={"colour": "red"}), "colour", "unknown field"),
    (lambda m: m["rows"][0].update(target="parent"), "target", "student or teacher"),
    (lambda m: m["defaults"].pop("model"), "model", "missing"),
    (lambda m: m["rows"][0].update(select="all"), "rows[WRN-16-2].select", "must be best"),
    (lambda m: m["columns"][6].update(select="worst"), "columns[MSE].select", "must be best"),
])
def test_malformed_manifests_name_file_field_problem(root, mutate, field, words):
    with pytest.raises(BadInput) as err:
        plan_of(root, _broken(mutate))
    msg = err.value.message()
    assert str(root / "m.yaml") in msg
    assert field in (err.value.field or ""), msg
    assert words in msg


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("id: [unclosed\n", "YAML syntax error"),
    ("- a\n- list\n", "mapping"),
])
def test_broken_files(root, text, words):
    path = root / "m.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as err:
        load_manifest(path)
    assert words in err.value.message() and str(path) in err.value.message()


def test_bad_zoo_and_recipe_files(root):
    (root / "teachers" / "dup-cifar100.yaml").write_text(yaml.safe_dump(
        {"dataset": "cifar100", "teachers": {"wrn_28_4@t": {"model": "wrn_28_4"}}}))
    with pytest.raises(BadInput, match="defined twice"):
        load_catalog(root)
    (root / "teachers" / "dup-cifar100.yaml").write_text(yaml.safe_dump(
        {"dataset": "cifar100", "teachers": {"x": {"like": "ghost"}}}))
    with pytest.raises(BadInput, match="no teacher 'ghost'"):
        load_catalog(root)


def test_cli_plan_bad_input_exits_2_without_traceback(tmp_path):
    proc = cli("plan", "no-such-table", "--store", tmp_path / "s")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "unknown table" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [x\n")
    proc = cli("plan", bad, "--store", tmp_path / "s")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and str(bad) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_select_all_is_bad_input_not_a_silent_best(tmp_path):
    """`select: all` was validated and then read by nothing (the cell showed its best point): the
    command line now refuses it, naming the file, the field and the one selection there is."""
    doc = yaml.safe_load((REPO / "manifests" / "klmse" / "klmse-table4.yaml").read_text())
    doc["rows"][0].update(grid={"loss.kd_weight": [1.0, 2.0]}, select="all")
    path = tmp_path / "klmse-table4.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = cli("plan", path, "--store", tmp_path / "s")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in proc.stderr and "rows[WRN-16-2].select" in proc.stderr and "must be best" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()
    doc["rows"][0]["select"] = "best"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = cli("plan", path, "--store", tmp_path / "s", "--json")
    assert proc.returncode == 0, proc.stderr
    [table] = json.loads(proc.stdout)
    assert table["cells"][0]["rule"] == "best"


def test_column_variables_give_each_column_its_own_grid(root):
    m = copy.deepcopy(MANIFEST)
    m["columns"][0]["vars"] = {"teachers": ["wrn_28_4@t", "wrn_28_4@t-es60"]}
    m["columns"][1]["vars"] = {"teachers": ["wrn_28_4@t-es60"]}
    for col in m["columns"][2:]:
        col["vars"] = {"teachers": ["wrn_28_4@t"]}
    m["rows"] = [{"id": "WRN-16-2", "grid": {"teacher": "$teachers"}}]
    planner, plan = plan_of(root, m)
    first, second = plan.cells[0], plan.cells[1]
    assert [p["params"] for p in first.points] == [{"teacher": "wrn_28_4@t"}, {"teacher": "wrn_28_4@t-es60"}]
    assert len(second.points) == 1
    epochs = planner.jobs[planner.jobs[second.points[0]["runs"][0]].deps[0]].config["recipe"]["epochs"]
    assert epochs == 60
    del m["columns"][1]["vars"]
    with pytest.raises(BadInput, match=r"no variable '\$teachers'"):
        plan_of(root, m)
