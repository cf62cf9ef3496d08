"""Tiny fake copies of each dataset's on-disk layout, for the loader tests (test_sources.py) and the
transform tests (test_transforms.py). Nothing here downloads."""

from __future__ import annotations

import os
import pickle

import numpy as np
from PIL import Image
from scipy.io import savemat

from benchmark.engine.data.registry import get_spec


def _images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _pickle(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def make_fake_cifar(root, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """torchvision's pickled layout: rows of 3072 bytes, channel-major (R plane, G plane, B plane)."""
    folder = root / get_spec(name).root_subdir
    folder.mkdir(parents=True)
    classes = get_spec(name).num_classes
    rows = lambda imgs: imgs.transpose(0, 3, 1, 2).reshape(len(imgs), 3072)  # noqa: E731
    key = "labels" if name == "cifar10" else "fine_labels"
    train_files = [f"data_batch_{i}" for i in range(1, 6)] if name == "cifar10" else ["train"]
    train_imgs, train_labels = [], []
    for k, fname in enumerate(train_files):
        imgs, labels = _images(2, seed=k), [(3 * k + j) % classes for j in range(2)]
        _pickle(folder / fname, {"data": rows(imgs), key: labels, "coarse_labels": [0, 0]})
        train_imgs.append(imgs)
        train_labels += labels
    test_imgs, test_labels = _images(3, seed=99), [classes - 1, 0, 1]
    _pickle(folder / ("test_batch" if name == "cifar10" else "test"), {"data": rows(test_imgs), key: test_labels})
    meta = ("batches.meta", "label_names") if name == "cifar10" else ("meta", "fine_label_names")
    _pickle(folder / meta[0], {meta[1]: [f"class{c}" for c in range(classes)]})
    return {"train": (np.concatenate(train_imgs), np.array(train_labels)), "test": (test_imgs, np.array(test_labels))}


def make_fake_svhn(root) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The .mat files: X is [H, W, C, N], y is [N, 1] with 10 standing for the digit 0."""
    folder = root / "svhn"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", 4), ("test", 3)):
        imgs = _images(n, seed=n)
        digits = np.arange(n) % 10
        y = np.where(digits == 0, 10, digits)[:, None]
        savemat(folder / f"{split}_32x32.mat", {"X": imgs.transpose(1, 2, 3, 0), "y": y})
        out[split] = (imgs, digits)
    return out


COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _solid(path, colour, size=(64, 64)) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)


def make_fake_tinyimagenet(root) -> list[str]:
    """wnids.txt (deliberately unsorted), train/<wnid>/images/*.JPEG, val/images + val_annotations.txt.
    Class c (in sorted wnid order) is painted COLOURS[c]."""
    folder = root / "tiny-imagenet-200"
    wnids = ["n003", "n001", "n002"]
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for c, w in enumerate(sorted(wnids)):
        for i in range(2):
            _solid(folder / "train" / w / "images" / f"{w}_{i}.JPEG", COLOURS[c])
        (folder / "train" / w / f"{w}_boxes.txt").write_text("ignored\n")
    val = ["n002", "n001", "n003", "n002"]
    lines = []
    for i, w in enumerate(val):
        _solid(folder / "val" / "images" / f"val_{i}.JPEG", COLOURS[sorted(wnids).index(w)])
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return val


def make_fake_cub(root) -> None:
    """images.txt, image_class_labels.txt, train_test_split.txt (1 = train), images/<class>/<file>.jpg."""
    folder = root / "CUB_200_2011"
    images, labels, split = [], [], []
    for k in range(6):
        c = k % 3
        rel = f"{c + 1:03d}.Bird_{c}/Bird_{c}_{k}.jpg"
        _solid(folder / "images" / rel, COLOURS[c], size=(40, 30))
        images.append(f"{k + 1} {rel}")
        labels.append(f"{k + 1} {c + 1}")
        split.append(f"{k + 1} {1 if k < 4 else 0}")
    (folder / "images.txt").write_text("\n".join(images) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "train_test_split.txt").write_text("\n".join(split) + "\n")


def _cell(strings):
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = np.array([s])
    return cell


def make_fake_dogs(root) -> None:
    """Images/<breed>/*.jpg and the official train_list.mat / test_list.mat (1-based labels)."""
    folder = root / "stanford_dogs"
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"]
    lists = {"train": [], "test": []}
    for c, b in enumerate(breeds):
        for i in range(3):
            rel = f"{b}/{b.split('-')[0]}_{i}.jpg"
            _solid(folder / "Images" / rel, COLOURS[c], size=(50, 40))
            lists["train" if i < 2 else "test"].append((rel, c + 1))
    for split, items in lists.items():
        files, labels = zip(*items)
        mat = {"file_list": _cell(files), "annotation_list": _cell(files), "labels": np.array(labels)[:, None]}
        savemat(folder / f"{split}_list.mat", mat)


def make_fake_imagenet(root) -> None:
    folder = root / "imagenet"
    for split, n in (("train", 2), ("val", 1)):
        for c, w in enumerate(["n01440764", "n01443537", "n01484850"]):
            for i in range(n):
                _solid(folder / split / w / f"{w}_{i}.JPEG", COLOURS[c], size=(48, 36))
