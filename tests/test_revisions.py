"""Numerics revisions (benchmark/engine/revisions.py, codedigest.py, stale.py): the ledger holds every
part's code digest; a run records the revisions it trained under; a bump makes exactly the runs
that use the part, and their students, stale; reports and status say so; --rerun-stale retrains
exactly those after archiving them; garbage records are bad input."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from benchmark.catalog.plan import Planner
from benchmark.commands.status import store_status
from benchmark.engine import config as C
from benchmark.engine import revisions as R
from benchmark.engine.execution import ExecOptions
from benchmark.engine.train import train_run
from benchmark.runs.options import WorkerOptions
from benchmark.runs.stale import StaleRuns
from benchmark.runs.worker import run_worker
from benchmark.store.layout import CHECKPOINT, Store
from tests.helpers import REPO, stop_after_epoch, teacher_checkpoint, tiny
from tests.helpers import cli as in_process

CATALOG = REPO / "tests" / "catalog"
PACKAGE = REPO / "benchmark" / "engine"  # where every numerics part lives (revisions.PACKAGE)


# ---------------------------------------------------------------- the ledger and the code


def test_every_changed_part_has_a_bump_or_a_no_numeric_change_entry():
    lines = R.unrecorded()
    assert lines == [], ("the code of these parts changed without a ledger entry; record each with the command "
                         "given (bump: its numbers change; same: they do not):\n" + "\n".join(lines))


def test_the_parts_cover_every_loss_distiller_and_model_file():
    from benchmark.engine import models
    from benchmark.engine.distillers import distiller_names
    from benchmark.engine.losses import loss_names

    assert sorted(n.split(":")[1] for n in R.PARTS if n.startswith("loss:")) == sorted(loss_names())
    assert sorted(n.split(":")[1] for n in R.PARTS if n.startswith("distiller:")) == sorted(distiller_names())
    files = {p.stem for p in (PACKAGE / "models").glob("*.py")} - {"__init__", "common", "weights"}
    assert {n.split(":")[1] for n in R.PARTS if n.startswith("model:")} == files
    for name in models.model_names():  # the file that builds each model, as the registry says
        builder = models._lookup(name)[0]
        module = getattr(builder, "func", builder).__module__
        assert module == f"benchmark.engine.models.{R.model_file(name)}", name
    for name in R.PARTS:
        assert R.files_of(name) and all((PACKAGE / f).is_file() for f in R.files_of(name))


def test_the_fidelity_pass_is_revision_2_of_crd_ab_fsp_and_the_changed_taps():
    ledger = R.load_ledger()
    twos = {"distiller:crd": "38b4c1a", "distiller:ab": "bb93780", "distiller:fsp": "bb93780",
            "taps:mobilenetv2": "bb93780", "taps:shufflenetv1": "bb93780", "taps:shufflenetv2": "bb93780",
            "taps:wrn": "bb93780"}
    revised = {n: e["revision"] for n, e in ledger.items() if e["revision"] != 1}
    # issue 26 (no host sync in the step): CRD's negatives and chunked scores, SCKD's device gates
    host_syncs = {"distiller:crd": 3, "distiller:sckd": 2}
    assert {n: revised.get(n) for n in twos} == {**dict.fromkeys(twos, 2), "distiller:crd": 3}
    # and since: the data pipeline's batches made contiguous (the numerics policy's channels-last leak),
    # and the image-folder loader's per-sample streams (a part of its own, created at revision 2)
    assert {n: r for n, r in revised.items() if n not in twos} == {"data": 2, "folders": 2, "distiller:sckd": 2}
    for name, revision in host_syncs.items():
        assert "issue 26" in next(h for h in ledger[name]["history"] if h["revision"] == revision)["why"]
    assert "contiguous" in next(h for h in ledger["data"]["history"] if h["revision"] == 2)["why"]
    # the entry that made revision 2 ("no numeric change" entries may follow it)
    assert "Per-sample random streams" in next(h for h in ledger["folders"]["history"] if h["revision"] == 2)["why"]
    for name, commit in twos.items():  # the entry that made revision 2 (later ones may record no numeric change)
        assert commit in next(h for h in ledger[name]["history"] if h["revision"] == 2)["why"]
    assert set(ledger) == set(R.PARTS)


def test_the_parts_a_run_uses_follow_its_config(tmp_path):
    ce = R.parts_of(C.resolve(tiny()))
    assert ce == ["data", "loss:ce", "model:cifar_resnet", "models", "recipe", "step"]
    teacher = teacher_checkpoint(tmp_path, "wrn_16_2", 0)
    crd = R.parts_of(C.resolve(tiny(loss={"name": "crd"}, teacher=teacher)))
    assert set(crd) - set(ce) == {"distiller:crd", "distiller-base", "loss:kd", "taps:cifar_resnet", "taps:wrn",
                                  "model:wrn"} and "loss:ce" not in crd
    by_run = R.parts_of(C.resolve(tiny(loss={"name": "kd"}, teacher={"run": "0" * C.ID_LENGTH})))
    assert by_run == ["data", "loss:kd", "model:cifar_resnet", "models", "recipe", "step"]


# ---------------------------------------------------------------- recording and bumping


def _ledger_copy(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "revisions.json"
    shutil.copy(R.LEDGER, path)
    monkeypatch.setenv(R.LEDGER_ENV, str(path))
    return path


def _bump(path: Path, part: str) -> None:
    R.record(part, "bump", "test: a numeric change", path=path)


def test_bump_and_same_record_history_and_bad_uses_are_one_line(tmp_path, monkeypatch):
    path = _ledger_copy(tmp_path, monkeypatch)
    before = [h["revision"] for h in json.loads(path.read_text())["parts"]["loss:mse"]["history"]]
    assert set(before) == {1}  # revision 1, maybe with "no numeric change" entries
    run = in_process("revisions", "bump", "loss:mse", "--why", "test: a numeric change")
    assert run.returncode == 0 and "loss:mse: revision 2" in run.stdout
    entry = json.loads(path.read_text())["parts"]["loss:mse"]
    assert entry["revision"] == 2 and [h["revision"] for h in entry["history"]] == [*before, 2]
    assert entry["history"][-1]["why"] == "test: a numeric change" and entry["digest"] == R.part_digest("loss:mse")
    same = in_process("revisions", "same", "loss:mse", "--why", "nothing changed")
    assert same.returncode == 2 and "nothing to record" in same.stderr
    for args in (["bump", "loss:nope", "--why", "x"], ["bump", "loss:mse"], ["same", "loss:mse", "--why", " "]):
        bad = in_process("revisions", *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, args
    listing = in_process("revisions", "--json")
    assert listing.returncode == 0
    rows = {r["part"]: r for r in json.loads(listing.stdout)}
    assert rows["loss:mse"]["revision"] == 2 and all(r["matches"] for r in rows.values())


def test_a_changed_digest_is_reported_with_the_commands_that_record_it(tmp_path, monkeypatch):
    path = _ledger_copy(tmp_path, monkeypatch)
    doc = json.loads(path.read_text())
    entry = doc["parts"]["recipe"]
    entry["digest"] = entry["history"][-1]["digest"] = "0" * 16  # as if lr_at had changed since
    path.write_text(json.dumps(doc))
    lines = R.unrecorded()
    assert len(lines) == 1 and lines[0].startswith("recipe: its code changed (schedules.py")
    assert 'python runner.py revisions bump recipe --why "..."' in lines[0]
    assert 'python runner.py revisions same recipe --why "..."' in lines[0]
    run = in_process("revisions")
    assert run.returncode == 1 and "revisions same recipe" in run.stdout


@pytest.mark.parametrize("garbage", ["{", '{"format": 1, "parts": []}',
                                     '{"format": 1, "parts": {"step": {"revision": 1, "digest": "ab", "history": '
                                     '[{"revision": 2, "digest": "ab", "date": "2026-12-01", "why": "x"}]}}}'])
def test_a_garbage_ledger_is_one_line_naming_it(tmp_path, monkeypatch, garbage):
    path = tmp_path / "revisions.json"
    path.write_text(garbage)
    monkeypatch.setenv(R.LEDGER_ENV, str(path))
    store = tmp_path / "store"
    for args in (["revisions"], ["status", "--store", store]):
        run = in_process(*args)
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert run.returncode == 2 and len(errors) == 1 and str(path) in errors[0], (args, run.stderr)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(json.dumps(tiny()))
    run = in_process("train", cfg, "--store", store, "--device", "cpu")
    assert run.returncode == 2 and str(path) in run.stderr and not store.exists()  # nothing written


def test_a_resumed_run_keeps_the_lowest_revision_it_trained_under(tmp_path, monkeypatch):
    path = _ledger_copy(tmp_path, monkeypatch)
    cfg = C.resolve(tiny(recipe={"epochs": 2}))
    store = Store(tmp_path / "store")
    stop_after_epoch(cfg, store, 1)  # trained at loss:ce r1
    _bump(path, "loss:ce")           # an upgrade, then the run resumes
    res = train_run(cfg, store, ExecOptions())
    assert res["resumed_from_epoch"] == 1 and res["revisions"]["loss:ce"] == 1 and res["revisions"]["step"] == 1
    assert StaleRuns(store).why(C.run_id(cfg)) == ["loss:ce r1 < r2"]
    fresh = C.resolve(tiny(recipe={"epochs": 1}))
    assert train_run(fresh, store)["revisions"]["loss:ce"] == 2 and not StaleRuns(store).is_stale(C.run_id(fresh))
    # a checkpoint written before revisions were recorded: revision 1 of every part
    old = C.resolve(tiny(recipe={"epochs": 2}, seed=1))
    stop_after_epoch(old, store, 1)
    import torch

    ckpt = store.run_file(C.run_id(old), CHECKPOINT)
    state = torch.load(ckpt, weights_only=True)
    del state["revisions"]
    torch.save(state, ckpt)
    assert train_run(old, store)["revisions"]["loss:ce"] == 1


# ---------------------------------------------------------------- a table's store


@pytest.fixture(scope="module")
def table_store(tmp_path_factory):
    """klmse-table4 of the test catalog at the smoke profile, trained once: a resnet14 teacher and
    its six students (KD at five temperatures, MSE) plus the teacher's own cell."""
    os.environ["KD_REPRO_CATALOG"] = str(CATALOG)
    try:
        store = Store(tmp_path_factory.mktemp("revisions") / "store")
        assert in_process("plan", "klmse-table4", "--profile", "smoke", "--store", store.root).returncode == 0
        planner = Planner("smoke", store=store)
        plan = planner.plan("klmse-table4")
        for rid in plan.job_ids:
            store.ensure_config(rid, planner.jobs[rid].config)
        run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1))
        from benchmark.runs.sessions import record_session

        record_session(store, ["klmse-table4"], "smoke")
        yield store, {rid: planner.jobs[rid].config for rid in plan.job_ids}
    finally:
        os.environ.pop("KD_REPRO_CATALOG")


