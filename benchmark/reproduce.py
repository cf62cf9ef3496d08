"""reproduce: plan tables, put their runs in the store's queue, run workers, then report.

Workers are separate processes (``runner.py worker``), one per GPU, or SLURM jobs submitted
through submitit; this process only watches the store and shows progress. Everything that
matters is in the store, so Ctrl-C, a kill or a reboot loses at most the epoch in progress of
each running run, and running the same command again continues.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .plan import Planner
from .queue import WorkerOptions, counts, run_worker, scan
from .store import Store, atomic_write_json, read_json

REPO = Path(__file__).resolve().parent.parent


def enqueue(store: Store, planner: Planner, job_ids: list[str], retry_failed: bool = False) -> None:
    """Write every job's config into the store (the queue); optionally clear failed results."""
    for rid in job_ids:
        if retry_failed:
            res = store.result(rid)
            if res is not None and res.get("status") == "failed":
                for name in ("result.json", "attempts.json"):
                    (store.run_dir(rid) / name).unlink(missing_ok=True)
        if store.result(rid) is None:
            store.ensure_config(rid, planner.jobs[rid].config)


def job_list_file(store: Store, job_ids: list[str]) -> Path:
    """The set of runs a reproduce session asks for, as a file its workers read."""
    text = "\n".join(sorted(job_ids)) + "\n"
    path = store.root / "queue" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def read_job_list(path: str | os.PathLike) -> set[str]:
    from .spec import is_run_id
    from .errors import BadInput

    try:
        ids = {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}
    except OSError as err:
        raise BadInput(path, None, f"cannot read the job list: {err}") from None
    bad = [i for i in ids if not is_run_id(i)]
    if bad:
        raise BadInput(path, None, f"not run ids: {', '.join(sorted(bad)[:3])}")
    return ids


def _die_with_parent():
    """Linux: a worker gets SIGTERM when reproduce dies, even by SIGKILL (no orphan workers)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def launch_local(store: Store, only_file: Path, n_workers: int, device: str, extra: list[str]) -> list[subprocess.Popen]:
    procs = []
    for i in range(n_workers):
        env = dict(os.environ)
        if device.startswith("cuda"):
            env["CUDA_VISIBLE_DEVICES"] = str(i)
        else:  # CPU workers share the cores instead of each taking all of them
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n_workers)))
        cmd = [sys.executable, str(REPO / "runner.py"), "worker", "--store", str(store.root), "--only",
               str(only_file), "--device", "cuda" if device.startswith("cuda") else device, *extra]
        log = open(store.root / "queue" / f"worker-{i}.log", "a")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      preexec_fn=_die_with_parent if sys.platform == "linux" else None))
    return procs


def launch_submitit(store: Store, only: set[str], n_workers: int, opts: WorkerOptions, cluster: str,
                    slurm: dict) -> list:
    """Workers as submitit jobs: SLURM on a cluster, or submitit's local executor (tests)."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(store.root / "submitit" / "%j"), cluster=cluster)
    params = {"timeout_min": slurm.get("time", 60 * 24)}
    if cluster == "slurm":
        params.update({"slurm_partition": slurm.get("partition"), "gpus_per_node": slurm.get("gpus_per_node", 1),
                       "tasks_per_node": 1, "cpus_per_task": slurm.get("cpus_per_task", 8),
                       "slurm_signal_delay_s": 120})
        params = {k: v for k, v in params.items() if v is not None}
    executor.update_parameters(**params)
    worker = SubmititWorker()
    return [executor.submit(worker, {**opts.__dict__, "only": sorted(only)}) for _ in range(n_workers)]


try:
    import submitit as _submitit

    _Checkpointable = _submitit.helpers.Checkpointable
except ImportError:  # pragma: no cover - submitit is a dependency
    _Checkpointable = object


class SubmititWorker(_Checkpointable):
    """A worker as a submitit job. On preemption or time-out submitit calls checkpoint(), which
    requeues the same call; the requeued worker resumes the runs from their last epoch."""

    def __call__(self, opts: dict) -> dict:
        opts = dict(opts)
        opts["only"] = set(opts["only"]) if opts.get("only") is not None else None
        return run_worker(WorkerOptions(**opts))


