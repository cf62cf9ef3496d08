"""The tensor decode path's parts (benchmark/engine/data/tensor_decode.py): torchvision's crop and flip
draws, the JPEG frame header."""


import pytest
import torch
from torchvision import transforms as T

from benchmark.engine.data.streams import sample_seed, seeded
from benchmark.engine.data.tensor_decode import draws, jpeg_channels, resized_crop_params


@pytest.mark.parametrize("height,width,scale,ratio", [(30, 40, (0.08, 1.0), (3 / 4, 4 / 3)),
                                                      (375, 500, (0.1, 1.0), (0.8, 1.25)),
                                                      (10, 200, (0.9, 1.0), (3 / 4, 4 / 3))])  # the fall-back
def test_crop_boxes_and_flips_equal_torchvisions_draws(height, width, scale, ratio):
    """The tensor path's crop box and flip for a key are those torchvision's PIL transforms draw
    from the same stream, in the same order (crop, then flip)."""
    from PIL import Image

    img = Image.new("RGB", (width, height))
    crop = type("Crop", (), {"scale": scale, "ratio": ratio, "flip": 0.5})
    flips = set()
    for i in range(60):
        key = (1, 2, i)
        with seeded(sample_seed(*key)):
            box = T.RandomResizedCrop.get_params(img, list(scale), list(ratio))
            flip = bool(torch.rand(1) < 0.5)
        assert draws(key, height, width, crop) == (tuple(box), flip)
        assert resized_crop_params(height, width, scale, ratio, torch.Generator().manual_seed(i)) == \
            tuple(torch.manual_seed(i) and T.RandomResizedCrop.get_params(img, list(scale), list(ratio)))
        flips.add(flip)
    assert flips == {True, False}


def test_jpeg_channels_reads_the_frame_header():
    import io

    from PIL import Image

    img = Image.new("RGB", (8, 8), (200, 10, 10))

    def saved(im, fmt="JPEG", **kw):
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    assert jpeg_channels(saved(img)) == 3
    assert jpeg_channels(saved(img.convert("L"))) == 1
    assert jpeg_channels(saved(img.convert("CMYK"))) == 4
    assert jpeg_channels(saved(img, progressive=True)) == 3
    assert jpeg_channels(saved(img, exif=b"Exif\x00\x00" + bytes(300))) == 3  # an APP1 segment first
    assert jpeg_channels(saved(img, "PNG")) is None
