"""The command line. Thin: parse, call the package, print. Contracts in DESIGN.md.

Exit codes: 0 success, 1 a run or check failed, 2 bad input (one line naming the file, the
field and the problem; no traceback; nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import accel
from .errors import BadInput
from .yamlfile import load_yaml


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, except the empty ones (None, False) that say nothing."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """One-line errors; option help shows its default."""

    def __init__(self, *a, **kw):
        kw.setdefault("formatter_class", _Help)
        super().__init__(*a, **kw)

    def error(self, message):  # one line and exit 2, instead of the usage block
        raise BadInput(self.prog, None, message)


# ---------------------------------------------------------------- commands


def cmd_models(args) -> int:
    from tabulate import tabulate

    from .listing import model_rows

    rows = model_rows(args.num_classes)  # built once per version of the model code and torch (disk cache)
    if args.json:
        print(json.dumps([{k: r[k] for k in ("name", "params", "num_classes", "family", "input_size")}
                          for r in rows], indent=1))
    else:
        print(tabulate([[r["name"], r["family"], r["input_size"], f"{r['params'] / 1e6:.3f}M"] for r in rows],
                       headers=["model", "family", "input", f"params ({args.num_classes} classes)"]))
    return 0


def cmd_data(args) -> int:
    from tabulate import tabulate

    from . import data

    if args.action == "list":
        rows = data.list_datasets()
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        print(tabulate([[r["name"], r["classes"], r["image_size"], r["splits"]["train"], r["splits"]["test"],
                         "yes" if r["downloadable"] else "by hand"] for r in rows],
                       headers=["dataset", "classes", "size", "train", "test", "download"]))
        print("\nwhere to put them (under --data-root):")
        for r in rows:
            print(f"  {r['name']}: {r['path']}/ - {r['how_to_get']}")
        return 0
    if args.action == "download":
        if not args.names or len(args.names) != 1:
            raise BadInput("data download", "NAME", "give exactly one dataset name")
        try:
            data.download(args.names[0], args.data_root)
        except data.DownloadFailed as err:  # no network: one line, exit 1 (the input was fine)
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{args.names[0]}: downloaded to {args.data_root}")
        return 0
    rows = data.check(args.data_root, args.names or None)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(tabulate(rows, headers="keys"))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def cmd_train(args) -> int:
    from . import config as C
    from .store import Store
    from .train import ExecOptions, train_run

    raw = load_yaml(args.config)
    if isinstance(raw, dict) and args.data_root:
        raw = {**raw, "data": {**(raw.get("data") or {}), "root": args.data_root}}
    cfg = C.resolve(raw, where=str(args.config))
    _check_device(args.device)
    store = Store(args.store)
    rid = C.run_id(cfg)
    print(f"run {rid}: {cfg['model']} on {cfg['dataset']} ({cfg['data']['source']}), loss {cfg['loss']['name']}, "
          f"{cfg['recipe']['epochs']} epochs -> {store.run_dir(rid)}", flush=True)

    def on_epoch(m):
        if "stage" in m:  # a pre-training stage (AB, FT, FSP): no test evaluation
            print(f"  pre-training {m['stage']} epoch {m['epoch']}/{m['epochs']}: loss {m['train_loss']:.4f}", flush=True)
        else:
            print(f"  epoch {m['epoch']}/{m['epochs']}: loss {m['train_loss']:.4f}, test top-1 {m['test_top1']:.2f}",
                  flush=True)

    options = ExecOptions(device=args.device, num_workers=args.num_workers, accel=accel.from_args(args),
                          on_epoch=on_epoch)
    result = train_run(cfg, store, options)
    if result["status"] != "done":
        print(f"run {rid} failed: {result['reason']}", file=sys.stderr)
        return 1
    m = result["metrics"]
    print(f"run {rid} done: top-1 {m['top1']:.2f} ({m['reported_epoch']} epoch), "
          f"last {m['last']['top1']:.2f}, best {m['best']['top1']:.2f} (epoch {m['best']['epoch']})")
    print(f"wrote {store.run_dir(rid)}/ (result.json, metrics.jsonl, model.pt, test_logits.pt, checkpoints)")
    return 0


def cmd_list(args) -> int:
    from tabulate import tabulate

    from .listing import table_rows

    rows = table_rows()  # planned once per version of the catalogue and the code (disk cache)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(tabulate([[r["table"], r["paper"], r["title"][:70], r["cells"], r["runnable_cells"], r["runs"]]
                        for r in rows], headers=["table", "paper", "title", "cells", "runnable", "runs (paper)"]))
    return 0


def cmd_plan(args) -> int:
    from tabulate import tabulate

    from .plan import Planner, fmt_hours, table_summary
    from .store import Store

    from .throughput import measured_rate

    store = Store(args.store)
    planner = Planner(args.profile, rate=measured_rate(store))
    plans = [planner.plan(name) for name in args.tables]
    summaries = [table_summary(p, planner, store, detail=args.detail) for p in plans]
    if args.json:
        print(json.dumps(summaries, indent=1, default=str))
        return 0
    rows = [[s["table"], s["counts"]["cells"], s["counts"]["cited_cells"], s["counts"]["jobs"],
             s["counts"]["pending"], fmt_hours(s["pending_gpu_hours"])] for s in summaries]
    print(tabulate(rows, headers=["table", "cells", "cited", "runs", "pending", "GPU time left"]))
    all_ids = {j for p in plans for j in p.job_ids}
    pending = [j for j in all_ids if not store.is_done(j)]
    print(f"\nprofile {args.profile}: {len(all_ids)} distinct runs (runs shared by tables counted once), "
          f"{len(pending)} pending, about {fmt_hours(sum(planner.jobs[j].gpu_hours for j in pending))} of GPU time "
          f"left (estimate: FLOPs at " + (f"{planner.flops_per_s / 1e12:.3g} TFLOP/s, " if planner.flops_per_s else "")
          + f"{planner.rate_source})")
    return 0


def _worker_options(args, only=None):
    from .queue import WorkerOptions

    return WorkerOptions(store=args.store, device=args.device, only=only, lease_seconds=args.lease_seconds,
                         heartbeat_seconds=max(0.5, args.lease_seconds / 6), max_attempts=args.max_attempts,
                         num_workers=args.num_workers, fuse=not args.no_fuse, data_root=args.data_root,
                         accel=accel.from_args(args))


def cmd_worker(args) -> int:
    from .queue import run_worker
    from .reproduce import read_job_list

    _check_device(args.device)
    only = read_job_list(args.only) if args.only else None
    opts = _worker_options(args, only)
    opts.exit_when_idle = not args.wait
    tally = run_worker(opts, log=lambda msg: print(msg, flush=True))
    print(f"worker {opts.name}: " + (", ".join(f"{k} {v}" for k, v in sorted(tally.items())) or "nothing to do"),
          flush=True)
    return 1 if tally.get("failed") else 0


def cmd_reproduce(args) -> int:
    import torch

    from . import reproduce as R
    from .plan import Planner
    from .queue import counts, scan
    from .store import Store

    from .throughput import measured_rate

    _check_device(args.device)
    store = Store(args.store)
    planner = Planner(args.profile, data_root=args.data_root, rate=measured_rate(store))
    plans = [planner.plan(name) for name in args.tables]  # all bad input is found before anything is written
    job_ids = sorted({j for p in plans for j in p.job_ids})
    store.root.mkdir(parents=True, exist_ok=True)
    R.enqueue(store, planner, job_ids, retry_failed=args.retry_failed)
    only_file = R.job_list_file(store, job_ids)
    R.write_queue_note(store, [p.manifest.id for p in plans], args.profile, only_file)
    only = set(job_ids)
    before = counts(scan(store, only))
    print(f"{', '.join(p.manifest.id for p in plans)} ({args.profile} profile): {len(job_ids)} runs, "
          f"{before['done']} already done, store {store.root}", flush=True)
    n_workers = args.workers or (torch.cuda.device_count() if args.device.startswith("cuda") else 1) or 1
    extra = ["--lease-seconds", str(args.lease_seconds), "--max-attempts", str(args.max_attempts),
             "--num-workers", str(args.num_workers)] + (["--no-fuse"] if args.no_fuse else []) \
        + (["--data-root", args.data_root] if args.data_root else []) + accel.to_cli(accel.from_args(args))
    procs, jobs = [], []
    try:
        if before["pending"] or before["running"]:
            if args.launcher == "local":
                procs = R.launch_local(store, only_file, n_workers, args.device, extra)
                alive = lambda: any(p.poll() is None for p in procs)  # noqa: E731
            else:
                slurm = {"partition": args.partition, "gpus_per_node": args.gpus_per_node, "time": args.time,
                         "cpus_per_task": args.cpus_per_task}
                cluster = "slurm" if args.launcher == "slurm" else "local"
                jobs = R.launch_submitit(store, only, n_workers, _worker_options(args, only), cluster, slurm)
                print(f"submitted {len(jobs)} worker job(s): {', '.join(str(j.job_id) for j in jobs)}", flush=True)
                alive = lambda: any(not j.done() for j in jobs)  # noqa: E731
            final = R.watch(store, only, alive, quiet=args.quiet)
        else:
            final = before
    except KeyboardInterrupt:
        R.stop_workers(procs)
        for j in jobs:
            j.cancel(check=False)
        print("\nstopped; run the same command again to continue (finished epochs are kept)", file=sys.stderr)
        return 130
    R.stop_workers(procs, grace=30.0)  # every run ended: the workers are on their way out
    final = counts(scan(store, only))
    print(f"runs: {final['done']} done, {final['failed']} failed, {final['blocked']} blocked, "
          f"{final['pending']} pending, {final['running']} running", flush=True)
    for line in R.summarize_failures(store, only, full=getattr(args, "failures", False)):  # nightly has no flag
        print(line)
    code = 0 if final["done"] == len(job_ids) else 1
    if not args.no_report:
        code = max(code, _report(args, plans, planner, store))
    return code


def _report(args, plans, planner, store) -> int:
    from .report import write_reports

    out = Path(args.out) if args.out else store.root / "reports"
    for path in write_reports(plans, planner, store, out):
        print(f"report: {path}")
    return 0


def cmd_nightly(args) -> int:
    import datetime

    from . import nightly as N
    from .queue import scan
    from .store import Store

    date = args.date or datetime.date.today().isoformat()
    if not N.DATE.match(date):
        raise BadInput("--date", None, f"must be YYYY-MM-DD, got {date!r}")
    out = Path(args.out)
    day_dir = out / date
    args.out, args.no_report, args.retry_failed = str(day_dir), False, False
    run_code = cmd_reproduce(args)
    if run_code == 130:
        return run_code
    store = Store(args.store)
    failed = [rid for rid, s in scan(store).items() if s.state == "failed"]
    ids = [Path(t).stem if t.endswith((".yaml", ".yml")) else t for t in args.tables]
    new = N.snapshot(day_dir, ids, failed, args.profile, date)
    old = N.previous_snapshot(out, date)
    found = N.regressions(old, new) if old else []
    (day_dir / "nightly.json").write_text(json.dumps(new, indent=1))
    summary = N.write_summary(day_dir, new, old, found)
    print(f"nightly {date}: {len(found)} regression(s) " + (f"against {old['date']}" if old else "(baseline)")
          + f"; {summary}")
    for r in found:
        print(f"  REGRESSION {r}")
    return 1 if found else 0


def cmd_bench(args) -> int:
    from tabulate import tabulate

    from .bench import run_bench

    _check_device(args.device)
    out = run_bench(args.device, steps=args.steps, warmup=args.warmup, batch_size=args.batch_size,
                    loader_workers=args.loader_workers, accel=accel.from_args(args),
                    log=lambda message: print(message, file=sys.stderr, flush=True))  # stdout stays JSON
    saved = None
    if args.save:
        from .throughput import save_bench

        saved = save_bench(args.save, out)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"KD step resnet56 -> resnet20, batch {out['batch_size']}, on {out['device']}")
    print(tabulate([[c["name"], c["students"], f"{c['images_per_s']:.0f}",
                     f"{c.get('per_student_images_per_s', c['images_per_s']):.0f}"] for c in out["cases"]],
                   headers=["case", "students", "images/s", "per-student images/s"]))
    print(f"speedup {out['speedup']:.2f}x, fused_speedup {out['fused_speedup']:.2f}x (vs the reference loop)")
    if saved:
        print(f"wrote {saved}")
    return 0


def last_profile(store, table: str) -> str:
    """The profile the table was last reproduced with in this store (else paper)."""
    from .store import read_json

    for session in reversed(read_json(store.root / "queue" / "sessions.json") or []):
        if table in session.get("tables", []):
            return session["profile"]
    return "paper"


def cmd_report(args) -> int:
    from .aggregate import aggregate_table
    from .plan import Planner
    from .report import table_json, table_markdown, write_reports
    from .store import Store

    store = Store(args.store)
    names = [Path(t).stem if t.endswith((".yaml", ".yml")) else t for t in args.tables]
    profiles = {args.profile or last_profile(store, n) for n in names}
    if len(profiles) > 1:
        raise BadInput("--profile", None, f"the tables were last run with different profiles ({', '.join(sorted(profiles))}); "
                       "name one with --profile")
    planner = Planner(profiles.pop())
    plans = [planner.plan(name) for name in args.tables]
    if args.out:
        for path in write_reports(plans, planner, store, Path(args.out)):
            print(f"report: {path}")
        return 0
    for plan in plans:
        cells = aggregate_table(plan, planner, store)
        if args.format == "json":
            print(json.dumps(table_json(plan, cells, store), indent=1, default=str))
        else:
            print(table_markdown(plan, cells, store, None))
    return 0


def cmd_status(args) -> int:
    from tabulate import tabulate

    from .plan import DEFAULT_RATE_SOURCE, estimate_gpu_hours, fmt_hours
    from .queue import counts, scan
    from .store import Store
    from .throughput import measured_rate

    store = Store(args.store)
    flops_per_s, rate_source = measured_rate(store) or (None, DEFAULT_RATE_SOURCE)
    only = None
    if args.tables:
        from .plan import Planner

        names = [Path(t).stem if t.endswith((".yaml", ".yml")) else t for t in args.tables]
        only = set()
        for name, table in zip(names, args.tables):  # as report: the profile last run, unless named
            only |= set(Planner(args.profile or last_profile(store, name)).plan(table).job_ids)
    states = scan(store, only)
    c = counts(states)
    spent = sum((s.result or {}).get("wall_time_s") or 0 for s in states.values() if s.state == "done") / 3600
    left = 0.0
    for s in states.values():
        if s.state in ("pending", "running") and s.config:
            try:
                left += estimate_gpu_hours(s.config, None, store.config(s.config["teacher"]["run"])
                                           if (s.config.get("teacher") or {}).get("run") else None, flops_per_s)
            except Exception:  # an unknown model in an old store must not break status
                pass
    running = [{"id": s.id, "model": (s.config or {}).get("model"), "worker": (s.lease or {}).get("owner", {}).get("name"),
                **((s.lease or {}).get("progress") or {})} for s in states.values() if s.state == "running"]
    failed = [{"id": s.id, "state": s.state, "reason": s.reason} for s in states.values()
              if s.state in ("failed", "blocked")]
    out = {**c, "total": len(states), "running_runs": running, "failed_runs": failed,
           "device_hours_spent": round(spent, 4), "gpu_hours_left_estimate": round(left, 4),
           "cost_model_throughput": rate_source, "store": str(store.root)}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(tabulate([[k, c[k]] for k in ("done", "running", "pending", "blocked", "failed")], headers=["runs", "n"]))
        from .reproduce import failure_summary, progress_line

        for r in running:  # model, epoch k/n, batches, images/s, ETA from the measured speed
            print(f"  running {r['id']} on {r['worker']}: {progress_line({r['id']: states[r['id']]})}")
        for line in failure_summary(states, full=args.failures):
            print(line)
        print(f"device time spent {fmt_hours(spent)}, estimated GPU time left {fmt_hours(left)} ({rate_source})")
    return 1 if c["failed"] else 0


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput("--device", None, f"{device} requested but no CUDA device is available")


# ---------------------------------------------------------------- parser


def _default_device() -> str:
    """``--device auto``: cuda when torch sees one, else cpu. Asked after parsing, and only by the
    commands that train: asking torch while building the parser cost every command its import."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