def run_eta_s(p: dict) -> float | None:
    """Seconds left of a running run from its measured speed: (steps left in this epoch + steps of
    the epochs after it) x measured seconds per step; None before the first measurement."""
    if not p.get("step_s") or not p.get("steps") or not p.get("epochs"):
        return None
    left = (p["steps"] - p.get("step", 0)) + (p["epochs"] - p.get("epoch", 0) - 1) * p["steps"]
    return max(0.0, left * p["step_s"])


def _fmt_s(sec: float) -> str:
    return f"{sec / 3600:.1f}h" if sec >= 3600 else (f"{sec / 60:.0f}min" if sec >= 60 else f"{sec:.0f}s")


def progress_line(states) -> str:
    """Per running run (three at most): model, epoch k/n (the one in progress), batches done in it,
    images/s and ETA from the measured speed."""
    running = [s for s in states.values() if s.state == "running"]
    parts = []
    for s in running[:3]:
        lease = s.lease if isinstance(s.lease, dict) else {}
        p = lease.get("progress") if isinstance(lease.get("progress"), dict) else {}  # a damaged lease: no progress
        cfg = s.config if isinstance(s.config, dict) else {}
        epochs = p.get("epochs") or (cfg.get("recipe") or {}).get("epochs", "?")
        text = f"{cfg.get('model', '?')} e{min(p.get('epoch', 0) + 1, epochs) if isinstance(epochs, int) else '?'}/{epochs}"
        if p.get("steps"):
            text += f" b{p.get('step', 0)}/{p['steps']} {p.get('images_per_s', 0):.0f} img/s"
        eta = run_eta_s(p)
        if eta is not None:
            text += f" ETA {_fmt_s(eta)}"
        parts.append(text)
    return ", ".join(parts) + (f" +{len(running) - 3}" if len(running) > 3 else "")


def watch(store: Store, only: set[str], alive, poll: float = 1.0, quiet: bool = False) -> dict:
    """Show progress until no run can make progress; returns the final counts."""
    from tqdm import tqdm

    total = len(only)
    bar = tqdm(total=total, unit="run", desc="runs", disable=quiet, dynamic_ncols=True)
    try:
        while True:
            states = scan(store, only)
            c = counts(states)
            bar.n = c["done"]
            bar.set_postfix_str(progress_line(states) or ("waiting" if c["pending"] else ""))
            bar.refresh()
            if not alive() or (c["pending"] == 0 and c["running"] == 0):
                return c
            time.sleep(poll)
    finally:
        bar.close()


def stop_workers(procs, grace: float = 0.0) -> None:
    """SIGTERM what is still running after ``grace`` seconds (workers with nothing left exit by
    themselves; a signal during their interpreter shutdown would only print a traceback)."""
    deadline = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def summarize_failures(store: Store, only: set[str] | None, full: bool = False) -> list[str]:
    return failure_summary(scan(store, only), full)


def failure_summary(states: dict, full: bool = False) -> list[str]:
    """Failed runs grouped by reason with counts, the runs they block, and how to retry; every
    failed and blocked run only with ``full`` (the --failures flag)."""
    failed = [s for s in states.values() if s.state == "failed"]
    blocked = [s for s in states.values() if s.state == "blocked"]
    if not failed and not blocked:
        return []
    reasons = Counter((s.reason or "no reason recorded").strip().splitlines()[0][:300] for s in failed)
    lines = [f"{len(failed)} failed, {len(blocked)} blocked by them (a run whose dependency failed is not tried):"]
    lines += [f"  {n} x {reason}" for reason, n in reasons.most_common()]
    if full:
        for s in sorted(failed + blocked, key=lambda s: (s.state, s.id)):
            lines.append(f"  {s.state} {s.id} ({(s.config or {}).get('model', '?')}): {s.reason}")
    else:
        lines.append("  (every failed and blocked run: add --failures)")
    lines.append("after fixing the cause, run the same reproduce command with --retry-failed")
    return lines


def write_queue_note(store: Store, tables: list[str], profile: str, only_file: Path) -> None:
    note = store.root / "queue" / "sessions.json"
    sessions = read_json(note) or []
    sessions.append({"time": time.time(), "tables": tables, "profile": profile, "jobs": str(only_file)})
    atomic_write_json(note, sessions[-50:])

