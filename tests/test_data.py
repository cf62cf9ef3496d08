"""benchmark.engine.data: registry, on-disk loaders (on tiny fake copies of each layout), checks,
generated stand-ins and transform pipelines. Nothing here downloads."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.io import savemat
from torch.utils._python_dispatch import TorchDispatchMode

from benchmark.engine.data import (
    DATASETS,
    check,
    dataset_names,
    download,
    get_spec,
    list_datasets,
    load_arrays,
    load_folder,
    make_transforms,
    synthetic_arrays,
    synthetic_groups,
)
from benchmark.errors import BadInput

# --------------------------------------------------------------------------- fake layouts


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


# --------------------------------------------------------------------------- registry


def test_registry_facts():
    assert dataset_names() == ["cifar10", "cifar100", "svhn", "tinyimagenet", "cub", "dogs", "imagenet", "gsc"]
    sizes = {n: (s.num_classes, s.image_size, s.kind, s.train_size, s.test_size) for n, s in DATASETS.items()}
    assert sizes["cifar100"] == (100, 32, "array", 50000, 10000)
    assert sizes["svhn"] == (10, 32, "array", 73257, 26032)
    assert sizes["tinyimagenet"] == (200, 64, "array", 100000, 10000)
    assert sizes["cub"] == (200, 224, "folder", 5994, 5794)
    assert sizes["dogs"] == (120, 224, "folder", 12000, 8580)
    assert sizes["imagenet"] == (1000, 224, "folder", 1281167, 50000)
    assert sizes["gsc"] == (35, 101, "audio", 84843, 11005)  # v0.02's training list and testing_list.txt
    with pytest.raises(ValueError, match=r"unknown dataset 'x'; known: cifar10, cifar100"):
        get_spec("x")
    rows = {r["name"]: r for r in list_datasets()}
    assert [n for n, r in rows.items() if r["downloadable"]] == ["cifar10", "cifar100", "svhn", "gsc"]
    assert rows["dogs"]["splits"] == {"train": 12000, "test": 8580} and "ImageNetDogs" in rows["dogs"]["how_to_get"]


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


# --------------------------------------------------------------------------- synthetic stand-ins


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items() if s.kind != "audio"])  # gsc: test_data_speech.py
def test_synthetic_shapes_and_classes(name):
    spec = get_spec(name)
    size = 32 if name in ("cifar10", "cifar100", "svhn") else 64  # 224-px datasets are generated at 64 px
    for split in ("train", "test"):
        per_class = spec.synthetic_train_per_class if split == "train" else spec.synthetic_test_per_class
        images, labels = synthetic_arrays(name, split)
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape == (spec.num_classes * per_class, size, size, 3)
        assert torch.bincount(labels, minlength=spec.num_classes).tolist() == [per_class] * spec.num_classes
    defaults = (spec.synthetic_train_per_class, spec.synthetic_test_per_class)
    assert defaults == ((2, 1) if name == "imagenet" else (10, 4))


def test_synthetic_is_deterministic():
    a = synthetic_arrays("cifar100", "train", seed=3)
    b = synthetic_arrays("cifar100", "train", seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = synthetic_arrays("cifar100", "train", seed=4)
    assert not torch.equal(a[0], c[0])
    test = synthetic_arrays("cifar100", "test", seed=3, per_class=10)
    assert not torch.equal(a[0], test[0])  # same sizes, different samples
    assert not torch.equal(synthetic_arrays("cifar10", "train")[0][:50], synthetic_arrays("svhn", "train")[0][:50])
    images, _ = synthetic_arrays("cub", "train", per_class=1, image_size=48)
    assert images.shape == (200, 48, 48, 3)
    assert images.float().std() > 30  # a real spread of pixel values, not a flat image


class _TensorOps(TorchDispatchMode):
    """Logs every tensor operation run inside it: (op name, shapes of its tensor arguments)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append((str(func.overloadpacket), [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]))
        return func(*args, **(kwargs or {}))


def test_synthetic_cost_is_a_fixed_set_of_batched_ops():
    """What keeps the stand-in fast, asserted without a clock (wall time is no test of code): every
    image comes out of one fixed set of batched tensor operations, however many images (no
    per-image Python loop), and the texture is one grouped convolution drawn at 32 px, also for
    the 64-px datasets."""
    ops = {}
    for name, per_class in (("cifar100", 1), ("cifar100", 20), ("tinyimagenet", 1), ("tinyimagenet", 3)):
        with _TensorOps() as log:
            images, _ = synthetic_arrays(name, "train", per_class=per_class)
        ops[name, per_class] = [op for op, _ in log.calls]
        n = images.shape[0]
        convs = [shapes for op, shapes in log.calls if op == "aten.convolution"]
        assert convs == [[(1, 3 * n, 32 + 5 - 1, 32 + 5 - 1), (3 * n, 3, 5, 5)]], (name, per_class)
    assert ops["cifar100", 1] == ops["cifar100", 20]
    assert ops["tinyimagenet", 1] == ops["tinyimagenet", 3]