DEVICE_HELP = "cpu, cuda or cuda:N; auto = cuda when available, else cpu"
STORE_HELP = "the store: folder of runs, queue and reports"
PROFILE_HELP = "paper (as published), quick (1/4 epochs, half the grid, one seed) or smoke (generated data, 1 epoch)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="runner.py", description="Reproduce knowledge-distillation paper tables.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("models", help="the model zoo with parameter counts")
    s.add_argument("--num-classes", type=int, default=100)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("data", help="list, download (CIFAR, SVHN) or check datasets")
    s.add_argument("action", choices=["list", "download", "check"])
    s.add_argument("names", nargs="*")
    s.add_argument("--data-root", default="./data")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("list", help="every paper table with its paper, title and run count")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("plan", help="expand tables into runs (nothing is trained)")
    s.add_argument("tables", nargs="+", metavar="TABLE|MANIFEST.yaml")
    s.add_argument("--profile", default="paper", choices=["smoke", "quick", "paper"], help=PROFILE_HELP)
    s.add_argument("--store", default="runs", help=STORE_HELP)
    s.add_argument("--json", action="store_true")
    s.add_argument("--detail", action="store_true",
                   help="with --json: every job's whole loss, labels and seed, every cell's grid points and runs")
    s.set_defaults(func=cmd_plan)

    def worker_args(s):
        s.add_argument("--store", default="runs", help=STORE_HELP)
        s.add_argument("--device", default="auto", help=DEVICE_HELP)
        s.add_argument("--lease-seconds", type=float, default=120.0,
                       help="a worker that stops renewing its lease for this long is presumed dead")
        s.add_argument("--max-attempts", type=int, default=3, help="tries of a run that raises an error")
        s.add_argument("--num-workers", type=int, default=4, help="DataLoader workers (image-folder datasets)")
        s.add_argument("--no-fuse", action="store_true", help="train runs one by one, never fused")
        s.add_argument("--data-root", default=None, help="where the datasets are (default: the recipes' ./data)")
        accel.add_arguments(s)

    s = sub.add_parser("reproduce", help="plan, train (resumable) and report tables")
    s.add_argument("tables", nargs="+", metavar="TABLE|MANIFEST.yaml")
    s.add_argument("--profile", default="paper", choices=["smoke", "quick", "paper"], help=PROFILE_HELP)
    s.add_argument("--workers", type=int, default=0, help="local workers (default: one per GPU, else 1)")
    s.add_argument("--launcher", default="local", choices=["local", "slurm", "submitit-local"])
    s.add_argument("--partition", default=None)
    s.add_argument("--gpus-per-node", type=int, default=1)
    s.add_argument("--cpus-per-task", type=int, default=8)
    s.add_argument("--time", type=int, default=24 * 60, help="SLURM time limit per worker job, minutes")
    s.add_argument("--retry-failed", action="store_true", help="try failed runs again")
    s.add_argument("--failures", action="store_true", help="list every failed and blocked run (default: by reason)")
    s.add_argument("--out", default=None, help="report folder (default: STORE/reports)")
    s.add_argument("--no-report", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    worker_args(s)
    s.set_defaults(func=cmd_reproduce)

    s = sub.add_parser("worker", help="train runnable runs of the store until none is left")
    s.add_argument("--only", default=None, help="a file of run ids to restrict to")
    s.add_argument("--wait", action="store_true", help="keep polling for new runs instead of exiting when idle")
    worker_args(s)
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("status", help="done, running, pending, blocked and failed runs (exit 1 if any failed)")
    s.add_argument("tables", nargs="*", metavar="TABLE")
    s.add_argument("--failures", action="store_true", help="list every failed and blocked run (default: by reason)")
    s.add_argument("--profile", default=None, choices=["smoke", "quick", "paper"],
                   help="the profile of the TABLEs' runs; default: the one each table was last reproduced "
                        "with in this store (else paper)")
    s.add_argument("--store", default="runs", help=STORE_HELP)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("report", help="published vs reproduced, as markdown or JSON")
    s.add_argument("tables", nargs="+", metavar="TABLE|MANIFEST.yaml")
    s.add_argument("--store", default="runs", help=STORE_HELP)
    s.add_argument("--profile", default=None, choices=["smoke", "quick", "paper"],
                   help="default: the profile the table was last reproduced with in this store")
    s.add_argument("--format", default="md", choices=["md", "json"])
    s.add_argument("--out", default=None, help="write <table>.md/.json/.png and index.md here")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("nightly", help="reproduce, write a dated report, list regressions (exit 1 if any)")
    s.add_argument("--tables", nargs="+", required=True, metavar="TABLE")
    s.add_argument("--profile", default="smoke", choices=["smoke", "quick", "paper"], help=PROFILE_HELP)
    s.add_argument("--out", required=True, help="folder of dated nightly reports")
    s.add_argument("--date", default=None, help="YYYY-MM-DD (default today)")
    s.add_argument("--workers", type=int, default=0)
    s.add_argument("--launcher", default="local", choices=["local", "slurm", "submitit-local"])
    s.add_argument("--partition", default=None)
    s.add_argument("--gpus-per-node", type=int, default=1)
    s.add_argument("--cpus-per-task", type=int, default=8)
    s.add_argument("--time", type=int, default=24 * 60)
    s.add_argument("--quiet", action="store_true")
    worker_args(s)
    s.set_defaults(func=cmd_nightly)

    s = sub.add_parser("bench", help="engine vs the papers' loop, measured side by side")
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--loader-workers", type=int, default=None, help="reference DataLoader workers (default min(4, cores))")
    s.add_argument("--json", action="store_true")
    s.add_argument("--save", default=None, metavar="STORE",
                   help="keep the measured throughput in STORE/throughput.json for the cost model")
    accel.add_arguments(s)
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("train", help="train one run from a run config (YAML)")
    s.add_argument("config")
    s.add_argument("--store", default="runs", help=STORE_HELP)
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.add_argument("--data-root", default=None, help="where the datasets are (overrides data.root)")
    s.add_argument("--num-workers", type=int, default=4, help="DataLoader workers (image-folder datasets)")
    accel.add_arguments(s)
    s.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "device", None) == "auto":
            args.device = _default_device()
        return args.func(args)
    except BrokenPipeError:  # `plan --json | head`: the reader left; no traceback, no flush error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell tool killed by the pipe
    except BadInput as err:
        print(f"error: {err.message()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
