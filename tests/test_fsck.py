"""`store check` (benchmark/runs/fsck.py) on a pending run written by hand: each damaged file found with
its repair, repairs applied, then nothing left to find. Damage to trained runs is tested through the
command line in test_faults.py."""

import json

from benchmark.engine import config as C
from benchmark.runs.fsck import check_run, check_store, repair
from benchmark.store.layout import ATTEMPTS, CONFIG, LEASE, METRICS, Store
from tests.helpers import tiny


def test_damaged_files_of_a_pending_run_are_found_and_repaired(tmp_path):
    store = Store(tmp_path)
    cfg = C.resolve(tiny())
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    assert check_run(store, rid) == []
    store.run_file(rid, LEASE).write_text(json.dumps({"expires": "soon"}))
    store.run_file(rid, ATTEMPTS).write_text("[1]")
    store.run_file(rid, METRICS).write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')  # a bad line inside
    (store.run_dir(rid) / ".model.pt.123.tmp").write_bytes(b"x")
    found = check_run(store, rid)
    assert [(f.where, f.problem, f.repair) for f in found] == [
        (f"{rid}/{METRICS}", "unreadable", "removed (no checkpoint)"),
        (f"{rid}/{LEASE}", "of the wrong shape", "removed"),
        (f"{rid}/{ATTEMPTS}", "of the wrong shape", "removed"),
        (f"{rid}/.model.pt.123.tmp", "a left-over temporary file", "removed")]
    assert [why for _, why in repair(found)] == [None] * 4
    assert check_store(store) == [] and store.run_file(rid, CONFIG).exists()


def test_a_config_of_another_run_and_odd_sessions_are_set_aside(tmp_path):
    store = Store(tmp_path)
    cfg = C.resolve(tiny())
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    store.run_file(rid, CONFIG).write_text(json.dumps(C.resolve(tiny(seed=9))))
    store.sessions_file.parent.mkdir(parents=True, exist_ok=True)
    store.sessions_file.write_text('{"not": "a list"}')
    found = check_store(store)
    assert [(f.where, f.problem) for f in found] == [("queue/sessions.json", "of the wrong shape"),
                                                     (f"{rid}/{CONFIG}", "unreadable or not this run's config")]
    repair(found)
    assert not store.sessions_file.exists() and not store.run_file(rid, CONFIG).exists()
    assert len(list(store.run_dir(rid).glob("config.json.corrupt-*"))) == 1  # set aside, never deleted
