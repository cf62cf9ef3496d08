"""The planner's memo (benchmark/catalog/resolvememo.py): each distinct raw config resolved once,
and nothing it remembers can be stale or shared with a caller."""

import copy

import pytest

from benchmark.catalog import plan as plan_module
from benchmark.catalog import resolvememo
from benchmark.catalog.manifest import load_manifest, manifest_paths
from benchmark.catalog.plan import Planner
from benchmark.engine import config as C

BASE = {"dataset": "cifar100", "recipe": "repdistiller-cifar"}
STUDENT = {**BASE, "model": "resnet8", "loss": {"name": "kd", "tau": 4.0}, "teacher": "resnet110@crd", "seed": 0}


class _Forgetful(resolvememo.ResolveMemo):
    """A memo that never finds anything: planning as before the memo."""

    def run_id(self, _raw_key):
        return None

    def recipe_checked(self, _recipe_key):
        return False

    def teacher(self, _teacher_key):
        return None


def _jobs(planner: Planner) -> dict:
    return {rid: (j.config, j.deps, j.role, j.labels) for rid, j in planner.jobs.items()}


@pytest.mark.parametrize("profile", ["paper", "quick", "smoke"])
def test_planning_with_the_memo_gives_the_jobs_planning_without_it_gives(profile, monkeypatch):
    tables = [manifest_paths()[t] for t in ("atkd-table5", "klmse-table1", "ats-table5")]
    with_memo = Planner(profile, cost=False, figures=["all"])
    plans = [with_memo.plan_manifest(load_manifest(p)) for p in tables]
    monkeypatch.setattr(resolvememo, "ResolveMemo", _Forgetful)
    without = Planner(profile, cost=False, figures=["all"])
    assert isinstance(without._memo, _Forgetful)
    again = [without.plan_manifest(load_manifest(p)) for p in tables]
    assert [p.job_ids for p in plans] == [p.job_ids for p in again]
    assert [[c.summary() for c in p.cells] for p in plans] == [[c.summary() for c in p.cells] for p in again]
    # same ids, configs, dependencies, roles and labels (in their order), job by job and in order
    assert list(_jobs(with_memo).items()) == list(_jobs(without).items())


def test_a_spec_changed_in_place_after_planning_is_a_new_run():
    """The memo keys on what a spec holds, not on which object it is: the same dict changed
    after it was planned gives the changed run, as a fresh planner would."""
    planner = Planner("paper", cost=False)
    spec = copy.deepcopy(STUDENT)
    first = planner.job_for(spec, BASE, "test", "spec")
    spec["loss"]["tau"] = 2.0
    second = planner.job_for(spec, BASE, "test", "spec")
    assert second != first
    assert second == Planner("paper", cost=False).job_for(copy.deepcopy(spec), BASE, "test", "spec")
    spec["loss"]["tau"] = 4.0
    assert planner.job_for(spec, BASE, "test", "spec") == first


def test_a_changed_config_of_a_job_changes_no_later_answer():
    """A caller that edits the config a job holds (or the spec it asked with) changes neither the
    id the next identical request gets nor what a fresh planner resolves."""
    planner = Planner("paper", cost=False)
    rid = planner.job_for(copy.deepcopy(STUDENT), BASE, "test", "spec")
    pristine = copy.deepcopy(planner.jobs[rid].config)
    planner.jobs[rid].config["recipe"]["epochs"] = 1
    planner.jobs[rid].config["loss"]["tau"] = 99.0
    assert planner.job_for(copy.deepcopy(STUDENT), BASE, "test", "spec") == rid
    fresh = Planner("paper", cost=False)
    assert fresh.jobs.get(rid) is None
    assert fresh.job_for(copy.deepcopy(STUDENT), BASE, "test", "spec") == rid
    assert fresh.jobs[rid].config == pristine
    assert C.run_id(fresh.jobs[rid].config) == rid


def test_a_teacher_reference_handed_out_is_a_copy():
    planner = Planner("paper", cost=False)
    ref, teacher_id = planner.teacher_ref(STUDENT, BASE, "test", "spec")
    assert ref == {"run": teacher_id} and planner.jobs[teacher_id].role == "teacher"
    ref["run"] = "0" * 16
    again, same_id = planner.teacher_ref(STUDENT, BASE, "test", "spec")  # found in the memo
    assert again == {"run": teacher_id} and same_id == teacher_id
    again["run"] = "1" * 16
    assert planner.teacher_ref(STUDENT, BASE, "test", "spec") == ({"run": teacher_id}, teacher_id)


def test_a_job_dropped_from_the_planner_is_resolved_again():
    """The memo keeps ids only: a job no longer in ``planner.jobs`` is made again, not looked up."""
    planner = Planner("paper", cost=False)
    rid = planner.job_for(copy.deepcopy(STUDENT), BASE, "test", "spec")
    teacher_id = planner.jobs[rid].deps[0]
    planner.jobs.clear()
    assert planner.job_for(copy.deepcopy(STUDENT), BASE, "test", "spec") == rid
    assert set(planner.jobs) == {rid, teacher_id} and planner.jobs[teacher_id].role == "teacher"


def test_the_key_tells_apart_what_json_would_merge():
    """1, 1.0 and True, 0.0 and -0.0, a list and a tuple, and two key orders are different raw
    configs (a resolved config keeps its schedule's key order)."""
    variants = [{"a": 1}, {"a": 1.0}, {"a": True}, {"a": 0.0}, {"a": -0.0}, {"a": [1]}, {"a": (1,)},
                {"a": 1, "b": 2}, {"b": 2, "a": 1}]
    assert len({resolvememo.key(v) for v in variants}) == len(variants)


def test_resolve_coerces_the_raw_config_in_place_so_the_key_is_taken_before(monkeypatch):
    """resolve makes ``data.normalize``'s ints floats in the raw config it is given; a key taken
    after it would file the run under a config nobody asks for (and miss every time)."""
    raw = {"dataset": "cifar100", "model": "resnet8", "loss": "ce",
           "data": {"normalize": {"mean": [0, 0, 0], "std": [1, 1, 1]}}}
    before = resolvememo.key(raw)
    C.resolve(raw)
    assert resolvememo.key(raw) != before  # what makes the order matter
    spec = {**BASE, "model": "resnet8", "data_changes": {"normalize": {"mean": [0, 0, 0], "std": [1, 1, 1]}}}
    planner = Planner("paper", cost=False)
    resolved = []
    real = C.resolve
    monkeypatch.setattr(plan_module.C, "resolve", lambda raw, where="config": resolved.append(1) or real(raw, where))
    first = planner.job_for(copy.deepcopy(spec), BASE, "test", "spec")
    assert planner.job_for(copy.deepcopy(spec), BASE, "test", "spec") == first
    assert len(resolved) == 1  # the second request was found, under the key of the ints
