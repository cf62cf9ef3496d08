"""What each dataset is: class count, input size, normalisation, official split sizes, where it lives.

One ``DatasetSpec`` per dataset the papers use. Everything else in ``benchmark.engine.data`` reads its
facts from here, so a number is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

# ImageNet statistics: torchvision's pretrained models and the LS-KD/ATS code for CUB, Dogs
# and ImageNet normalise with these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    image_size: int  # side of the training input (after crop)
    kind: str  # "array": whole split held as uint8 [N,H,W,3]; "folder": image files via load_folder;
    # "audio": WAV clips turned into MFCC inputs [1, 101, 40] (speech.py)
    mean: tuple[float, float, float]  # default normalisation (the dataset's usual constants)
    std: tuple[float, float, float]
    train_size: int  # official split sizes
    test_size: int
    root_subdir: str  # the dataset lives in <root>/<root_subdir>
    how_to_get: str  # one line for `runner.py data list` and error messages
    downloadable: bool = False  # torchvision can download it (`runner.py data download NAME`)
    # The generated stand-in (smoke profile). 224-px datasets are generated at 64 px, the smallest input every model of the zoo takes (AlexNet included): a 224-px
    # stand-in would make the CPU smoke run slow for no gain; reports say the size was reduced.
    synthetic_size: int = 32
    synthetic_train_per_class: int = 10
    synthetic_test_per_class: int = 4
    test_split_note: str = "official test split"

    @property
    def splits(self) -> tuple[str, str]:
        return ("train", "test")


_CIFAR_NOTE = "python runner.py data download {name}  (torchvision; https://www.cs.toronto.edu/~kriz/cifar.html)"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="cifar10",
            num_classes=10,
            image_size=32,
            kind="array",
            # per-channel mean and std of the 50k training images (the often-copied std
            # (0.2023, 0.1994, 0.2010) is not the dataset's std; recipes may override it)
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            train_size=50000,
            test_size=10000,
            root_subdir="cifar-10-batches-py",  # the folder torchvision's archive unpacks to
            how_to_get=_CIFAR_NOTE.format(name="cifar10"),
            downloadable=True,
        ),
        DatasetSpec(
            name="cifar100",
            num_classes=100,
            image_size=32,
            kind="array",
            # the constants of the RepDistiller code base (CRD), whose CIFAR-100 model zoo these
            # papers use
            mean=(0.5071, 0.4867, 0.4408),
            std=(0.2675, 0.2565, 0.2761),
            train_size=50000,
            test_size=10000,
            root_subdir="cifar-100-python",
            how_to_get=_CIFAR_NOTE.format(name="cifar100"),
            downloadable=True,
        ),
        DatasetSpec(
            name="svhn",
            num_classes=10,
            image_size=32,
            kind="array",
            # the commonly used SVHN train-set statistics
            mean=(0.4377, 0.4438, 0.4728),
            std=(0.1980, 0.2010, 0.1970),
            train_size=73257,  # train_32x32.mat; the 'extra' set is not used by the papers
            test_size=26032,
            root_subdir="svhn",
            how_to_get="python runner.py data download svhn  (torchvision; http://ufldl.stanford.edu/housenumbers/)",
            downloadable=True,
        ),
        DatasetSpec(
            name="tinyimagenet",
            num_classes=200,
            image_size=64,
            kind="array",
            # the commonly used TinyImageNet train-set statistics
            mean=(0.4802, 0.4481, 0.3975),
            std=(0.2302, 0.2265, 0.2262),
            train_size=100000,
            test_size=10000,  # the labelled val split serves as the test split, as the papers do
            root_subdir="tiny-imagenet-200",
            how_to_get="download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into the data root",
            synthetic_size=64,
            test_split_note="the official val split (val/ + val_annotations.txt); the test/ folder has no labels",
        ),
        DatasetSpec(
            name="cub",
            synthetic_size=64,
            num_classes=200,
            image_size=224,
            kind="folder",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            train_size=5994,
            test_size=5794,
            root_subdir="CUB_200_2011",
            how_to_get=(
                "download CUB_200_2011.tgz from https://data.caltech.edu/records/65de6-vp158 "
                "and extract it into the data root"
            ),
        ),
        DatasetSpec(
            name="dogs",
            synthetic_size=64,
            num_classes=120,
            image_size=224,
            kind="folder",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            train_size=12000,
            test_size=8580,
            root_subdir="stanford_dogs",
            how_to_get=(
                "download images.tar and lists.tar from http://vision.stanford.edu/aditya86/ImageNetDogs/ "
                "and extract both into <data root>/stanford_dogs/ (giving Images/, train_list.mat, test_list.mat)"
            ),
        ),
        DatasetSpec(
            name="imagenet",
            synthetic_size=64,
            num_classes=1000,
            image_size=224,
            kind="folder",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            train_size=1281167,
            test_size=50000,  # ILSVRC2012 val serves as the test split, as the papers do
            root_subdir="imagenet",
            how_to_get=(
                "ILSVRC2012 from https://image-net.org (account needed): put train/<wnid>/*.JPEG and "
                "val/<wnid>/*.JPEG under <data root>/imagenet/, or put ILSVRC2012_img_train.tar, "
                "ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz there and run "
                "`python runner.py data download imagenet` to unpack them with torchvision"
            ),
            synthetic_train_per_class=2,  # 1000 classes: keep the smoke stand-in small
            synthetic_test_per_class=1,
            test_split_note="the official ILSVRC2012 val split",
        ),
        DatasetSpec(
            name="gsc",
            num_classes=35,  # ATS App. C.1: "There are total 35 classes (35 words)"
            image_size=101,  # MFCC frames (the input is 101 x 40, ATS Table 4); nominal side for the cost model
            kind="audio",
            mean=(0.0, 0.0, 0.0),  # MFCCs are not normalised (honk feeds them as computed)
            std=(1.0, 1.0, 1.0),
            train_size=84843,  # the official split of v0.02: clips in neither list file
            test_size=11005,  # testing_list.txt
            root_subdir="speech_commands_v0.02",
            how_to_get=(
                "python runner.py data download gsc  (speech_commands_v0.02.tar.gz from "
                "https://storage.googleapis.com/download.tensorflow.org/data/, sha256-checked)"
            ),
            downloadable=True,
            # the stand-in's clips: 21 MFCC frames (0.2 s), since ResNet15-128 costs 15 GFLOPs per
            # 1-s clip (3 GFLOPs per stand-in clip); reports say the size was reduced
            synthetic_size=21,
            test_split_note="testing_list.txt of v0.02 (validation_list.txt is not used)",
        ),
    ]
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    return split
