"""Small run configs shared by the trainer and command-line tests, and the hand-written loss
references and small feature-run helpers that several distiller test files use."""

import copy
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "dataset": "cifar10",
    "data": {"source": "synthetic", "synthetic": {"per_class": 24, "test_per_class": 6, "image_size": 8}},
    "model": "resnet8",
    "loss": {"name": "ce"},
    "recipe": {"epochs": 3, "batch_size": 32, "optimizer": {"lr": 0.05},
               "schedule": {"name": "multistep", "milestones": [2], "gamma": 0.1}},
    "seed": 0,
}


def tiny(**changes) -> dict:
    cfg = copy.deepcopy(TINY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def tiny32(**changes) -> dict:
    """``tiny`` on CIFAR's own 32-px stand-in (16x the convolutions of the 8-px default): for the
    tests whose kill and lease windows need runs that last, and those whose float32 tolerances
    were set at 32 px."""
    cfg = tiny(**changes)
    cfg["data"]["synthetic"]["image_size"] = 32
    return cfg


def stop_after_epoch(cfg, store, epoch: int = 1) -> None:
    """Train ``cfg`` in ``store`` and stop it, as a kill would, once ``epoch`` is checkpointed."""
    import pytest

    from benchmark.engine.execution import ExecOptions
    from benchmark.engine.train import train_run

    class Stop(Exception):
        pass

    def hook(m):
        if m["epoch"] == epoch:
            raise Stop
    with pytest.raises(Stop):
        train_run(cfg, store, ExecOptions(on_epoch=hook))


def wait_for(predicate, timeout: float, poll: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(poll)
    return False


def runner(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, str(REPO / "runner.py"), *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout)


def cli(*args) -> subprocess.CompletedProcess:
    """``runner.py ARGS`` in this process: the same main(), its exit code and printed text, without
    a new interpreter importing torch (seconds per call). For what happens inside main() (parsing,
    bad input); a test about the process itself (no traceback at exit, signals) uses runner()."""
    import contextlib
    import io

    from benchmark.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(["runner.py", *map(str, args)], code, out.getvalue(), err.getvalue())


class Forked:
    """A fork of this test process that runs ``target()`` (its exit code) in a process of its own
    (its own pid, memory and file descriptors; killed, stopped and reaped like a command), without
    a new interpreter importing torch and torchvision: 2-3 CPU-seconds per worker, most of what a
    kill -9 or soak test spent. ``forked_runner(ARGS)`` is ``runner.py ARGS`` this way. The child
    runs one torch thread, as this process does (conftest), and never returns into pytest: it
    leaves with ``os._exit``. Its standard output and error go to ``out`` (default: discarded).
    The tests of the commands' own start-up (the interpreter, ``runner.py``, what a launcher
    passes to its workers) still spawn: ``runner()``, and `reproduce` starting its workers.

    The interface is Popen's: ``pid``, ``poll()``, ``wait(timeout)``, ``send_signal``,
    ``kill``, ``returncode`` (minus the signal number when a signal ended it)."""

    def __init__(self, target, out: Path | None = None, name: str = "forked"):
        path = str(out) if out is not None else os.devnull
        self.args, self.returncode = [name], None
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns from here
            code = 1
            try:
                os.setsid()  # a session of its own, as start_new_session=True gives a spawned worker
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
                code = target()
            except SystemExit as exit_:  # argparse's own exit
                code = 0 if exit_.code is None else exit_.code
            except BaseException:  # noqa: B036 - whatever happens, the child must not run pytest on
                import traceback

                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                finally:
                    os._exit(code if isinstance(code, int) else 1)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not wait_for(lambda: self.poll() is not None, float("inf") if timeout is None else timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def forked_runner(*args, out: Path | None = None) -> Forked:
    """``runner.py ARGS`` as a Forked process: the command's main() on the same arguments."""
    from benchmark.cli import main

    argv = [str(a) for a in args]
    return Forked(lambda: main(argv), out=out, name="runner.py " + " ".join(argv))


# ---- hand-written references (plain loops over samples / positions) --------------------------


def pool_to(x, side):
    """Average pool of a square map to side x side (side divides the map's size)."""
    k = x.shape[-1] // side
    return x.reshape(*x.shape[:-2], side, k, side, k).mean(dim=(-3, -1))


def ref_at(f_s, f_t):
    """AT: mean over samples and positions of (Q_s - Q_t)^2, Q = normalised channel mean of squares."""
    n, side = f_s.shape[0], min(f_s.shape[-1], f_t.shape[-1])
    f_s, f_t = pool_to(f_s, side), pool_to(f_t, side)
    total = 0
    for i in range(n):
        a_s = sum(f_s[i, c] ** 2 for c in range(f_s.shape[1])) / f_s.shape[1]
        a_t = sum(f_t[i, c] ** 2 for c in range(f_t.shape[1])) / f_t.shape[1]
        q_s, q_t = a_s.flatten() / a_s.norm(), a_t.flatten() / a_t.norm()
        total = total + ((q_s - q_t) ** 2).sum()
    return total / (n * side * side)


def ref_ce(z, y):
    n = z.shape[0]
    return sum(torch.logsumexp(z[i], 0) - z[i, y[i]] for i in range(n)) / n


# ---- small feature runs through the trainer --------------------------------------------------


def repdistiller_last_pth(path, state, opt_value):
    """A file laid out as RepDistiller's ``*_last.pth`` (train_teacher.py l. 165-172)."""
    torch.save({"opt": opt_value, "model": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def teacher_checkpoint(directory: Path, model: str, seed: int) -> dict:
    """A randomly initialised teacher saved as a checkpoint: no teacher training needed."""
    from benchmark.engine.models import build_model

    torch.manual_seed(seed)
    path = directory / f"{model}.pt"
    torch.save(build_model(model, 10).state_dict(), path)
    return {"checkpoint": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "model": model}


def trained_teacher(directory: Path, raw=None) -> tuple:
    """A resnet14 trained one epoch on the tiny stand-in (``raw``: another tiny config builder,
    e.g. ``tiny32``): (its store, its run id)."""
    from benchmark.engine import config as C
    from benchmark.engine.execution import ExecOptions
    from benchmark.engine.train import train_run
    from benchmark.store.layout import Store

    store = Store(directory)
    cfg = C.resolve((raw or tiny)(model="resnet14", recipe={"epochs": 1}))
    return store, train_run(cfg, store, ExecOptions())["id"]


def small_feature_run(teacher: dict, loss: dict, epochs: int) -> dict:
    from benchmark.engine import config as C

    cfg = tiny(teacher=teacher, loss=loss, recipe={"epochs": epochs, "steps_per_epoch": 2, "final_train_eval": False})
    cfg["data"]["synthetic"].update(per_class=8, test_per_class=2)
    return C.resolve(cfg)


def same_result(a: dict, b: dict) -> bool:
    return (a["metrics"], a["weights_digest"]) == (b["metrics"], b["weights_digest"])


def write_wav(path, samples, rate=16000, channels=1, width=2):
    """int16 samples (or any ints) into a WAV file with the standard library."""
    import wave

    import numpy as np

    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, dtype="<i2").tobytes())
