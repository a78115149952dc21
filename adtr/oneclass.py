"""The data sets of the one-class setting (the paper's CIFAR-10 table): one class normal,
the rest anomalous.

Protocol (UniAD's for CIFAR-10, which the paper follows): for each class c, train on the
training images of c only; test on the whole test split, every image of another class
being an anomaly; the image score is the *mean* of the anomaly map; report image AUROC
per class and the mean over classes. There are no pixel labels here. ``adtr.pipeline``
runs one class (``one_class_data``), ``adtr.experiments`` the notebook's grid.

Data sets (images in memory as uint8 RGB arrays, never downloaded):
- ``cifar10(root)``: torchvision's python format in a local folder;
- ``cifar100(root)``: the same for CIFAR-100, the paper's external anomalies for ADTR+;
- ``digits()``: the offline stand-in -- scikit-learn's bundled 8x8 handwritten digits
  (1,797 images, 10 classes), split in half per class with a fixed seed;
- ``skimage_patches()``: external anomalies for the stand-in -- 8x8 grey patches of the
  natural photographs bundled with scikit-image, scaled like the digits.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adtr.errors import AdtrError, DataError

DIGITS = "digits"
CIFAR10 = "cifar10"
DATASETS = (DIGITS, CIFAR10)
#: The external anomalies each data set's ADTR+ uses.
EXTERNAL = {DIGITS: "skimage-patches", CIFAR10: "cifar100"}


@dataclass
class ImageSet:
    """A labelled image set with a train and a test split (uint8 RGB, N x h x w x 3)."""

    name: str
    source: str
    stand_in: bool
    classes: list[str]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "stand_in": self.stand_in,
                "classes": self.classes, "n_train": len(self.train_images),
                "n_test": len(self.test_images),
                "image_shape": list(self.train_images.shape[1:])}


@dataclass
class OneClassSplit:
    """Training images of the normal class; the whole test split, 1 = another class."""

    normal_class: int
    train_images: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def one_class_split(dataset: ImageSet, normal_class: int) -> OneClassSplit:
    if not 0 <= normal_class < len(dataset.classes):
        raise AdtrError(f"normal class {normal_class} out of range for {dataset.name}; "
                        f"choose 0..{len(dataset.classes) - 1} ({dataset.classes})")
    return OneClassSplit(
        normal_class=normal_class,
        train_images=dataset.train_images[dataset.train_labels == normal_class],
        test_images=dataset.test_images,
        test_labels=(dataset.test_labels != normal_class).astype(np.int64),
    )


def _grey_to_rgb(images: np.ndarray, top: float) -> np.ndarray:
    """Grey images (N, h, w) with values in [0, top] -> uint8 RGB (N, h, w, 3)."""
    scaled = np.clip(np.round(images * (255.0 / top)), 0, 255).astype(np.uint8)
    return np.repeat(scaled[..., None], 3, axis=-1)


def digits(seed: int = 0) -> ImageSet:
    """scikit-learn's handwritten digits, half of each class for training (fixed seed)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = _grey_to_rgb(bunch.images, top=16.0)
    train_x, test_x, train_y, test_y = train_test_split(
        images, bunch.target, test_size=0.5, stratify=bunch.target, random_state=seed)
    return ImageSet(DIGITS, "sklearn.datasets.load_digits", True,
                    [str(c) for c in range(10)], train_x, train_y, test_x, test_y)


def skimage_patches(count: int = 1000, seed: int = 0) -> np.ndarray:
    """``count`` 8x8 grey patches of scikit-image's photographs, scaled like the digits.

    Random 32x32 crops, averaged down to 8x8 and stretched to the full 0..255 range.
    """
    from skimage import color, data

    photos = [data.camera(), data.coins(), data.moon(), data.page(), data.text(),
              color.rgb2gray(data.astronaut()) * 255, color.rgb2gray(data.coffee()) * 255,
              color.rgb2gray(data.chelsea()) * 255, color.rgb2gray(data.rocket()) * 255]
    rng = np.random.default_rng(seed)
    patches = np.empty((count, 8, 8))
    for i in range(count):
        photo = np.asarray(photos[rng.integers(len(photos))], dtype=np.float64)
        top = rng.integers(0, photo.shape[0] - 32 + 1)
        left = rng.integers(0, photo.shape[1] - 32 + 1)
        crop = photo[top:top + 32, left:left + 32].reshape(8, 4, 8, 4).mean(axis=(1, 3))
        low, high = crop.min(), crop.max()
        patches[i] = (crop - low) / max(high - low, 1e-6)
    return _grey_to_rgb(patches, top=1.0)


def _cifar_folder(root: str | Path, folder: str, files: tuple[str, ...], name: str) -> Path:
    root = Path(root).expanduser()
    base = root if root.name == folder else root / folder
    missing = [f for f in files if not (base / f).is_file()]
    if missing:
        raise DataError(
            f"{name} not found: {base} lacks {missing}. Expected torchvision's python format, "
            f"{root}/{folder}/{{{', '.join(files)}}}; it is never downloaded here (fetch it "
            f"where there is internet, e.g. torchvision.datasets.{name.replace('-', '')}"
            f"(root, download=True), and copy the folder)")
    return base


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except Exception as error:
        raise DataError(f"cannot read CIFAR batch {path}: {error}") from None
    if len(images) != len(labels):
        raise DataError(f"CIFAR batch {path} has {len(images)} images but {len(labels)} labels")
    return images.transpose(0, 2, 3, 1), labels


def cifar10(root: str | Path) -> ImageSet:
    """CIFAR-10 from ``root`` (the folder holding ``cifar-10-batches-py``, or that folder)."""
    files = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
    base = _cifar_folder(root, "cifar-10-batches-py", files, "CIFAR-10")
    parts = [_read_batch(base / f"data_batch_{i}", b"labels") for i in range(1, 6)]
    test_x, test_y = _read_batch(base / "test_batch", b"labels")
    with open(base / "batches.meta", "rb") as handle:
        names = [n.decode() for n in pickle.load(handle, encoding="bytes")[b"label_names"]]
    return ImageSet(CIFAR10, str(base.resolve()), False, names,
                    np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                    test_x, test_y)


def cifar100(root: str | Path, count: int = 5000, seed: int = 0) -> np.ndarray:
    """``count`` random CIFAR-100 training images (the paper's external anomalies)."""
    base = _cifar_folder(root, "cifar-100-python", ("train", "test", "meta"), "CIFAR-100")
    images, _ = _read_batch(base / "train", b"fine_labels")
    pick = np.random.default_rng(seed).choice(len(images), size=min(count, len(images)),
                                              replace=False)
    return images[np.sort(pick)]


def load_dataset(name: str, cifar_root: str | None) -> ImageSet:
    if name == DIGITS:
        return digits()
    if name == CIFAR10:
        if cifar_root is None:
            raise DataError("dataset 'cifar10' needs cifar_root: the folder holding "
                            "cifar-10-batches-py")
        return cifar10(cifar_root)
    raise AdtrError(f"unknown one-class dataset {name!r}; choose one of {list(DATASETS)}")


def load_external(name: str, cifar100_root: str | None) -> np.ndarray:
    if name == DIGITS:
        return skimage_patches()
    if cifar100_root is None:
        raise DataError("ADTR+ on CIFAR-10 needs cifar100_root: the folder holding "
                        "cifar-100-python (its images are the external anomalies)")
    return cifar100(cifar100_root)
