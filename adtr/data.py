"""MVTec-AD-layout data: listing, validation and loading of images and masks.

The layout (MVTec-AD's, also written by ``adtr.synth``)::

    <root>/<category>/train/good/*.png
    <root>/<category>/test/good/*.png
    <root>/<category>/test/<defect>/*.png
    <root>/<category>/ground_truth/<defect>/<stem>_mask.png
    <root>/<category>/twins/<defect>/<name>   (only ``adtr.synth`` writes these)

``twins`` holds the defect-free twin of each anomalous test image (the same image before
its defect was drawn in); the split readers never look there, :func:`twin_samples` does.

Nothing is ever downloaded. Every problem is reported as a ``DataError`` naming the
file or folder and what was expected; nothing is silently skipped, because a skipped
test image changes the metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from adtr.errors import DataError
from adtr.records import stamps_digest

MVTEC_CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

EXPECTED_TREE = (
    "expected <root>/<category>/train/good/*.png, <root>/<category>/test/<defect>/*.png and "
    "<root>/<category>/ground_truth/<defect>/<name>_mask.png (the MVTec-AD layout; "
    "`adtr synth --out DIR` writes an offline data set in it)"
)


@dataclass(frozen=True)
class Sample:
    """One image of a split: its path, label (1 = anomalous), defect kind and mask path."""

    image: Path
    label: int
    defect: str
    mask: Path | None


def category_dir(root: str | Path, category: str) -> Path:
    """The category folder, or a DataError that says what exists and what was expected."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist; {EXPECTED_TREE}")
    folder = root / category
    if not folder.is_dir():
        available = available_categories(root)
        hint = f"categories found there: {available}" if available else "it has no categories"
        raise DataError(f"category {category!r} not found in {root} ({hint}); {EXPECTED_TREE}")
    return folder


def available_categories(root: str | Path) -> list[str]:
    """Sub-folders of ``root`` that have a ``train/good`` folder."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "train" / "good").is_dir())


def dataset_name(root: str | Path) -> tuple[str, bool]:
    """(name, synthetic?) of a data root: ``adtr synth`` leaves a ``synth.json`` behind."""
    root = Path(root)
    if (root / "synth.json").is_file():
        return "adtr-synthetic (scikit-image photographs, generated defects)", True
    return root.name, False


def _images_in(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise DataError(
            f"{folder} holds files that are not images: {others[:5]}; expected only "
            f"{', '.join(IMAGE_SUFFIXES)} files"
        )
    return files


def list_samples(root: str | Path, category: str, split: str) -> list[Sample]:
    """All samples of ``split`` ("train" or "test"), with masks for anomalous test images."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = category_dir(root, category)
    split_dir = folder / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} does not exist; {EXPECTED_TREE}")
    if split == "train":
        good = split_dir / "good"
        _check_no_stray_images(split_dir, {good}, "train/good")
        if not good.is_dir() or not _images_in(good):
            raise DataError(f"{good} has no images; training needs normal images there")
        return [Sample(p, 0, "good", None) for p in _images_in(good)]
    defect_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
    _check_no_stray_images(split_dir, set(defect_dirs), "test/<defect>")
    samples = []
    for defect_dir in defect_dirs:
        for image in _images_in(defect_dir):
            if defect_dir.name == "good":
                samples.append(Sample(image, 0, "good", None))
                continue
            mask = folder / "ground_truth" / defect_dir.name / f"{image.stem}_mask.png"
            if not mask.is_file():
                raise DataError(f"anomalous test image {image} has no mask; expected {mask}")
            samples.append(Sample(image, 1, defect_dir.name, mask))
    if not samples:
        raise DataError(f"{split_dir} has no images; {EXPECTED_TREE}")
    _check_no_orphan_masks(folder, {s.mask for s in samples if s.mask is not None})
    if not any(s.label for s in samples) or all(s.label for s in samples):
        raise DataError(
            f"{split_dir} must hold both normal (test/good) and anomalous images to be "
            "evaluated; found only one kind"
        )
    return samples


def _check_no_stray_images(split_dir: Path, read: set[Path], where: str) -> None:
    """An image outside the folders a split reads (``test/x.png``, ``train/bad/x.png``,
    ``test/hole/more/x.png``) would be silently left out of training or evaluation."""
    for path in sorted(split_dir.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(split_dir).parts)
        if (path.suffix.lower() in IMAGE_SUFFIXES and path.parent not in read and not hidden
                and path.is_file()):
            raise DataError(f"image {path} is not in a folder that is read: {split_dir.name} "
                            f"images belong directly in {where}; {EXPECTED_TREE}")


def _check_no_orphan_masks(folder: Path, used: set[Path]) -> None:
    """A mask whose image is missing means a lost test image, which would change the metrics."""
    truth = folder / "ground_truth"
    if not truth.is_dir():
        return
    for mask in sorted(truth.glob("*/*_mask.png")):
        if mask not in used:
            image = folder / "test" / mask.parent.name / (mask.name[:-len("_mask.png")] + ".png")
            raise DataError(f"mask {mask} has no test image; expected {image}")


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    return image


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit single-channel images scaled to 8 bit by their own dynamic range."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return image


