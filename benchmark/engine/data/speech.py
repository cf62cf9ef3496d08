"""Google Speech Commands v0.02 (ATS App. C.1): the official archive's split, its download, the
training augmentation, and the generated stand-in of the smoke profile.

The archive (speech_commands_v0.02.tar.gz, unpacked into ``<data root>/speech_commands_v0.02``)
holds one folder of 16 kHz mono WAV clips per word, ``_background_noise_/`` (six long noise
recordings), ``validation_list.txt`` and ``testing_list.txt`` (paths relative to the folder).
The official split: test = testing_list.txt (11,005 clips), validation = validation_list.txt
(9,981; not used: no run selects on it), train = every other clip of the 35 word folders (84,843).
Classes are the 35 words in sorted order (ATS App. C.1: "There are total 35 classes (35 words)").

Training augmentation (App. C.1, following [48] and honk's ``SpeechDataset``): the clip is padded
or cut to 1 s, shifted in time by Y samples, Y uniform in [-1600, 1600] (+-100 ms), then with
probability 0.8 a random 1-s window of a random background-noise file is added at volume 0.1
(clipped to [-1, 1]); the test clips get neither. Every draw comes from a generator seeded by
(seed, epoch, sample index): a sample's augmentation does not depend on the batch, the worker or
the other samples, so a resumed run sees the same inputs. Items are (MFCC [1, 101, 40], label).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.request

import torch

from benchmark.errors import BadInput

from . import audio
from .registry import check_split, get_spec

WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
         "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
         "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero")
NOISE_DIR = "_background_noise_"
URL = "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
# The archive's sha256 as torchaudio records it (torchaudio/datasets/speechcommands.py, _CHECKSUMS).
SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
SHIFT_MS = 100
NOISE_VOLUME = 0.1
NOISE_PROB = 0.8


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


class SpeechClips(torch.utils.data.Dataset):
    """Clips (WAV paths, or waveforms already in memory) -> (MFCC [1, 101, 40], label).

    ``augment``: the training augmentation (module docstring) with draws seeded by
    (seed, epoch, index); ``set_epoch`` sets (seed, epoch) before each epoch's loader is made."""

    def __init__(self, clips: list, labels: list[int], noise: list[torch.Tensor] | None = None,
                 augment: bool = False, dataset: str = "gsc", clip_samples: int = audio.CLIP_SAMPLES):
        self.clips, self.targets = clips, list(labels)
        self.length = clip_samples  # 1 s; shorter for the generated stand-in
        self.noise = [n for n in (noise or []) if n.numel() > clip_samples]
        self.augment, self.dataset = augment, dataset
        self.seed, self.epoch = 0, 0
        self.mfcc = audio.MFCC()

    def __len__(self) -> int:
        return len(self.targets)

    def set_epoch(self, seed: int, epoch: int) -> None:
        self.seed, self.epoch = seed, epoch

    def waveform(self, index: int) -> torch.Tensor:
        clip = self.clips[index]
        if isinstance(clip, str):
            clip = torch.from_numpy(audio.read_wav(clip, self.dataset))
        return audio.fit_clip(clip.float(), self.length)

    def plain(self) -> SpeechClips:
        """The same clips without augmentation (the training set as evaluated)."""
        return SpeechClips(self.clips, self.targets, None, False, self.dataset, self.length)

    def augmented(self, index: int) -> torch.Tensor:
        x = self.waveform(index)
        g = torch.Generator().manual_seed(_seed("speech-aug", self.seed, self.epoch, index))
        limit = audio.SAMPLE_RATE * SHIFT_MS // 1000
        x = audio.time_shift(x, int(torch.randint(-limit, limit + 1, (), generator=g)))
        if self.noise and float(torch.rand((), generator=g)) < NOISE_PROB:
            noise = self.noise[int(torch.randint(len(self.noise), (), generator=g))]
            start = int(torch.randint(noise.numel() - self.length, (), generator=g))
            x = audio.add_noise(x, noise[start:start + self.length].float(), NOISE_VOLUME)
        return x

    def __getitem__(self, index: int):
        x = self.augmented(index) if self.augment else self.waveform(index)
        return self.mfcc(x).unsqueeze(0), self.targets[index]


# --------------------------------------------------------------------------- the real archive


def _read_list(folder: str, name: str, dataset: str) -> set[str]:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise BadInput(path, dataset, f"not found; get the dataset with: {get_spec(dataset).how_to_get}")
    with open(path) as f:
        return {os.path.normpath(line.strip()) for line in f if line.strip()}


def gsc_index(folder: str, split: str, dataset: str = "gsc") -> list[tuple[str, int]]:
    """(WAV path, label) of a split, in sorted path order (the module docstring's split)."""
    check_split(split)
    held_out = _read_list(folder, "validation_list.txt", dataset) | _read_list(folder, "testing_list.txt", dataset)
    test = _read_list(folder, "testing_list.txt", dataset)
    samples = []
    for label, word in enumerate(WORDS):
        word_dir = os.path.join(folder, word)
        if not os.path.isdir(word_dir):
            raise BadInput(word_dir, dataset, "word folder not found; the copy is incomplete")
        for name in sorted(os.listdir(word_dir)):
            if not name.endswith(".wav"):
                continue
            rel = os.path.normpath(os.path.join(word, name))
            if (rel in test) if split == "test" else (rel not in held_out):
                samples.append((os.path.join(folder, rel), label))
    return samples