@pytest.fixture
def copy_of(table_store, tmp_path, monkeypatch):
    """A copy of the trained store (the tests change it) and the run ids by loss name."""
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    store, configs = table_store
    copy = Store(tmp_path / "store")
    shutil.copytree(store.root, copy.root)
    by_loss: dict[str, list[str]] = {}
    for rid, cfg in configs.items():
        by_loss.setdefault(cfg["loss"]["name"], []).append(rid)
    return copy, by_loss


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_bump_makes_exactly_the_runs_using_the_part_and_their_students_stale(copy_of, tmp_path, monkeypatch):
    store, by_loss = copy_of
    path = _ledger_copy(tmp_path, monkeypatch)
    every = sorted(r for ids in by_loss.values() for r in ids)
    assert len(by_loss["ce"]) == 1 and len(by_loss["mse"]) == 1 and len(every) == 7
    status = json.loads(in_process("status", "--store", store.root, "--json").stdout)
    assert status["stale"] == 0 and status["stale_runs"] == [] and status["done"] == 7
    _bump(path, "loss:mse")
    status = json.loads(in_process("status", "--store", store.root, "--json").stdout)
    assert status["stale"] == 1 and [r["id"] for r in status["stale_runs"]] == by_loss["mse"]
    assert {"done", "running", "pending", "failed"} <= set(status)  # the contract's keys stay
    doc = json.loads(in_process("report", "klmse-table4", "--store", store.root, "--format", "json").stdout)
    cells = {c["col"]: c for c in doc["cells"]}
    assert cells["MSE"]["status"] == "stale" and cells["MSE"]["reproduced"] is not None
    assert cells["MSE"]["stale_runs"] == by_loss["mse"]
    assert {c["status"] for col, c in cells.items() if col != "MSE"} == {"not comparable"}
    assert doc["coverage"]["stale"] == 1 and doc["coverage"]["reproduced_cells"] == 6
    md = in_process("report", "klmse-table4", "--store", store.root).stdout
    assert "stale: 1 cells" in md and re.search(r"\| [^|]*→ [^|]* stale \|", md)
    csv = in_process("report", "klmse-table4", "--store", store.root, "--format", "csv").stdout
    assert sum(",stale," in line for line in csv.splitlines()) == 1
    site = tmp_path / "site"
    assert in_process("site", "--store", store.root, "--out", site).returncode == 0
    assert (site / "klmse-table4.html").read_text().count('<td class="stale"') == 1

    _bump(path, "loss:ce")  # the teacher's loss: the teacher and, through it, every student
    stale = StaleRuns(store)
    assert sorted(stale.among(every)) == every
    assert stale.why(by_loss["ce"][0]) == ["loss:ce r1 < r2"]
    assert f"teacher {by_loss['ce'][0]} is stale" in stale.why(by_loss["kd"][0])
    report = json.loads(in_process("report", "klmse-table4", "--store", store.root, "--format", "json").stdout)
    assert {c["status"] for c in report["cells"] if c["reproduced"] is not None} == {"stale"}
    assert report["coverage"]["reproduced_cells"] == 0


