"""Google Speech Commands' audio (benchmark/engine/data/audio.py): the WAV reader, the MFCC features
(ATS Table 8), the time shift and noise of the augmentation."""

import math

import numpy as np
import pytest
import scipy.fft
import torch

from benchmark.engine.data import audio
from benchmark.errors import BadInput
from tests.helpers import write_wav


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