def noise_clips(folder: str, dataset: str = "gsc") -> list[torch.Tensor]:
    noise_dir = os.path.join(folder, NOISE_DIR)
    if not os.path.isdir(noise_dir):
        raise BadInput(noise_dir, dataset, "background-noise folder not found; the copy is incomplete")
    return [torch.from_numpy(audio.read_wav(os.path.join(noise_dir, f), dataset))
            for f in sorted(os.listdir(noise_dir)) if f.endswith(".wav")]


def load_speech(folder: str, split: str, augment: bool, dataset: str = "gsc") -> SpeechClips:
    samples = gsc_index(folder, split, dataset)
    paths, labels = zip(*samples) if samples else ((), ())
    return SpeechClips(list(paths), list(labels), noise_clips(folder, dataset) if augment else None, augment, dataset)


def download_gsc(folder: str, url: str = URL, sha256: str = SHA256) -> None:
    """Fetch the archive into ``folder``, check its sha256, unpack it there and delete it
    (the caller removes what a failed attempt left: sources.download)."""
    os.makedirs(folder, exist_ok=True)
    archive = os.path.join(folder, os.path.basename(url))
    urllib.request.urlretrieve(url, archive)
    digest = hashlib.sha256()
    with open(archive, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ValueError(f"the archive's sha256 {digest.hexdigest()} is not the official {sha256}")
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    os.remove(archive)


def speech_datasets(name: str, folder: str, augment: bool = True, synthetic: dict | None = None):
    """(train, test, train_eval) datasets of the real archive in ``folder``, or of the generated
    stand-in when ``synthetic`` ({seed, per_class, test_per_class, image_size = its frames}) is given."""
    if synthetic is not None:
        seed, frames = synthetic.get("seed") or 0, synthetic.get("image_size")  # image_size: the clip's frames
        train = synthetic_speech(name, "train", seed, synthetic.get("per_class"), frames)
        test = synthetic_speech(name, "test", seed, synthetic.get("test_per_class"), frames)
    else:
        train, test = load_speech(folder, "train", augment, name), load_speech(folder, "test", False, name)
    if not augment:
        train = train.plain()
    return train, test, train.plain()


# --------------------------------------------------------------------------- the generated stand-in


def synthetic_speech(name: str, split: str, seed: int = 0, per_class: int | None = None,
                     frames: int | None = None) -> SpeechClips:
    """Generated clips of ``frames`` MFCC frames (default: the registry's synthetic_size, 21 =
    0.2 s; the real clips have 101: a full second would make the CPU smoke run of ResNet15-128
    five times longer), one "word" per class: two tones at the class's own pitches, with a per-sample
    onset, length, pitch jitter and loudness, plus white noise. The MFCCs separate the classes by
    their pitches while onset, jitter and noise keep the samples of a class apart. Class pitches
    depend on (name, seed); samples on the split too. The training split gets the real data's
    augmentation, with two generated noise recordings standing in for ``_background_noise_``."""
    spec, split = get_spec(name), check_split(split)
    if per_class is None:
        per_class = spec.synthetic_train_per_class if split == "train" else spec.synthetic_test_per_class
    frames = frames or spec.synthetic_size
    if per_class < 1 or frames < 2:
        raise ValueError("per_class must be >= 1 and the clip at least 2 frames long")
    length = (frames - 1) * audio.HOP
    g = torch.Generator().manual_seed(_seed("speech-classes", name, seed))
    pitches = 150.0 * 2 ** (4 * torch.rand(spec.num_classes, 2, generator=g))  # 150 Hz - 2.4 kHz, log-uniform
    g = torch.Generator().manual_seed(_seed("speech-samples", name, seed, split))
    labels = torch.arange(spec.num_classes).repeat_interleave(per_class)
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    n, t = labels.numel(), torch.arange(length, dtype=torch.float32) / audio.SAMPLE_RATE
    freqs = pitches[labels] * (1 + 0.01 * torch.randn(n, 2, generator=g))
    duration = length / audio.SAMPLE_RATE
    onset = duration * 0.3 * torch.rand(n, 1, generator=g)
    envelope = ((t >= onset) & (t < onset + duration * (0.4 + 0.3 * torch.rand(n, 1, generator=g)))).float()
    tones = torch.sin(2 * torch.pi * freqs[:, :, None] * t).sum(1)
    x = 0.2 * (0.5 + torch.rand(n, 1, generator=g)) * envelope * tones + 0.01 * torch.randn(n, length, generator=g)
    noise = None
    if split == "train":
        noise = [0.3 * torch.randn(4 * length, generator=g) for _ in range(2)]
    return SpeechClips(list(x.clamp(-1, 1)), labels.tolist(), noise, augment=split == "train", dataset=name,
                       clip_samples=length)
