"""The image-folder decode rate per backend (``bench``'s ``decode`` rows): training images/s from
generated JPEGs (data/jpegfolder.py, 500x375 like an ImageNet photo) to normalised 224-px batches on
the device, through ImageNet's training pipeline, in this process (no DataLoader workers: the rate of
one worker, or of the device for nvjpeg's decode):

- ``pil``: ImageFolder's PIL decode and torchvision's PIL transforms, one image at a time (what a
  loader worker does), with the per-sample streams (data/streams.py);
- ``nvjpeg``: the bytes decoded in batches by ``torchvision.io.decode_jpeg`` and cropped, resized
  and flipped as tensors (data/tensor_decode.py): nvJPEG on CUDA; on the CPU the same code with
  libjpeg-turbo, so the CPU row measures the tensor path, not nvJPEG.

Both draw the same crops (the same streams). Measured, never assumed; the generated pictures are
smoother than photographs, so rates on real ImageNet files are lower.
"""

from __future__ import annotations

import tempfile
import time


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def decode_rates(device: str = "cpu", images: int = 128, batch_size: int = 32, size=(500, 375)) -> list[dict]:
    """One row per backend: images, seconds, images/s and the decoder that ran."""
    import torch
    from torchvision.datasets import ImageFolder

    from ..engine.data import make_transforms
    from ..engine.data.jpegfolder import write_jpeg_folder
    from ..engine.data.streams import SampleStreams
    from ..engine.data.tensor_decode import FileBytes, collate_bytes, crop_flip_of, decode_batch

    dev = torch.device(device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kd-decode-bench-") as tmp:
        write_jpeg_folder(tmp, images, classes=4, size=size)
        dataset = ImageFolder(tmp, transform=make_transforms("imagenet", "train"))
        keys = [(0, 0, i) for i in range(len(dataset))]
        batches = [keys[a:a + batch_size] for a in range(0, len(keys), batch_size)]

        pil = SampleStreams(dataset)
        pil[keys[0]]  # imports and caches paid before the clock
        t0 = time.perf_counter()
        for batch in batches:
            torch.stack([pil[k][0] for k in batch]).to(dev)
        _sync(dev)
        rows.append(_row("pil", "PIL (ImageFolder's loader, torchvision's PIL transforms)", len(keys),
                         time.perf_counter() - t0))

        crop, files = crop_flip_of(dataset.transform), FileBytes(dataset.samples)
        decode_batch(*collate_bytes([files[k] for k in batches[0]]), crop, dev)  # warm-up (CUDA: nvJPEG's handle)
        _sync(dev)
        t0 = time.perf_counter()
        for batch in batches:
            decode_batch(*collate_bytes([files[k] for k in batch]), crop, dev)
        _sync(dev)
        decoder = "nvJPEG" if dev.type == "cuda" else "libjpeg-turbo via torchvision.io (the nvjpeg path on the CPU)"
        rows.append(_row("nvjpeg", decoder, len(keys), time.perf_counter() - t0))
    return rows


def _row(backend: str, decoder: str, images: int, seconds: float) -> dict:
    return {"backend": backend, "decoder": decoder, "images": images, "seconds": round(seconds, 3),
            "images_per_s": round(images / seconds, 1)}
