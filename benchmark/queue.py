"""The job queue, kept in the store itself, and the worker that drains it.

A job is a run folder with a ``config.json`` and no finished ``result.json``. A worker claims a
job by writing ``lease.json`` under a file lock; it renews the lease from a heartbeat thread and
gives it up when the run ends. A lease whose worker died is taken over: at once when the worker
was on this host and its process is gone, otherwise when the lease expires (``expires`` in the
lease, renewed every heartbeat; a foreign host's process cannot be probed, so its lease is
waited for until then, and the worker says so). Each claim increments the lease's ``generation``;
every write into the run checks it (``Store.write_run_file``), so a worker that lost its lease
while paused cannot write over the run once it resumes. Every claim, finish
and failure is appended to the run's ``events.jsonl``, which is how tests prove that no run was
ever trained twice at the same time and that every run finished exactly once.

Failures: a run that fails in its own terms (non-finite loss, missing teacher) is final at once;
an exception (an I/O error, a full disk, out of memory) is retried up to ``max_attempts`` times,
then recorded as failed with its reason. Either way the worker goes on with other runs; runs that
depend on a failed run are reported as blocked and never attempted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from filelock import Timeout

from .accel import Accel
from .store import ATTEMPTS, CONFIG, EVENTS, LEASE, Store, WriteRefused, json_bytes, read_json


def _process_start(pid: int) -> str | None:
    """The process's start time (Linux), so that a reused pid is not mistaken for a live worker."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_identity() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def _number(value, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def lease_is_live(lease: dict | None, now: float | None = None) -> bool:
    """Whether a lease still holds: not expired and, on this host, its process alive. A lease
    file of the wrong shape (a list, a string expiry) holds nothing."""
    if not isinstance(lease, dict) or not isinstance(lease.get("owner"), dict):
        return False
    if (now or time.time()) > _number(lease.get("expires")):
        return False
    owner = lease["owner"]
    if owner.get("host") == socket.gethostname():
        pid = owner.get("pid")
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, TypeError):
            return False
        except PermissionError:
            pass
        if owner.get("start") is not None and _process_start(pid) != owner.get("start"):
            return False
    return True


def lease_owner_name(lease: dict | None) -> str:
    owner = (lease or {}).get("owner") if isinstance(lease, dict) else None
    if not isinstance(owner, dict):
        return "nobody"
    return str(owner.get("name") or f"{owner.get('host')}:{owner.get('pid')}")


def lease_wait_note(lease: dict | None, now: float | None = None) -> str | None:
    """Why a live lease of another host is waited for, and until when (None for this host's)."""
    if not lease_is_live(lease, now) or lease["owner"].get("host") == socket.gethostname():
        return None
    left = _number(lease.get("expires")) - (now or time.time())
    return (f"leased by {lease_owner_name(lease)} (another host: its process cannot be checked from here); "
            f"taken over if not renewed within {left:.0f} s")


def lease_generation(lease) -> int:
    return int(_number(lease.get("generation"))) if isinstance(lease, dict) else 0


def append_event(store: Store, rid: str, **event) -> None:
    """One line more in the run's events.jsonl, unfenced (``Store.write_unfenced``): a ``lost``
    event is written after the lease is gone and a ``finish`` after the result exists."""
    line = (json.dumps({"time": time.time(), **event}, sort_keys=True) + "\n").encode()
    store.write_unfenced(rid, EVENTS, lambda current: _whole_lines(current) + line)


def _whole_lines(data: bytes | None) -> bytes:
    # An events.jsonl appended to by an older version may end in a line cut by a kill: end it,
    # so that the cut line stays one unreadable line (events() skips it) and ours stays whole.
    return b"" if not data else data if data.endswith(b"\n") else data + b"\n"


def events(store: Store, rid: str) -> list[dict]:
    path = store.run_file(rid, EVENTS)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut by a kill
    return out


# ---------------------------------------------------------------- job states


def dependencies(cfg: dict) -> list[str]:
    teacher = cfg.get("teacher") or {}
    return [teacher["run"]] if "run" in teacher else []


UNREADABLE_CONFIG = ("config.json is unreadable, so no worker can train it; `python runner.py store check --repair` "
                     "sets it aside and `python runner.py reproduce` of its table writes it again")


@dataclass
class JobState:
    id: str
    state: str                    # done | failed | running | pending | blocked
    config: dict | None = None
    result: dict | None = None
    lease: dict | None = None
    reason: str | None = None