def test_a_run_without_a_record_reads_as_revision_1(copy_of, tmp_path, monkeypatch):
    store, by_loss = copy_of
    path = _ledger_copy(tmp_path, monkeypatch)
    kd = by_loss["kd"][0]
    res = json.loads(store.run_file(kd, "result.json").read_text())
    del res["revisions"]  # as a run finished before revisions were recorded
    store.run_file(kd, "result.json").write_text(json.dumps(res))
    # every part of a KD run is at revision 1 but the data pipeline (2 since its contiguous batches)
    assert StaleRuns(store).why(kd) == ["data r1 < r2"]
    _bump(path, "loss:kd")
    assert sorted(StaleRuns(store).why(kd)) == ["data r1 < r2", "loss:kd r1 < r2"]


@pytest.mark.heavy
def test_rerun_stale_retrains_exactly_the_stale_runs_after_archiving_them(copy_of, tmp_path, monkeypatch):
    store, by_loss = copy_of
    path = _ledger_copy(tmp_path, monkeypatch)
    _bump(path, "loss:mse")
    before = {rid: store.run_file(rid, "result.json").read_bytes() for ids in by_loss.values() for rid in ids}
    plain = in_process("reproduce", "klmse-table4", "--profile", "smoke", "--store", store.root, "--device", "cpu",
                       "--quiet", "--no-report")
    assert plain.returncode == 0 and "1 finished run(s) are stale" in plain.stdout and "--rerun-stale" in plain.stdout
    assert {r: store.run_file(r, "result.json").read_bytes() for r in before} == before  # nothing retrained
    run = in_process("reproduce", "klmse-table4", "--profile", "smoke", "--store", store.root, "--device", "cpu",
                     "--quiet", "--no-report", "--rerun-stale")
    assert run.returncode == 0, run.stdout + run.stderr
    after = {r: store.run_file(r, "result.json").read_bytes() for r in before}
    assert [r for r in before if after[r] != before[r]] == by_loss["mse"]  # one run trained, the stale one
    mse = by_loss["mse"][0]
    assert json.loads(after[mse])["revisions"]["loss:mse"] == 2 and not StaleRuns(store).is_stale(mse)
    archived = list((store.root / "archive" / mse).iterdir())
    assert len(archived) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{6}Z", archived[0].name)
    assert (archived[0] / "result.json").read_bytes() == before[mse]  # the old result, byte for byte
    assert {"model.pt", "test_logits.pt", "metrics.jsonl", "config.json"} <= {p.name for p in archived[0].iterdir()}
    assert sorted(p.name for p in (store.root / "archive").iterdir()) == [mse]
    assert json.loads(in_process("status", "--store", store.root, "--json").stdout)["stale"] == 0


def test_a_garbage_revision_record_is_one_line_and_nothing_is_written(copy_of, tmp_path):
    store, by_loss = copy_of
    mse = by_loss["mse"][0]
    res = json.loads(store.run_file(mse, "result.json").read_text())
    res["revisions"] = {"loss:mse": "two"}
    store.run_file(mse, "result.json").write_text(json.dumps(res))
    snapshot = _tree(store.root)
    out = tmp_path / "out"
    for args in (["status", "--json"], ["report", "klmse-table4", "--out", out],
                 ["reproduce", "klmse-table4", "--profile", "smoke", "--device", "cpu", "--quiet", "--rerun-stale"]):
        run = in_process(*args, "--store", store.root)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, (args, run.stderr)
        assert str(store.run_file(mse, "result.json")) in lines[0] and "revisions" in lines[0]
    assert _tree(store.root) == snapshot and not out.exists()
    # the rest of the store stays readable: the other runs' status, results and staleness
    others = {r for ids in by_loss.values() for r in ids} - {mse}
    status = store_status(store, others)
    assert status.summary["done"] == 6 and status.summary["stale"] == 0
    assert store.result(mse)["status"] == "done"
