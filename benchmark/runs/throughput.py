"""Measured throughput for the cost model, in the model's unit: effective FLOP/s, per device kind.

A measured throughput is an end-to-end rate of this engine (FLOPs of a run, plan.estimate_flops,
over its wall time): where there is one, it stands for the cost model's compute and per-step
overhead bounds (benchmark/catalog/costmodel.py); the loader bound of image-file datasets still applies.
Throughputs are kept per device kind ("cuda", "cpu") and never mixed: a CPU smoke run is no
evidence about a GPU. For a kind, the throughput is measured where the store has a measurement
on that kind:

1. finished runs of the store on that kind (the result's ``provenance.device``): FLOPs of the
   run / its wall time, the median over runs that took at least ``MIN_RUN_SECONDS`` (shorter ones
   are start-up overhead, not throughput);
2. ``STORE/throughput.json``, written by ``runner.py bench --save STORE``: one entry per device
   kind, the engine's images/s times the FLOPs of one KD step per image (3 x student forward +
   teacher forward);
3. otherwise None: the planner uses the calibration of a device kind (``plan --device-kind``,
   H100 by default; benchmark/catalog/calibrations.json).

The GPU-hours that ``plan`` and ``status`` print use the ``cuda`` kind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from statistics import median

from ..store.layout import Store, atomic_write_json

MIN_RUN_SECONDS = 60.0
GPU = "cuda"


def device_kind(device: str | None) -> str:
    """'cuda:1' -> 'cuda', 'cpu' -> 'cpu' (None, unknown -> 'unknown')."""
    return str(device).split(":")[0] if device else "unknown"


def _read_file(store_dir) -> dict:
    """{kind: entry}; a file of the old layout (one entry with its device) is read as its kind."""
    try:
        doc = json.loads(Store(store_dir).throughput_file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    if "flops_per_s" in doc:
        return {device_kind(doc.get("device")): doc}
    return {k: v for k, v in doc.items() if isinstance(v, dict)}


def save_bench(store_dir: str | Path, bench: dict) -> Path:
    """Keep a bench result's engine throughput as effective FLOP/s in STORE/throughput.json, under
    its device kind (other kinds' entries are kept)."""
    from ..catalog.flops import forward_flops

    per_image = 3 * forward_flops(bench["student"], 100, 32) + forward_flops(bench["teacher"], 100, 32)
    engine = next(c for c in bench["cases"] if c["name"] == "engine")
    entry = {"flops_per_s": engine["images_per_s"] * per_image, "device": bench["device"],
             "accel": bench.get("accel"), "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
             "how": f"runner.py bench: {bench['teacher']} -> {bench['student']} KD step, "
                    f"{engine['images_per_s']:.0f} images/s x {per_image / 1e6:.1f} MFLOP per image"}
    path = Store(store_dir).throughput_file
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = bench.get("device_kind") or ("cpu" if str(bench["device"]).startswith("cpu") else device_kind(bench["device"]))
    atomic_write_json(path, {**_read_file(store_dir), kind: entry})
    return path


def measured_rate(store, kind: str = GPU) -> tuple[float, str] | None:
    """(effective FLOP/s, where it comes from) measured on ``kind`` devices for this store, or None."""
    from ..catalog.runcost import estimate_flops

    rates = []
    for rid in store.run_ids():
        res = store.result(rid)
        if not res or res.get("status") != "done" or (res.get("wall_time_s") or 0) < MIN_RUN_SECONDS:
            continue
        if device_kind((res.get("provenance") or {}).get("device")) != kind:
            continue  # never mixed: a CPU run says nothing about a GPU
        cfg = res.get("config") or {}
        teacher = (cfg.get("teacher") or {}).get("run")
        try:
            flops = estimate_flops(cfg, store.config(teacher) if teacher else None)
        except (KeyError, ValueError, TypeError):
            continue
        rates.append(flops / res["wall_time_s"])
    if rates:
        return median(rates), f"measured on {kind}: median over {len(rates)} finished run(s) of the store"
    doc = _read_file(store.root).get(kind)
    try:
        rate = float(doc["flops_per_s"])
    except (TypeError, KeyError, ValueError):
        return None
    if rate <= 0:
        return None
    return rate, f"measured on {kind}: runner.py bench on {doc.get('device')} ({doc.get('measured')})"