def scan(store: Store, only: set[str] | None = None) -> dict[str, JobState]:
    """The state of every job of the store (or of `only`, with their dependencies)."""
    ids = set(store.run_ids()) if only is None else set(only)
    states: dict[str, JobState] = {}
    todo = list(ids)
    while todo:
        rid = todo.pop()
        if rid in states:
            continue
        cfg = store.config(rid)
        res = store.result(rid)
        if res is not None and res.get("status") == "done":
            states[rid] = JobState(rid, "done", cfg, res)
            continue
        if res is not None:
            states[rid] = JobState(rid, "failed", cfg, res, reason=res.get("reason"))
            continue
        lease = read_json(store.run_file(rid, LEASE)) if store.run_dir(rid).exists() else None
        if cfg is None and store.run_file(rid, CONFIG).exists():
            # Garbage in config.json: no worker can run it, so it must not wait as pending forever.
            states[rid] = JobState(rid, "failed", None, lease=lease, reason=UNREADABLE_CONFIG)
            continue
        if cfg is None:
            states[rid] = JobState(rid, "pending", None, reason="no config in the store")
            continue
        states[rid] = JobState(rid, "running" if lease_is_live(lease) else "pending", cfg, lease=lease)
        todo.extend(dependencies(cfg))
    for rid in sorted(states):  # blocked: a dependency failed, directly or further up
        _blocked(states, rid, set())
    return {rid: s for rid, s in states.items() if only is None or rid in only or s.state != "done"}


def _blocked(states, rid, seen) -> bool:
    s = states.get(rid)
    if s is None or rid in seen:
        return False
    seen.add(rid)
    if s.state == "failed":
        return True
    if s.state in ("pending", "blocked") and s.config is not None:
        for dep in dependencies(s.config):
            if dep in states and (states[dep].state == "failed" or _blocked(states, dep, seen)):
                s.state, s.reason = "blocked", f"depends on {dep}, which failed or is blocked"
                return True
    return s.state == "blocked"


def unreadable_configs(states: dict[str, JobState]) -> list[str]:
    """The runs that no worker can train because their config.json is damaged (failed, without a
    result: ``store check --repair`` or ``reproduce`` of their table must see to them)."""
    return sorted(rid for rid, s in states.items() if s.reason == UNREADABLE_CONFIG)


def counts(states: dict[str, JobState]) -> dict:
    out = {"done": 0, "running": 0, "pending": 0, "blocked": 0, "failed": 0}
    for s in states.values():
        out[s.state] += 1
    return out


# ---------------------------------------------------------------- leases


@dataclass
class WorkerOptions:
    store: str = "runs"
    device: str = "cpu"
    only: set[str] | None = None       # restrict to these jobs (reproduce passes its tables' jobs)
    lease_seconds: float = 120.0
    heartbeat_seconds: float = 10.0
    poll_seconds: float = 2.0
    max_attempts: int = 3
    exit_when_idle: bool = True        # False: keep polling for new jobs
    num_workers: int = 4               # DataLoader workers (image-folder datasets)
    fuse: bool = True                  # train runs that share data, recipe, seed and teacher together
    fuse_max: int = 8
    data_root: str | None = None       # where the datasets are on this machine (overrides the configs')
    accel: Accel = field(default_factory=Accel)  # accelerations and determinism (accel.py)
    tensorboard: bool = False          # write each run's scalars as TensorBoard events under the store
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


class Lease:
    """This worker's lease on one run, renewed by a heartbeat thread until released."""

    def __init__(self, store: Store, rid: str, opts: WorkerOptions):
        self.store, self.rid, self.opts = store, rid, opts
        self.dir = store.run_dir(rid)
        self.lease_file = store.run_file(rid, LEASE)
        self.me = {**worker_identity(), "name": opts.name}
        self.lost = threading.Event()
        self.progress: dict = {}
        self.generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _swap(self, update) -> bool:
        """The lease's compare-and-set: ``update(current lease)`` returns the new lease, or None
        to leave it, under the run's lock (``Store.write_unfenced``: the lease is what the fence
        checks). The lock is held by a writer only to check its lease and rename a file. A worker
        paused at that moment keeps it until it resumes: the claim gives up after a few seconds
        and the run is tried again later (a delay, never a double writer)."""
        def swap(current: bytes | None) -> bytes | None:
            try:
                lease = json.loads(current) if current else None
            except ValueError:  # a damaged lease file holds nothing
                lease = None
            new = update(lease)
            return None if new is None else json_bytes(new)
        return self.store.write_unfenced(self.rid, LEASE, swap, timeout=5)

    def _held(self) -> dict:
        return {"owner": self.me, "expires": time.time() + self.opts.lease_seconds, "generation": self.generation,
                "progress": self.progress, "device": self.opts.device}

    def claim(self) -> bool:
        def take(current):
            if self.store.result(self.rid) is not None or lease_is_live(current):
                return None
            self.generation = lease_generation(current) + 1
            return self._held()
        try:
            if not self._swap(take):
                return False
        except Timeout:
            return False
        self.store.fences[self.rid] = {"owner": self.me, "generation": self.generation}
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return True

    def mine(self) -> bool:
        return self._is_mine(read_json(self.lease_file))

    def _is_mine(self, lease) -> bool:
        return isinstance(lease, dict) and lease.get("owner") == self.me and lease.get("generation") == self.generation

    def _beat(self) -> None:
        while not self._stop.wait(self.opts.heartbeat_seconds):
            self.renew()

    def renew(self) -> None:
        def extend(current):
            if not self._is_mine(current):
                self.lost.set()
                return None
            return self._held()
        try:
            self._swap(extend)
        except OSError:  # filelock's Timeout included
            pass  # try again at the next beat; the lease lasts several beats

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self.store.fences.get(self.rid, {}).get("generation") == self.generation:
            del self.store.fences[self.rid]
        # Kept, expired, so that the next claim's generation is higher than ours.
        released = {"generation": self.generation, "expires": 0, "released_by": self.me}
        try:
            self._swap(lambda current: released if self._is_mine(current) else None)
        except OSError:  # filelock's Timeout included
            pass


