"""``data.decode: nvjpeg``: training JPEGs decoded and augmented as tensors (decode.py says what
the reading is).

The DataLoader workers only read each file's bytes (``FileBytes``); ``decode_batch`` decodes a
batch with ``torchvision.io.decode_jpeg`` on the device (nvJPEG on CUDA, in the training process;
libjpeg-turbo on the CPU, in the workers: the same function), then per image the random-resized crop
(bilinear, antialiased, as torchvision's ``RandomResizedCrop``), the flip, ``ToTensor``'s /255 and
``Normalize``. The crop box and flip come from the sample's stream (streams.py) in the order
torchvision's transforms draw them, so they equal the PIL pipeline's for the same (seed, epoch,
index): only the pixels differ.

A file whose frame header says it is not a 1- or 3-channel JPEG (CMYK, a PNG named .jpg, as a few
ImageNet files are), or that the tensor decoder refuses, is decoded by PIL (as ImageFolder's loader
does) and goes through the same crop: counted, per index, in ``fallbacks``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch

from .streams import sample_generator


@dataclass(frozen=True)
class CropFlip:
    """A RandomResizedCrop + RandomHorizontalFlip + ToTensor + Normalize pipeline's parameters."""
    size: tuple[int, int]
    scale: tuple[float, float]
    ratio: tuple[float, float]
    flip: float          # the flip's probability (0: no flip)
    mean: tuple[float, ...]
    std: tuple[float, ...]


def crop_flip_of(transform) -> CropFlip | None:
    """The CropFlip a torchvision Compose is, read off the transform itself (so the two cannot
    disagree); None when it has any other step."""
    from torchvision import transforms as T

    crop, flip, norm = None, 0.0, None
    for t in transform.transforms:
        if isinstance(t, T.RandomResizedCrop) and crop is None:
            if t.interpolation != T.InterpolationMode.BILINEAR or t.antialias is False:
                return None
            crop = t
        elif isinstance(t, T.RandomHorizontalFlip) and crop is not None:
            flip = float(t.p)
        elif isinstance(t, T.Normalize):
            norm = t
        elif not isinstance(t, T.ToTensor):
            return None
    if crop is None or norm is None:
        return None
    return CropFlip(tuple(crop.size), tuple(crop.scale), tuple(crop.ratio), flip, tuple(norm.mean), tuple(norm.std))


def resized_crop_params(height: int, width: int, scale, ratio, g: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, h, w): torchvision's ``RandomResizedCrop.get_params`` drawing from ``g``, draw
    for draw (ten tries at a box of the drawn area and aspect ratio, else the central crop)."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=g).item()
        aspect = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g)).item()
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, size=(1,), generator=g).item()
            left = torch.randint(0, width - w + 1, size=(1,), generator=g).item()
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def draws(key, height: int, width: int, crop: CropFlip) -> tuple[tuple[int, int, int, int], bool]:
    """One sample's crop box and flip, from its stream, in torchvision's order (crop, then flip)."""
    g = sample_generator(*key)
    box = resized_crop_params(height, width, crop.scale, crop.ratio, g)
    return box, bool(crop.flip and torch.rand(1, generator=g).item() < crop.flip)


def jpeg_channels(data: bytes) -> int | None:
    """The component count in a JPEG's frame header (1 grey, 3 colour, 4 CMYK/YCCK); None when
    the bytes are not a JPEG or no frame header comes before the scan."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: P, Y, X, then Nf
            return data[i + 9] if i + 9 < len(data) else None
        if marker == 0xDA:
            return None
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def pil_decode(data: torch.Tensor) -> torch.Tensor:
    """What ImageFolder's loader does (PIL, converted to RGB), as a uint8 CHW tensor."""
    from PIL import Image

    with Image.open(io.BytesIO(data.numpy().tobytes())) as im:
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()


def decode_images(datas: list[torch.Tensor], device: torch.device) -> tuple[list[torch.Tensor], dict[int, str]]:
    """uint8 CHW images on ``device``, and {position: why} for those PIL decoded instead."""
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list = [None] * len(datas)
    fell_back: dict[int, str] = {}
    tensor_ok = []
    for k, d in enumerate(datas):
        channels = jpeg_channels(d.numpy().tobytes())
        if channels in (1, 3):
            tensor_ok.append(k)
        else:
            fell_back[k] = "no JPEG frame header" if channels is None else f"a {channels}-channel JPEG (CMYK)"
    try:  # one call for the batch: nvJPEG decodes a list in one go
        decoded = decode_jpeg([datas[k] for k in tensor_ok], mode=ImageReadMode.RGB, device=device) \
            if tensor_ok else []
        for k, img in zip(tensor_ok, decoded):
            out[k] = img
    except RuntimeError:  # some file of the batch: find it one by one
        for k in tensor_ok:
            try:
                out[k] = decode_jpeg(datas[k], mode=ImageReadMode.RGB, device=device)
            except RuntimeError as err:
                fell_back[k] = f"refused by the tensor decoder ({str(err).splitlines()[0][-80:]})"
    for k in fell_back:
        out[k] = pil_decode(datas[k]).to(device)
    return out, fell_back


def augment(img: torch.Tensor, key, crop: CropFlip) -> torch.Tensor:
    """One uint8 CHW image cropped, resized to ``crop.size`` and flipped, as its stream says."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    (top, left, h, w), flip = draws(key, img.shape[-2], img.shape[-1], crop)
    out = F.resized_crop(img, top, left, h, w, list(crop.size), interpolation=InterpolationMode.BILINEAR,
                         antialias=True)
    return out.flip(-1) if flip else out


def decode_batch(datas, labels, keys, crop: CropFlip, device) -> tuple:
    """(x normalised float NCHW, y, indices, {index: why} of the PIL fall-backs) on ``device``."""
    device = torch.device(device)
    images, fell_back = decode_images(list(datas), device)
    x = torch.stack([augment(img, key, crop) for img, key in zip(images, keys)])
    mean = torch.tensor(crop.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(crop.std, device=device).view(1, -1, 1, 1)
    x = x.float().div(255).sub(mean).div(std)  # ToTensor, then Normalize
    index = torch.tensor([k[2] for k in keys])
    return (x, torch.as_tensor(labels).to(device), index.to(device),
            {keys[k][2]: why for k, why in fell_back.items()})


class FileBytes(torch.utils.data.Dataset):
    """An image folder's files as bytes: item ``(seed, epoch, i)`` is ``(uint8 bytes, label, key)``."""

    def __init__(self, samples: list[tuple[str, int]]):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, key):
        path, label = self.samples[key[2]]
        with open(path, "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8), label, key


def collate_bytes(batch) -> tuple[list, list, list]:
    datas, labels, keys = zip(*batch)
    return list(datas), list(labels), list(keys)


class DecodeInWorker:
    """The collate of the CPU path: the worker decodes and augments its batch itself."""

    def __init__(self, crop: CropFlip):
        self.crop = crop

    def __call__(self, batch):
        return decode_batch(*collate_bytes(batch), self.crop, "cpu")
