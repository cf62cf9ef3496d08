"""The command line. Thin: parse, call the package, print. Contracts in DESIGN.md.

Exit codes: 0 success, 1 a run or check failed, 2 bad input (one line naming the file, the
field and the problem; no traceback; nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from .errors import BadInput


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, instead of the usage block
        raise BadInput(self.prog, None, message)


def load_yaml(path: str | Path):
    """Parse a YAML file safely; every problem is a BadInput naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadInput(path, None, f"cannot read: {err}") from None
    if not text.strip():
        raise BadInput(path, None, "the file is empty")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise BadInput(path, None, f"YAML syntax error{where}: {problem}") from None


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
