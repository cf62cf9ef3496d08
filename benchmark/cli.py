"""The command line. Thin: parse, call the package, print. Contracts in docs/CONTRACTS.md.

Exit codes: 0 success, 1 a run or check failed, 2 bad input (one line naming the file, the
field and the problem; no traceback; nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from .engine import accel
from .errors import BadInput
from .yamlfile import load_config


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


MODEL_KEYS = ("name", "params", "num_classes", "family", "input_size")  # models --json (docs/CONTRACTS.md)


def cmd_models(args) -> int:
    from tabulate import tabulate

    from .catalog.listing import model_rows

    rows = model_rows(args.num_classes)  # built once per version of the model code and torch (disk cache)
    if args.json:
        print(json.dumps([{k: r[k] for k in MODEL_KEYS} for r in rows], indent=1))
    else:
        print(tabulate([[r["name"], r["family"], r["input_size"], f"{r['params'] / 1e6:.3f}M"] for r in rows],
                       headers=["model", "family", "input", f"params ({args.num_classes} classes)"]))
    return 0


def cmd_data(args) -> int:
    from tabulate import tabulate

    from .engine import data

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
        data.download(args.names[0], args.data_root)  # no network: DownloadFailed, one line, exit 1
        print(f"{args.names[0]}: downloaded to {args.data_root}")
        return 0
    rows = data.check(args.data_root, args.names or None)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(tabulate(rows, headers="keys"))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def cmd_train(args) -> int:
    from .engine import config as C
    from .engine.execution import ExecOptions
    from .runs.worker import train_under_lease
    from .store.layout import METRICS, MODEL, RESULT, TEST_LOGITS, Store

    raw = load_config(args.config)
    if isinstance(raw, dict) and args.data_root:
        raw = {**raw, "data": {**(raw.get("data") or {}), "root": args.data_root}}
    if isinstance(raw, dict) and args.decode:  # explicit: a dataset it cannot apply to is bad input
        raw = {**raw, "data": {**(raw.get("data") or {}), "decode": args.decode}}
    cfg = C.resolve(raw, where=str(args.config))
    _check_device(args.device)
    tensorboard = _tensorboard(args)
    from .engine.revisions import current_revisions

    current_revisions()  # a malformed numerics-revisions ledger: bad input before the run is claimed
    store = Store(args.store)
    if store.result(C.run_id(cfg)) is None:
        from .runs.preflight import require

        require([cfg])
    rid = C.run_id(cfg)
    execution = accel.from_args(args)
    _refuse_other_numerics(store, rid, execution, args.device)
    print(f"run {rid}: {cfg['model']} on {cfg['dataset']} ({cfg['data']['source']}), loss {cfg['loss']['name']}, "
          f"{cfg['recipe']['epochs']} epochs -> {store.run_dir(rid)}", flush=True)

    def on_epoch(m):
        if "stage" in m:  # a pre-training stage (AB, FT, FSP): no test evaluation
            print(f"  pre-training {m['stage']} epoch {m['epoch']}/{m['epochs']}: loss {m['train_loss']:.4f}", flush=True)
        else:
            print(f"  epoch {m['epoch']}/{m['epochs']}: loss {m['train_loss']:.4f}, test top-1 {m['test_top1']:.2f}",
                  flush=True)

    options = ExecOptions(device=args.device, num_workers=args.num_workers, accel=execution,
                          on_epoch=on_epoch, tensorboard=tensorboard)
    result = train_under_lease(cfg, store, options, args.lease_seconds,
                               warn=lambda message: print(message, file=sys.stderr))
    if result is None:
        return 1
    if result["status"] != "done":
        print(f"run {rid} failed: {result['reason']}", file=sys.stderr)
        return 1
    m = result["metrics"]
    print(f"run {rid} done: top-1 {m['top1']:.2f} ({m['reported_epoch']} epoch), "
          f"last {m['last']['top1']:.2f}, best {m['best']['top1']:.2f} (epoch {m['best']['epoch']})")
    print(f"wrote {store.run_dir(rid)}/ ({RESULT}, {METRICS}, {MODEL}, {TEST_LOGITS}, checkpoints)")
    return 0


def _refuse_other_numerics(store, rid: str, execution, device: str) -> None:
    """A run with a checkpoint trained under another numerics policy: bad input, before the lease."""
    from .store.layout import CHECKPOINT

    if store.result(rid) is not None or not store.run_file(rid, CHECKPOINT).exists():
        return
    import torch

    from .engine.checkpoints import load_checkpoint
    from .engine.train import numerics_mismatch

    state, _ = load_checkpoint(store, rid)
    refused = state is not None and numerics_mismatch(state, execution.resolved(torch.device(device)))
    if refused:
        raise BadInput(str(store.run_file(rid, CHECKPOINT)), "numerics", refused)


def cmd_list(args) -> int:
    from tabulate import tabulate

    from .catalog.listing import table_rows

    rows = table_rows()  # planned once per version of the catalogue and the code (disk cache)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(tabulate([[r["id"], r["label"], r["kind"], r["title"][:60] if r["status"] == "runnable"
                         else f"cited: {r['reason']}"[:60], r["cells"], r["runnable_cells"], r["runs"]]
                        for r in rows], headers=["id", "label", "kind", "title", "cells", "runnable", "runs (paper)"]))
    return 0


def cmd_plan(args) -> int:
    from tabulate import tabulate

    from .catalog.hours import fmt_hours
    from .catalog.plan import Planner
    from .catalog.summary import cost_model_line, main_bound, table_summary
    from .results.figures import check_figures_asked
    from .runs.throughput import measured_rate
    from .store.layout import Store

    store = Store(args.store)
    planner = Planner(args.profile, rate=measured_rate(store), store=store, figures=_figures(args),
                      device_kind=args.device_kind, numerics=args.numerics, loader_workers=args.loader_workers,
                      calibration=args.calibration, decode=args.decode)
    plans = [planner.plan(name) for name in args.tables]
    check_figures_asked(_figures(args), plans)
    summaries = [table_summary(p, planner, store, detail=args.detail) for p in plans]
    if args.json:
        print(json.dumps(summaries, indent=1, default=str))
        return 0
    rows = [[s["table"], s["counts"]["cells"], s["counts"]["cited_cells"], s["counts"]["jobs"],
             s["counts"]["pending"], fmt_hours(s["pending_gpu_hours"]), s["bound"] or "-"] for s in summaries]
    print(tabulate(rows, headers=["table", "cells", "cited", "runs", "pending", "GPU time left", "bound"]))
    all_ids = {j for p in plans for j in p.job_ids}
    unfinished = {j for s in summaries for j in s["pending"]}  # the store read once per run, by table_summary
    pending = [j for j in all_ids if j in unfinished]
    split = {}
    for j in pending:
        split[planner.jobs[j].bound] = split.get(planner.jobs[j].bound, 0) + planner.jobs[j].gpu_hours
    bounds = ", ".join(f"{b} {fmt_hours(h)}" for b, h in sorted(split.items(), key=lambda kv: -kv[1]))
    print(f"\nprofile {args.profile}: {len(all_ids)} distinct runs (runs shared by tables counted once), "
          f"{len(pending)} pending, about {fmt_hours(sum(split.values()))} of GPU time left, "
          f"mostly {main_bound([planner.jobs[j] for j in pending]) or '-'}-bound ({bounds or 'nothing left'})")
    print(f"estimate: {cost_model_line(planner)}")
    from .catalog.scaling import line, scenario_hours

    print(f"GPU time left {line(scenario_hours([planner.jobs[j] for j in pending], planner), planner, fmt_hours)}")
    for p in plans:
        for c in p.waiting():
            w = c.waiting_on
            print(f"{p.manifest.id}: {c.row} / {c.col} waits for the {w['select']} point of {w['row']} / {w['col']} "
                  f"({sum(not store.is_done(r) for r in w['runs'])} of its {len(w['runs'])} runs unfinished); "
                  "`reproduce` plans its runs once they finish")
    return 0


def _figures(args) -> list[str]:
    """--figures NAME[,NAME...] (or all): the figures whose extra runs are planned."""
    from .results.figures import figure_names

    return figure_names(getattr(args, "figures", None))


def _worker_options(args, only=None):
    from .runs.options import WorkerOptions

    return WorkerOptions(store=args.store, device=args.device, only=only, lease_seconds=args.lease_seconds,
                         heartbeat_seconds=max(0.5, args.lease_seconds / 6), max_attempts=args.max_attempts,
                         num_workers=args.num_workers, fuse=not args.no_fuse, data_root=args.data_root,
                         accel=accel.from_args(args), tensorboard=_tensorboard(args))


def _tensorboard(args) -> bool:
    """--tensorboard, checked: without the optional package it is bad input (exit 2)."""
    if getattr(args, "tensorboard", False):
        from .engine.tboard import require

        require()
        return True
    return False


def _log_line(msg: str) -> None:
    """A worker's log line; its log may sit on the store's disk, and a full disk must not turn
    the report of an error into a crash of the worker."""
    try:
        print(msg, flush=True)
    except OSError:
        pass


def cmd_worker(args) -> int:
    from .commands.reproduce import read_job_list
    from .runs.worker import run_worker

    _check_device(args.device)
    only = read_job_list(args.only) if args.only else None
    from .engine.revisions import current_revisions
    from .runs.preflight import require

    current_revisions()  # a malformed numerics-revisions ledger: bad input before a run is claimed
    from .runs.queue import scan, unreadable_configs
    from .store.layout import Store

    require([st.config for st in scan(Store(args.store), only).values() if st.state == "pending" and st.config],
            args.data_root)
    opts = _worker_options(args, only)
    opts.exit_when_idle = not args.wait
    tally = run_worker(opts, log=_log_line)
    states = scan(Store(args.store), only)
    damaged = unreadable_configs(states)  # failed before any worker could take them: said here, exit 1
    for rid in damaged:
        print(f"run {rid}: {states[rid].reason}", flush=True)
    print(f"worker {opts.name}: " + (", ".join(f"{k} {v}" for k, v in sorted(tally.items())) or "nothing to do"),
          flush=True)
    return 1 if tally.get("failed") or damaged else 0


def cmd_reproduce(args) -> int:
    from .commands.reproduce import reproduce_tables

    _check_device(args.device)
    _tensorboard(args)  # bad input before anything is written
    return reproduce_tables(_request(args))


def _request(args):
    from .commands.reproduce import Request

    return Request(tables=args.tables, profile=args.profile, worker=_worker_options(args), launch=_launch(args),
                   figures=_figures(args), retry_failed=args.retry_failed, rerun_stale=args.rerun_stale,
                   decode=args.decode,
                   all_failures=args.failures,
                   report=not args.no_report, report_dir=Path(args.out) if args.out else None, quiet=args.quiet)


def _launch(args):
    from .commands.reproduce import Launch
    from .runs.packing import parse_per_gpu

    return Launch(launcher=args.launcher, workers=args.workers, partition=args.partition,
                  gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task, time=args.time,
                  per_gpu=parse_per_gpu(args.workers_per_gpu))


def cmd_nightly(args) -> int:
    import datetime

    from .commands.nightly import run_nightly
    from .results.site import DATE

    date = args.date or datetime.date.today().isoformat()
    try:
        valid = DATE.match(date) and datetime.date.fromisoformat(date)
    except ValueError:
        valid = False
    if not valid:
        raise BadInput("--date", None, f"must be a date YYYY-MM-DD, got {date!r}")
    if args.keep_stores < 1:
        raise BadInput("--keep-stores", None, f"must be >= 1, got {args.keep_stores}")
    _check_device(args.device)
    _tensorboard(args)
    return run_nightly(args.tables, args.profile, date, Path(args.out), Path(args.store), _worker_options(args),
                       _launch(args), keep_stores=args.keep_stores, quiet=args.quiet)


def cmd_bench(args) -> int:
    from tabulate import tabulate

    from .commands.bench import run_bench
    from .commands.packbench import parse_counts

    _check_device(args.device)
    out = run_bench(args.device, steps=args.steps, warmup=args.warmup, batch_size=args.batch_size,
                    loader_workers=args.loader_workers, accel=accel.from_args(args), decode_images=args.decode_images,
                    horizontal_sizes=args.horizontal_sizes,
                    log=lambda message: print(message, file=sys.stderr, flush=True),  # stdout stays JSON
                    packing=parse_counts(args.packing))
    saved = None
    if args.save:
        from .runs.throughput import save_bench

        saved = save_bench(args.save, out)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"KD step resnet56 -> resnet20, batch {out['batch_size']}, on {out['device']}")
    print(tabulate([[c["name"], c["students"], f"{c['images_per_s']:.0f}",
                     f"{c.get('per_student_images_per_s', c['images_per_s']):.0f}"] for c in out["cases"]],
                   headers=["case", "students", "images/s", "per-student images/s"]))
    print(f"speedup {out['speedup']:.2f}x, fused_speedup {out['fused_speedup']:.2f}x (vs the reference loop)")
    if out.get("horizontal"):
        print(tabulate([[c["students"], f"{c['separate_per_student_images_per_s']:.0f}",
                         f"{c['batched_per_student_images_per_s']:.0f}", f"{c['ratio']:.2f}"] for c in out["horizontal"]],
                       headers=["students", "separate, per student img/s", "batched, per student img/s",
                                "ratio (separate s / batched s)"]))
    if out.get("decode"):
        print(f"\nimage-folder decode, {out['decode'][0]['images']} generated 500x375 JPEGs -> 224-px batches, "
              "one process")
        print(tabulate([[r["backend"], f"{r['images_per_s']:.0f}", r["decoder"]] for r in out["decode"]],
                       headers=["decode", "images/s", "decoder"]))
    if out.get("packing"):
        pk = out["packing"]
        print(f"\npacking: K processes each training {pk['teacher']} -> {pk['student']} KD steps on the device")
        print(tabulate([[c["processes"], c["threads_per_process"], f"{c['images_per_s']:.0f}",
                         f"{c['per_process_images_per_s']:.0f}", f"{c['ratio']:.2f}x"] for c in pk["cases"]],
                       headers=["processes", "threads each", "images/s (all)", "per process", "vs 1 process"]))
        print(pk["note"])
    if saved:
        print(f"wrote {saved}")
    return 0


def cmd_goldens(args) -> int:
    """goldens [--update]: every run id of every table and profile, and the schema's defaults,
    against goldens/run_ids.json and goldens/config_schema.json (benchmark/commands/idgolden.py)."""
    from . import schema
    from .commands import idgolden

    if args.update:
        for path in idgolden.write():
            print(f"wrote {path}")
        return 0
    found = idgolden.moved(idgolden.load(idgolden.RUN_IDS_FILE) or {}, idgolden.run_ids())
    found += idgolden.schema_changes(idgolden.load(idgolden.SCHEMA_FILE) or {}, schema.describe())
    if not found:
        print("goldens: every run id and every default as committed")
        return 0
    print("\n".join(found))
    print(f"goldens differ; if the change is meant, `{idgolden.UPDATE_COMMAND}` and say why in the commit")
    return 1


def cmd_canary(args) -> int:
    from .commands import canary

    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.update:
        path = canary.write_golden(canary.golden_with_drift(args.store, log))
        print(f"wrote {path}; read its diff (git diff -- {path}) before you commit it")
        return 0
    golden = canary.load_golden()
    if golden is None:
        raise BadInput(str(canary.GOLDEN_FILE), None, "missing or unreadable; make it with runner.py canary --update")
    numbers = canary.run(args.store, log)
    exact, found = canary.compare(golden, numbers)
    mode = canary.describe_mode(golden, exact)
    print(f"canary: {len(numbers['runs'])} runs compared with {canary.GOLDEN_FILE.name} {mode}: "
          f"{len(found)} difference(s)")
    for line in found:
        print(f"  CHANGED {line}")
    return 1 if found else 0


def cmd_device_check(args) -> int:
    from .commands.devicecheck import run_check
    from .engine.numerics import prepare_environment

    prepare_environment(True)  # cuBLAS's deterministic workspace, before any step starts CUDA
    return run_check(args.out, dry_run_cpu=args.dry_run_cpu, budget=args.budget,
                     log=lambda message: print(message, flush=True))


def cmd_report(args) -> int:
    from .results.report import report_tables
    from .store.layout import Store

    text, written = report_tables(Store(args.store), args.tables, args.profile, _figures(args), args.format,
                                  Path(args.out) if args.out else None)
    sys.stdout.write(text)
    for path in written:
        print(f"report: {path}")
    return 0


def cmd_site(args) -> int:
    from .results.site import write_site
    from .store.layout import Store

    store = Store(args.store)
    if not store.runs_dir.is_dir():
        raise BadInput("--store", None, f"{store.root} is not a store (no runs/ folder)")
    if args.nightly and not Path(args.nightly).is_dir():
        raise BadInput("--nightly", None, f"{args.nightly} is not a folder")
    pages = write_site(store, Path(args.out), Path(args.nightly) if args.nightly else None)
    print(f"site: {pages[0]} ({len(pages) - 1} table page(s))")
    return 0


def cmd_status(args) -> int:
    from .commands.status import planned_runs, store_status
    from .store.layout import Store

    store = Store(args.store)
    if not store.root.exists():
        print(f"note: no store at {store.root} (nothing has run there yet)", file=sys.stderr)
    only, notes = planned_runs(store, args.tables, args.profile, _figures(args)) if args.tables else (None, [])
    status = store_status(store, only)
    if args.json:
        print(json.dumps({**status.summary, **({"plan_notes": notes} if args.tables else {})}, indent=1))
    else:
        print("\n".join(notes + status.lines(all_failures=args.failures)))
    return 1 if status.summary["failed"] else 0


def cmd_store(args) -> int:
    """store check [--repair]: corrupt or inconsistent files of a store (benchmark/runs/fsck.py);
    store migrate [--apply]: carry an older store over (benchmark/runs/migrate.py)."""
    if args.action == "migrate":
        from .runs.migrate import migrate

        lines, code = migrate(args.store, args.apply)
        print("\n".join(lines))
        return code
    if args.apply:
        raise BadInput("--apply", None, "belongs to `store migrate`")
    from .runs.fsck import check_store, repair
    from .store.layout import Store

    store = Store(args.store)
    if not store.root.is_dir():
        raise BadInput("--store", None, f"no store at {store.root}")
    found = check_store(store, args.data_root)
    if not found:
        print(f"store {store.root}: no problems found")
        return 0
    if not args.repair:
        for f in found:
            print(f"{f.where}: {f.problem} (--repair: {f.repair})")
        print(f"{len(found)} problem(s); `runner.py store check --store {store.root} --repair` repairs them")
        return 1
    left = 0
    for f, failure in repair(found):
        print(f"{f.where}: {f.problem}: " + (f"{f.repair}" if failure is None else f"NOT repaired ({failure})"))
        left += failure is not None
    print(f"{len(found) - left} repaired, {left} left; runs set aside are trained again by `reproduce` or `worker`")
    return 1 if left else 0


def cmd_revisions(args) -> int:
    """List the parts (exit 1 if a digest differs from the ledger's), or record a change of one."""
    from .engine import revisions as R

    if args.action == "list":
        if args.part or args.why:
            raise BadInput("revisions", None, "list takes no PART or --why (bump PART --why TEXT, same PART --why TEXT)")
        states = R.check()
        if args.json:
            print(json.dumps([s.to_json() for s in states], indent=1))
        else:
            from tabulate import tabulate

            print(tabulate([[s.name, s.revision or "—", s.digest, "yes" if s.matches else "NO", ", ".join(s.files)]
                            for s in states], headers=["part", "revision", "digest", "in the ledger", "files"]))
            for line in R.unrecorded():
                print(line)
        return 0 if all(s.matches for s in states) else 1
    if not args.part or args.why is None:
        raise BadInput("revisions", None, f"{args.action} needs PART and --why TEXT")
    entry = R.record(args.part, args.action, args.why)
    print(f"{args.part}: revision {entry['revision']}, digest {entry['digest']} recorded in {R.ledger_path()}")
    return 0


def _check_mask(args) -> None:
    """CUDA_VISIBLE_DEVICES naming a GPU the machine lacks: one line, exit 2 (benchmark/runs/packing.py;
    SLURM's nodes have their own masks, and a machine without GPUs has nothing to check)."""
    device = getattr(args, "device", None)
    if device is not None and (device == "auto" or device.startswith("cuda")):
        from .runs.packing import check_mask

        check_mask("cuda", getattr(args, "launcher", "local"))


def _sizes(text: str) -> tuple[int, ...]:
    """``--horizontal-sizes 1,4,8,16``: positive integers."""
    import argparse

    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive integers such as 1,4,8,16")
    return sizes


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


NUM_WORKERS_HELP = ("DataLoader workers per training process for image-folder datasets (persistent); default: "
                    "the CPUs this process may use divided by the local training processes")


def _decode_arg(s) -> None:
    """--decode: data.decode of the image-folder runs (benchmark/data/decode.py); part of their id."""
    s.add_argument("--decode", default=None, choices=["pil", "nvjpeg"],
                   help="how image-folder training JPEGs are decoded: pil (the default, the papers' PIL "
                        "transforms) or nvjpeg (tensors on the device, crop and flip there; changes the "
                        "numbers, so the run ids)")


def _profile_arg(s, default: str | None, help: str | None = None) -> None:
    from .catalog.profiles import HELP, PROFILES

    s.add_argument("--profile", default=default, choices=PROFILES, help=help or HELP)


def _figures_arg(s) -> None:
    s.add_argument("--figures", action="append", metavar="NAME[,NAME]",
                   help="also plan the extra runs of these figures of the tables (e.g. fig10; all)")


def _cost_args(s) -> None:
    """The cost model's choices (benchmark/catalog/costmodel.py); checked by the planner, one line if bad."""
    s.add_argument("--device-kind", default="h100",
                   help="the default calibration to estimate with: h100, a100 or v100 (benchmark/catalog/calibrations.json; "
                        "a store's CUDA measurement replaces its compute and overhead)")
    s.add_argument("--numerics", default="reproducible",
                   help="execution policy to cost: reproducible or strict (fp32, no TF32), fast (bf16)")
    s.add_argument("--loader-workers", type=int, default=16,
                   help="CPU loader workers per GPU for image-file datasets (ImageNet, CUB, Dogs); "
                        "reproduce's --num-workers default is 4")
    s.add_argument("--calibration", default=None, metavar="FILE",
                   help="a calibration file of the form of benchmark/catalog/calibrations.json (default: that file)")


def _launch_args(s) -> None:
    """Where the workers run (reproduce.Launch): local processes, SLURM or submitit's local executor."""
    s.add_argument("--workers", type=int, default=0,
                   help="workers in all (default: --workers-per-gpu per visible GPU, else 1 on the CPU); SLURM: jobs")
    s.add_argument("--workers-per-gpu", default="auto", metavar="K|auto",
                   help="worker processes sharing each visible GPU (SLURM: tasks per GPU of a job); auto: from the "
                        "free GPU memory, the runs' sizes and whether they are launch-bound (benchmark/runs/packing.py)")
    s.add_argument("--launcher", default="local", choices=["local", "slurm", "submitit-local"])
    s.add_argument("--partition", default=None)
    s.add_argument("--gpus-per-node", type=int, default=1)
    s.add_argument("--cpus-per-task", type=int, default=8)
    s.add_argument("--time", type=int, default=24 * 60, help="SLURM time limit per worker job, minutes")


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
    _profile_arg(s, "paper")
    s.add_argument("--store", default="runs", help=STORE_HELP)
    _figures_arg(s)
    s.add_argument("--json", action="store_true")
    s.add_argument("--detail", action="store_true",
                   help="with --json: every job's whole loss, labels and seed, every cell's grid points and runs")
    _cost_args(s)
    _decode_arg(s)
    s.set_defaults(func=cmd_plan)

    def worker_args(s):
        s.add_argument("--store", default="runs", help=STORE_HELP)
        s.add_argument("--device", default="auto", help=DEVICE_HELP)
        s.add_argument("--lease-seconds", type=float, default=120.0,
                       help="a worker that stops renewing its lease for this long is presumed dead")
        s.add_argument("--max-attempts", type=int, default=3, help="tries of a run that raises an error")
        s.add_argument("--num-workers", type=int, default=None, help=NUM_WORKERS_HELP)
        s.add_argument("--no-fuse", action="store_true", help="train runs one by one, never fused")
        s.add_argument("--data-root", default=None, help="where the datasets are (default: the recipes' ./data)")
        accel.add_arguments(s)
        s.add_argument("--tensorboard", action="store_true",
                       help="write each run's scalars as TensorBoard events under STORE/tensorboard")

    s = sub.add_parser("reproduce", help="plan, train (resumable) and report tables")
    s.add_argument("tables", nargs="+", metavar="TABLE|MANIFEST.yaml")
    _profile_arg(s, "paper")
    _launch_args(s)
    s.add_argument("--retry-failed", action="store_true", help="try failed runs again")
    s.add_argument("--rerun-stale", action="store_true",
                   help="retrain the tables' stale runs (trained at an older numerics revision of their code, or by a "
                        "stale teacher), each archived first under STORE/archive/")
    s.add_argument("--failures", action="store_true", help="list every failed and blocked run (default: by reason)")
    s.add_argument("--out", default=None, help="report folder (default: STORE/reports)")
    s.add_argument("--no-report", action="store_true")
    _figures_arg(s)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _decode_arg(s)
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
    _profile_arg(s, None, "the profile of the TABLEs' runs; default: the one each table was last reproduced "
                          "with in this store (else paper)")
    s.add_argument("--store", default="runs", help=STORE_HELP)
    _figures_arg(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("report", help="published vs reproduced, as markdown or JSON")
    s.add_argument("tables", nargs="+", metavar="TABLE|MANIFEST.yaml")
    s.add_argument("--store", default="runs", help=STORE_HELP)
    _profile_arg(s, None, "default: the profile the table was last reproduced with in this store")
    s.add_argument("--format", default="md", choices=["md", "json", "csv"])
    _figures_arg(s)
    s.add_argument("--out", default=None, help="write <table>.md/.json/.png and index.md here")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("site", help="a static HTML site of the store's tables (index, one page per table)")
    s.add_argument("--store", default="runs")
    s.add_argument("--out", required=True, help="folder of the site (index.html)")
    s.add_argument("--nightly", default=None, help="a nightly --out folder: show each cell's history")
    s.set_defaults(func=cmd_site)

    s = sub.add_parser("nightly", help="reproduce, write a dated report, list regressions (exit 1 if any)")
    s.add_argument("--tables", nargs="+", required=True, metavar="TABLE")
    _profile_arg(s, "smoke")
    s.add_argument("--out", required=True, help="folder of dated nightly reports")
    s.add_argument("--date", default=None, help="YYYY-MM-DD (default today)")
    _launch_args(s)
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--keep-stores", type=int, default=3,
                   help="keep the nightly stores of this many most recent code fingerprints (default 3)")
    worker_args(s)
    s.set_defaults(func=cmd_nightly)

    s = sub.add_parser("bench", help="engine vs the papers' loop, measured side by side")
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--loader-workers", type=int, default=None, help="reference DataLoader workers (default min(4, cores))")
    s.add_argument("--decode-images", type=int, default=128,
                   help="generated JPEGs for the image-folder decode rate per backend (0: skip it)")
    s.add_argument("--packing", default="1,2,4", metavar="K,K|none",
                   help="also time K processes training side by side on the device, as ratios against 1")
    s.add_argument("--json", action="store_true")
    s.add_argument("--save", default=None, metavar="STORE",
                   help="keep the measured throughput in STORE/throughput.json for the cost model")
    s.add_argument("--horizontal-sizes", type=_sizes, default=(), metavar="N,N,...",
                   help="also N students apart and as one batched model, per N (e.g. 1,4,8,16)")
    accel.add_arguments(s)
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("device-check", help="on a GPU machine, first: losses and one step against the CPU, exact "
                                            "resume and fusion, the canary, throughput; exit 0 only if every step "
                                            "ran and passed")
    s.add_argument("--out", default="device-check", metavar="DIR",
                   help="folder of device-check.json, device-check.md and calibration.json")
    s.add_argument("--budget", type=float, default=480.0, help="seconds: a step that would start later is skipped "
                                                               "(not passed)")
    s.add_argument("--dry-run-cpu", action="store_true", help="run the same steps on the CPU (CI; no GPU measured)")
    s.set_defaults(func=cmd_device_check)

    s = sub.add_parser("canary", help="train the golden canary and compare it with goldens/canary.json (exit 1 if "
                                      "a number changed)")
    s.add_argument("--update", action="store_true", help="rewrite goldens/canary.json with tonight's numbers")
    s.add_argument("--store", default=None, help="keep the canary's runs here (default: a temporary folder)")
    s.set_defaults(func=cmd_canary)

    s = sub.add_parser("goldens", help="compare every run id and default with goldens/ (exit 1 if one moved)")
    s.add_argument("--update", action="store_true", help="rewrite goldens/run_ids.json and config_schema.json")
    s.set_defaults(func=cmd_goldens)

    s = sub.add_parser("store", help="check a store for corrupt or inconsistent files (and repair them); migrate a "
                                     "store of an older layout")
    s.add_argument("action", choices=["check", "migrate"])
    s.add_argument("--store", default="runs")
    s.add_argument("--repair", action="store_true", help="re-derive what can be, mark the rest for re-running")
    s.add_argument("--apply", action="store_true", help="migrate: carry the store over (default: a dry run that "
                                                        "lists what moves)")
    s.add_argument("--data-root", default=None, help="where the datasets are (to re-evaluate test logits)")
    s.set_defaults(func=cmd_store)

    s = sub.add_parser("revisions", help="maintainers: the numerics revisions of the code's parts; record a change "
                                         "(bump: its numbers change; same: no numeric change)")
    s.add_argument("action", nargs="?", default="list", choices=["list", "bump", "same"])
    s.add_argument("part", nargs="?", help="the part (bump, same): as `revisions` lists them")
    s.add_argument("--why", default=None, help="why (bump, same): the commit and what changed")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_revisions)

    s = sub.add_parser("train", help="train one run from a run config (YAML)")
    s.add_argument("config")
    s.add_argument("--store", default="runs", help=STORE_HELP)
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.add_argument("--data-root", default=None, help="where the datasets are (overrides data.root)")
    s.add_argument("--num-workers", type=int, default=None, help=NUM_WORKERS_HELP)
    s.add_argument("--lease-seconds", type=float, default=120.0,
                   help="the run's lease, as a worker's: another process may take the run over after this long")
    accel.add_arguments(s)
    s.add_argument("--tensorboard", action="store_true",
                   help="write the run's scalars as TensorBoard events under STORE/tensorboard")
    _decode_arg(s)
    s.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    """The error boundary: known error kinds become one line and the exit code the README
    documents (2 bad input, 1 a run or an operation failed, 130 interrupted); anything else is
    a bug and keeps its traceback. ``--debug`` (anywhere on the line) shows every traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
        # a command that trains (it has the accelerations' flags; plan's --numerics only costs):
        # before anything starts CUDA
        if getattr(args, "numerics", None) and hasattr(args, "deterministic"):
            from .engine.numerics import prepare_environment

            prepare_environment(bool(accel.from_args(args).deterministic))
        _check_mask(args)  # before `auto` looks for CUDA: a mask naming no GPU would make it the CPU
        if getattr(args, "device", None) == "auto":
            args.device = _default_device()
        validate_args(args)
        return args.func(args)
    except BrokenPipeError:  # `plan --json | head`: the reader left; no traceback, no flush error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell tool killed by the pipe
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        known = known_error(err)
        if known is None or debug:
            raise
        code, lines = known
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        return code


def known_error(err: BaseException) -> tuple[int, list[str]] | None:
    """(exit code, lines) for the error kinds a user can cause or fix; None for a bug."""
    import errno

    from filelock import Timeout

    from .errors import Failed, Problems
    from .store.layout import WriteRefused

    if isinstance(err, Problems):
        return 2, err.lines()
    if isinstance(err, BadInput):
        return 2, [err.message()]
    if isinstance(err, (Failed, WriteRefused)):
        return 1, [str(err)]
    if isinstance(err, Timeout):
        return 1, [f"{err.lock_file}: locked by another process; try again when it has finished"]
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return 1, [f"disk full ({err.filename or 'the store'}): free some space and run the same command again; "
                   "finished epochs and runs are kept"]
    if isinstance(err, OSError) and err.filename is not None:  # a path the user gave or controls
        return 2, [f"{err.filename}: {err.strerror or err}"]
    return None


MIN_LEASE_SECONDS = 2.0  # a lease renewed every lease/6 s (at least 0.5 s) must outlive a few beats
DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _at_least(args, name, minimum, what):
    value = getattr(args, name, None)
    if value is not None and not value >= minimum:  # `not >=` also refuses NaN
        raise BadInput("--" + name.replace("_", "-"), None, f"must be {what}, got {value}")


def _folder_arg(option: str, path, write: bool) -> None:
    """A folder option (--store, --out): not a file, and writable when the command writes there."""
    import os

    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(option, None, f"{path} is a file, not a folder")
    if write:
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not os.access(probe, os.W_OK | os.X_OK):
            raise BadInput(option, None, f"{path} is not writable ({probe} is read-only or not ours)")


# Options that take a word or a number where argparse's `choices` cannot say it in one check: each
# option -> its check (the fusion and packing options of issue 26 are checked here together).
def _workers_per_gpu(value) -> None:
    from .runs.packing import parse_per_gpu

    parse_per_gpu(value)


def _one_of(option: str, allowed: tuple[str, ...]):
    def check(value) -> None:
        if value not in allowed:
            raise BadInput(option, None, f"must be {' or '.join(allowed)}, got {value!r}")
    return check


# --horizontal is issue 26's fusion switch (added on its own branch): checked here once it exists
def _packing_counts(value) -> None:
    from .commands.packbench import parse_counts

    parse_counts(value)


CHOICE_CHECKS = {"workers_per_gpu": _workers_per_gpu, "packing": _packing_counts, "horizontal": _one_of("--horizontal", ("on", "off"))}


def _choice_args(args) -> None:
    for name, check in CHOICE_CHECKS.items():
        if getattr(args, name, None) is not None:
            check(getattr(args, name))


def validate_args(args) -> None:
    """The command-line values checked before any work: exit 2 and one line each."""
    import datetime
    import math

    _at_least(args, "workers", 0, "0 (K per visible GPU, else 1) or a positive count")
    _choice_args(args)
    _at_least(args, "max_attempts", 1, ">= 1")
    _at_least(args, "num_workers", 0, ">= 0")
    _at_least(args, "steps", 1, ">= 1")
    _at_least(args, "warmup", 0, ">= 0")
    _at_least(args, "decode_images", 0, ">= 0")
    _at_least(args, "batch_size", 1, ">= 1")
    _at_least(args, "num_classes", 1, ">= 1")
    lease = getattr(args, "lease_seconds", None)
    if lease is not None and not (math.isfinite(lease) and lease >= MIN_LEASE_SECONDS):
        raise BadInput("--lease-seconds", None, f"must be a number of seconds >= {MIN_LEASE_SECONDS:g}, got {lease}")
    device = getattr(args, "device", None)
    if device is not None and not DEVICE.match(device):
        raise BadInput("--device", None, f"must be cpu, cuda, cuda:N or mps, got {device!r}")
    date = getattr(args, "date", None)
    if date is not None:
        try:
            datetime.date.fromisoformat(date)
            if len(date) != 10:
                raise ValueError
        except ValueError:
            raise BadInput("--date", None, f"must be a date YYYY-MM-DD, got {date!r}") from None
    if args.command == "data" and args.names:
        from .engine.data import dataset_names

        unknown = [n for n in args.names if n not in dataset_names()]
        if unknown:
            raise BadInput("data", "NAME", f"unknown dataset {', '.join(map(repr, unknown))}; "
                           f"known: {', '.join(dataset_names())}")
    writes = args.command in ("reproduce", "worker", "train", "nightly")
    _folder_arg("--store", getattr(args, "store", None), writes)
    if args.command in ("report", "nightly", "reproduce"):
        _folder_arg("--out", getattr(args, "out", None), True)
    if args.command == "bench":
        _folder_arg("--save", args.save, True)
    if args.command == "device-check":
        from .commands.devicecheck import out_folder

        out_folder(args.out)  # a parent that is a file named as such
        _folder_arg("--out", args.out, True)
        _at_least(args, "budget", 0, "a number of seconds >= 0")
