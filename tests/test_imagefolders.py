"""Image folders: per-sample random streams (the same crops at any worker count, persistent or
not), the loader's worker default, ``data.decode`` (pil | nvjpeg: the tensor path, run here on the
CPU), its fall-back to PIL, its place in the config and the run id, and the decode bench. Every
folder is generated: JPEGs written with PIL."""

import json

import pytest
import torch
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

from benchmark.engine import config as C
from benchmark.engine.data import make_transforms
from benchmark.engine.data.decode import with_decode
from benchmark.engine.data.jpegfolder import write_jpeg_folder
from benchmark.engine.data.loader import PROCESSES_ENV, LoaderPipeline, loader_workers
from benchmark.engine.data.streams import order_seed, sample_seed, seeded
from benchmark.engine.data.tensor_decode import draws, jpeg_channels, resized_crop_params
from benchmark.engine.pipeline import derive_seed
from benchmark.engine.revisions import parts_of
from benchmark.errors import BadInput

SIDE = 16  # the crop's side: small, so that many workers stay cheap


def _folder(tmp_path, count=12, **kw):
    write_jpeg_folder(tmp_path / "imgs", count, classes=3, size=(40, 30), **kw)
    return str(tmp_path / "imgs")


def _pipeline(root, workers, decode="pil", batch_size=4):
    train = ImageFolder(root, transform=make_transforms("imagenet", "train", image_size=SIDE))
    test = ImageFolder(root, transform=make_transforms("imagenet", "test", image_size=SIDE))
    return LoaderPipeline(train, test, test, batch_size=batch_size, num_workers=workers, decode=decode)


def _epochs(pipe, epochs):
    return [[tuple(t.clone() for t in b) for b in pipe.train_batches(7, e, with_index=True)] for e in epochs]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) and all(torch.equal(s, t) for p, q in zip(x, y)
                                                             for s, t in zip(p, q)) for x, y in zip(a, b))


def test_crops_are_the_same_at_0_2_and_4_workers_persistent_or_not(tmp_path):
    root = _folder(tmp_path)
    before = torch.get_rng_state()
    reference = _epochs(_pipeline(root, 0), [0, 1])
    assert torch.equal(torch.get_rng_state(), before)  # at 0 workers the global generator is left alone
    assert not _same(reference[:1], reference[1:])  # epoch 1 draws other crops (and another order)
    for workers in (0, 2, 4):
        persistent = _pipeline(root, workers)  # one loader, its workers kept across both epochs
        assert _same(_epochs(persistent, [0, 1]), reference), workers
        fresh = [_epochs(_pipeline(root, workers), [e])[0] for e in (0, 1)]  # new workers per epoch
        assert _same(fresh, reference), workers
    # resumed at epoch 1 (a new process would start there): the same batches
    assert _same(_epochs(_pipeline(root, 2), [1]), reference[1:])


def test_the_tensor_path_gives_the_same_batches_in_workers_and_in_the_training_process(tmp_path):
    root = _folder(tmp_path)
    main = _epochs(_pipeline(root, 0, "nvjpeg"), [0, 3])
    assert _same(_epochs(_pipeline(root, 2, "nvjpeg"), [0, 3]), main)
    assert main[0][0][0].shape == (4, 3, SIDE, SIDE) and main[0][0][0].dtype == torch.float32


def test_streams_are_keyed_by_seed_epoch_and_index_and_order_is_the_tensor_pipelines():
    assert order_seed(3, 5) == derive_seed("train-batches", 3, 5)
    assert len({sample_seed(s, e, i) for s in (0, 1) for e in (0, 1) for i in (0, 1)}) == 8


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


def test_the_tensor_path_is_close_to_pil_with_the_same_crops(tmp_path):
    """Same crops and flips, other pixels (antialiased tensor resizing is not PIL's): close, and
    farther from the same batch unflipped."""
    root = _folder(tmp_path, count=8)
    (pil_x, pil_y, pil_i), = _epochs(_pipeline(root, 0, batch_size=8), [0])[0]
    (ten_x, ten_y, ten_i), = _epochs(_pipeline(root, 0, "nvjpeg", batch_size=8), [0])[0]
    assert torch.equal(pil_i, ten_i) and torch.equal(pil_y, ten_y)
    close = (pil_x - ten_x).abs().mean().item()
    assert close < 0.1
    assert (pil_x - ten_x.flip(-1)).abs().mean().item() > 3 * close


def test_cmyk_and_non_jpeg_files_fall_back_to_pil_counted(tmp_path):
    root = _folder(tmp_path, count=6, cmyk=1, png=1)
    pipe = _pipeline(root, 0, "nvjpeg", batch_size=3)
    batches = [b for b in pipe.train_batches(0, 0)]
    assert sum(len(y) for _, y in batches) == 6 and all(torch.isfinite(x).all() for x, _ in batches)
    record = pipe.record()
    assert record["decode"] == "nvjpeg" and record["decode_fallbacks"] == 2
    assert sorted(p.rsplit("/", 1)[1] for p in record["decode_fallback_files"]) == ["0.jpg", "1.jpg"]
    assert _pipeline(root, 0).record()["decode_fallbacks"] == 0  # pil: PIL decodes everything anyway


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


