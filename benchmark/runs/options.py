"""What a worker is told: its store, device, lease and heartbeat times, retry budget, fusing, data
root and accelerations (``runner.py worker`` and ``reproduce`` fill it from their flags)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from ..engine.accel import Accel


@dataclass
class WorkerOptions:
    store: str = "runs"
    device: str = "cpu"
    only: set[str] | None = None       # restrict to these jobs (reproduce passes its tables' jobs)
    lease_seconds: float = 120.0
    heartbeat_seconds: float = 10.0
    poll_seconds: float = 2.0
    max_attempts: int = 3
    exit_when_idle: bool = True        # False: keep polling for new jobs
    num_workers: int | None = None     # DataLoader workers (image-folder datasets); None: data/loader.py's default
    fuse: bool = True                  # train runs that share data, recipe, seed and teacher together
    fuse_max: int = 8
    data_root: str | None = None       # where the datasets are on this machine (overrides the configs')
    accel: Accel = field(default_factory=Accel)  # accelerations and determinism (accel.py)
    tensorboard: bool = False          # write each run's scalars as TensorBoard events under the store
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
