"""Google Speech Commands as a dataset (benchmark/engine/data/speech.py): the archive's split, the
augmentation's per-sample draws, the generated stand-in, a bad WAV."""


import numpy as np
import pytest
import torch

from benchmark.engine.data import check, get_spec
from benchmark.engine.data.speech import WORDS, SpeechClips, gsc_index, load_speech, synthetic_speech
from benchmark.errors import BadInput
from tests.helpers import write_wav


def test_split_follows_the_list_files(tmp_path):
    folder = fake_archive(tmp_path)
    label = {w: i for i, w in enumerate(WORDS)}
    test = {(p.split("speech_commands_v0.02/")[1], y) for p, y in gsc_index(str(folder), "test")}
    assert test == {("bed/spk1_nohash_0.wav", label["bed"]), ("zero/spk2_nohash_0.wav", label["zero"])}
    train = {p.split("speech_commands_v0.02/")[1] for p, _ in gsc_index(str(folder), "train")}
    assert train == {"bed/spk2_nohash_0.wav", "yes/spk0_nohash_0.wav", "yes/spk2_nohash_0.wav",
                     "zero/spk0_nohash_0.wav", "zero/spk1_nohash_0.wav"}  # validation clips in neither
    assert len(WORDS) == get_spec("gsc").num_classes == 35 and list(WORDS) == sorted(WORDS)
    ds = load_speech(str(folder), "train", augment=True)
    x, y = ds[0]
    assert x.shape == (1, 101, 40) and y == label["bed"] and len(ds.noise) == 1
    rows = check(tmp_path, ["gsc"], strict_counts=False)
    assert rows[0]["status"] == "ok" and "train 5 / test 2" in rows[0]["detail"]
    (folder / "testing_list.txt").unlink()
    assert check(tmp_path, ["gsc"], strict_counts=False)[0]["status"] == "bad"


def test_augmentation_draws_are_per_sample_and_per_epoch(tmp_path):
    folder = fake_archive(tmp_path)
    ds = load_speech(str(folder), "train", augment=True)
    ds.set_epoch(0, 3)
    first = [ds[i][0] for i in range(len(ds))]
    again = [ds[i][0] for i in reversed(range(len(ds)))][::-1]  # another order: the same inputs
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    ds.set_epoch(0, 4)
    assert not torch.equal(ds[0][0], first[0])
    plain = ds.plain()
    assert torch.equal(plain[0][0], plain[0][0]) and not torch.equal(plain[0][0], first[0])


def test_stand_in_shapes_classes_and_determinism():
    spec = get_spec("gsc")
    train = synthetic_speech("gsc", "train")
    assert len(train) == 35 * spec.synthetic_train_per_class and train.augment and len(train.noise) == 2
    assert sorted(set(train.targets)) == list(range(35))
    x, _ = train[0]
    assert x.shape == (1, spec.synthetic_size, 40)
    test = synthetic_speech("gsc", "test", per_class=2, frames=11)
    assert len(test) == 70 and not test.augment and test[0][0].shape == (1, 11, 40)
    again = synthetic_speech("gsc", "test", per_class=2, frames=11)
    assert torch.equal(test[5][0], again[5][0]) and test.targets == again.targets
    other_seed = synthetic_speech("gsc", "test", seed=1, per_class=2, frames=11)
    assert not torch.equal(test[5][0], other_seed[5][0])


def test_speech_clips_reject_a_bad_wav(tmp_path):
    write_wav(tmp_path / "x.wav", [0, 1], rate=44100)
    with pytest.raises(BadInput, match="44100 Hz"):
        SpeechClips([str(tmp_path / "x.wav")], [0])[0]


def fake_archive(root):
    """The v0.02 layout with a few short clips: 35 word folders, list files, background noise."""
    folder = root / "speech_commands_v0.02"
    rng = np.random.default_rng(0)
    for word in WORDS:
        (folder / word).mkdir(parents=True)
    for word in ("bed", "yes", "zero"):
        for i in range(3):
            write_wav(folder / word / f"spk{i}_nohash_0.wav", rng.integers(-3000, 3000, 8000))
    (folder / "_background_noise_").mkdir()
    write_wav(folder / "_background_noise_" / "white.wav", rng.integers(-9000, 9000, 40000))
    (folder / "validation_list.txt").write_text("bed/spk0_nohash_0.wav\nyes/spk1_nohash_0.wav\n")
    (folder / "testing_list.txt").write_text("bed/spk1_nohash_0.wav\nzero/spk2_nohash_0.wav\n")
    return folder
