"""Nightly regression runs: tonight's code, trained afresh, against the goldens and last night.

``runner.py nightly`` trains into a store of its own for tonight's code: ``<store>/code-<fp>/``,
where ``fp`` is a fingerprint of everything that decides a run's numbers (the package's source,
the manifests, recipes and teacher zoo, the torch/torchvision/numpy/Python versions, the machine,
the device, torch's thread count, the numerics policy). A night whose fingerprint is new trains every run again; a
night with the same fingerprint as an earlier one reuses that store, since the same code on the
same platform trains the same bits (deterministic on the CPU). Then:

- the golden canary (benchmark/commands/canary.py) is trained and compared with ``goldens/canary.json``
  (exact on the golden's platform, within stated tolerances elsewhere) and with last night's;
- the tables are reported into ``<out>/<date>/`` and ``nightly.json`` snapshots every cell,
  claim, failed run and the canary's numbers;
- regressions against the most recent readable earlier night are listed: a canary quantity that
  changed, a cell that moved by more than its tolerance or lost its number, a claim that flipped,
  a run that newly fails. ``nightly.md`` shows them with the canary's history and a trend plot.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

HISTORY_NIGHTS = 5   # nights shown beside tonight in nightly.md


# ---------------------------------------------------------------- tonight's code


def fingerprint(device: str, numerics: str = "reproducible") -> tuple[str, dict]:
    """(hex digest, what went into it) of the code and platform that decide a run's numbers, and
    the numerics policy the night trains under (with its overrides: accel.Accel.label)."""
    import numpy
    import torch
    import torchvision

    from ..catalog.manifest import catalog_root
    from .canary import platform_key

    package = Path(__file__).resolve().parent.parent  # benchmark/
    files = sorted(package.rglob("*.py"))
    catalog = catalog_root()
    for sub in ("manifests", "teachers"):
        files += sorted((catalog / sub).rglob("*.yaml"))
    h = hashlib.sha256()
    for path in files:
        h.update(str(path.relative_to(package.parent if path.is_relative_to(package) else catalog)).encode())
        h.update(path.read_bytes())
    # torch's thread count too: CPU kernels may sum in another order on more threads, so the same
    # code on another thread count need not train the same bits
    env = {**platform_key(), "torchvision": torchvision.__version__, "numpy": numpy.__version__,
           "python": sys.version.split()[0], "device": device, "threads": torch.get_num_threads(),
           "numerics": numerics, "files": len(files)}
    h.update(json.dumps(env, sort_keys=True).encode())
    return h.hexdigest(), env


def night_store(root: Path, digest: str, env: dict, date: str) -> tuple[Path, bool]:
    """The store for this fingerprint under ``root`` and whether an earlier night made it."""
    from ..store.layout import Store, atomic_write_json, read_json

    path = root / f"code-{digest[:16]}"
    mark_file = Store(path).nightly_mark
    mark = read_json(mark_file)
    reused = isinstance(mark, dict) and mark.get("fingerprint") == digest
    nights = (mark.get("nights", []) if reused else []) + [date]
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(mark_file, {"fingerprint": digest, "env": env, "nights": sorted(set(nights)),
                                  "last_used": time.time()})
    return path, reused


def prune_stores(root: Path, keep: int, current: Path) -> list[Path]:
    """Remove all but the ``keep`` most recently used nightly stores (only folders this module
    made: ``code-*`` with its mark file). Returns the removed folders."""
    from ..store.layout import Store, read_json

    stores = []
    for p in root.glob("code-*"):
        mark = read_json(Store(p).nightly_mark)
        if p.is_dir() and isinstance(mark, dict) and p != current:
            stores.append((float(mark.get("last_used", 0)), p))
    stores.sort(reverse=True)
    removed = [p for _, p in stores[max(keep - 1, 0):]]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


# ---------------------------------------------------------------- the night


def run_nightly(tables: list[str], profile: str, date: str, out: Path, root: Path, worker, launch,
                keep_stores: int = 3, quiet: bool = False) -> int:
    """Reproduce ``tables`` into tonight's store under ``root`` (``worker``: the options every
    worker gets, its store replaced by tonight's; ``launch``: reproduce.Launch), train the canary,
    write ``<out>/<date>/`` and list the regressions. The exit code: 1 when anything regressed or
    a run failed, 130 when interrupted, else 0."""
    from dataclasses import replace

    from ..catalog.manifest import table_id
    from ..runs.queue import scan
    from ..store.layout import Store, atomic_write_json
    from . import canary
    from .reproduce import Request, reproduce_tables

    day_dir = out / date
    digest, env = fingerprint(worker.device, worker.accel.label())
    store_dir, reused = night_store(root, digest, env, date)
    print(f"nightly {date}: code fingerprint {digest[:16]}: "
          + (f"reusing {store_dir} (an earlier night ran this exact code)" if reused
             else f"training afresh in {store_dir}"), flush=True)
    run_code = reproduce_tables(Request(tables=tables, profile=profile, worker=replace(worker, store=str(store_dir)),
                                        launch=launch, report_dir=day_dir, quiet=quiet))
    if run_code == 130:
        return run_code
    numbers = canary.run(str(Store(store_dir).canary_dir), log=lambda msg: print(msg, flush=True))
    golden = canary.load_golden()
    if golden is None:
        golden_found = [f"no golden file {canary.GOLDEN_FILE}: make it with runner.py canary --update"]
        golden_note = "missing"
    else:
        exact, golden_found = canary.compare(golden, numbers)
        golden_note = canary.describe_mode(golden, exact)
    failed = [run_id for run_id, s in scan(Store(store_dir)).items() if s.state == "failed"]
    table_ids = [table_id(t) for t in tables]
    new = snapshot(day_dir, table_ids, failed, profile, date, canary=numbers, fingerprint_hex=digest)
    past = history(out, date, warn=lambda msg: print(msg, file=sys.stderr))
    old = past[-1] if past else None
    found = regressions(old, new) if old else []
    atomic_write_json(day_dir / "nightly.json", new)
    summary = write_summary(day_dir, new, old, found, golden_found, golden_note, past)
    for path in prune_stores(root, keep_stores, store_dir):
        print(f"removed the nightly store of older code {path} (--keep-stores {keep_stores})")
    total = len(found) + len(golden_found)
    print(f"nightly {date}: {total} regression(s) " + (f"against {old['date']}" if old else "(baseline)")
          + f" and the goldens; {summary}")
    for r in golden_found:
        print(f"  REGRESSION (goldens) {r}")
    for r in found:
        print(f"  REGRESSION {r}")
    return 1 if total or run_code else 0


# ---------------------------------------------------------------- snapshots and history


def snapshot(day_dir: Path, table_ids: list[str], failed_runs: list[str], profile: str, date: str,
             canary: dict | None = None, fingerprint_hex: str | None = None) -> dict:
    from ..store.layout import read_json

    tables = {}
    for table_id in table_ids:
        doc = read_json(day_dir / f"{table_id}.json") or {"cells": [], "claims": [], "tolerance": None}
        tables[table_id] = {
            "tolerance": doc["tolerance"],
            "cells": {f"{c['row']} | {c['col']}": {"reproduced": c["reproduced"], "status": c["status"],
                                                  "tolerance": c.get("tolerance", doc["tolerance"])}
                      for c in doc["cells"]},
            "claims": {c["text"]: c["status"] for c in doc["claims"]},
        }
    return {"date": date, "profile": profile, "fingerprint": fingerprint_hex, "tables": tables,
            "failed_runs": sorted(failed_runs), "canary": canary}


def history(out: Path, before: str, warn=lambda _msg: None) -> list[dict]:
    """Every readable earlier night under ``out``, oldest first. An unreadable ``nightly.json``
    (a crash, a hand edit) is skipped with one warning: it must not stop tonight's run."""
    from ..results.site import DATE

    nights = []
    if not out.is_dir():
        return nights
    for day in sorted(p for p in out.iterdir() if p.is_dir() and DATE.match(p.name) and p.name < before):
        path = day / "nightly.json"
        if not path.exists():
            continue
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
                raise ValueError("not a nightly snapshot")
        except (OSError, ValueError) as err:
            warn(f"warning: skipping unreadable {path} ({err.__class__.__name__}: {err})")
            continue
        nights.append(doc)
    return nights


