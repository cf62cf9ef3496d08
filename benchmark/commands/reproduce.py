"""reproduce: plan tables, put their runs in the store's queue, run workers, then report.

Workers are separate processes (``runner.py worker``), one per GPU, or SLURM jobs submitted
through submitit; this process only watches the store and shows progress. Everything that
matters is in the store, so Ctrl-C, a kill or a reboot loses at most the epoch in progress of
each running run, and running the same command again continues.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..catalog.plan import Planner
from ..engine import accel
from ..runs import packing
from ..runs.options import WorkerOptions
from ..runs.queue import counts, scan
from ..runs.sessions import record_session
from ..runs.worker import run_worker
from ..store.layout import ATTEMPTS, LOCK, RESULT, Store, atomic_write_bytes
from ..store.stored_plan import write_plans

REPO = Path(__file__).resolve().parents[2]


def enqueue(store: Store, planner: Planner, job_ids: list[str], retry_failed: bool = False) -> None:
    """Write every job's config into the store (the queue); optionally clear failed results."""
    for rid in job_ids:
        if retry_failed and store.result(rid) is not None:
            reopen_failed(store, rid)
        if store.result(rid) is None:
            store.ensure_config(rid, planner.jobs[rid].config)


def reopen_failed(store: Store, rid: str) -> None:
    """``--retry-failed``: remove a failed run's result.json and attempts.json, under the run's
    lock (as every write into a run is), so that the queue takes it again. A done run is left."""
    from ..errors import Failed

    try:
        with store.run_lock(rid):
            res = store.result(rid)
            if res is not None and res.get("status") == "failed":
                for name in (RESULT, ATTEMPTS):
                    store.run_file(rid, name).unlink(missing_ok=True)
    except TimeoutError:  # filelock's Timeout: a process paused while it holds the lock
        raise Failed(f"run {rid}: its lock {store.run_file(rid, LOCK)} is held by another process; "
                     f"run the same command again") from None


def job_list_file(store: Store, job_ids: list[str]) -> Path:
    """The set of runs a reproduce session asks for, as a file its workers read (written
    atomically: a worker started meanwhile reads the whole list or none)."""
    text = "\n".join(sorted(job_ids)) + "\n"
    path = store.job_list_file(text)
    if not path.exists():
        atomic_write_bytes(path, text.encode())
    return path


def read_job_list(path: str | os.PathLike) -> set[str]:
    from ..errors import BadInput
    from ..spec import is_run_id

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


def launch_local(store: Store, only_file: Path, n_workers: int, device: str, extra: list[str],
                 masks: list[str] | None = None) -> list[subprocess.Popen]:
    """``n_workers`` worker processes; on CUDA worker i sees only ``masks[i]``, one entry of the
    parent's mask (runs/packing.py), never a GPU outside it."""
    from ..engine.data.loader import PROCESSES_ENV

    procs = []
    for i in range(n_workers):
        env = {**os.environ, PROCESSES_ENV: str(n_workers)}  # their loaders share the CPUs (data/loader.py)
        if device.startswith("cuda"):
            env[packing.MASK] = masks[i] if masks else str(i)
        else:  # CPU workers share the cores instead of each taking all of them
            env.setdefault("OMP_NUM_THREADS", str(packing.cpu_threads(n_workers)))
        cmd = [sys.executable, str(REPO / "runner.py"), "worker", "--store", str(store.root), "--only",
               str(only_file), "--device", "cuda" if device.startswith("cuda") else device, *extra]
        # the child inherits its own descriptor of the log: the parent's copy is closed at once
        with open(store.worker_log(i), "a") as log:
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=_die_with_parent if sys.platform == "linux" else None))
    return procs


