"""TensorBoard event files of a run's logged epochs (optional: ``pip install -e ".[tensorboard]"``).

``export_run(store, rid)`` (re)writes ``<store>/tensorboard/<table>/<model>-<loss>-tau<tau>-seed<s>-<id>/``
from the run's ``metrics.jsonl``, the store's source of truth, so a resumed run never shows an
epoch twice and the files can be rebuilt at any time. The folder's first level is the table(s)
whose stored plan names the run (``runs`` when none does), so TensorBoard's run selector groups
the runs by table; the plans are read, never made (no planner during training). Tags:

    loss/total, loss/<term>     the epoch means of the training loss and of each of its terms
    accuracy/test_top1, ...     test top-1/top-5, the augmented training top-1
    train/lr, train/grad_norm, train/nonfinite_frac
    <stage>/loss/stage, ...     the same for a pre-training stage's epochs (AB, FT, FSP, IE-AT)

The step is the epoch (1-based), per stage for the stages.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from ..store.layout import Store
from ..store.stored_plan import run_tables, stored_tables

SKIP = {"epoch", "stage", "time_s"}


def available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    """BadInput (exit 2) when the flag is given without the optional dependency installed."""
    if not available():
        from ..errors import BadInput

        raise BadInput("--tensorboard", None, 'needs the tensorboard package: pip install -e ".[tensorboard]"')


def tag(key: str) -> str:
    if key == "train_loss":
        return "loss/total"
    if key.startswith("loss_"):
        return "loss/" + key[len("loss_"):]
    if "top1" in key or "top5" in key:
        return "accuracy/" + key
    return "train/" + key


def _fmt(x) -> str:
    if isinstance(x, float):
        return "inf" if math.isinf(x) else f"{x:g}"
    return str(x)


def run_name(cfg: dict, rid: str, tables: list[str]) -> str:
    """``<table>[+<table>]/<model>-<loss>[-tau<tau>]-seed<seed>-<id>``: readable in the run selector."""
    loss = cfg.get("loss") or {}
    parts = [cfg.get("model", "model"), loss.get("name", "loss")]
    if loss.get("tau") is not None:
        parts.append(f"tau{_fmt(loss['tau'])}")
    parts += [f"seed{cfg.get('seed')}", rid]
    group = "+".join(sorted(tables)) if tables else "runs"
    return f"{group}/{'-'.join(map(str, parts))}"


def _plans_stamp(store: Store) -> tuple:
    """The stored plans' files and modification times: a new or rewritten plan reads again."""
    stamp = []
    for path in sorted(store.plans_dir.glob("*/*.json")) if store.plans_dir.is_dir() else ():
        try:
            stamp.append((path.name, path.parent.name, path.stat().st_mtime_ns))
        except OSError:  # replaced or removed meanwhile: the next export reads it again
            continue
    return tuple(stamp)


@lru_cache(maxsize=8)
def _tables(root: str, stamp: tuple) -> dict[str, list[str]]:  # noqa: ARG001 (stamp: only the cache key)
    store = Store(root)
    # strict=False: a damaged plan labels nothing; it must not fail the run being trained
    return {rid: e["tables"] for rid, e in run_tables(store, stored_tables(store), strict=False).items()}


def tables_of(store: Store, rid: str) -> list[str]:
    """The tables whose stored plan (benchmark/store/stored_plan.py) names ``rid``, at any profile; none
    for a run no stored plan names. Read once per process and state of the plans; nothing is
    planned here (the trainer calls it after every epoch)."""
    return _tables(str(store.root), _plans_stamp(store)).get(rid, [])


def export_run(store: Store, rid: str, tables: list[str] | None = None) -> Path:
    """Rewrite the run's event files from its metrics.jsonl; returns the run's folder."""
    from torch.utils.tensorboard import SummaryWriter

    cfg = store.config(rid) or {}
    tables = tables_of(store, rid) if tables is None else tables
    base = store.tensorboard_dir
    final = base / run_name(cfg, rid, tables)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{rid}."))
    writer = SummaryWriter(log_dir=str(tmp))
    try:
        for line in store.metrics(rid):
            prefix = f"{line['stage']}/" if line.get("stage") else ""
            for key, value in sorted(line.items()):
                if key in SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                writer.add_scalar(prefix + tag(key), value, global_step=int(line["epoch"]))
    finally:
        writer.close()
    for old in base.glob(f"*/*-{rid}"):  # the previous export (under another table name too)
        shutil.rmtree(old, ignore_errors=True)
    tmp.rename(final)
    return final
