"""Stored plans: the readers report what ran, not what today's manifest would plan.

One `reproduce` of klmse-table5 (tests' tiny catalogue, smoke profile: 4 runs) into a store, with
a copy of the catalogue; then the copy's manifest is edited so that the column "KL (tau=20)" plans
another run (tau 10) and its tolerance changes. Every reader must still show the numbers of the
runs that ran, say in one line that the manifest changed, and take the tolerance from today's
manifest. Damaged, missing or orphaned plans are bad input: exit 2, one line, nothing written.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

import benchmark
from benchmark.catalog.plan import Planner
from benchmark.errors import BadInput
from benchmark.results import frames as R
from benchmark.results.site import write_site
from benchmark.store.layout import Store
from tests.helpers import REPO, cli

TABLE = "klmse-table5"
EDITED = "KL (tau=20)"
LINE = f"manifests/test/{TABLE}.yaml changed since these runs were planned: 1 cell differs; run reproduce to update"


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    base = tmp_path_factory.mktemp("stored-plan")
    catalog, store = base / "catalog", Store(base / "store")
    shutil.copytree(REPO / "tests" / "catalog", catalog)
    os.environ["KD_REPRO_CATALOG"] = str(catalog)
    try:
        run = cli("reproduce", TABLE, "--profile", "smoke", "--store", store.root, "--device", "cpu", "--quiet")
        assert run.returncode == 0, run.stderr + run.stdout
        before = json.loads(cli("report", TABLE, "--store", store.root, "--format", "json").stdout)
        manifest = catalog / "manifests" / "test" / f"{TABLE}.yaml"
        original = manifest.read_bytes()
        text = manifest.read_text()
        assert "tau: 20.0}}}" in text
        manifest.write_text(text.replace("tau: 20.0}}}", "tau: 10.0}}}").replace("seeds: [0]", "seeds: [0]\ntolerance: 0.7"))
        yield {"catalog": catalog, "store": store, "before": before, "original": original}
    finally:
        os.environ.pop("KD_REPRO_CATALOG")


def _numbers(doc):
    return [(c["row"], c["col"], c["reproduced"], c["runs"]) for c in doc["cells"]]


def test_reproduce_stores_the_plan_it_ran(edited):
    store, before = edited["store"], edited["before"]
    doc = json.loads(store.plan_file(TABLE, "smoke").read_text())
    assert (doc["table"], doc["profile"], doc["figures"]) == (TABLE, "smoke", [])
    cells = {(c["row"], c["col"]): c for c in doc["cells"]}
    for c in before["cells"]:  # the report reproduce wrote aggregated exactly the stored cells' runs
        assert [r for p in cells[(c["row"], c["col"])]["points"] for r in p["runs"]] == c["runs"]
    assert cells[("ResNet-50", "MSE")]["rule"] == "cited" and cells[("ResNet-50", "MSE")]["cited"]
    assert {j["id"] for j in doc["jobs"]} == set(store.run_ids())  # every run it trained, teachers too
    teachers = {j["id"] for j in doc["jobs"] if j["role"] == "teacher"}
    assert len(teachers) == 2 and all(set(j["deps"]) <= teachers for j in doc["jobs"])
    assert doc["manifest"]["sha256"] == hashlib.sha256(edited["original"]).hexdigest()
    assert doc["manifest"]["path"] == f"manifests/test/{TABLE}.yaml"
    assert doc["suite"]["version"] == benchmark.__version__ and doc["suite"]["code_revision"]
    session = json.loads(store.sessions_file.read_text())[-1]
    assert session["plans"] is True and session["tables"] == [TABLE]


def test_report_shows_what_ran_plus_one_line_when_the_manifest_changed(edited):
    store, before = edited["store"], edited["before"]
    today = Planner("smoke", store=store).plan(TABLE)  # what the edited manifest would run: an untrained run
    runs = next(c for c in today.cells if c.col == EDITED).job_ids()
    assert not store.is_done(runs[0]) and runs != next(c for c in before["cells"] if c["col"] == EDITED)["runs"]
    assert before["plan"]["note"] is None and before["plan"]["source"] == "stored"
    after = json.loads(cli("report", TABLE, "--store", store.root, "--format", "json").stdout)
    assert _numbers(after) == _numbers(before)
    assert next(c for c in after["cells"] if c["col"] == EDITED)["status"] == "not comparable"  # not pending
    assert after["plan"]["note"] == LINE and after["plan"]["differing_cells"] == 1
    assert {c["tolerance"] for c in after["cells"] if c["reproduced"] is not None} == {0.7}  # today's manifest
    md = cli("report", TABLE, "--store", store.root)
    assert md.returncode == 0 and f"**Plan:** {LINE}" in md.stdout.splitlines()[:6]


def test_status_of_the_table_counts_the_stored_runs_and_says_the_manifest_changed(edited):
    store = edited["store"]
    text = cli("status", TABLE, "--store", store.root)
    assert text.returncode == 0 and text.stdout.splitlines()[0] == f"{TABLE}: {LINE}"
    summary = json.loads(cli("status", TABLE, "--store", store.root, "--json").stdout)
    assert summary["plan_notes"] == [f"{TABLE}: {LINE}"]
    assert (summary["total"], summary["done"], summary["pending"]) == (4, 4, 0)  # today's plan: one pending


def test_results_frames_read_the_stored_plan(edited):
    store, before = edited["store"], edited["before"]
    frame = R.cells(store, TABLE)
    assert list(frame["reproduced"].astype(float).fillna(-1)) == \
        [-1 if c["reproduced"] is None else c["reproduced"] for c in before["cells"]]
    assert frame.attrs["plan"]["note"] == LINE and frame.attrs["plan"]["source"] == "stored"
    runs = R.runs(store)
    assert len(runs) == 4 and set(runs["tables"]) == {TABLE} and set(runs["profile"]) == {"smoke"}
    assert sorted(runs["role"]) == ["student", "student", "teacher", "teacher"]


def test_site_page_reports_the_stored_plan(edited, tmp_path):
    store = edited["store"]
    write_site(store, tmp_path / "site")
    page = (tmp_path / "site" / f"{TABLE}.html").read_text()
    assert f"<p class=\"warn\">Plan: {LINE}</p>" in page
    assert "<td class=\"pending\"" not in page and page.count("<td class=\"not comparable\"") == 3


def _copy(edited, tmp_path) -> Store:
    shutil.copytree(edited["store"].root, tmp_path / "store")
    return Store(tmp_path / "store")


def test_a_store_without_stored_plans_plans_todays_manifest_and_says_so(edited, tmp_path):
    store = _copy(edited, tmp_path)  # as a store made before plans were stored: no plans/, no mark in the sessions
    shutil.rmtree(store.plans_dir)
    sessions = json.loads(store.sessions_file.read_text())
    store.sessions_file.write_text(json.dumps([{k: v for k, v in s.items() if k != "plans"} for s in sessions]))
    doc = json.loads(cli("report", TABLE, "--store", store.root, "--format", "json").stdout)
    assert doc["plan"]["source"] == "manifest"
    assert doc["plan"]["note"] == (f"no stored plan of {TABLE} at the smoke profile in this store (reproduced before "
                                   f"plans were stored, or never): planned from today's manifests/test/{TABLE}.yaml")
    assert next(c for c in doc["cells"] if c["col"] == EDITED)["status"] == "pending"  # today's run never ran


def _rewrite(store, change):
    path = store.plan_file(TABLE, "smoke")
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _no_manifest(edited, tmp_path, monkeypatch):
    catalog = tmp_path / "catalog"
    shutil.copytree(edited["catalog"], catalog)
    (catalog / "manifests" / "test" / f"{TABLE}.yaml").unlink()
    monkeypatch.setenv("KD_REPRO_CATALOG", str(catalog))


@pytest.mark.parametrize("damage, says", [
    (lambda s, *_: s.plan_file(TABLE, "smoke").write_text('{"format": 1, "cells": ['), ": not readable JSON"),
    (lambda s, *_: _rewrite(s, lambda d: d.pop("cells")), ": cells: must be a list"),
    (lambda s, *_: _rewrite(s, lambda d: d["cells"][0]["points"][0]["runs"].__setitem__(0, "../../x")),
     ": cells[0].points[0].runs[0]: not a run id: '../../x'"),
    (lambda s, *_: _rewrite(s, lambda d: d["jobs"][0].__setitem__("id", "ABC")), ": jobs[0].id[0]: not a run id"),
    (lambda s, *_: s.plan_file(TABLE, "smoke").unlink(), ": missing, but the store's sessions say klmse-table5 was "
                                                         "reproduced at the smoke profile with its plan stored"),
    (lambda _s, edited, tmp_path, mp: _no_manifest(edited, tmp_path, mp), ": table: klmse-table5 has no manifest any more"),
], ids=["not-json", "no-cells", "path-as-run-id", "bad-job-id", "missing", "manifest-gone"])
def test_bad_stored_plans_exit_2_with_one_line_and_write_nothing(edited, tmp_path, monkeypatch, damage, says):
    store = _copy(edited, tmp_path)
    damage(store, edited, tmp_path, monkeypatch)
    plan_file = str(store.plan_file(TABLE, "smoke"))
    for args in (["report", TABLE, "--out", tmp_path / "out"], ["status", TABLE], ["site", "--out", tmp_path / "out"]):
        got = cli(*args, "--store", store.root)
        assert got.returncode == 2, (args, got.stdout, got.stderr)
        assert got.stderr.splitlines() == [got.stderr.strip()] and got.stderr.startswith(f"error: {plan_file}{says}")
        assert not (tmp_path / "out").exists()
    if "manifest" in says:  # the runs' labels need no manifest: the stored plan names them
        assert set(R.runs(store)["tables"]) == {TABLE}
    else:
        with pytest.raises(BadInput, match="plans"):
            R.runs(store)
    plain = cli("status", "--store", store.root)  # the rest of the store stays readable
    assert plain.returncode == 0 and len(plain.stdout.splitlines()) > 5


def test_tensorboard_export_reads_the_stored_plan_without_the_planner(edited, tmp_path):
    pytest.importorskip("tensorboard")
    store = _copy(edited, tmp_path)
    bare = tmp_path / "bare"  # the same runs, no stored plan: no table to group them under
    shutil.copytree(store.root, bare)
    shutil.rmtree(bare / "plans")
    rid = next(j["id"] for j in json.loads(store.plan_file(TABLE, "smoke").read_text())["jobs"] if j["role"] == "student")
    script = (
        "import sys\n"
        "from benchmark.store.layout import Store\n"
        "from benchmark.engine.tboard import export_run\n"
        f"for root in ({str(store.root)!r}, {str(bare)!r}):\n"
        f"    print(export_run(Store(root), {rid!r}).parent.name)\n"
        "print(sorted(m for m in ('benchmark.catalog.plan', 'benchmark.catalog.manifest', 'benchmark.results.frames') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [TABLE, "runs", "[]"]


def test_a_written_plan_reads_back_and_indexes_its_runs(tmp_path, monkeypatch):
    """write_plans / read_plan / stored_tables / run_tables on a store with nothing trained."""
    from benchmark.store.stored_plan import plan_path, read_plan, run_tables, stored_tables, write_plans

    monkeypatch.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    planner = Planner("smoke", cost=False)
    plan = planner.plan(TABLE)
    store = Store(tmp_path / "store")
    assert read_plan(store, TABLE, "smoke") is None and stored_tables(store) == []
    (path,) = write_plans(store, [plan], planner, [], {"version": "v", "code_revision": "r"})
    assert path == store.plan_file(TABLE, "smoke") and stored_tables(store) == [(TABLE, "smoke")]
    doc = read_plan(store, TABLE, "smoke")
    assert (doc["table"], doc["profile"], doc["suite"]) == (TABLE, "smoke", {"version": "v", "code_revision": "r"})
    assert sorted(j["id"] for j in doc["jobs"]) == sorted(plan.job_ids)
    assert run_tables(store, [(TABLE, "smoke"), (TABLE, "paper")]) == \
        {rid: {"tables": [TABLE], "profile": "smoke", "role": planner.jobs[rid].role} for rid in plan.job_ids}
    with pytest.raises(BadInput, match="a stored plan is named by the table id"):
        plan_path(store, "../x", "smoke")
