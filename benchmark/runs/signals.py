"""SIGTERM as Ctrl-C: a worker stopped by ``reproduce``'s Ctrl-C or by SLURM releases its lease and
loses at most the current epoch."""

from __future__ import annotations

import signal
import threading


def _raise_interrupt(_signum, _frame):  # a signal handler's signature
    raise KeyboardInterrupt


def sigterm_raises_interrupt() -> None:
    """SIGTERM (from reproduce's Ctrl-C, or SLURM) stops the worker like Ctrl-C: the lease is
    released and at most the current epoch is lost."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
