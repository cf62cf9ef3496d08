"""A run's own random stream (dropout), kept apart from every other run's, so that a run draws
the same numbers alone or fused with others, and after a resume as without one."""

from __future__ import annotations

import contextlib

import torch

from .pipeline import derive_seed


class RunRandom:
    """The torch generator states of one run (CPU, and CUDA on a GPU), swapped in around its steps."""

    def __init__(self, device: torch.device, cpu: torch.Tensor, cuda: torch.Tensor | None):
        self.device, self.cpu, self.cuda = device, cpu, cuda

    @classmethod
    def fresh(cls, seed: int, device: torch.device) -> RunRandom:
        """The stream of a run that starts now: seeded from the run's seed alone."""
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(derive_seed("train", seed))
            return cls(device, torch.get_rng_state(),
                       torch.cuda.get_rng_state(device) if device.type == "cuda" else None)

    @contextlib.contextmanager
    def own(self):
        """Draw from this run's stream inside the block; the global stream is left as it was."""
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else []):
            torch.set_rng_state(self.cpu)
            if cuda and self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield
            self.cpu = torch.get_rng_state()
            self.cuda = torch.cuda.get_rng_state(self.device) if cuda else None
