"""Image-folder datasets (CUB, Dogs, ImageNet) through a DataLoader, with the tensor pipeline's
interface (``train_batches(seed, epoch)``, ``test_batches()``, ``train_eval_batches()``).

- Randomness: the sampler shuffles by (seed, epoch) and hands each worker the keys (seed, epoch,
  index); every sample's crop and flip draw from its own stream (streams.py). So the batches are
  the same at any worker count, persistent or not, 0 included, and after a resume.
- Workers: persistent (started once, kept across epochs); by default as many as the CPUs this
  process may use (``os.sched_getaffinity``) divided by the training processes sharing them
  (``loader_workers``).
- Decoding (``data.decode``, decode.py): ``pil``, torchvision's PIL transforms in the workers; or
  ``nvjpeg``, the workers read bytes and tensor_decode.py decodes and augments on the device (on
  the CPU: in the workers, the same function).
"""

from __future__ import annotations

import os

import torch

from .streams import EpochSampler, SampleStreams

# How many training processes share this machine's CPUs (reproduce's local launcher sets it for its
# workers): the default loader worker count divides the CPUs by it.
PROCESSES_ENV = "KD_LOCAL_WORKERS"


def loader_workers(given: int | None = None) -> tuple[int, dict]:
    """(DataLoader workers, how that number was reached) for one training process."""
    if given is not None:
        return given, {"num_workers_from": "given"}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        processes = max(1, int(os.environ.get(PROCESSES_ENV, "1")))
    except ValueError:
        processes = 1
    return max(1, cpus // processes), {"num_workers_from": f"{cpus} CPUs / {processes} training process(es)"}


class LoaderPipeline:
    """Image-folder datasets through torchvision transforms (or tensor decoding) and a DataLoader."""

    def __init__(self, train_set, test_set, train_eval_set, batch_size: int, eval_batch_size: int = 256,
                 drop_last: bool = False, steps_per_epoch: int | None = None, num_workers: int | None = None,
                 device="cpu", decode: str = "pil"):
        self.train_set, self.test_set, self.train_eval_set = train_set, test_set, train_eval_set
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.drop_last, self.steps_per_epoch = drop_last, steps_per_epoch
        self.num_workers, self.workers_from = loader_workers(num_workers)
        self.device = torch.device(device)
        self.decode = decode
        self.crop = None
        if decode != "pil":
            from .tensor_decode import crop_flip_of

            self.crop = crop_flip_of(train_set.transform)
            if self.crop is None:
                raise ValueError(f"decode {decode!r} needs a RandomResizedCrop + flip pipeline, not "
                                 f"{train_set.transform}")
        self.fallbacks: dict[int, str] = {}  # index -> why PIL decoded it (decode != pil)
        self.sampler = EpochSampler(len(train_set))
        self._train = None
        self._test = None

    @property
    def num_train(self) -> int:
        return len(self.train_set)

    def _loader(self, dataset, batch_size, sampler=None, drop_last=False, collate_fn=None, persistent=True):
        # generator: the DataLoader draws its workers' base seed from it on every iteration, which
        # would otherwise take a number from the training process's global generator (dropout's)
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, collate_fn=collate_fn,
            generator=torch.Generator().manual_seed(0),
            num_workers=self.num_workers, pin_memory=self.device.type == "cuda" and self.crop is None,
            persistent_workers=persistent and self.num_workers > 0)

    def _train_loader(self):
        if self._train is None:  # once: its persistent workers serve every epoch
            if self.crop is None:
                self._train = self._loader(SampleStreams(self.train_set), self.batch_size, self.sampler,
                                           self.drop_last)
            else:
                from .tensor_decode import DecodeInWorker, FileBytes, collate_bytes

                in_worker = self.device.type == "cpu" and self.num_workers > 0
                self._train = self._loader(FileBytes(self.train_set.samples), self.batch_size, self.sampler,
                                           self.drop_last, DecodeInWorker(self.crop) if in_worker else collate_bytes)
        return self._train

    def _decoded(self, batch) -> tuple:
        """(x, y, index) on the device, whichever path made the batch."""
        if self.crop is None:
            return tuple(t.to(self.device, non_blocking=True) for t in batch)
        if len(batch) == 3:  # bytes: decoded here, on the device
            from .tensor_decode import decode_batch

            batch = decode_batch(*batch, self.crop, self.device)
        x, y, index, fell_back = batch
        self.fallbacks.update(fell_back)
        return x.to(self.device), y.to(self.device), index.to(self.device)

    def train_batches(self, seed: int, epoch: int, with_index: bool = False):
        """(x, y) batches; with_index: (x, y, index), index = the samples' positions in the training
        set (CRD's memory bank). The batches are the same either way."""
        self.sampler.set_epoch(seed, epoch)
        for step, batch in enumerate(self._train_loader()):
            if self.steps_per_epoch and step >= self.steps_per_epoch:
                break
            x, y, index = self._decoded(batch)
            yield (x, y, index) if with_index else (x, y)

    def probe_batch(self) -> torch.Tensor:
        return torch.stack([self.train_eval_set[i][0] for i in range(2)]).to(self.device)

    def train_targets(self) -> torch.Tensor:
        targets = getattr(self.train_set, "targets", None)
        if targets is None:
            raise ValueError("this dataset does not expose its training labels (needed by crd)")
        return torch.as_tensor(targets, dtype=torch.long, device=self.device)

    def _plain(self, loader):
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def test_batches(self):
        if self._test is None:  # evaluated every epoch: persistent workers too
            self._test = self._loader(self.test_set, self.eval_batch_size)
        return self._plain(self._test)

    def train_eval_batches(self):  # once, at the end: workers that go when it is done
        return self._plain(self._loader(self.train_eval_set, self.eval_batch_size, persistent=False))

    def record(self) -> dict:
        """How the training images were loaded: for the result."""
        decoder = "PIL"
        if self.crop is not None:
            decoder = "nvJPEG (torchvision.io.decode_jpeg on cuda)" if self.device.type == "cuda" else \
                "libjpeg-turbo (torchvision.io.decode_jpeg on the CPU: the nvjpeg path's code without a GPU)"
        paths = getattr(self.train_set, "samples", None)
        return {"images": "image files through a DataLoader", "decode": self.decode, "decoder": decoder,
                "num_workers": self.num_workers, **self.workers_from, "persistent_workers": self.num_workers > 0,
                "decode_fallbacks": len(self.fallbacks),
                "decode_fallback_files": sorted(paths[i][0] if paths else str(i) for i in self.fallbacks)[:20]}
