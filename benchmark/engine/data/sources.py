"""The real datasets on disk: loading, checksums, download and the `data check` command.

Array datasets (CIFAR-10/100, SVHN, TinyImageNet) are returned whole as uint8 [N,H,W,3] so the
trainer can keep them on the accelerator; folder datasets (CUB, Dogs, ImageNet) are
``Dataset`` objects that read image files through a PIL transform.

Only checksums published by a well-kept library are used: torchvision's md5 of the CIFAR and SVHN
files (read from torchvision's own classes, not copied here) and of the ImageNet archives
(torchvision.datasets.imagenet.ARCHIVE_META). TinyImageNet, CUB and Stanford Dogs are checked by
structure and by their official image counts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import CIFAR10, CIFAR100, SVHN, ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader, find_classes, make_dataset
from torchvision.datasets.imagenet import ARCHIVE_META
from torchvision.datasets.utils import check_integrity

from benchmark.errors import BadInput, Failed

from .registry import DatasetSpec, check_split, dataset_names, get_spec


class MissingData(BadInput):
    """The dataset's files are not there at all: ``check`` reports "missing" (other BadInput: "bad")."""


class DownloadFailed(Failed):
    """A download that could not finish (no network, a refused connection, a bad archive): the
    command says so in one line and exits 1; what the attempt created is removed."""


def dataset_dir(name: str, root: str | os.PathLike) -> str:
    """Where a dataset lives: ``<root>/<root_subdir>``."""
    return os.path.join(os.path.expanduser(str(root)), get_spec(name).root_subdir)


def _missing(path: str, spec: DatasetSpec, what: str = "not found") -> MissingData:
    return MissingData(path, spec.name, f"{what}; get it with: {spec.how_to_get}")


# --------------------------------------------------------------------------- CIFAR and SVHN


def _torchvision_files(name: str, split: str | None = None) -> list[tuple[str, str]]:
    """(file inside the dataset folder, official md5) as torchvision records them; split None: all."""
    splits = ["train", "test"] if split is None else [split]
    if name == "svhn":
        return [tuple(SVHN.split_list[s][1:3]) for s in splits]
    cls = CIFAR10 if name == "cifar10" else CIFAR100
    lists = {"train": cls.train_list, "test": cls.test_list}
    return [tuple(f) for s in splits for f in lists[s]] + [(cls.meta["filename"], cls.meta["md5"])]


def _verify_files(spec: DatasetSpec, folder: str, files: list[tuple[str, str]], verify: bool) -> None:
    for fname, md5 in files:
        path = os.path.join(folder, fname)
        if not os.path.isfile(path):
            raise _missing(path, spec, "file not found")
        if verify and not check_integrity(path, md5):
            raise BadInput(
                path,
                spec.name,
                f"checksum mismatch: its md5 is not the official {md5} (as recorded by torchvision); "
                f"the file is damaged or not the official release - delete it and get it again with: "
                f"{spec.how_to_get}",
            )


# torchvision's readers, minus their own integrity checks: load_arrays has checked the files
# already (their md5 too unless verify=False), and torchvision's checks would only raise a bare
# RuntimeError, or reject the small fake files the tests build.
class _CIFAR10Files(CIFAR10):
    def _check_integrity(self) -> bool:
        return True

    def _load_meta(self) -> None:
        self.classes, self.class_to_idx = [], {}  # class names are not needed for arrays


class _CIFAR100Files(_CIFAR10Files, CIFAR100):
    pass


class _SVHNFiles(SVHN):
    def _check_integrity(self) -> bool:
        return True


