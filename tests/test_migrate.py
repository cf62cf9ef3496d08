"""store migrate: a store made by the previous main (tests/fixtures/store-layout1: id scheme 1, no
layout record) carried over to today's ids without retraining, with the same report."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from benchmark import cli
from benchmark.catalog.plan import Planner
from benchmark.errors import BadInput
from benchmark.runs import migrate
from benchmark.store.layout import LAYOUT, RESULT, Store
from tests.helpers import REPO

FIXTURE = REPO / "tests" / "fixtures" / "store-layout1"
# The tests' catalog as it was when the store was made (its tiny recipe's 32-px stand-in: its ids)
FIXTURE_CATALOG = REPO / "tests" / "fixtures" / "store-layout1-catalog"
OLD_REPORT = json.loads((FIXTURE / "reports" / "klmse-table4.json").read_text())


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def old_store(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(FIXTURE_CATALOG))
    root = tmp_path / "store"
    shutil.copytree(FIXTURE, root)
    return root


def _planned_ids() -> list[str]:
    planner = Planner("smoke", cost=False)
    return planner.plan("klmse-table4").job_ids


def test_an_old_store_is_refused_with_the_migrate_command_and_nothing_written(old_store, capsys):
    before = snapshot(old_store)
    for argv in (["status", "--store", old_store], ["report", "klmse-table4", "--store", old_store],
                 ["store", "check", "--store", old_store]):
        code, _, err = run_cli(capsys, *argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, err
        assert "layout 1, id scheme 1" in lines[0] and "store migrate" in lines[0]
    assert snapshot(old_store) == before


def test_the_dry_run_lists_what_moves_and_writes_nothing(old_store, capsys):
    before = snapshot(old_store)
    code, out, _ = run_cli(capsys, "store", "migrate", "--store", old_store)
    assert code == 0
    assert "layout 1, id scheme 1 -> layout 2, id scheme 2" in out
    assert "7 runs (7 finished) under new ids: 7 move" in out and "dry run: nothing written" in out
    # KD and MSE students of a CE teacher, trained before the data pipeline's revision 2 (contiguous batches)
    assert "7 finished run(s) stale" in out
    assert snapshot(old_store) == before


def test_apply_finds_every_finished_run_under_its_new_id_retrains_nothing_and_reports_the_same(old_store, capsys):
    old_results = {rid: json.loads((old_store / "runs" / rid / RESULT).read_text())
                   for rid in os.listdir(old_store / "runs")}
    code, out, _ = run_cli(capsys, "store", "migrate", "--store", old_store, "--apply")
    assert code == 0 and "migrated: the store is now layout 2" in out
    store = Store(old_store)  # opens without complaint now
    assert store.layout() == (LAYOUT, 2)
    planned = _planned_ids()
    assert sorted(store.run_ids()) == sorted(planned) and all(store.is_done(rid) for rid in planned)
    # the same training results, under the new ids (teacher references rewritten bottom-up)
    by_digest = {r["weights_digest"]: r for r in old_results.values()}
    for rid in planned:
        res = store.result(rid)
        old = by_digest[res["weights_digest"]]
        assert res["metrics"] == old["metrics"] and res["id"] == rid and res["config"] == store.config(rid)
        teacher = (res["config"].get("teacher") or {}).get("run")
        assert teacher is None or teacher in planned
    # nothing retrained: reproduce finds every run done
    code, out, _ = run_cli(capsys, "reproduce", "klmse-table4", "--profile", "smoke", "--store", old_store,
                           "--device", "cpu")
    assert code == 0 and "7 runs, 7 already done" in out
    # the report is the one the previous main wrote of this store, but for the run ids
    code, out, _ = run_cli(capsys, "report", "klmse-table4", "--store", old_store, "--format", "json")
    now = json.loads(out)
    # (the status aside: every run predates the data pipeline's revision 2, so each cell is stale now)
    keys = [k for k in OLD_REPORT["cells"][0] if k not in ("runs", "status")]
    assert [{k: c[k] for k in keys} for c in now["cells"]] == [{k: c[k] for k in keys} for c in OLD_REPORT["cells"]]
    assert all(c["status"] == "stale" and c["stale_runs"] for c in now["cells"] if c["reproduced"] is not None)
    # stale cells are not judged, so a claim on them lacks its numbers; on the published ones it is as before
    assert [c["status"] for c in now["claims"]] == ["undecided"] * len(OLD_REPORT["claims"])
    assert [{k: c[k] for k in ("text", "published_status", "published_detail")} for c in now["claims"]] == \
        [{k: c[k] for k in ("text", "published_status", "published_detail")} for c in OLD_REPORT["claims"]]
    # migrating again is a no-op
    code, out, _ = run_cli(capsys, "store", "migrate", "--store", old_store, "--apply")
    assert code == 0 and "nothing to migrate" in out


def test_two_old_ids_of_one_run_keep_one_result_and_say_which(old_store, capsys):
    """An older id rule could give one training two ids: both become one new id; the finished
    one is kept and the other set aside (never deleted), and the output names both."""
    runs = old_store / "runs"
    student = next(rid for rid in os.listdir(runs)
                   if (json.loads((runs / rid / "config.json").read_text()).get("teacher")))
    twin = "0123456789abcdef"
    shutil.copytree(runs / student, runs / twin)
    (runs / twin / RESULT).unlink()  # the twin never finished
    code, out, _ = run_cli(capsys, "store", "migrate", "--store", old_store, "--apply")
    assert code == 0
    assert f"{twin} and {student} are one run now" in out and f"keeps {student} (finished)" in out
    store = Store(old_store)
    assert sorted(store.run_ids()) == sorted(_planned_ids())
    aside = store.migrated_aside_dir(twin)
    assert (aside / "config.json").exists() and not (runs / twin).exists()


def test_an_interrupted_migration_continues_from_its_journal(old_store, capsys, monkeypatch):
    real = os.replace
    calls = {"n": 0}

    def dies_on_the_third_folder(src, dst):
        if Path(src).parent.name == "runs":
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # a kill mid-migration
        return real(src, dst)

    monkeypatch.setattr(migrate.os, "replace", dies_on_the_third_folder)
    with pytest.raises(KeyboardInterrupt):
        migrate.migrate(old_store, do_apply=True)
    assert (old_store / "migration.json").exists() and not (old_store / "store.json").exists()
    with pytest.raises(BadInput, match="store migrate"):
        Store(old_store)  # half-migrated: still refused
    monkeypatch.setattr(migrate.os, "replace", real)
    code, out, _ = run_cli(capsys, "store", "migrate", "--store", old_store, "--apply")
    assert code == 0 and "migrated" in out and not (old_store / "migration.json").exists()
    store = Store(old_store)
    assert sorted(store.run_ids()) == sorted(_planned_ids()) and all(store.is_done(r) for r in store.run_ids())


@pytest.mark.parametrize("record, needle", [
    ({"layout": LAYOUT + 1, "id_scheme": 2}, "newer than this code's"),
    ({"layout": LAYOUT, "id_scheme": 99}, "newer than this code's"),
    ("not json", "not a store layout record"),
])
def test_a_newer_or_garbage_layout_is_refused_in_one_line(tmp_path, capsys, record, needle):
    root = tmp_path / "store"
    root.mkdir()
    (root / "store.json").write_text(record if isinstance(record, str) else json.dumps(record))
    before = snapshot(root)
    for argv in (["status", "--store", root], ["store", "migrate", "--store", root, "--apply"]):
        code, _, err = run_cli(capsys, *argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[0] and str(root) in lines[0], err
    assert snapshot(root) == before


def test_a_new_store_records_its_layout_with_its_first_run(tmp_path):
    from benchmark.engine import config as C
    from tests.helpers import tiny

    store = Store(tmp_path / "s")
    assert store.layout() is None
    cfg = C.resolve(tiny())
    store.ensure_config(C.run_id(cfg), cfg)
    assert json.loads(store.layout_file.read_text()) == {"layout": LAYOUT, "id_scheme": 2}