# ---------------------------------------------------------------- the worker


def runnable(states: dict[str, JobState]) -> list[str]:
    def deps_done(s):
        return all(states[d].state == "done" if d in states else False for d in dependencies(s.config))
    return sorted(rid for rid, s in states.items() if s.state == "pending" and s.config is not None and deps_done(s))


def _attempts(store: Store, rid: str) -> int:
    """Failed attempts so far (an unreadable or odd ``attempts.json`` counts as none)."""
    doc = read_json(store.run_file(rid, ATTEMPTS))
    n = doc.get("failed_attempts") if isinstance(doc, dict) else 0
    return n if isinstance(n, int) and not isinstance(n, bool) else 0


def run_group(store: Store, rids: list[str], opts: WorkerOptions, log=print) -> dict[str, str]:
    """Claim and train runs that share a fuse key (one run when fusing is off). Returns what
    happened to each claimed run: done, failed, retry or lost."""
    from . import config as C
    from .train import ExecOptions, StopRun, train_runs

    leases = {}
    outcome: dict[str, str] = {}
    for rid in rids:
        lease = Lease(store, rid, opts)
        try:
            if lease.claim():
                leases[rid] = lease
        except OSError as err:  # a full disk refuses even the lease: a failed attempt, retried later
            outcome[rid] = _record_error(store, rid, f"{type(err).__name__}: {err}", opts, log)
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
                outcome[rid] = _record_error(store, rid, reason, opts, log)
        return outcome
    finally:
        for lease in leases.values():
            lease.release()


def train_under_lease(cfg: dict, store: Store, options, lease_seconds: float, warn=print) -> dict | None:
    """Train one run under its lease, as a worker does, so that two ``train`` of one config, or a
    ``train`` next to a worker, never train it twice. The run's result; None when another
    process holds the run or takes it over (``warn`` is told which, in one line)."""
    from . import config as C
    from .train import StopRun, train_run

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


def _record_error(store: Store, rid: str, reason: str, opts: WorkerOptions, log) -> str:
    log(f"run {rid}: {reason}")
    try:
        n = _attempts(store, rid) + 1
        store.write_run_file(rid, ATTEMPTS, json_bytes({"failed_attempts": n, "last_error": reason,
                                                         "traceback": traceback.format_exc()}))
        append_event(store, rid, kind="error", worker=opts.name, reason=reason)
        if n >= opts.max_attempts:
            store.write_result(rid, {"id": rid, "status": "failed", "config": store.config(rid),
                                     "reason": f"failed {n} times; last: {reason}"})
            return "failed"
    except WriteRefused as lost:  # the lease passed to another worker meanwhile: not ours to record
        log(f"run {rid}: {lost}")
        return "lost"
    except Exception as again:  # the disk may be full: say so and go on with other runs
        log(f"run {rid}: could not record the failure ({type(again).__name__}: {again})")
    return "retry"


def fusable(states: dict[str, JobState], ready: list[str], first: str, opts: WorkerOptions,
            store: Store | None = None) -> list[str]:
    """`first` and the ready runs that can be trained with it in one loop (up to fuse_max). Under
    --horizontal on, a run claimed before comes back with the members of its last group that are
    still ready: a batched group's membership is fixed for its lifetime, so a resume reforms it."""
    from .train import fuse_key

    if not opts.fuse:
        return [first]
    key = fuse_key(states[first].config)
    group = [first] + [r for r in ready if r != first and fuse_key(states[r].config) == key]
    claims = [e for e in events(store, first) if e.get("kind") == "claim"] if store is not None else []
    if opts.accel.horizontal == "on" and claims and isinstance(claims[-1].get("group"), list):
        group = [r for r in group if r in claims[-1]["group"] or r == first]
    return group[:opts.fuse_max]


def run_worker(opts: WorkerOptions, log=print) -> dict:
    """Drain the store's runnable jobs. Returns how many runs ended in each way."""
    store = Store(opts.store)
    tally: dict[str, int] = {}
    retried: dict[str, int] = {}  # failed attempts seen by this worker (the disk may be too full to count them)
    waited: set[tuple] = set()
    _sigterm_raises_interrupt()
    while True:
        states = scan(store, opts.only)
        ready = [r for r in runnable(states)
                 if max(_attempts(store, r), retried.get(r, 0)) < opts.max_attempts]
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


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _sigterm_raises_interrupt() -> None:
    """SIGTERM (from reproduce's Ctrl-C, or SLURM) stops the worker like Ctrl-C: the lease is
    released and at most the current epoch is lost."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
