"""A worker's lease on one run (benchmark/runs/lease.py): a claim takes a free or expired lease with a
higher generation, never a live one or a finished run's; a release leaves it expired, so that the next
claim counts on."""

from benchmark.runs.lease import Lease
from benchmark.runs.options import WorkerOptions
from benchmark.store.layout import LEASE, Store, read_json

RID = "00000000000000ab"


def _lease(store, name):
    return Lease(store, RID, WorkerOptions(store=str(store.root), name=name, heartbeat_seconds=60, lease_seconds=30))


def test_claims_count_generations_and_a_live_lease_is_not_taken(tmp_path):
    store = Store(tmp_path)
    store.ensure_config(RID, {"model": "x"})
    a, b = _lease(store, "a"), _lease(store, "b")
    assert a.claim() and a.generation == 1 and a.mine()
    assert store.fences[RID]["generation"] == 1
    assert not b.claim() and not b.mine()  # a holds it, alive
    a.release()
    held = read_json(store.run_file(RID, LEASE))
    assert (held["generation"], held["expires"], held["released_by"]["name"]) == (1, 0, "a") and RID not in store.fences
    assert b.claim() and b.generation == 2
    a.renew()
    assert a.lost.is_set()  # a's renewal finds b's lease: a knows it lost the run
    b.release()


def test_a_finished_run_is_never_claimed(tmp_path):
    store = Store(tmp_path)
    store.ensure_config(RID, {"model": "x"})
    store.write_result(RID, {"id": RID, "status": "failed", "config": {"model": "x"}, "reason": "r"})
    assert not _lease(store, "a").claim()
