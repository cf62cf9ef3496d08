"""A run assembled from its config: the data pipeline (tensors on the device, or a DataLoader over
image files, with the dataset's augmentation), the student network (initialised from the run's
seed alone) and the run's method (engine/methods: a logit loss, or a distiller whose adapters one
probe forward shapes)."""

from __future__ import annotations

import torch

from ..errors import BadInput
from . import data as datasets
from . import methods
from .data import Relabeled, get_spec, noisy_labels, speech_datasets, synthetic_arrays
from .data.loader import LoaderPipeline
from .execution import ExecOptions
from .init_schemes import apply_init_scheme, zero_residual_norms
from .models import build_model
from .models.weights import sha256_of
from .pipeline import Augmentation, TensorPipeline, derive_seed
from .train_errors import RunFailed


def array_augmentation(dataset: str, augment: str) -> Augmentation | None:
    """The tensor pipeline's equivalent of the dataset's torchvision train transform, read off
    that transform itself so that the two can never disagree. None: not expressible as
    crop+flip (use the DataLoader pipeline)."""
    from torchvision import transforms

    padding, flip, reflect = 0, False, False
    for t in datasets.make_transforms(dataset, "train", augment).transforms:
        if isinstance(t, transforms.RandomCrop):
            if t.padding_mode not in ("constant", "reflect") or t.fill not in (0, None) or t.pad_if_needed:
                return None
            reflect = t.padding_mode == "reflect"
            pad = t.padding if isinstance(t.padding, int) else None
            if pad is None and len(set(t.padding)) == 1:
                pad = t.padding[0]
            if pad is None:
                return None
            padding = pad
        elif isinstance(t, transforms.RandomHorizontalFlip):
            if t.p != 0.5:
                return None
            flip = True
        elif not isinstance(t, (transforms.ToTensor, transforms.Normalize)):
            return None
    return Augmentation(padding=padding, flip=flip, reflect=reflect)


def normalization(cfg: dict) -> tuple[list[float], list[float]]:
    spec = get_spec(cfg["dataset"])
    norm = cfg["data"]["normalize"]
    return (norm["mean"], norm["std"]) if norm else (list(spec.mean), list(spec.std))


def _noisy(cfg: dict, labels: torch.Tensor) -> torch.Tensor:
    """The training labels under the config's label noise (data.label_noise; none: unchanged).
    A config stored before the option existed has none."""
    noise = cfg["data"].get("label_noise") or {"kind": "none"}
    if noise["kind"] == "none":
        return labels
    return noisy_labels(labels, get_spec(cfg["dataset"]).num_classes, cfg["dataset"],
                        noise["kind"], noise["rate"], noise["seed"])