def launch_submitit(store: Store, only: set[str], n_workers: int, opts: WorkerOptions, cluster: str,
                    slurm: dict, per_gpu: int = 1) -> list:
    """Workers as submitit jobs: SLURM on a cluster, or submitit's local executor (tests); a SLURM
    job runs ``per_gpu`` worker tasks per GPU, each on one GPU of the job (SubmititWorker)."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(store.submitit_dir / "%j"), cluster=cluster)
    params = {"timeout_min": slurm.get("time", 60 * 24)}
    if cluster == "slurm":
        gpus = slurm.get("gpus_per_node", 1)
        params.update({"slurm_partition": slurm.get("partition"), "gpus_per_node": gpus,
                       "tasks_per_node": max(1, gpus) * per_gpu, "cpus_per_task": slurm.get("cpus_per_task", 8),
                       "slurm_signal_delay_s": 120})
        params = {k: v for k, v in params.items() if v is not None}
    else:  # submitit's local executor runs the same K tasks (on the CPU: K workers sharing it)
        params["tasks_per_node"] = per_gpu
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
        if str(opts.get("device", "")).startswith("cuda"):  # this task's own GPU of the job's (packing.py)
            import submitit

            mine = packing.task_mask(os.environ.get(packing.MASK), submitit.JobEnvironment().local_rank)
            if mine is not None:
                os.environ[packing.MASK] = mine
        opts = dict(opts)
        opts.pop("name", None)  # each task names itself (its pid): K tasks of a job are K workers
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


# ---------------------------------------------------------------- the whole session


@dataclass
class Launch:
    """Where the workers run: ``local`` processes, or submitit jobs on ``slurm`` (or on
    submitit's local executor, ``submitit-local``)."""

    launcher: str = "local"
    workers: int = 0                # 0: K per visible GPU, else K (on the CPU); else the total
    per_gpu: int | None = None      # K, --workers-per-gpu; None: auto (benchmark/runs/packing.py)
    partition: str | None = None    # the SLURM options
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    time: int = 24 * 60             # minutes per worker job

    def slurm(self) -> dict:
        return {"partition": self.partition, "gpus_per_node": self.gpus_per_node, "time": self.time,
                "cpus_per_task": self.cpus_per_task}


@dataclass
class Request:
    """What one ``reproduce`` session is asked for. ``worker``: the store, device and options
    every worker gets (its ``only`` is set per phase)."""

    tables: list[str]
    profile: str
    worker: WorkerOptions
    launch: Launch = field(default_factory=Launch)
    figures: list[str] = field(default_factory=list)
    retry_failed: bool = False
    rerun_stale: bool = False       # archive and retrain the tables' stale runs (benchmark/runs/stale.py)
    decode: str | None = None       # data.decode of the image-folder runs it plans (None: the default, pil)
    all_failures: bool = False      # list every failed and blocked run, not only their reasons
    report: bool = True
    report_dir: Path | None = None  # default: the store's reports folder
    quiet: bool = False             # no progress bar


def reproduce_tables(request: Request) -> int:
    """Plan, train and report ``request.tables``; the exit code: 0 when every run is done and no
    cell waits, 1 otherwise, 130 when interrupted. All bad input (tables, figures, missing
    datasets, teacher and init files) raises before anything is written.

    Phases: a row that takes another cell's best point (``from:``) gets its runs only once that
    cell's runs have finished, so after each phase the tables are planned again with the store;
    new runs make a new phase, and the loop ends when a phase adds none."""
    from ..engine import hub
    from ..results.figures import check_figures_asked
    from ..runs.preflight import require
    from ..runs.stale import StaleRuns, archive_and_reset
    from ..runs.throughput import measured_rate

    packing.check_mask(request.worker.device, request.launch.launcher)  # a GPU the mask names must exist
    store = Store(request.worker.store)
    done_ids: set[str] = set()
    while True:
        planner = Planner(request.profile, data_root=request.worker.data_root, rate=measured_rate(store),
                          store=store, figures=request.figures, decode=request.decode)
        plans = [planner.plan(name) for name in request.tables]
        check_figures_asked(request.figures, plans)
        job_ids = sorted({j for p in plans for j in p.job_ids})
        if done_ids and set(job_ids) <= done_ids:
            # a `from:` cell resolved to runs trained already: no phase, but its plan is stored
            write_plans(store, plans, planner, request.figures, suite_version())
            break
        # this phase's runs not seen by an earlier one (a run retrained there is no longer stale), read
        # before anything is written: a garbage revisions record is bad input (exit 2)
        stale = StaleRuns(store).among(set(job_ids) - done_ids)
        rerun = stale if request.rerun_stale else {}
        to_train = [planner.jobs[j].config for j in job_ids if not store.is_done(j) or j in rerun]
        # torchvision teachers: in torch.hub's cache (fetched as torchvision does), or exit 2 saying
        # which file to place where
        hub.ensure_files([cfg["teacher"] for cfg in to_train if "torchvision" in (cfg["teacher"] or {})],
                         download=not hub.offline())
        require(to_train, request.worker.data_root)
        # what this phase runs, before it runs: status TABLE and report read it (stored_plan.py)
        write_plans(store, plans, planner, request.figures, suite_version())
        if rerun:
            for rid in rerun:
                archive_and_reset(store, rid)
            print(f"{len(rerun)} stale run(s) archived under {store.root / 'archive'} and trained again", flush=True)
        elif stale:
            print(f"{len(stale)} finished run(s) are stale (trained at an older numerics revision of their code); "
                  "add --rerun-stale to retrain them", flush=True)
        code = run_phase(request, store, planner, plans, job_ids)
        if code == 130:
            return code
        done_ids |= set(job_ids)
        if not any(p.waiting() for p in plans):
            break
        if any(not store.is_done(r) for p in plans for c in p.waiting() for r in c.waiting_on["runs"]):
            break  # a referenced cell did not finish (failed): its dependents stay waiting
    final = counts(scan(store, set(job_ids)))
    for p in plans:
        for c in p.waiting():
            print(f"{p.manifest.id}: {c.row} / {c.col} still waits for {c.waiting_on['row']} / {c.waiting_on['col']}")
    code = 0 if final["done"] == len(job_ids) and not any(p.waiting() for p in plans) else 1
    if request.report:
        write_report(request, store)
    return code


def suite_version() -> dict:
    """The package's version and the git revision of the code (``unknown`` outside a checkout)."""
    from ..engine.provenance import code_revision

    # the package is loaded before any of its modules: its version without importing it by name
    return {"version": sys.modules[__package__.partition(".")[0]].__version__, "code_revision": code_revision()}


def run_phase(request: Request, store: Store, planner: Planner, plans: list, job_ids: list[str]) -> int:
    """Enqueue the runs, run workers until none can make progress; 130 when interrupted."""
    import torch

    store.root.mkdir(parents=True, exist_ok=True)
    enqueue(store, planner, job_ids, retry_failed=request.retry_failed)
    only_file = job_list_file(store, job_ids)
    record_session(store, [p.manifest.id for p in plans], request.profile, plans=True)
    only = set(job_ids)
    before = counts(scan(store, only))
    print(f"{', '.join(p.manifest.id for p in plans)} ({request.profile} profile): {len(job_ids)} runs, "
          f"{before['done']} already done, store {store.root}", flush=True)
    if before["failed"] and not request.retry_failed:
        print(f"{before['failed']} run(s) failed in an earlier session and stay failed; "
              "add --retry-failed to try them again", flush=True)
    device = request.worker.device
    procs, jobs = [], []
    try:
        if before["pending"] or before["running"]:
            if request.launch.launcher == "local":
                fuse_max = request.worker.fuse_max if request.worker.fuse else 1
                placed = packing.place(device, request.launch.per_gpu, request.launch.workers,
                                       packing.shapes(planner.jobs, [j for j in job_ids if not store.is_done(j)],
                                                      fuse_max))
                print(f"workers: {placed.why}", flush=True)
                procs = launch_local(store, only_file, placed.workers, device, worker_cli_args(request.worker),
                                     placed.masks)
                alive = lambda: any(p.poll() is None for p in procs)  # noqa: E731
            else:
                cluster = "slurm" if request.launch.launcher == "slurm" else "local"
                per_gpu = request.launch.per_gpu or 1
                if cluster == "slurm":
                    print(f"workers: {per_gpu} task(s) per GPU in each job" + ("" if request.launch.per_gpu else
                          f" (auto is 1 under SLURM: the nodes' free memory is not known here; {packing.OPTION} K)"),
                          flush=True)
                n_jobs = request.launch.workers or (torch.cuda.device_count() if device.startswith("cuda") else 1) or 1
                jobs = launch_submitit(store, only, n_jobs, replace(request.worker, only=only),
                                       cluster, request.launch.slurm(), per_gpu)
                print(f"submitted {len(jobs)} worker job(s): {', '.join(str(j.job_id) for j in jobs)}", flush=True)
                alive = lambda: any(not j.done() for j in jobs)  # noqa: E731
            watch(store, only, alive, quiet=request.quiet)
    except KeyboardInterrupt:
        stop_workers(procs)
        for j in jobs:
            j.cancel(check=False)
        print("\nstopped; run the same command again to continue (finished epochs are kept)", file=sys.stderr)
        return 130
    stop_workers(procs, grace=30.0)  # every run ended: the workers are on their way out
    states = scan(store, only)
    final = counts(states)
    print(f"runs: {final['done']} done, {final['failed']} failed, {final['blocked']} blocked, "
          f"{final['pending']} pending, {final['running']} running", flush=True)
    for line in failure_summary(states, full=request.all_failures):  # ends with how to retry
        print(line, flush=True)
    return 0


def worker_cli_args(opts: WorkerOptions) -> list[str]:
    """The ``runner.py worker`` options that give a local worker process ``opts`` (all but the
    store, device and job list, which launch_local passes)."""
    return ["--lease-seconds", str(opts.lease_seconds), "--max-attempts", str(opts.max_attempts),
            ] + (["--num-workers", str(opts.num_workers)] if opts.num_workers is not None else []) \
        + (["--no-fuse"] if not opts.fuse else []) \
        + (["--data-root", opts.data_root] if opts.data_root else []) + accel.to_cli(opts.accel) \
        + (["--tensorboard"] if opts.tensorboard else [])


def write_report(request: Request, store: Store) -> list[Path]:
    """The tables' reports, from their stored plans as ``report`` reads them, into the request's
    report folder (default: the store's reports folder); says where."""
    from ..results.report import write_reports
    from ..results.reported_plan import table_plans

    plans, jobs = table_plans(store, request.tables, [request.profile] * len(request.tables), request.figures)
    out = request.report_dir
    written = write_reports(plans, jobs, store, Path(out) if out else store.reports_dir)
    for path in written:
        print(f"report: {path}")
    return written
