"""SIGTERM as Ctrl-C (benchmark/runs/signals.py)."""

import os
import signal
import threading

import pytest

from benchmark.runs.signals import sigterm_raises_interrupt


def test_sigterm_raises_keyboard_interrupt_and_a_thread_leaves_the_handler_alone():
    old = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        worker = threading.Thread(target=sigterm_raises_interrupt)  # signal.signal would raise there
        worker.start()
        worker.join()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        sigterm_raises_interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
    finally:
        signal.signal(signal.SIGTERM, old)