def _with_noisy_train(cfg: dict, train: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return train[0], _noisy(cfg, train[1])


def build_pipeline(cfg: dict, options: ExecOptions):
    spec = get_spec(cfg["dataset"])
    recipe, data = cfg["recipe"], cfg["data"]
    mean, std = normalization(cfg)
    common = dict(batch_size=recipe["batch_size"], eval_batch_size=recipe["eval_batch_size"],
                  drop_last=recipe["drop_last"], steps_per_epoch=recipe["steps_per_epoch"],
                  device=options.device)
    if spec.kind == "audio":  # Speech Commands: WAV clips -> MFCCs in a DataLoader (data/speech.py)
        if data["augment"] not in ("standard", "none"):
            raise BadInput("config", "data.augment", f"{cfg['dataset']} takes 'standard' (time shift + background "
                                                     f"noise, ATS App. C.1) or 'none', got {data['augment']!r}")
        synthetic = data["synthetic"] if data["source"] == "synthetic" else None
        sets = speech_datasets(cfg["dataset"], datasets.dataset_dir(cfg["dataset"], data["root"]),
                               data["augment"] == "standard", synthetic)
        return LoaderPipeline(*sets, num_workers=options.num_workers, **common)
    if data["source"] == "synthetic":
        syn = data["synthetic"]
        kw = dict(seed=syn["seed"], image_size=syn["image_size"])
        train = _with_noisy_train(cfg, synthetic_arrays(cfg["dataset"], "train", per_class=syn["per_class"], **kw))
        test = synthetic_arrays(cfg["dataset"], "test", per_class=syn["test_per_class"], **kw)
        # A stand-in gets the small-image augmentation of its own size (crop pad 1/8, flip).
        aug = Augmentation(padding=train[0].shape[1] // 8, flip=True)
        return TensorPipeline(train, test, mean, std, aug, **common)
    root = data["root"]
    if spec.kind == "array":
        aug = array_augmentation(cfg["dataset"], data["augment"])
        if aug is not None:
            train = _with_noisy_train(cfg, datasets.load_arrays(cfg["dataset"], "train", root))
            test = datasets.load_arrays(cfg["dataset"], "test", root)
            return TensorPipeline(train, test, mean, std, aug, **common)
        raise BadInput("config", "data.augment",
                       f"augmentation {data['augment']!r} is not a crop+flip; not supported for {cfg['dataset']}")
    sets = [datasets.load_folder(cfg["dataset"], split, root,
                                 datasets.make_transforms(cfg["dataset"], tsplit, data["augment"], mean, std))
            for split, tsplit in (("train", "train"), ("test", "test"), ("train", "test"))]
    if (cfg["data"].get("label_noise") or {"kind": "none"})["kind"] != "none":
        labels = _noisy(cfg, torch.as_tensor(sets[0].targets))  # the training split, augmented and plain
        sets = [Relabeled(sets[0], labels), sets[1], Relabeled(sets[2], labels)]
    return LoaderPipeline(*sets, num_workers=options.num_workers, decode=data.get("decode", "pil"), **common)


def build_student(cfg: dict, device: torch.device) -> torch.nn.Module:
    """The run's network, initialised from the run's seed alone (its own forked stream), from
    pinned pretrained weights if the config names them (its ``init``), then the recipe's init scheme."""
    pretrained = cfg["init"]  # the config's key ``init``: pretrained weights to start from
    if pretrained and pretrained["sha256"] and sha256_of(pretrained["weights"]) != pretrained["sha256"]:
        raise RunFailed(f"init weights {pretrained['weights']} do not match their sha256")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed("init", cfg["seed"]))
        model = build_model(cfg["model"], get_spec(cfg["dataset"]).num_classes,
                            weights=pretrained["weights"] if pretrained else None)
        # After the network's own init, as the ATS code applies weights_init to a built student.
        model = apply_init_scheme(model, cfg["recipe"].get("init_scheme", "torch"))
        if cfg["recipe"].get("zero_init_residual"):
            zero_residual_norms(model)
        return model.to(device)


def build_method(cfg: dict, student: torch.nn.Module, teacher, data, device: torch.device):
    """The run's method (engine/methods); one with taps gets adapters shaped by one probe forward
    of both networks."""
    name, params = cfg["loss"]["name"], {k: v for k, v in cfg["loss"].items() if k != "name"}
    if not methods.entry(name).taps:
        return methods.build(name, params)
    if teacher is None or data is None:
        raise RunFailed(f"loss {name!r} needs the teacher and the data to build its adapters")
    x = data.probe_batch()
    was_training = student.training
    student.eval()  # the probe must not move the BatchNorm statistics
    with torch.no_grad():
        probe_s, probe_t = student.extract(x), teacher.extract(x)
    student.train(was_training)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        # Its own seed: the student's initial weights stay those of a CE run of the same seed.
        torch.manual_seed(derive_seed("distiller", cfg["seed"]))
        try:
            method = methods.build(name, params, student_probe=probe_s, teacher_probe=probe_t,
                                   num_classes=get_spec(cfg["dataset"]).num_classes,
                                   train_labels=data.train_targets())
            method.attach_teacher(teacher)
        except ValueError as err:
            raise RunFailed(f"loss {name!r}: {err}") from None
    method.adapters.to(device)
    method.train()
    method.attach(student)
    return method
