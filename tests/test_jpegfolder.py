"""Generated image folders (benchmark/engine/data/jpegfolder.py): ImageFolder's layout, the CMYK and
PNG files that make the decoders fall back to PIL, the same files from the same seed."""

from PIL import Image

from benchmark.engine.data.jpegfolder import write_jpeg_folder


def test_layout_modes_and_formats_in_order(tmp_path):
    paths = write_jpeg_folder(tmp_path / "a", 5, classes=2, size=(40, 30), cmyk=1, png=2)
    assert [p.relative_to(tmp_path / "a").as_posix() for p in paths] == \
        ["class0/0.jpg", "class1/1.jpg", "class0/2.jpg", "class1/3.jpg", "class0/4.jpg"]
    got = []
    for p in paths:
        with Image.open(p) as im:
            got.append((im.format, im.mode, im.size))
    assert got == [("JPEG", "CMYK", (40, 30)), ("PNG", "RGB", (40, 30)), ("PNG", "RGB", (40, 30)),
                   ("JPEG", "RGB", (40, 30)), ("JPEG", "RGB", (40, 30))]


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    a = write_jpeg_folder(tmp_path / "a", 2, size=(32, 32), seed=3)
    b = write_jpeg_folder(tmp_path / "b", 2, size=(32, 32), seed=3)
    c = write_jpeg_folder(tmp_path / "c", 2, size=(32, 32), seed=4)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]
