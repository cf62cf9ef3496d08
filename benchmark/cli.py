"""The command line. Thin: parse, call the package, print. Contracts in DESIGN.md.

Exit codes: 0 success, 1 a run or check failed, 2 bad input (one line naming the file, the
field and the problem; no traceback; nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import BadInput
from .yamlfile import load_yaml


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, instead of the usage block
        raise BadInput(self.prog, None, message)


# ---------------------------------------------------------------- commands


def cmd_models(args) -> int:
    from tabulate import tabulate

    from .models import describe_models

    rows = describe_models(args.num_classes)
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
        data.download(args.names[0], args.data_root)
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
        print(f"  epoch {m['epoch']}/{m['epochs']}: loss {m['train_loss']:.4f}, test top-1 {m['test_top1']:.2f}",
              flush=True)

    result = train_run(cfg, store, ExecOptions(device=args.device, num_workers=args.num_workers, on_epoch=on_epoch))
    if result["status"] != "done":
        print(f"run {rid} failed: {result['reason']}", file=sys.stderr)
        return 1
    m = result["metrics"]
    print(f"run {rid} done: top-1 {m['top1']:.2f} ({m['reported_epoch']} epoch), "
          f"last {m['last']['top1']:.2f}, best {m['best']['top1']:.2f} (epoch {m['best']['epoch']})")
    return 0


def cmd_list(args) -> int:
    from tabulate import tabulate

    from .manifest import load_manifest, manifest_paths
    from .plan import Planner

    rows = []
    for tid, path in manifest_paths().items():
        m = load_manifest(path)
        plan = Planner("paper").plan_manifest(m)
        runnable = sum(c.rule not in ("cited", "setting", "aggregate") for c in plan.cells)
        rows.append({"table": tid, "paper": m.paper, "title": m.title, "cells": len(plan.cells),
                     "runnable_cells": runnable, "runs": len(plan.job_ids)})
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

    planner = Planner(args.profile)
    store = Store(args.store)
    plans = [planner.plan(name) for name in args.tables]
    summaries = [table_summary(p, planner, store) for p in plans]
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
          f"left (estimate: FLOPs at an assumed throughput)")
    return 0


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput("--device", None, f"{device} requested but no CUDA device is available")


# ---------------------------------------------------------------- parser


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
    s.add_argument("--profile", default="paper", choices=["smoke", "quick", "paper"])
    s.add_argument("--store", default="runs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("train", help="train one run from a run config (YAML)")
    s.add_argument("config")
    s.add_argument("--store", default="runs")
    s.add_argument("--device", default="cpu")
    s.add_argument("--data-root", default=None, help="where the datasets are (overrides data.root)")
    s.add_argument("--num-workers", type=int, default=4, help="DataLoader workers (image-folder datasets)")
    s.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BadInput as err:
        print(f"error: {err.message()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
