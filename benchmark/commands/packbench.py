"""bench's packing cases: K processes training small students on one device, side by side.

Each process does what a packed worker does on its GPU: KD steps of a resnet20 student from a
resnet56 teacher (tau 4, SGD) at the bench's batch, on one fixed CIFAR-100-shaped batch already
on the device (the engine keeps such data there). The K processes are started (spawned: no CUDA
state is forked), warm up, wait at one barrier, then each times its steps. For K processes

    images/s (all) = K x steps x batch / (last end - first start),   ratio = that / the same at K = 1,

measured in the same bench run, so the ratio says what K workers per device give over one. On the
CPU the processes share the cores (each takes cores / K threads, as `reproduce`'s CPU workers do):
that measures CPU sharing, not GPU packing; the GPU number needs `bench --device cuda`.
"""

from __future__ import annotations

import time

from ..errors import BadInput, Failed

OPTION = "--packing"
CPU_NOTE = ("on the CPU the processes share its cores (cores / K threads each): this measures CPU sharing, "
            "not GPU packing; run `bench --device cuda` for that")


def parse_counts(text) -> tuple[int, ...]:
    """``--packing 1,2,4`` (``none``: no packing cases); 1 is always measured (the ratios' base)."""
    if text is None or str(text) == "none":
        return ()
    try:
        counts = [int(p) for p in str(text).split(",")]
    except ValueError:
        counts = []
    if not counts or any(k < 1 or k > 64 for k in counts):
        raise BadInput(OPTION, None, f"must be process counts from 1 to 64 separated by commas, or none; got {text!r}")
    return tuple(sorted(set(counts) | {1}))


def _process(device: str, threads: int, steps: int, warmup: int, batch_size: int, barrier, results) -> None:
    """One packed process: warm up, wait for the others, time ``steps`` KD steps."""
    import torch

    from ..engine.losses import make_loss
    from ..engine.models import build_model

    torch.set_num_threads(threads)
    dev = torch.device(device)
    torch.manual_seed(0)
    teacher = build_model("resnet56", 100).to(dev).eval()
    student = build_model("resnet20", 100).to(dev)
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = make_loss("kd", tau=4.0)
    x = torch.randn(batch_size, 3, 32, 32, device=dev)
    y = torch.randint(0, 100, (batch_size,), device=dev)

    def step():
        with torch.no_grad():
            z_t = teacher(x)
        loss = loss_fn(student(x), z_t, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        step()
    sync()
    barrier.wait(timeout=900)
    start = time.time()  # wall clock: the processes' spans are compared with each other
    for _ in range(steps):
        step()
    sync()
    results.put((start, time.time()))


def _collect(results, procs, k: int):
    """The k processes' (start, end), or None as soon as one of them has died without its own."""
    import queue

    spans = []
    while len(spans) < k:
        try:
            spans.append(results.get(timeout=1.0))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                return None
    return spans


def measure(device: str, counts, steps: int, warmup: int, batch_size: int, cpus: int | None = None,
            log=None) -> dict:
    """The packing cases (module docstring) for each K of ``counts``."""
    import multiprocessing as mp
    import os

    log = log or (lambda _message: None)
    cpus = cpus or os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    cases = []
    for k in counts:
        threads = max(1, cpus // k)
        log(f"timing packing: {k} process(es) x {threads} thread(s) on {device}: {warmup} + {steps} steps each")
        barrier, results = ctx.Barrier(k), ctx.Queue()
        procs = [ctx.Process(target=_process, args=(device, threads, steps, warmup, batch_size, barrier, results))
                 for _ in range(k)]
        for p in procs:
            p.start()
        spans = _collect(results, procs, k)
        for p in procs:
            p.join(timeout=60)
        if spans is None or any(p.exitcode != 0 for p in procs):
            for p in procs:
                if p.is_alive():
                    p.terminate()
            raise Failed(f"bench packing: a process of the {k}-process case failed (exit codes "
                         f"{[p.exitcode for p in procs]})")
        seconds = max(e for _, e in spans) - min(s for s, _ in spans)
        cases.append({"processes": k, "threads_per_process": threads, "steps": steps, "seconds": seconds,
                      "images_per_s": k * steps * batch_size / seconds})
    base = cases[0]["images_per_s"]
    for c in cases:
        c["per_process_images_per_s"] = c["images_per_s"] / c["processes"]
        c["ratio"] = c["images_per_s"] / base
    return {"student": "resnet20", "teacher": "resnet56", "batch_size": batch_size, "cases": cases,
            "note": CPU_NOTE if not device.startswith("cuda") else "K processes share one GPU (time-sliced, no MPS)"}
