"""How an image-folder run's training JPEGs are decoded: ``data.decode`` (a named reading).

- ``pil`` (the default): PIL decodes in the DataLoader workers and torchvision's PIL transforms
  crop and flip (transforms.py): the papers' pipeline.
- ``nvjpeg``: the workers only read the files; the JPEGs are decoded as tensors
  (``torchvision.io.decode_jpeg``: nvJPEG on CUDA, libjpeg-turbo on the CPU) and the random-resized
  crop and flip are done on the tensors (tensor_decode.py), with the same crop boxes and flips as
  ``pil`` draws for the same (seed, epoch, index). The pixels differ from PIL's (another decoder's
  rounding, and tensor resizing's antialias is not PIL's), so a run's numbers do: it is part of the
  run id when it is not the default. CMYK, non-JPEG or undecodable files fall back to PIL, counted
  in the result. The test split is decoded by PIL under either (its pixels are the same for both).

It applies to the folder datasets (CUB, Dogs, ImageNet) read from files, with the crop+flip
pipelines (``standard``, ``skd_imagenet``); LS-KD's CUB pipeline (rotation, colour jitter) runs
through PIL only. No torch here: the config's checks read it.
"""

from __future__ import annotations

from .registry import get_spec

DECODERS = ("pil", "nvjpeg")
DEFAULT = "pil"
TENSOR_AUGMENTS = ("standard", "skd_imagenet")  # RandomResizedCrop + flip: what tensor_decode does


def applies(dataset: str, data: dict) -> bool:
    """Whether a run with this dataset and (resolved or raw) ``data`` mapping reads JPEG files
    through the loader with a pipeline ``nvjpeg`` can do."""
    return (get_spec(dataset).kind == "folder" and data.get("source", "real") == "real"
            and data.get("augment", "standard") in TENSOR_AUGMENTS)


def problem(dataset: str, data: dict) -> str | None:
    """Why ``data.decode`` cannot be what ``data`` says (None: it can)."""
    if data.get("decode", DEFAULT) == DEFAULT or applies(dataset, data):
        return None
    if get_spec(dataset).kind != "folder":
        return f"nvjpeg decodes image files; {dataset} is held as arrays (use pil)"
    if data.get("source", "real") != "real":
        return "nvjpeg decodes image files; generated data has none (use pil)"
    return (f"nvjpeg does the crop+flip pipelines ({', '.join(TENSOR_AUGMENTS)}); augment "
            f"{data.get('augment')!r} runs through PIL only (use pil)")


def with_decode(raw: dict, decode: str | None) -> dict:
    """A raw run config with ``data.decode`` set where it applies (``reproduce --decode``): the
    runs it cannot apply to keep the default, and their results say so."""
    if not decode or decode == DEFAULT or not applies(raw["dataset"], raw.get("data") or {}):
        return raw
    return {**raw, "data": {**(raw.get("data") or {}), "decode": decode}}
