"""The worker: drains the store's runnable jobs, claiming each (or a fused group) under its lease,
training it with the engine, recording how it ended; and ``train`` under a lease, as a worker.

Failures: a run that fails in its own terms (non-finite loss, missing teacher) is final at once;
an exception (an I/O error, a full disk, out of memory) is retried up to ``max_attempts`` times
(retry.py), then recorded as failed with its reason. Either way the worker goes on with other runs;
runs that depend on a failed run are reported as blocked and never attempted (queue.py).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

from ..store.layout import LEASE, Store, WriteRefused, read_json
from ..store.leases import lease_generation, lease_owner_name, lease_wait_note
from .events import append_event
from .fusing import fusable
from .lease import Lease
from .options import WorkerOptions
from .queue import counts, runnable, scan
from .retry import attempts, record_error
from .signals import sigterm_raises_interrupt


def run_group(store: Store, rids: list[str], opts: WorkerOptions, log=print) -> dict[str, str]:
    """Claim and train runs that share a fuse key (one run when fusing is off). Returns what
    happened to each claimed run: done, failed, retry or lost."""
    from ..engine import config as C
    from ..engine.execution import ExecOptions
    from ..engine.train import StopRun, train_runs

    leases = {}
    outcome: dict[str, str] = {}
    for rid in rids:
        lease = Lease(store, rid, opts)
        try:
            if lease.claim():
                leases[rid] = lease
        except OSError as err:  # a full disk refuses even the lease: a failed attempt, retried later
            outcome[rid] = record_error(store, rid, f"{type(err).__name__}: {err}", opts, log)
    if not leases:
        return outcome
    try:
        cfgs = []
        for rid in leases:
            append_event(store, rid, kind="claim", worker=opts.name, fused=len(leases), group=sorted(leases))
            cfg = store.config(rid)
            if cfg is None or C.run_id(cfg) != rid:
                raise ValueError(f"config.json of run {rid} is missing or does not hash to its id")
            if opts.data_root:
                cfg["data"]["root"] = opts.data_root
            cfgs.append(cfg)

        for cfg in cfgs:  # the bar knows the epoch count from the start (no "e0/?")
            rid = C.run_id(cfg)
            leases[rid].progress = {"epoch": 0, "epochs": cfg["recipe"]["epochs"]}
            log(f"run {rid}: start, {cfg['model']} on {cfg['dataset']}, loss {cfg['loss']['name']}, "
                f"{cfg['recipe']['epochs']} epochs" + (f", fused with {len(cfgs) - 1} other(s)" if len(cfgs) > 1 else ""))
        epoch_start = {"t": time.time()}

        def on_epoch(m):
            lease = leases[m["run"]]
            lease.progress = {"epoch": m["epoch"], "epochs": m["epochs"], "test_top1": m["test_top1"],
                              **({"stage": m["stage"]} if "stage" in m else {})}
            log(f"run {m['run']}: " + (f"pre-training {m['stage']} " if "stage" in m else "")
                + f"epoch {m['epoch']}/{m['epochs']}, loss {m['train_loss']:.4f}"
                + (f", test top-1 {m['test_top1']:.2f}" if m.get("test_top1") is not None else ""))
            epoch_start["t"] = time.time()
            if lease.lost.is_set() or not lease.mine():
                raise StopRun(m["run"])
            lease.renew()

        def on_step(m):
            """Within an epoch: batches done and the measured speed, into each lease's progress (the
            heartbeat writes it); nothing here touches the device."""
            elapsed = max(time.time() - epoch_start["t"], 1e-9)
            for rid in m["runs"]:
                if rid in leases:
                    leases[rid].progress = {**leases[rid].progress, "epoch": m["epoch"] - 1, "epochs": m["epochs"],
                                            "step": m["step"], "steps": m["steps"],
                                            "images_per_s": round(m["images"] / elapsed, 1),
                                            "step_s": round(elapsed / m["step"], 4)}

        options = ExecOptions(device=opts.device, num_workers=opts.num_workers, accel=opts.accel, on_epoch=on_epoch,
                              on_step=on_step, tensorboard=opts.tensorboard)
        results = train_runs(cfgs, store, options)
        for rid, result in results.items():
            if result is None:
                append_event(store, rid, kind="lost", worker=opts.name)
                outcome[rid] = "lost"
            else:
                append_event(store, rid, kind="finish" if result["status"] == "done" else "fail",
                             worker=opts.name, reason=result.get("reason"))
                log(f"run {rid}: " + (f"done, top-1 {result['metrics']['top1']:.2f}" if result["status"] == "done"
                                      else f"failed: {result.get('reason')}"))
                outcome[rid] = result["status"]
        return outcome
    except (KeyboardInterrupt, SystemExit):
        for rid in leases:
            append_event(store, rid, kind="interrupted", worker=opts.name)
        raise
    except WriteRefused as err:  # the lease passed to another worker: drop the runs, write nothing
        log(f"lost: {err}")
        for rid in leases:
            if rid not in outcome:
                append_event(store, rid, kind="lost", worker=opts.name, reason=str(err))
                outcome[rid] = "lost"
        return outcome
    except Exception as err:  # an I/O error, a full disk, a bug: retry, then fail with the reason
        reason = f"{type(err).__name__}: {err}"
        for rid in leases:
            if rid not in outcome:
                outcome[rid] = record_error(store, rid, reason, opts, log)
        return outcome
    finally:
        for lease in leases.values():
            lease.release()


def train_under_lease(cfg: dict, store: Store, options, lease_seconds: float, warn=print) -> dict | None:
    """Train one run under its lease, as a worker does, so that two ``train`` of one config, or a
    ``train`` next to a worker, never train it twice. The run's result; None when another
    process holds the run or takes it over (``warn`` is told which, in one line)."""
    from ..engine import config as C
    from ..engine.train import StopRun, train_run

    run_id = C.run_id(cfg)
    if store.result(run_id) is not None:  # finished (or failed) already: train_run just returns it
        return train_run(cfg, store, options)
    opts = WorkerOptions(store=str(store.root), device=options.device, lease_seconds=lease_seconds,
                         heartbeat_seconds=max(0.5, lease_seconds / 6),
                         name=f"train:{socket.gethostname()}:{os.getpid()}")
    lease = Lease(store, run_id, opts)
    if not lease.claim():
        if store.result(run_id) is not None:
            return train_run(cfg, store, options)
        owner = lease_owner_name(read_json(store.run_file(run_id, LEASE)))
        warn(f"run {run_id} is being trained by {owner}; nothing done (run this again when it has finished "
             f"or its lease has expired)")
        return None
    append_event(store, run_id, kind="claim", worker=opts.name, fused=1)

    def on_epoch_fenced(m, user=options.on_epoch):
        user(m)
        if lease.lost.is_set():
            raise StopRun(run_id)
    options.on_epoch = on_epoch_fenced
    try:
        result = train_run(cfg, store, options)
    except StopRun:
        append_event(store, run_id, kind="lost", worker=opts.name)
        warn(f"run {run_id}: its lease passed to another process; this one stopped without writing")
        return None
    finally:
        lease.release()
    append_event(store, run_id, kind="finish" if result["status"] == "done" else "fail", worker=opts.name,
                 reason=result.get("reason"))
    return result


def run_worker(opts: WorkerOptions, log=print) -> dict:
    """Drain the store's runnable jobs. Returns how many runs ended in each way."""
    store = Store(opts.store)
    tally: dict[str, int] = {}
    retried: dict[str, int] = {}  # failed attempts seen by this worker (the disk may be too full to count them)
    waited: set[tuple] = set()
    sigterm_raises_interrupt()
    while True:
        states = scan(store, opts.only)
        ready = [r for r in runnable(states)
                 if max(attempts(store, r), retried.get(r, 0)) < opts.max_attempts]
        # A run that just failed goes to the back so that one bad run cannot starve the others.
        ready.sort(key=lambda r: r in retried)
        for rid in ready:
            outcomes = run_group(store, fusable(states, ready, rid, opts, store), opts, log)
            for r, outcome in outcomes.items():
                tally[outcome] = tally.get(outcome, 0) + 1
                if outcome == "retry":
                    retried[r] = retried.get(r, 0) + 1
            if outcomes:
                break  # rescan: finishing a run may make others runnable
        else:
            # Nothing claimable. Wait while another worker runs something (it may unblock a
            # dependent run, or die and leave its run to us); otherwise nothing can progress.
            if opts.exit_when_idle and not ready and not counts(states)["running"]:
                if threading.current_thread() is threading.main_thread():
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # nothing left to release
                return tally
            for rid, s in states.items():  # say once what is waited for, and until when
                note = lease_wait_note(s.lease) if s.state == "running" else None
                if note and (rid, lease_generation(s.lease)) not in waited:
                    waited.add((rid, lease_generation(s.lease)))
                    log(f"waiting for run {rid}: {note}")
            time.sleep(opts.poll_seconds)
