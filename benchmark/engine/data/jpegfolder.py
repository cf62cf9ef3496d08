"""Generated image folders of JPEGs (ImageFolder's layout: ``root/class<k>/<i>.jpg``), for the
decode bench and the tests: smooth colour fields with noise, so a file's entropy sits between a
flat picture's and a photograph's. ``cmyk`` files are saved as CMYK JPEGs and ``png`` files are
PNGs named .jpg (both occur in ImageNet), to exercise the decoders' fall-back to PIL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_jpeg_folder(root, count: int, classes: int = 2, size: tuple[int, int] = (500, 375), seed: int = 0,
                      cmyk: int = 0, png: int = 0, quality: int = 90) -> list[Path]:
    """``count`` images of ``size`` (width, height) under ``root``; the first ``cmyk`` are CMYK
    JPEGs, the next ``png`` PNGs. Returns the paths in order."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    paths = []
    for i in range(count):
        folder = Path(root) / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3))
        field = np.kron(coarse, np.ones((16, 16, 1)))[:h, :w]
        image = Image.fromarray(np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8))
        path = folder / f"{i}.jpg"
        if i < cmyk:
            image.convert("CMYK").save(path, "JPEG", quality=quality)
        elif i < cmyk + png:
            image.save(path, "PNG")
        else:
            image.save(path, "JPEG", quality=quality)
        paths.append(path)
    return paths
