"""The image-folder loader (benchmark/engine/data/loader.py): per-sample random streams give the same
crops at any worker count, persistent or not; the tensor path (data.decode nvjpeg, run here on the CPU)
in workers and in the training process, close to PIL, its fall-back to PIL; the worker default. Every
folder is generated: JPEGs written with PIL."""


import torch
from torchvision.datasets import ImageFolder

from benchmark.engine.data import make_transforms
from benchmark.engine.data.jpegfolder import write_jpeg_folder
from benchmark.engine.data.loader import PROCESSES_ENV, LoaderPipeline, loader_workers

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


def test_loader_workers_default_divides_the_cpus_among_local_training_processes(monkeypatch):
    import os

    cpus = len(os.sched_getaffinity(0))
    monkeypatch.delenv(PROCESSES_ENV, raising=False)
    assert loader_workers(None) == (cpus, {"num_workers_from": f"{cpus} CPUs / 1 training process(es)"})
    monkeypatch.setenv(PROCESSES_ENV, str(2 * cpus))
    assert loader_workers(None)[0] == 1  # never 0: that would silently move decoding into the trainer
    monkeypatch.setenv(PROCESSES_ENV, "1")
    assert loader_workers(3) == (3, {"num_workers_from": "given"})
