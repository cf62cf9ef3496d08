"""Image folders across the package: ``data.decode``'s place in the config and the run id, a folder
run's record of its loading, bad decode values, and the streams' revision. The loader's own tests are
in test_loader.py, the streams' in test_streams.py, the tensor path's parts in test_tensor_decode.py,
the decode bench in test_decoderate.py. Every folder is generated: JPEGs written with PIL."""

import json

import pytest

from benchmark.engine import config as C
from benchmark.engine.data.jpegfolder import write_jpeg_folder
from benchmark.engine.revisions import parts_of
from benchmark.errors import BadInput


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


def test_image_folder_runs_trained_before_the_streams_are_stale_and_cifar_runs_are_not():
    from benchmark.engine.revisions import current_revisions, older_parts

    now = current_revisions()
    before = {p: r for p, r in now.items() if p != "folders"}  # a record from before the part existed
    imagenet = C.resolve({"dataset": "imagenet", "model": "resnet18", "loss": "ce"})
    cifar = C.resolve({"dataset": "cifar100", "model": "resnet8", "loss": "ce"})
    assert older_parts(imagenet, before, now) == [f"folders r1 < r{now['folders']}"] and now["folders"] >= 2
    assert older_parts(cifar, before, now) == []