def regressions(old: dict, new: dict) -> list[str]:
    found = []
    for table_id, table in new["tables"].items():
        before = (old.get("tables") or {}).get(table_id)
        if not isinstance(before, dict):
            continue
        for key, cell in table["cells"].items():
            prev = (before.get("cells") or {}).get(key)
            if not isinstance(prev, dict) or prev.get("reproduced") is None:
                continue
            tol = cell.get("tolerance")
            tol = table["tolerance"] if tol is None else tol
            if cell["reproduced"] is None:
                found.append(f"{table_id}: cell {key} had {prev['reproduced']:.4g}, now none ({cell['status']})")
            elif tol is not None and abs(cell["reproduced"] - prev["reproduced"]) > tol + 1e-9:
                found.append(f"{table_id}: cell {key} moved {prev['reproduced']:.4g} -> {cell['reproduced']:.4g} "
                             f"(more than its tolerance {tol:g})")
        for text, status in table["claims"].items():
            was = (before.get("claims") or {}).get(text)
            if {was, status} == {"held", "not held"}:
                found.append(f"{table_id}: claim flipped from {was} to {status}: {text}")
    for rid in sorted(set(new["failed_runs"]) - set(old.get("failed_runs") or [])):
        found.append(f"run {rid} fails now (it did not before)")
    if new.get("canary") and isinstance(old.get("canary"), dict) and old["canary"].get("runs"):
        from .canary import compare

        _, moved = compare(old["canary"], new["canary"])
        found += [line.replace(" golden ", " last night ") for line in moved]
    return found


