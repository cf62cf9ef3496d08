"""How a run is executed (``ExecOptions``): device, loader workers, accelerations and determinism,
progress hooks, TensorBoard. None of it is part of the run id; all of it is recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .accel import Accel
from .data.loader import loader_workers


@dataclass
class ExecOptions:
    """How a run is executed. None of this is part of the run id; all of it is recorded."""
    device: str = "cpu"
    num_workers: int | None = None  # DataLoader workers for image-folder datasets (None: data/loader.py's default)
    accel: Accel = field(default_factory=Accel)  # accelerations and determinism (accel.py)
    on_epoch: Callable[[dict], None] | None = field(default=None, repr=False)  # progress hook
    tensorboard: bool = False     # also write each epoch's scalars as TensorBoard events (tboard.py)
    # called every ``step_every`` steps inside an epoch (more often in a short epoch: about 8 times
    # at least) with {runs, epoch, epochs, step, steps, images}; host-side counts only, so no device
    # synchronisation is added
    on_step: Callable[[dict], None] | None = field(default=None, repr=False)
    step_every: int = 20

    def record(self) -> dict:
        """What ran: the flags as they applied on this device."""
        workers, source = loader_workers(self.num_workers)
        return {"device": self.device, "num_workers": workers, **source,
                **self.accel.resolved(torch.device(self.device)).record()}
