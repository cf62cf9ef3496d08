"""Where data.decode applies (benchmark/engine/data/decode.py)."""


from benchmark.engine.data.decode import with_decode


def test_reproduce_decode_applies_to_the_image_folder_runs_only():
    imagenet = {"dataset": "imagenet", "data": {"augment": "skd_imagenet"}}
    assert with_decode(imagenet, "nvjpeg")["data"] == {"augment": "skd_imagenet", "decode": "nvjpeg"}
    for raw in ({"dataset": "cifar100", "data": {}}, {"dataset": "imagenet", "data": {"source": "synthetic"}},
                {"dataset": "cub", "data": {"augment": "lskd_cub"}}):
        assert with_decode(raw, "nvjpeg") is raw
    assert with_decode(imagenet, "pil") is imagenet