def _as_tensors(spec: DatasetSpec, where: str, images: np.ndarray, labels) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    labels = torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1))
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[0] != labels.shape[0]:
        raise BadInput(where, spec.name, f"unexpected array shapes {tuple(images.shape)} / {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise BadInput(where, spec.name, f"labels outside 0..{spec.num_classes - 1}")
    return images, labels


# --------------------------------------------------------------------------- file-list datasets


def _read_id_pairs(path: str, spec: DatasetSpec) -> dict[str, str]:
    """CUB's metadata files: one '<image id> <value>' per line."""
    pairs = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise BadInput(path, spec.name, f"line {n}: expected '<image id> <value>'")
            pairs[parts[0]] = parts[1].strip()
    return pairs


def _cub_index(spec: DatasetSpec, split: str, folder: str) -> list[tuple[str, int]]:
    files = {f: os.path.join(folder, f) for f in ("images.txt", "image_class_labels.txt", "train_test_split.txt")}
    for path in files.values():
        if not os.path.isfile(path):
            raise _missing(path, spec)
    images, labels, is_train = (_read_id_pairs(p, spec) for p in files.values())
    if not (images.keys() == labels.keys() == is_train.keys()):
        raise BadInput(
            folder, spec.name, "images.txt, image_class_labels.txt and train_test_split.txt list different image ids"
        )
    want = "1" if split == "train" else "0"  # train_test_split.txt: 1 = training image (official split)
    ids = sorted((i for i in images if is_train[i] == want), key=int)
    return [(os.path.join(folder, "images", images[i]), int(labels[i]) - 1) for i in ids]  # labels are 1-based


def _dogs_index(spec: DatasetSpec, split: str, folder: str) -> list[tuple[str, int]]:
    from scipy.io import loadmat  # only Stanford Dogs needs scipy

    path = os.path.join(folder, f"{split}_list.mat")  # the official split, from lists.tar
    if not os.path.isfile(path):
        raise _missing(path, spec)
    try:
        mat = loadmat(path)
        # file_list is a MATLAB cell array of relative paths ('n02085620-Chihuahua/n02085620_5927.jpg')
        files = [str(np.asarray(x).ravel()[0]) for x in mat["file_list"].ravel()]
        labels = np.asarray(mat["labels"]).astype(np.int64).ravel() - 1  # 1-based
    except Exception as e:
        raise BadInput(path, spec.name, f"cannot read the split list (expected 'file_list' and 'labels'): {e}") from e
    if len(files) != len(labels):
        raise BadInput(path, spec.name, "file_list and labels have different lengths")
    return [(os.path.join(folder, "Images", f), int(y)) for f, y in zip(files, labels)]


def _tinyimagenet_index(spec: DatasetSpec, split: str, folder: str) -> list[tuple[str, int]]:
    wnids_path = os.path.join(folder, "wnids.txt")
    if not os.path.isfile(wnids_path):
        raise _missing(wnids_path, spec)
    with open(wnids_path) as f:
        # sorted wnids, so the class index equals ImageFolder's on train/ (the usual convention)
        class_to_idx = {w: i for i, w in enumerate(sorted({line.strip() for line in f if line.strip()}))}
    if split == "train":
        train_dir = os.path.join(folder, "train")
        if not os.path.isdir(train_dir):
            raise _missing(train_dir, spec)
        try:  # train/<wnid>/images/*.JPEG; make_dataset walks each class folder
            return make_dataset(train_dir, class_to_idx, extensions=(".jpeg",))
        except FileNotFoundError as e:
            raise BadInput(train_dir, spec.name, str(e)) from e
    # The labelled val split is the test split (the test/ folder has no labels).
    ann = os.path.join(folder, "val", "val_annotations.txt")
    if not os.path.isfile(ann):
        raise _missing(ann, spec)
    samples = []
    with open(ann) as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            if parts[1] not in class_to_idx:
                raise BadInput(ann, spec.name, f"line {n}: class {parts[1]} is not in wnids.txt")
            samples.append((os.path.join(folder, "val", "images", parts[0]), class_to_idx[parts[1]]))
    return samples


def _imagenet_split_dir(folder: str, split: str) -> str:
    return os.path.join(folder, "train" if split == "train" else "val")


def _imagenet_missing(spec: DatasetSpec, folder: str, split: str) -> MissingData:
    split_dir = _imagenet_split_dir(folder, split)
    archive = ARCHIVE_META["train" if split == "train" else "val"][0]
    if os.path.isfile(os.path.join(folder, archive)):
        return MissingData(
            split_dir,
            spec.name,
            f"not unpacked yet; run `python runner.py data download imagenet` to unpack {archive} with torchvision",
        )
    return _missing(split_dir, spec, "folder not found")


def _imagenet_index(spec: DatasetSpec, split: str, folder: str) -> list[tuple[str, int]]:
    split_dir = _imagenet_split_dir(folder, split)
    if not os.path.isdir(split_dir):
        raise _imagenet_missing(spec, folder, split)
    try:
        _, class_to_idx = find_classes(split_dir)
        return make_dataset(split_dir, class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise BadInput(split_dir, spec.name, f"{e}; expected one folder per class (wnid) - the val images too") from e


_INDEX = {"tinyimagenet": _tinyimagenet_index, "cub": _cub_index, "dogs": _dogs_index, "imagenet": _imagenet_index}


def _require_files(spec: DatasetSpec, samples: list[tuple[str, int]]) -> None:
    for path, label in samples:
        if not os.path.isfile(path):
            raise BadInput(path, spec.name, "listed in the split files but not found; the copy is incomplete")
        if not 0 <= label < spec.num_classes:
            raise BadInput(path, spec.name, f"label {label} outside 0..{spec.num_classes - 1}")


class FileListDataset(torch.utils.data.Dataset):
    """(image file, label) pairs read with torchvision's default PIL loader.

    Follows ImageFolder's contract (``samples``, ``targets``) for datasets whose official split
    is given by list files rather than by folders (CUB, Stanford Dogs).
    """

    def __init__(self, samples: list[tuple[str, int]], transform=None, loader=default_loader):
        self.samples = samples
        self.targets = [label for _, label in samples]
        self.transform, self.loader = transform, loader

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        img = self.loader(path)
        return (self.transform(img) if self.transform is not None else img), label


def _decode_images(spec: DatasetSpec, paths: list[str], size: int) -> np.ndarray:
    """Decode JPEGs into one uint8 [N,size,size,3] array (threads: PIL releases the GIL while decoding)."""
    out = np.empty((len(paths), size, size, 3), np.uint8)

    def decode(i: int) -> None:
        try:
            with Image.open(paths[i]) as im:
                arr = np.asarray(im.convert("RGB"))  # a few TinyImageNet images are greyscale
        except OSError as e:
            raise BadInput(paths[i], spec.name, f"cannot read the image: {e}") from e
        if arr.shape != (size, size, 3):
            raise BadInput(paths[i], spec.name, f"image is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size}")
        out[i] = arr

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(decode, range(len(paths))))
    return out


# --------------------------------------------------------------------------- public API


def load_arrays(name: str, split: str, root: str, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split of an array dataset: (uint8 [N,H,W,3], int64 [N]).

    ``verify`` checks torchvision's official md5 of the CIFAR/SVHN files first (TinyImageNet has
    no official checksums; its structure is always checked).
    """
    spec, split = get_spec(name), check_split(split)
    if spec.kind != "array":
        raise ValueError(f"{name} is a folder dataset; use load_folder")
    folder = dataset_dir(name, root)
    if name == "tinyimagenet":
        samples = _tinyimagenet_index(spec, split, folder)
        paths, labels = zip(*samples) if samples else ((), ())
        return _as_tensors(spec, folder, _decode_images(spec, list(paths), spec.image_size), list(labels))
    _verify_files(spec, folder, _torchvision_files(name, split), verify)
    try:
        if name == "svhn":
            ds = _SVHNFiles(folder, split=split)
            images, labels = ds.data.transpose(0, 2, 3, 1), ds.labels  # torchvision keeps SVHN as NCHW
        else:
            cls = _CIFAR10Files if name == "cifar10" else _CIFAR100Files
            ds = cls(os.path.expanduser(str(root)), train=split == "train")
            images, labels = ds.data, ds.targets
    except Exception as e:  # e.g. a truncated file when verify=False
        raise BadInput(folder, name, f"cannot read the {split} split: {e}") from e
    return _as_tensors(spec, folder, images, labels)


def load_folder(name: str, split: str, root: str, transform=None) -> torch.utils.data.Dataset:
    """A folder dataset's split yielding (transform(PIL image), int label)."""
    spec, split = get_spec(name), check_split(split)
    if spec.kind != "folder":
        raise ValueError(f"{name} is an array dataset; use load_arrays")
    folder = dataset_dir(name, root)
    if name == "imagenet":
        split_dir = _imagenet_split_dir(folder, split)
        if not os.path.isdir(split_dir):
            raise _imagenet_missing(spec, folder, split)
        try:
            ds = ImageFolder(split_dir, transform=transform)
        except FileNotFoundError as e:
            raise BadInput(split_dir, name, f"{e}; expected one folder per class (wnid) - the val images too") from e
        # ImageFolder numbers the classes it finds: a class missing from val would shift the labels
        train_dir = _imagenet_split_dir(folder, "train")
        if split == "test" and os.path.isdir(train_dir) and find_classes(train_dir)[0] != ds.classes:
            raise BadInput(split_dir, name, "val/ holds other class folders than train/, so the labels would not match")
        return ds
    samples = _INDEX[name](spec, split, folder)
    _require_files(spec, samples)
    return FileListDataset(samples, transform)


def download(name: str, root: str) -> None:
    """Fetch a dataset with torchvision (CIFAR-10/100, SVHN) or urllib (Speech Commands, sha256-checked);
    unpack hand-placed ImageNet archives."""
    spec = get_spec(name)
    root = os.path.expanduser(str(root))
    folder = dataset_dir(name, root)
    if name in ("cifar10", "cifar100", "svhn"):
        with _undo_on_failure(root, name):
            if name == "svhn":
                for split in ("train", "test"):
                    SVHN(folder, split=split, download=True)
            else:  # the archive holds both splits
                (CIFAR10 if name == "cifar10" else CIFAR100)(root, train=True, download=True)
    elif name == "gsc":
        from .speech import download_gsc

        with _undo_on_failure(root, name):
            download_gsc(folder)
    elif name == "imagenet" and all(
        os.path.isfile(os.path.join(folder, ARCHIVE_META[k][0])) for k in ("train", "val", "devkit")
    ):
        from torchvision.datasets import ImageNet

        for split in ("train", "val"):  # torchvision verifies the archives' md5 and unpacks them
            try:
                ImageNet(folder, split=split)
            except RuntimeError as e:
                raise BadInput(folder, name, str(e)) from e
    else:
        raise BadInput(folder, name, f"cannot be downloaded automatically; {spec.how_to_get}")


@contextlib.contextmanager
def _undo_on_failure(root: str, name: str):
    """Run a torchvision download; if it fails, remove what it created (folders, a partial archive)
    and raise DownloadFailed with one line. What was there before is never touched."""
    made_root = not os.path.exists(root)
    before = set(os.listdir(root)) if not made_root else set()
    try:
        yield
    except (OSError, RuntimeError, ValueError) as err:  # URLError is an OSError
        if made_root:
            shutil.rmtree(root, ignore_errors=True)
        elif os.path.isdir(root):
            for entry in set(os.listdir(root)) - before:
                path = os.path.join(root, entry)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
        reason = getattr(err, "reason", None) or err
        raise DownloadFailed(f"{name}: download failed ({type(err).__name__}: {reason}); nothing was kept "
                             f"under {root}. Without network, place the files by hand: "
                             f"`python runner.py data list` says where") from None


def _check_one(spec: DatasetSpec, root: str, strict_counts: bool) -> str:
    folder = dataset_dir(spec.name, root)
    if not os.path.isdir(folder):
        raise _missing(folder, spec, "folder not found")
    if spec.name in ("cifar10", "cifar100", "svhn"):
        files = _torchvision_files(spec.name)
        _verify_files(spec, folder, files, verify=True)
        return f"{len(files)} files match torchvision's official md5"
    counts, classes = {}, {}
    if spec.kind == "audio":
        from .speech import gsc_index, noise_clips

        noise_clips(folder, spec.name)  # the training augmentation needs _background_noise_/
    index = (lambda _s, split, f: gsc_index(f, split, spec.name)) if spec.kind == "audio" else _INDEX[spec.name]
    for split in spec.splits:
        samples = index(spec, split, folder)
        if spec.name != "imagenet":  # ImageNet's index is a folder listing: its files exist
            _require_files(spec, samples)
        counts[split], classes[split] = len(samples), {label for _, label in samples}
    if spec.name == "imagenet":  # ImageFolder numbers classes per folder: both must list the same
        train_classes, val_classes = (find_classes(_imagenet_split_dir(folder, s))[0] for s in spec.splits)
        if train_classes != val_classes:
            raise BadInput(folder, spec.name, "train/ and val/ hold different class folders")
    if strict_counts:
        want = {"train": spec.train_size, "test": spec.test_size}
        for split in spec.splits:
            if counts[split] != want[split]:
                raise BadInput(
                    folder, spec.name, f"{split} split has {counts[split]} images, the official count is {want[split]}"
                )
            if len(classes[split]) != spec.num_classes:
                raise BadInput(
                    folder, spec.name, f"{split} split has {len(classes[split])} classes, expected {spec.num_classes}"
                )
    checked = "official counts" if strict_counts else "structure only, counts not checked"
    return f"train {counts['train']} / test {counts['test']} images, all files present ({checked})"


def check(root: str, names: list[str] | None = None, strict_counts: bool = True) -> list[dict]:
    """Verify hand-placed datasets: one {"name", "status": "ok"|"missing"|"bad", "detail"} per dataset.

    ``strict_counts`` also requires the official image and class counts (tests turn it off to
    check tiny copies of the layouts).
    """
    rows = []
    for name in names if names is not None else dataset_names():
        spec = get_spec(name)
        try:
            status, detail = "ok", _check_one(spec, root, strict_counts)
        except MissingData as e:
            status, detail = "missing", e.message()
        except BadInput as e:
            status, detail = "bad", e.message()
        rows.append({"name": name, "status": status, "detail": detail})
    return rows
