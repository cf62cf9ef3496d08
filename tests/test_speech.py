"""Google Speech Commands (ATS Table 8): the WAV reader, the MFCC features, the archive's split,
the augmentation's per-sample draws, the generated stand-in, the two networks, ATS's tau^2 option
and one short training run end to end."""

import math
import wave

import numpy as np
import pytest
import scipy.fft
import torch

from benchmark.engine.data import audio, check, get_spec
from benchmark.engine.data.speech import WORDS, SpeechClips, gsc_index, load_speech, synthetic_speech
from benchmark.engine.losses import make_loss
from benchmark.engine.models import build_model, count_params, model_info
from benchmark.errors import BadInput


def write_wav(path, samples, rate=16000, channels=1, width=2):
    """int16 samples (or any ints) into a WAV file with the standard library."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, dtype="<i2").tobytes())


# --------------------------------------------------------------------------- WAV and MFCC


def test_read_wav_scales_int16_and_rejects_other_formats(tmp_path):
    write_wav(tmp_path / "a.wav", [0, 16384, -32768, 32767])
    assert audio.read_wav(tmp_path / "a.wav").tolist() == [0.0, 0.5, -1.0, 32767 / 32768]
    write_wav(tmp_path / "st.wav", [0, 1, 2, 3], channels=2)
    with pytest.raises(BadInput, match="mono 16-bit PCM at 16000 Hz"):
        audio.read_wav(tmp_path / "st.wav")
    write_wav(tmp_path / "8k.wav", [0, 1], rate=8000)
    with pytest.raises(BadInput, match="8000 Hz"):
        audio.read_wav(tmp_path / "8k.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    with pytest.raises(BadInput, match="cannot read the WAV file"):
        audio.read_wav(tmp_path / "junk.wav")


def test_dct_is_scipys_orthonormal_dct_ii():
    x = torch.randn(7, 40, dtype=torch.float64)
    ours = x @ audio.dct_matrix().T
    torch.testing.assert_close(ours, torch.from_numpy(scipy.fft.dct(x.numpy(), type=2, norm="ortho", axis=1)))
    assert audio.dct_matrix()[0, 0].item() == pytest.approx(math.sqrt(1 / 40))


def test_mel_scale_and_filters_by_hand():
    # Slaney: 200/3 Hz per mel below 1 kHz, then 27 mels per factor 6.4
    assert audio.hz_to_mel(600.0) == pytest.approx(9.0)
    assert audio.hz_to_mel(6400.0) == pytest.approx(15.0 + 27.0)
    assert audio.mel_to_hz(audio.hz_to_mel(3000.0)) == pytest.approx(3000.0)
    fb = audio.mel_filterbank(n_mels=3, n_fft=480, sr=16000, fmin=0.0, fmax=1000.0)
    # 5 edges equally spaced in mel from 0 to 15 mel: 0, 250, 500, 750, 1000 Hz (all linear)
    # filter 1 rises from 250 to 500 Hz and falls to 750; bin 9 is at 300 Hz: (300-250)/250 = 0.2,
    # times the area norm 2 / (750 - 250)
    assert fb.shape == (3, 241)
    assert fb[1, 9].item() == pytest.approx(0.2 * 2 / 500)
    assert fb[1, 15].item() == pytest.approx(2 / 500)  # 500 Hz: the peak
    assert fb[1, 25].item() == 0.0  # 833 Hz: outside


def _mfcc_by_hand(x: np.ndarray) -> np.ndarray:
    """numpy float64: reflect-padded frames, periodic Hann window, |rfft|^2, mel, log, DCT-II."""
    padded = np.pad(x, audio.N_FFT // 2, mode="reflect")
    frames = np.stack([padded[i * audio.HOP: i * audio.HOP + audio.N_FFT]
                       for i in range(1 + len(x) // audio.HOP)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(audio.N_FFT) / audio.N_FFT)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2                 # [frames, freq]
    mel = power @ audio.mel_filterbank().numpy().T                             # [frames, mels]
    logmel = np.where(mel > 0, np.log(np.where(mel > 0, mel, 1.0)), 0.0)
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=1)


def test_mfcc_matches_a_hand_computation_and_has_the_papers_shape():
    t = np.arange(audio.CLIP_SAMPLES) / audio.SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    ours = audio.MFCC()(torch.from_numpy(x))
    assert ours.shape == (101, 40)  # ATS Table 4: (101, 40)
    torch.testing.assert_close(ours, torch.from_numpy(_mfcc_by_hand(x)), rtol=1e-9, atol=1e-9)
    batch = audio.MFCC()(torch.from_numpy(np.stack([x, x[::-1].copy()])).float())
    assert batch.shape == (2, 101, 40) and batch.dtype == torch.float32
    torch.testing.assert_close(batch[0], ours.float(), rtol=1e-4, atol=1e-3)


def test_time_shift_noise_and_fit():
    x = torch.arange(1.0, 6.0)
    assert audio.time_shift(x, 2).tolist() == [3, 4, 5, 0, 0]  # earlier
    assert audio.time_shift(x, -2).tolist() == [0, 0, 1, 2, 3]  # later
    assert audio.add_noise(torch.tensor([0.5, 0.95]), torch.tensor([1.0, 1.0]), 0.1).tolist() == \
        pytest.approx([0.6, 1.0])
    assert audio.fit_clip(x, 7).tolist() == [1, 2, 3, 4, 5, 0, 0] and audio.fit_clip(x, 3).tolist() == [1, 2, 3]


# --------------------------------------------------------------------------- the archive


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


# --------------------------------------------------------------------------- the stand-in


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


# --------------------------------------------------------------------------- models


def test_networks_match_ats_table5():
    """RES 1.9M and DSCNN 59.8K at 35 classes (ATS Table 5); the exact counts as derived in
    benchmark/engine/models/speech.py."""
    with torch.device("meta"):
        res, ds = build_model("resnet15_128", 35), build_model("dscnn", 35)
    assert count_params(res) == 9 * 128 + 13 * 9 * 128 * 128 + 128 * 35 + 35 == 1_922_595
    assert round(count_params(res) / 1e6, 1) == 1.9
    conv1, block, fc = 40 * 96 + 96 + 2 * 96, 9 * 96 + 2 * 96 + 96 * 96 + 2 * 96, 96 * 35 + 35
    assert count_params(ds) == conv1 + 5 * block + fc == 59_843
    assert round(count_params(ds) / 1e3, 1) == 59.8
    assert model_info("dscnn")["input_shape"] == [1, 101, 40]


def test_resnet15_dilations_and_dscnn_same_padding():
    res = build_model("resnet15_128", 35)
    assert [c.dilation[0] for c in res.convs] == [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 16]
    assert all(not bn.affine for bn in res.bns)
    ds = build_model("dscnn", 35).eval()
    out = ds.extract(torch.randn(2, 1, 101, 40))
    assert out["stages"][0].shape == (2, 96, 26, 20)  # "SAME": ceil(ceil(101 / 2) / 2), ceil(40 / 2)
    assert out["logits"].shape == (2, 35)


# --------------------------------------------------------------------------- ATS's tau^2 option


@pytest.mark.parametrize("scale", ["student", "tau1", "tau2"])
def test_ats_tau_scale_squares_the_named_temperature(scale):
    torch.manual_seed(0)
    z_s, z_t, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 4])
    tau1, tau2, s_tau = 4.0, 2.0, 1.5
    loss = make_loss("ats", tau1=tau1, tau2=tau2, student_tau=s_tau, tau_scale=scale, ce_weight=0.3, kd_weight=0.7)
    taus = torch.full_like(z_t, tau2)
    taus[torch.arange(4), y] = tau1
    p_t = torch.softmax(z_t / taus, dim=1)
    soft_ce = -(p_t * torch.log_softmax(z_s / s_tau, dim=1)).sum(1).mean()
    factor = {"student": s_tau, "tau1": tau1, "tau2": tau2}[scale] ** 2
    want = 0.3 * torch.nn.functional.cross_entropy(z_s, y) + 0.7 * factor * soft_ce
    torch.testing.assert_close(loss(z_s, z_t, y), want)
    without = make_loss("ats", tau1=tau1, tau2=tau2, student_tau=s_tau, tau_scale=scale, tau_squared=False,
                        ce_weight=0.3, kd_weight=0.7)
    torch.testing.assert_close(without(z_s, z_t, y), 0.3 * torch.nn.functional.cross_entropy(z_s, y) + 0.7 * soft_ce)
    with pytest.raises(ValueError, match="tau_scale must be one of"):
        make_loss("ats", tau_scale="teacher")


# --------------------------------------------------------------------------- end to end


def test_a_dscnn_student_trains_on_the_stand_in(tmp_path):
    """One KD+ATS run of ats-table8's kind (DS-CNN from a teacher file, tau_scale tau1) for two
    short steps on the generated clips: the loader, the MFCCs, the models and the loss together."""
    import hashlib

    from benchmark.engine import config as C
    from benchmark.engine.train import ExecOptions, train_run
    from benchmark.store.layout import Store

    torch.manual_seed(0)
    path = tmp_path / "teacher.pt"
    torch.save(build_model("dscnn", 35).state_dict(), path)
    teacher = {"checkpoint": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "model": "dscnn"}
    cfg = C.resolve({
        "dataset": "gsc", "model": "dscnn", "teacher": teacher, "seed": 0,
        "data": {"source": "synthetic", "synthetic": {"per_class": 1, "test_per_class": 1, "image_size": 11}},
        "loss": {"name": "ats", "tau_scale": "tau1", "ce_weight": 0.1, "kd_weight": 0.9},
        "recipe": {"epochs": 1, "batch_size": 16, "steps_per_epoch": 2, "final_train_eval": False,
                   "init_scheme": "ats_code", "schedule": {"name": "cosine"}},
    })
    res = train_run(cfg, Store(tmp_path / "store"), ExecOptions(num_workers=0))
    assert res["status"] == "done"
    (epoch,) = Store(tmp_path / "store").metrics(res["id"])
    assert len(epoch["first_steps_loss"]) == 2 and all(math.isfinite(v) for v in epoch["first_steps_loss"])
    assert 0.0 <= epoch["test_top1"] <= 100.0


def test_speech_clips_reject_a_bad_wav(tmp_path):
    write_wav(tmp_path / "x.wav", [0, 1], rate=44100)
    with pytest.raises(BadInput, match="44100 Hz"):
        SpeechClips([str(tmp_path / "x.wav")], [0])[0]
