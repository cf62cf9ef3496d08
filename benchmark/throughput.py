"""Measured throughput for the cost model, in the model's unit: effective FLOP/s.

The planner estimates a run's device time as its FLOPs (plan.estimate_flops) over a throughput.
That throughput is measured where the store has a measurement:

1. finished runs of the store: FLOPs of the run / its wall time, the median over runs that took
   at least ``MIN_RUN_SECONDS`` (shorter ones are start-up overhead, not throughput);
2. ``STORE/throughput.json``, written by ``runner.py bench --save STORE``: the engine's
   images/s times the FLOPs of one KD step per image (3 x student forward + teacher forward);
3. otherwise the stated assumption ``plan.ASSUMED_FLOPS_PER_S``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from statistics import median

MIN_RUN_SECONDS = 60.0
FILE = "throughput.json"


def save_bench(store_dir: str | Path, bench: dict) -> Path:
    """Keep a bench result's engine throughput as effective FLOP/s in STORE/throughput.json."""
    from .plan import forward_flops
    from .store import atomic_write_json

    per_image = 3 * forward_flops(bench["student"], 100, 32) + forward_flops(bench["teacher"], 100, 32)
    engine = next(c for c in bench["cases"] if c["name"] == "engine")
    doc = {"flops_per_s": engine["images_per_s"] * per_image, "device": bench["device"],
           "accel": bench.get("accel"), "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
           "how": f"runner.py bench: {bench['teacher']} -> {bench['student']} KD step, "
                  f"{engine['images_per_s']:.0f} images/s x {per_image / 1e6:.1f} MFLOP per image"}
    path = Path(store_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)
    return path


def measured_rate(store) -> tuple[float, str] | None:
    """(effective FLOP/s, where it comes from) measured for this store, or None."""
    from .plan import estimate_flops

    rates = []
    for rid in store.run_ids():
        res = store.result(rid)
        if not res or res.get("status") != "done" or (res.get("wall_time_s") or 0) < MIN_RUN_SECONDS:
            continue
        cfg = res.get("config") or {}
        teacher = (cfg.get("teacher") or {}).get("run")
        try:
            flops = estimate_flops(cfg, store.config(teacher) if teacher else None)
        except (KeyError, ValueError, TypeError):
            continue
        rates.append(flops / res["wall_time_s"])
    if rates:
        return median(rates), f"measured: median over {len(rates)} finished run(s) of the store"
    try:
        doc = json.loads((Path(store.root) / FILE).read_text())
        rate = float(doc["flops_per_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if rate <= 0:
        return None
    return rate, f"measured: runner.py bench on {doc.get('device')} ({doc.get('measured')})"