def _pooled(images: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(images.permute(0, 3, 1, 2).float() / 255, 8).flatten(1)


def test_synthetic_is_learnable_with_dark_knowledge():
    """A linear classifier on the mean-pooled image, 100 full-batch steps: far above chance on the
    test split, and its wrong-class probability goes mostly to classes of the true class's group."""
    xtr, ytr = synthetic_arrays("cifar100", "train")
    xte, yte = synthetic_arrays("cifar100", "test")
    ftr, fte = _pooled(xtr), _pooled(xte)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    torch.manual_seed(0)
    model = torch.nn.Linear(ftr.shape[1], 100)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = F.cross_entropy(model(ftr), ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        prob = model(fte).softmax(1)
    accuracy = (prob.argmax(1) == yte).float().mean().item()
    assert accuracy > 0.3  # chance is 0.01; measured 0.84
    assert accuracy < 0.99  # and not trivially separable
    groups = synthetic_groups("cifar100")
    same = groups[None, :] == groups[yte][:, None]
    rows = torch.arange(len(yte))
    same[rows, yte] = False
    other = ~same
    other[rows, yte] = False
    p_same = ((prob * same).sum(1) / same.sum(1)).mean()
    p_other = ((prob * other).sum(1) / other.sum(1)).mean()
    assert p_same > 10 * p_other


def test_synthetic_classes_share_structure_within_groups():
    images, labels = synthetic_arrays("cifar100", "train", per_class=20)
    feats = _pooled(images)
    means = torch.stack([feats[labels == c].mean(0) for c in range(100)])
    means = F.normalize(means - means.mean(0), dim=1)
    cos = means @ means.T
    groups = synthetic_groups("cifar100")
    within = (groups[:, None] == groups[None, :]) & ~torch.eye(100, dtype=torch.bool)
    across = groups[:, None] != groups[None, :]
    assert groups.tolist()[:10] == [0] * 5 + [1] * 5 and int(groups.max()) == 19  # 20 groups of 5
    assert cos[within].mean() > cos[across].mean() + 0.3


# --------------------------------------------------------------------------- transforms


def _reference_crop_flip(img: np.ndarray, seed: int, pad: int, flip: bool, mean, std):
    """The CIFAR pipeline by hand: zero-pad the uint8 image, crop, maybe flip, then scale and
    normalise. Draws the random numbers exactly as torchvision's RandomCrop and RandomHorizontalFlip."""
    torch.manual_seed(seed)
    size = img.shape[0]
    i = torch.randint(0, 2 * pad + 1, size=(1,)).item()
    j = torch.randint(0, 2 * pad + 1, size=(1,)).item()
    flipped = flip and torch.rand(1).item() < 0.5
    out = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))[i : i + size, j : j + size]
    if flipped:
        out = out[:, ::-1]
    out = (out.astype(np.float64) / 255 - np.array(mean)) / np.array(std)
    return out.transpose(2, 0, 1), (i, j, flipped)


@pytest.mark.parametrize("name, flip", [("cifar100", True), ("cifar10", True), ("svhn", False)])
def test_train_transform_is_zero_pad_crop_flip_then_normalise(name, flip):
    img = _images(1, seed=7)[0]
    spec = get_spec(name)
    transform = make_transforms(name, "train")
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        got = transform(Image.fromarray(img)).numpy()
        want, params = _reference_crop_flip(img, seed, 4, flip, spec.mean, spec.std)
        np.testing.assert_allclose(got, want, atol=1e-5)
        seen.add(params[2])
        if params[0] == 0:  # the top rows are padding: zero pixels normalised, i.e. -mean/std
            np.testing.assert_allclose(got[:, 0, 5], -np.array(spec.mean) / np.array(spec.std), atol=1e-5)
    assert seen == ({True, False} if flip else {False})


def test_tinyimagenet_pads_by_eight_and_imagenet_constants_override():
    img = _images(1, size=64, seed=1)[0]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    transform = make_transforms("tinyimagenet", "train", mean=mean, std=std)
    for seed in range(4):
        torch.manual_seed(seed)
        got = transform(Image.fromarray(img)).numpy()
        np.testing.assert_allclose(got, _reference_crop_flip(img, seed, 8, True, mean, std)[0], atol=1e-5)


def test_test_and_folder_pipelines():
    img = Image.fromarray(_images(1, seed=2)[0])
    x = make_transforms("cifar100", "test")(img)
    spec = get_spec("cifar100")
    want = (np.asarray(img) / 255 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(x.numpy(), want.transpose(2, 0, 1), atol=1e-5)  # no crop, no flip
    big = Image.new("RGB", (300, 260), (10, 20, 30))
    assert make_transforms("dogs", "test")(big).shape == (3, 224, 224)
    assert make_transforms("imagenet", "train")(big).shape == (3, 224, 224)
    steps = [type(t).__name__ for t in make_transforms("cub", "test").transforms]
    assert steps == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    assert make_transforms("cub", "test").transforms[0].size == 256
    lskd = make_transforms("cub", "train", augment="lskd_cub").transforms
    assert [type(t).__name__ for t in lskd] == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "RandomRotation",
        "RandomGrayscale",
        "ColorJitter",
        "ToTensor",
        "Normalize",
    ]
    assert lskd[0].scale == (0.2, 1.0) and lskd[2].degrees == [-45.0, 45.0]
    assert lskd[4].brightness == (0.8, 1.2) and lskd[4].saturation is None
    skd = make_transforms("imagenet", "train", augment="skd_imagenet").transforms
    assert [type(t).__name__ for t in skd] == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert (skd[0].size, skd[0].scale, skd[0].ratio) == ((224, 224), (0.1, 1.0), (0.8, 1.25))
    assert make_transforms("imagenet", "train")(big).shape == make_transforms("imagenet", "train",
                                                                              augment="skd_imagenet")(big).shape
    with pytest.raises(ValueError, match="folder datasets"):
        make_transforms("cifar10", "train", augment="skd_imagenet")
    assert [type(t).__name__ for t in make_transforms("svhn", "train", augment="crop_flip").transforms][:2] == [
        "RandomCrop",
        "RandomHorizontalFlip",
    ]
    with pytest.raises(ValueError, match="unknown augment"):
        make_transforms("cifar10", "train", augment="autoaugment")
