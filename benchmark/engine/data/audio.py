"""Speech features: 16-bit WAV files read with the standard library, and MFCCs computed with torch.

The features of ATS App. C.1 ("40 MFCC features for each 30ms window frame with a stride of
10ms"; inputs of (101, 40), Table 4) as the keyword-spotting code it follows computes them (Tang &
Lin's honk, [41] of the paper; its ``preprocess_audio``: librosa's ``melspectrogram`` with
n_fft 480, hop 160, 40 mel bands, fmin 20, fmax 4000, then the log of the positive entries and a
40 x 40 DCT):

    power[f, t] = |STFT(x)[f, t]|^2        Hann window of 480 samples (30 ms at 16 kHz), hop 160
                                           (10 ms), centred frames (reflect padding): 101 frames
    mel[m, t]   = sum_f W[m, f] power[f, t]  40 triangular filters on the Slaney mel scale,
                                           20 Hz .. 4 kHz, each of unit area ("slaney" norm)
    logmel      = log(mel) where mel > 0, else 0
    mfcc[t, k]  = sum_m D[k, m] logmel[m, t]   D: the orthonormal DCT-II (librosa.filters.dct)

torchaudio has no build for this torch, so nothing here needs it; the formulas are small enough
to be tested against a hand computation and scipy's DCT (tests/test_audio.py).
"""

from __future__ import annotations

import math
import wave

import numpy as np
import torch

from benchmark.errors import BadInput

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE  # every clip is padded or cut to 1 s
N_FFT = 480                 # 30 ms window
HOP = 160                   # 10 ms stride
N_MELS = 40
N_MFCC = 40
F_MIN, F_MAX = 20.0, 4000.0
FRAMES = 1 + CLIP_SAMPLES // HOP  # 101 (centred frames)


def read_wav(path: str, dataset: str = "gsc") -> np.ndarray:
    """A mono 16-bit PCM WAV file as float32 samples in [-1, 1) (int16 / 32768, as librosa reads it)."""
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            frames = f.readframes(f.getnframes())
    except (OSError, EOFError, wave.Error) as e:
        raise BadInput(str(path), dataset, f"cannot read the WAV file: {e}") from e
    if channels != 1 or width != 2 or rate != SAMPLE_RATE:
        raise BadInput(str(path), dataset, f"expected mono 16-bit PCM at {SAMPLE_RATE} Hz, got {channels} channel(s), "
                                           f"{8 * width}-bit, {rate} Hz")
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def fit_clip(samples: torch.Tensor, length: int = CLIP_SAMPLES) -> torch.Tensor:
    """Zero-pad at the end or cut to ``length`` samples (honk pads short clips at the end)."""
    n = samples.shape[-1]
    if n >= length:
        return samples[..., :length]
    return torch.nn.functional.pad(samples, (0, length - n))


def hz_to_mel(f):
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((math.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                   fmin: float = F_MIN, fmax: float = F_MAX) -> torch.Tensor:
    """[n_mels, n_fft // 2 + 1] float64: triangles between n_mels + 2 points equally spaced in mel,
    each scaled by 2 / (its upper - lower edge in Hz) so that it has unit area (Slaney norm)."""
    bins = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return torch.from_numpy(weights)


def dct_matrix(n_out: int = N_MFCC, n_in: int = N_MELS) -> torch.Tensor:
    """The orthonormal DCT-II, [n_out, n_in] float64: D[k, m] = s_k cos(pi k (2m + 1) / (2 n_in)),
    s_0 = sqrt(1 / n_in), s_k = sqrt(2 / n_in) (scipy.fft.dct(norm="ortho"), librosa.filters.dct)."""
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    m = torch.arange(n_in, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * k * (2 * m + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] = math.sqrt(1.0 / n_in)
    return basis


class MFCC:
    """Waveforms [..., samples] -> MFCCs [..., frames, N_MFCC] (the module docstring's formula), in
    the waveform's dtype (float64 in the tests, float32 in training)."""

    def __init__(self):
        self.filters = mel_filterbank()
        self.dct = dct_matrix()
        self.window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        shape = x.shape[:-1]
        spec = torch.stft(x.reshape(-1, x.shape[-1]), N_FFT, hop_length=HOP, win_length=N_FFT,
                          window=self.window.to(dtype), center=True, pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()           # [B, freq, frames]
        mel = torch.matmul(self.filters.to(dtype), power)           # [B, mels, frames]
        logmel = torch.where(mel > 0, torch.log(mel.clamp_min(torch.finfo(dtype).tiny)), torch.zeros_like(mel))
        out = torch.matmul(self.dct.to(dtype), logmel).transpose(1, 2)  # [B, frames, mfcc]
        return out.reshape(*shape, out.shape[1], out.shape[2])


def time_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Shift a clip by ``shift`` samples, zero-filled (honk's ``_timeshift_audio``): a positive
    shift moves the sound earlier (drops its first samples), a negative one later."""
    if shift == 0:
        return x
    if shift > 0:
        return torch.nn.functional.pad(x[shift:], (0, shift))
    return torch.nn.functional.pad(x[:shift], (-shift, 0))


def add_noise(x: torch.Tensor, noise: torch.Tensor, volume: float) -> torch.Tensor:
    """clip(volume * noise + x, -1, 1) (honk: ``np.clip(a * bg_noise + data, -1, 1)``, a = 0.1)."""
    return torch.clamp(x + volume * noise, -1.0, 1.0)
