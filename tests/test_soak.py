"""A randomized soak of the queue: N workers with short leases, random SIGSTOP/SIGCONT (pauses
longer than the lease) and SIGKILL; at the end every run finished exactly once, with every file
as an uninterrupted run makes it.

CI runs one short round. `KD_REPRO_SOAK_ROUNDS=20 python -m pytest -q tests/test_soak.py` is the
long soak of issue 14 (20 rounds, each with its own random seed)."""

import os
import random
import signal
import subprocess
import time

import pytest

from benchmark.engine import config as C
from benchmark.runs.events import events
from benchmark.runs.options import WorkerOptions
from benchmark.runs.worker import run_worker
from benchmark.store.layout import LEASE, Store, read_json
from benchmark.store.leases import lease_is_live
from tests.helpers import forked_runner, tiny32

ROUNDS = int(os.environ.get("KD_REPRO_SOAK_ROUNDS", "1"))
LEASE_S = 2.0
FAULTS_PER_ROUND = 4  # then the round is left to finish (on 2 busy cores an epoch can take 10 s)


def dag(store, epochs):
    """A teacher, two students of it, and an independent run."""
    def put(raw):
        cfg = C.resolve(raw)
        store.ensure_config(C.run_id(cfg), cfg)
        return C.run_id(cfg)
    teacher = put(tiny32(model="resnet14", recipe={"epochs": epochs}))
    students = [put(tiny32(teacher={"run": teacher}, loss={"name": "kd", "tau": t}, recipe={"epochs": epochs}))
                for t in (2.0, 8.0)]
    return [teacher, *students, put(tiny32(seed=7, recipe={"epochs": epochs}))]


def worker(store):
    """`runner.py worker` in a process of its own (forked: it starts training at once)."""
    return forked_runner("worker", "--store", store.root, "--device", "cpu", "--lease-seconds", LEASE_S, "--no-fuse")


def fingerprint(store, rid):
    res = store.result(rid)
    return res["metrics"], res["weights_digest"], store.metrics(rid) and [
        {k: v for k, v in m.items() if k != "time_s"} for m in store.metrics(rid)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("reference"))
    ids = dag(store, epochs=3)
    assert run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1, fuse=False)) == {"done": len(ids)}
    return {rid: fingerprint(store, rid) for rid in ids}


def holders(store, ids):
    """Pids of the workers that hold a live lease now (the ones a fault hits mid-run)."""
    out = set()
    for rid in ids:
        lease = read_json(store.run_dir(rid) / LEASE)
        if lease_is_live(lease):
            out.add(lease["owner"]["pid"])
    return out


@pytest.mark.heavy
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_soak(tmp_path, reference, round_):
    rng = random.Random(1000 + round_)
    store = Store(tmp_path)
    ids = dag(store, epochs=3)
    procs = [worker(store) for _ in range(3)]
    paused: dict = {}  # proc -> when to SIGCONT it
    stops = kills = 0
    deadline = time.time() + 300
    try:
        while not all(store.is_done(r) for r in ids) and time.time() < deadline:
            time.sleep(rng.uniform(0.5, 2.0))  # forked workers train from their first second
            now = time.time()
            for p, until in list(paused.items()):
                if now >= until:
                    p.send_signal(signal.SIGCONT)
                    del paused[p]
            busy = holders(store, ids)
            # Faults hit workers in the middle of a run (not ones still importing torch), and
            # at least one worker is left running so that the round moves on.
            victims = [p for p in procs if p.poll() is None and p not in paused and p.pid in busy]
            running = [p for p in procs if p.poll() is None and p not in paused]
            if not victims or len(running) < 2 or stops + kills >= FAULTS_PER_ROUND:
                continue
            victim = rng.choice(victims)
            if rng.random() < 0.6:  # a pause longer than the lease: its run is taken over
                victim.send_signal(signal.SIGSTOP)
                paused[victim] = now + rng.uniform(LEASE_S + 0.5, 2 * LEASE_S + 1)
                stops += 1
            else:
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills += 1
                procs.append(worker(store))
    finally:
        for p in paused:
            p.send_signal(signal.SIGCONT)
    for p in procs:  # the paused ones resume now: they must not touch what others finished
        if p.poll() is None:
            try:
                p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    last = worker(store)  # whatever the chaos left pending
    assert last.wait(timeout=300) == 0
    assert stops + kills >= 1, "no fault was injected: the round proved nothing"
    for rid in ids:
        finishes = [e for e in events(store, rid) if e["kind"] == "finish"]
        assert len(finishes) == 1, (rid, events(store, rid))
        assert fingerprint(store, rid) == reference[rid], rid
    lost = sum(e["kind"] == "lost" for rid in ids for e in events(store, rid))
    print(f"round {round_}: {stops} pauses, {kills} kills, {lost} runs lost by a paused worker; "
          f"all {len(ids)} runs finished once and identical")
