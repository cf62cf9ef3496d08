"""Datasets: the registry of what each dataset is, the real files on disk, generated stand-ins
for the smoke profile, the papers' PIL transform pipelines and label noise on the training split.

    from benchmark.engine.data import DATASETS, dataset_names, get_spec, load_arrays, load_folder, \
        synthetic_arrays, make_transforms, list_datasets, download, check
"""

from __future__ import annotations

import importlib

from .registry import DATASETS, DatasetSpec, dataset_names, get_spec

# The rest needs torch/torchvision: imported on first use (PEP 562), so that what only asks the
# registry (planning, the cost model, `data list`) starts without them.
_LAZY = {"FileListDataset": "sources", "MissingData": "sources", "DownloadFailed": "sources", "check": "sources", "dataset_dir": "sources",
         "download": "sources", "load_arrays": "sources", "load_folder": "sources",
         "synthetic_arrays": "synthetic", "noisy_labels": "noise", "Relabeled": "noise", "synthetic_groups": "synthetic",
         "AUGMENTS": "transforms", "make_transforms": "transforms",
         "SpeechClips": "speech", "speech_datasets": "speech", "synthetic_speech": "speech"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_datasets() -> list[dict]:
    """Rows for `runner.py data list`."""
    return [
        {
            "name": spec.name,
            "classes": spec.num_classes,
            "image_size": spec.image_size,
            "kind": spec.kind,
            "splits": {"train": spec.train_size, "test": spec.test_size},
            "test_split": spec.test_split_note,
            "path": spec.root_subdir,
            "downloadable": spec.downloadable,
            "how_to_get": spec.how_to_get,
            "synthetic_size": spec.synthetic_size,
        }
        for spec in DATASETS.values()
    ]


__all__ = [
    "AUGMENTS",
    "DATASETS",
    "DatasetSpec",
    "DownloadFailed",
    "FileListDataset",
    "MissingData",
    "Relabeled",
    "SpeechClips",
    "check",
    "dataset_dir",
    "dataset_names",
    "download",
    "get_spec",
    "list_datasets",
    "load_arrays",
    "load_folder",
    "make_transforms",
    "noisy_labels",
    "speech_datasets",
    "synthetic_arrays",
    "synthetic_groups",
    "synthetic_speech",
]