def test_loader_workers_default_divides_the_cpus_among_local_training_processes(monkeypatch):
    import os

    cpus = len(os.sched_getaffinity(0))
    monkeypatch.delenv(PROCESSES_ENV, raising=False)
    assert loader_workers(None) == (cpus, {"num_workers_from": f"{cpus} CPUs / 1 training process(es)"})
    monkeypatch.setenv(PROCESSES_ENV, str(2 * cpus))
    assert loader_workers(None)[0] == 1  # never 0: that would silently move decoding into the trainer
    monkeypatch.setenv(PROCESSES_ENV, "1")
    assert loader_workers(3) == (3, {"num_workers_from": "given"})


def test_decode_is_a_config_field_in_the_id_only_when_not_pil():
    base = {"dataset": "imagenet", "model": "resnet18", "loss": "ce"}
    pil = C.resolve(base)
    assert pil["data"]["decode"] == "pil"
    assert C.run_id(pil) == C.run_id(C.resolve({**base, "data": {"decode": "pil"}}))
    nv = C.resolve({**base, "data": {"decode": "nvjpeg"}})
    assert C.run_id(nv) != C.run_id(pil)
    assert "folders" in parts_of(pil) and "folders" not in parts_of(C.resolve({**base, "dataset": "cifar100"}))
    for data, why in [({"decode": "nvjpeg"}, "held as arrays"), ({"decode": "jpeg"}, "must be one of pil, nvjpeg")]:
        with pytest.raises(BadInput, match=why):
            C.resolve({**base, "dataset": "cifar100", "data": data})
    with pytest.raises(BadInput, match="runs through PIL only"):
        C.resolve({"dataset": "cub", "model": "resnet18", "loss": "ce", "data": {"decode": "nvjpeg",
                                                                                   "augment": "lskd_cub"}})
    with pytest.raises(BadInput, match="generated data"):
        C.resolve({**base, "data": {"decode": "nvjpeg", "source": "synthetic"}})


def test_reproduce_decode_applies_to_the_image_folder_runs_only():
    imagenet = {"dataset": "imagenet", "data": {"augment": "skd_imagenet"}}
    assert with_decode(imagenet, "nvjpeg")["data"] == {"augment": "skd_imagenet", "decode": "nvjpeg"}
    for raw in ({"dataset": "cifar100", "data": {}}, {"dataset": "imagenet", "data": {"source": "synthetic"}},
                {"dataset": "cub", "data": {"augment": "lskd_cub"}}):
        assert with_decode(raw, "nvjpeg") is raw
    assert with_decode(imagenet, "pil") is imagenet


def test_a_folder_run_records_its_loading(tmp_path):
    """A tiny ImageNet-layout run trained with the tensor path on the CPU: its result records the
    decoder, the workers and the fall-backs."""
    from benchmark.engine.train import ExecOptions, train_run
    from benchmark.store.layout import Store

    for split in ("train", "val"):
        write_jpeg_folder(tmp_path / "data" / "imagenet" / split, 4, classes=2, size=(40, 30), cmyk=1,
                          seed=split == "val")
    cfg = C.resolve({"dataset": "imagenet", "model": "resnet8", "loss": "ce",
                     "data": {"root": str(tmp_path / "data"), "decode": "nvjpeg"},
                     "recipe": {"epochs": 1, "batch_size": 2, "eval_batch_size": 2,
                                "schedule": {"name": "constant"}}})
    result = train_run(cfg, Store(tmp_path / "store"), ExecOptions(num_workers=0))
    assert result["status"] == "done"
    loading = result["execution"]["data_loading"]
    assert loading["decode"] == "nvjpeg" and loading["decoder"].startswith("libjpeg-turbo")
    assert loading["num_workers"] == 0 and loading["num_workers_from"] == "given"
    assert loading["decode_fallbacks"] == 1
    json.dumps(result)


def test_bad_decode_is_one_line_and_exit_2_with_nothing_written(tmp_path):
    from helpers import cli

    store = tmp_path / "store"
    for args in (["reproduce", "ats-table2", "--profile", "smoke"], ["plan", "ats-table2"]):
        out = cli(*args, "--decode", "foo", "--store", str(store))
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "--decode" in out.stderr and "foo" in out.stderr
    assert not store.exists()


def test_bench_measures_each_decode_backend_side_by_side():
    from benchmark.commands.decoderate import decode_rates

    rows = decode_rates("cpu", images=4, batch_size=2, size=(64, 48))
    assert [r["backend"] for r in rows] == ["pil", "nvjpeg"]
    assert all(r["images"] == 4 and r["images_per_s"] > 0 for r in rows)


def test_image_folder_runs_trained_before_the_streams_are_stale_and_cifar_runs_are_not():
    from benchmark.engine.revisions import current_revisions, older_parts

    now = current_revisions()
    before = {p: r for p, r in now.items() if p != "folders"}  # a record from before the part existed
    imagenet = C.resolve({"dataset": "imagenet", "model": "resnet18", "loss": "ce"})
    cifar = C.resolve({"dataset": "cifar100", "model": "resnet8", "loss": "ce"})
    assert older_parts(imagenet, before, now) == [f"folders r1 < r{now['folders']}"] and now["folders"] >= 2
    assert older_parts(cifar, before, now) == []