# ---------------------------------------------------------------- the summary


CANARY_TREND = ("top1", "epoch_train_loss")


def _final(run: dict, key: str):
    v = run.get(key) if isinstance(run, dict) else None
    return v[-1] if isinstance(v, list) and v else v


def write_summary(day_dir: Path, new: dict, old: dict | None, found: list[str], golden_found: list[str],
                  golden_note: str, past: list[dict]) -> Path:
    from ..store.layout import atomic_write_bytes

    lines = [f"# Nightly {new['date']} ({new['profile']} profile)", "",
             f"Code fingerprint `{(new.get('fingerprint') or '?')[:16]}`: every run of this night was trained by "
             "this code (a store per fingerprint).", ""]
    lines.append(f"Compared with the nightly of {old['date']}." if old else
                 "No earlier readable nightly under this folder: nothing to compare with (this night is the baseline).")
    lines += ["", f"## Regressions: {len(found) + len(golden_found)}", "",
              f"Canary against the goldens ({golden_note}):", ""]
    lines += [f"- {r}" for r in golden_found] or ["- none"]
    lines += ["", "Against the previous night:", ""] + ([f"- {r}" for r in found] or ["- none"])
    canary_runs = (new.get("canary") or {}).get("runs") or {}
    if canary_runs:
        shown = [n for n in past[-HISTORY_NIGHTS:] if (n.get("canary") or {}).get("runs")]
        lines += ["", "## Canary history", "",
                  "Final test top-1 and last epoch's training loss; tonight first, then earlier nights.", "",
                  "| run | tonight top-1 | tonight loss | " + " | ".join(n["date"] for n in reversed(shown)) + " |",
                  "|---" * (3 + len(shown)) + "|"]
        for name, run in sorted(canary_runs.items()):
            cols = []
            for n in reversed(shown):
                r = n["canary"]["runs"].get(name)
                cols.append("—" if not isinstance(r, dict) else
                            f"{_fmt(_final(r, 'top1'))} / {_fmt(_final(r, 'epoch_train_loss'), 4)}")
            lines.append(f"| {name} | {_fmt(_final(run, 'top1'))} | {_fmt(_final(run, 'epoch_train_loss'), 4)} | "
                         + " | ".join(cols) + " |")
        if plot_trend(past + [new], day_dir / "canary-trend.png"):
            lines += ["", "![canary trend](canary-trend.png)"]
    lines += ["", "## Tables", ""] + [f"- [{table_id}]({table_id}.md)" for table_id in new["tables"]]
    path = day_dir / "nightly.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def _fmt(v, digits: int = 2) -> str:
    return "—" if not isinstance(v, (int, float)) else f"{v:.{digits}f}"


def plot_trend(nights: list[dict], path: Path) -> bool:
    """One small panel per canary quantity: each run's value night after night."""
    nights = [n for n in nights if (n.get("canary") or {}).get("runs")]
    if not nights:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({name for n in nights for name in n["canary"]["runs"]})
    fig, axes = plt.subplots(1, len(CANARY_TREND), figsize=(4.2 * len(CANARY_TREND), 3.2))
    for ax, key in zip(axes, CANARY_TREND):
        for name in names:
            ys = [_final(n["canary"]["runs"].get(name), key) for n in nights]
            ax.plot(range(len(nights)), [y if isinstance(y, (int, float)) else float("nan") for y in ys],
                    marker="o", ms=3, lw=1, label=name)
        ax.set_xticks(range(len(nights)), [n["date"][5:] for n in nights], rotation=45, fontsize=7)
        ax.set_title({"top1": "canary test top-1 (%)", "epoch_train_loss": "canary final training loss"}[key],
                     fontsize=9)
    axes[-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
