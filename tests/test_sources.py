"""The datasets' files on disk (benchmark/engine/data/sources.py): the loaders on tiny fake copies of
each layout (tests/fake_data.py), the checks and the download's refusals. Nothing here downloads.
The registry is tested in test_registry.py, the stand-ins in test_synthetic.py, the transform
pipelines in test_transforms.py."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.engine.data.registry import get_spec
from benchmark.engine.data.sources import check, download, load_arrays, load_folder
from benchmark.engine.data.transforms import make_transforms
from benchmark.errors import BadInput
from tests.fake_data import (
    COLOURS,
    _solid,
    make_fake_cifar,
    make_fake_cub,
    make_fake_dogs,
    make_fake_imagenet,
    make_fake_svhn,
    make_fake_tinyimagenet,
)

# --------------------------------------------------------------------------- array datasets


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_load_arrays_round_trip(tmp_path, name):
    want = make_fake_cifar(tmp_path, name)
    for split in ("train", "test"):
        images, labels = load_arrays(name, split, str(tmp_path), verify=False)
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape == (len(want[split][0]), 32, 32, 3)
        assert np.array_equal(images.numpy(), want[split][0])  # NHWC, pixel for pixel
        assert labels.tolist() == want[split][1].tolist()


def test_svhn_load_arrays_nhwc_and_label_zero(tmp_path):
    want = make_fake_svhn(tmp_path)
    for split in ("train", "test"):
        images, labels = load_arrays("svhn", split, tmp_path, verify=False)
        assert np.array_equal(images.numpy(), want[split][0])
        assert labels.tolist() == want[split][1].tolist()  # '10' read back as digit 0
    assert 0 in labels.tolist()


def test_tinyimagenet_load_arrays(tmp_path):
    val_wnids = make_fake_tinyimagenet(tmp_path)
    images, labels = load_arrays("tinyimagenet", "train", tmp_path)
    assert images.shape == (6, 64, 64, 3) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    for img, y in zip(images, labels):  # class index = position in the sorted wnid list
        assert np.abs(img.float().mean((0, 1)).numpy() - COLOURS[y]).max() < 4
    images, labels = load_arrays("tinyimagenet", "test", tmp_path)  # the val split
    assert images.shape == (4, 64, 64, 3)
    assert labels.tolist() == [sorted(["n001", "n002", "n003"]).index(w) for w in val_wnids]


def test_load_arrays_rejects_folder_datasets(tmp_path):
    with pytest.raises(ValueError, match="load_folder"):
        load_arrays("cub", "train", tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_arrays("cifar10", "val", tmp_path)


@pytest.mark.parametrize(
    "name, expected, how",
    [
        ("cifar100", "cifar-100-python/train", "python runner.py data download cifar100"),
        ("cifar10", "cifar-10-batches-py/data_batch_1", "python runner.py data download cifar10"),
        ("svhn", "svhn/train_32x32.mat", "python runner.py data download svhn"),
        ("tinyimagenet", "tiny-imagenet-200/wnids.txt", "tiny-imagenet-200.zip"),
    ],
)
def test_missing_files_name_the_path_and_how_to_get_them(tmp_path, name, expected, how):
    with pytest.raises(BadInput) as err:
        load_arrays(name, "train", tmp_path)
    assert err.value.where == str(tmp_path / expected)
    assert err.value.field == name and how in err.value.problem


@pytest.mark.parametrize("name", ["cifar10", "svhn"])
def test_checksum_mismatch_is_a_clear_bad_input(tmp_path, name):
    make_fake_cifar(tmp_path, name) if name == "cifar10" else make_fake_svhn(tmp_path)
    with pytest.raises(BadInput) as err:  # not torchvision's bare RuntimeError
        load_arrays(name, "train", tmp_path, verify=True)
    assert "checksum mismatch" in err.value.problem and "torchvision" in err.value.problem
    assert os.path.isfile(err.value.where)


def test_unreadable_file_without_verify_is_bad_input(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for f in ("train", "test", "meta"):
        (folder / f).write_bytes(b"not a pickle")
    with pytest.raises(BadInput, match="cannot read the train split"):
        load_arrays("cifar100", "train", tmp_path, verify=False)


# --------------------------------------------------------------------------- folder datasets


@pytest.mark.parametrize(
    "name, make, sizes",
    [("cub", make_fake_cub, (4, 2)), ("dogs", make_fake_dogs, (6, 3)), ("imagenet", make_fake_imagenet, (6, 3))],
)
def test_load_folder_official_splits(tmp_path, name, make, sizes):
    make(tmp_path)
    transform = make_transforms(name, "test", image_size=32)
    for split, n in zip(("train", "test"), sizes):
        ds = load_folder(name, split, tmp_path, transform)
        assert len(ds) == n
        if split == "train":
            assert sorted(set(ds.targets)) == [0, 1, 2]
        for k in range(len(ds)):
            x, y = ds[k]
            assert isinstance(y, int) and x.shape == (3, 32, 32)
            # the image's colour identifies its class: labels are matched to the right files
            pixel = x[:, 16, 16] * torch.tensor(get_spec(name).std) + torch.tensor(get_spec(name).mean)
            assert torch.allclose(pixel * 255, torch.tensor(COLOURS[y], dtype=torch.float), atol=4)


def test_cub_split_follows_train_test_split_txt(tmp_path):
    make_fake_cub(tmp_path)
    train = load_folder("cub", "train", tmp_path)
    test = load_folder("cub", "test", tmp_path)
    assert [os.path.basename(p) for p, _ in train.samples] == [f"Bird_{k % 3}_{k}.jpg" for k in range(4)]
    assert [y for _, y in test.samples] == [1, 2]  # 1-based class ids shifted to 0-based
    img, _ = train[0]
    assert isinstance(img, Image.Image) and img.size == (40, 30)  # no transform: the PIL image


def test_folder_missing_and_incomplete(tmp_path):
    with pytest.raises(BadInput) as err:
        load_folder("dogs", "train", tmp_path)
    assert err.value.where == str(tmp_path / "stanford_dogs" / "train_list.mat")
    assert "ImageNetDogs" in err.value.problem
    make_fake_cub(tmp_path)
    victim = tmp_path / "CUB_200_2011" / "images" / "002.Bird_1" / "Bird_1_1.jpg"
    victim.unlink()
    with pytest.raises(BadInput) as err:
        load_folder("cub", "train", tmp_path)
    assert err.value.where == str(victim)


def test_imagenet_val_must_be_in_class_folders(tmp_path):
    make_fake_imagenet(tmp_path)
    val = tmp_path / "imagenet" / "val"
    for w in os.listdir(val):  # a flat val/ as it comes out of ILSVRC2012_img_val.tar
        for f in os.listdir(val / w):
            os.rename(val / w / f, val / f)
        os.rmdir(val / w)
    with pytest.raises(BadInput, match="one folder per class"):
        load_folder("imagenet", "test", tmp_path)
    for f in os.listdir(val):
        os.remove(val / f)
    _solid(val / "n01443537" / "x.JPEG", COLOURS[1])  # only one class: ImageFolder would call it 0
    with pytest.raises(BadInput, match="labels would not match"):
        load_folder("imagenet", "test", tmp_path)
    with pytest.raises(BadInput) as err:
        load_folder("imagenet", "train", tmp_path / "elsewhere")
    assert err.value.where == str(tmp_path / "elsewhere" / "imagenet" / "train")


def test_imagenet_archives_point_to_the_unpack_command(tmp_path):
    folder = tmp_path / "imagenet"
    folder.mkdir()
    for f in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz"):
        (folder / f).write_bytes(b"not the archive")
    with pytest.raises(BadInput) as err:
        load_folder("imagenet", "train", tmp_path)
    assert "not unpacked yet" in err.value.problem and "data download imagenet" in err.value.problem
    assert check(tmp_path, ["imagenet"])[0]["status"] == "missing"
    with pytest.raises(BadInput, match="corrupted"):  # torchvision's md5 check, as a BadInput
        download("imagenet", tmp_path)


# --------------------------------------------------------------------------- check and download


def test_check_statuses(tmp_path):
    make_fake_tinyimagenet(tmp_path)
    make_fake_cub(tmp_path)
    make_fake_dogs(tmp_path)
    make_fake_imagenet(tmp_path)
    make_fake_cifar(tmp_path, "cifar10")
    loose = {r["name"]: r for r in check(tmp_path, strict_counts=False)}
    assert {n: r["status"] for n, r in loose.items()} == {
        "cifar10": "bad",  # fake files cannot match the official md5
        "cifar100": "missing",
        "svhn": "missing",
        "tinyimagenet": "ok",
        "cub": "ok",
        "dogs": "ok",
        "imagenet": "ok",
        "gsc": "missing",
    }
    assert "checksum mismatch" in loose["cifar10"]["detail"]
    assert "train 4 / test 2" in loose["cub"]["detail"]
    strict = check(tmp_path, names=["cub", "tinyimagenet"])  # official counts by default
    assert [r["status"] for r in strict] == ["bad", "bad"]
    assert "the official count is 5994" in strict[0]["detail"]
    (tmp_path / "CUB_200_2011" / "images" / "001.Bird_0" / "Bird_0_0.jpg").unlink()
    assert check(tmp_path, ["cub"], strict_counts=False)[0]["status"] == "bad"


def test_download_refuses_hand_placed_datasets(tmp_path):
    for name in ("cub", "dogs", "tinyimagenet", "imagenet"):
        with pytest.raises(BadInput) as err:
            download(name, tmp_path)
        assert "cannot be downloaded automatically" in err.value.problem
        assert get_spec(name).how_to_get in err.value.problem