def load_image(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB float32 array (3, size, size), ImageNet-normalised, and the original (W, H)."""
    image = _open(path)
    original = image.size
    rgb = _to_8bit(image).convert("RGB").resize((size, size), Image.BILINEAR)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    array = (array - IMAGENET_MEAN) / IMAGENET_STD
    return array.transpose(2, 0, 1).copy(), original


def load_mask(path: Path, size: int, image_size: tuple[int, int], image_path: Path) -> np.ndarray:
    """Boolean (size, size) mask, binarised at > 0, resized with nearest neighbour."""
    mask = _open(path)
    if mask.size != image_size:
        raise DataError(
            f"mask {path} is {mask.size[0]}x{mask.size[1]} but its image {image_path} is "
            f"{image_size[0]}x{image_size[1]}; a mask must have its image's size"
        )
    binary = _nonzero(mask)
    resized = Image.fromarray(binary.astype(np.uint8) * 255).resize((size, size), Image.NEAREST)
    return np.asarray(resized) > 0


def _nonzero(mask: Image.Image) -> np.ndarray:
    """True where any colour channel is > 0, at the mask's own bit depth (alpha ignored).

    Binarising before any conversion keeps small values: a 16-bit mask of 0/1 scaled to
    8 bit, or a colour mask turned grey, would round its defect pixels to 0.
    """
    if mask.mode not in ("1", "L", "I", "F") and not mask.mode.startswith("I;16"):
        mask = mask.convert("RGB")  # palette, alpha and colour masks: their colours count
    array = np.asarray(mask)
    return array > 0 if array.ndim == 2 else (array > 0).any(axis=2)


def load_masks(samples: list[Sample], size: int) -> np.ndarray:
    """Boolean masks (N, size, size) at the input size; all-False for normal images."""
    masks = np.zeros((len(samples), size, size), dtype=bool)
    for i, sample in enumerate(samples):
        if sample.mask is not None:
            with _open(sample.image) as image:
                original = image.size
            masks[i] = load_mask(sample.mask, size, original, sample.image)
    return masks


def samples_digest(samples: list[Sample]) -> str:
    """The identity of the samples' image and mask files (path, size, modification time:
    what the feature cache keys on too). Regenerated or replaced files change it."""
    return stamps_digest([path for s in samples for path in (s.image, s.mask) if path])


def describe_root(root: str | Path, category: str, train: list[Sample] | None = None,
                  test: list[Sample] | None = None) -> dict:
    """What a run record says about its data: path, name, synthetic or real, counts.

    ``train`` and ``test`` are the category's samples where the caller has listed them."""
    name, synthetic = dataset_name(root)
    train = list_samples(root, category, "train") if train is None else train
    test = list_samples(root, category, "test") if test is None else test
    info = {
        "path": str(Path(root).resolve()),
        "name": name,
        "synthetic": synthetic,
        "category": category,
        "n_train": len(train),
        "n_test_good": sum(1 for s in test if s.label == 0),
        "n_test_anomalous": sum(1 for s in test if s.label == 1),
        "defects": sorted({s.defect for s in test if s.label == 1}),
    }
    if synthetic:
        info["generator"] = json.loads((Path(root) / "synth.json").read_text())
    return info


TWINS_DIR = "twins"


def twin_samples(root: str | Path, category: str, samples: list[Sample]) -> list[Sample]:
    """The defect-free twin of each test sample, in the same order.

    A good image is its own twin (the sample is returned as is). An anomalous image
    ``test/<defect>/<name>`` has its twin at ``<root>/<category>/twins/<defect>/<name>``,
    returned as a normal sample (label 0, defect "good", no mask: nothing in it is
    anomalous); the defective sample at the same index keeps the mask of what differs.
    Raises DataError naming the missing file when a twin is not there (only
    ``adtr synth`` writes twins; real MVTec-AD has none), and for an anomalous sample that
    does not lie in this category's ``test/<defect>`` folder.
    """
    folder = category_dir(root, category)
    twins = []
    for sample in samples:
        if sample.label == 0:
            twins.append(sample)
            continue
        twin = _twin_path(folder, sample)
        if not twin.is_file():
            raise DataError(f"anomalous test image {sample.image} has no defect-free twin; "
                            f"expected {twin} (only data written by `adtr synth` has twins)")
        twins.append(Sample(twin, 0, "good", None))
    return twins


def has_twins(root: str | Path, category: str) -> bool:
    """Whether every anomalous test image of ``category`` has its twin file.

    False for folders not written by ``adtr synth`` (real MVTec-AD); the test split must
    be readable (DataError from :func:`list_samples` otherwise).
    """
    folder = category_dir(root, category)
    anomalous = [s for s in list_samples(root, category, "test") if s.label == 1]
    return all(_twin_path(folder, s).is_file() for s in anomalous)


def _twin_path(folder: Path, sample: Sample) -> Path:
    """Where the twin of an anomalous test sample of the category ``folder`` lies."""
    expected_dir = folder / "test" / sample.defect
    if sample.image.parent.resolve() != expected_dir.resolve():
        raise DataError(f"anomalous sample {sample.image} is not in {expected_dir}; "
                        "twins exist only for test samples of this category "
                        "(list_samples(root, category, 'test'))")
    return folder / TWINS_DIR / sample.defect / sample.image.name
