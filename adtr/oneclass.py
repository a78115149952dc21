"""The one-class setting of the paper's CIFAR-10 table: one class normal, the rest anomalous.

Protocol (UniAD's for CIFAR-10, which the paper follows): for each class c, train on the
training images of c only; test on the whole test split, every image of another class
being an anomaly; the image score is the *mean* of the anomaly map; report image AUROC
per class and the mean over classes. There are no pixel labels here.

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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adtr import metrics, plus, profiles, train
from adtr.backbones import build_extractor
from adtr.errors import AdtrError, DataError
from adtr.experiments import run_all, run_key, shared_run
from adtr.features import cached_array_features, default_cache_dir, extractor_id
from adtr.model import anomaly_map
from adtr.records import environment, run_record, write_json

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


# --- runs ---------------------------------------------------------------------------------


@dataclass
class OneClassSetup:
    """A one-class notebook's resolved parameters and data."""

    base: profiles.RunConfig
    dataset: ImageSet
    external: np.ndarray
    external_name: str
    classes: list[int]
    seeds: list[int]
    results_dir: Path
    runs_dir: Path

    @property
    def profile(self) -> str:
        return self.base.profile

    def describe(self) -> dict[str, Any]:
        return {"profile": self.profile, "config": self.base.to_dict(),
                "dataset": self.dataset.describe(), "classes": self.classes,
                "seeds": self.seeds, "external_anomalies": {
                    "name": self.external_name, "n_images": len(self.external)}}


def setup(profile: str = "cpu", dataset: str | None = None, cifar_root: str | None = None,
          cifar100_root: str | None = None, classes: list[int] | None = None,
          backbone: str | None = None, epochs: int | None = None,
          image_size: int | None = None, seeds: list[int] | None = None,
          device: str | None = None, results_dir: str = "results", runs_dir: str = "runs",
          **overrides: Any) -> OneClassSetup:
    """Resolve the one-class notebook's parameters (``None`` = the profile's value).

    The ``paper`` profile runs CIFAR-10 from ``cifar_root`` (CIFAR-100 from ``cifar100_root``
    as external anomalies); the offline profiles run the digits stand-in.
    """
    from adtr.experiments import EXPERIMENT_SEEDS, absolute

    name = dataset or (CIFAR10 if profile == "paper" else DIGITS)
    if name not in DATASETS:
        raise AdtrError(f"unknown one-class dataset {name!r}; choose one of {list(DATASETS)}")
    base = profiles.resolve(profile, "oneclass", backbone=backbone, epochs=epochs,
                            image_size=image_size, device=device, **overrides)
    images = load_dataset(name, cifar_root)
    external = load_external(name, cifar100_root)
    base = profiles.with_overrides(base, data_root=images.source,
                                   plus_anomalies=EXTERNAL[name])
    chosen = list(range(len(images.classes))) if classes is None else [int(c) for c in classes]
    for normal in chosen:
        one_class_split(images, normal)  # refuses a class out of range before any work
    seeds = list(seeds) if seeds else EXPERIMENT_SEEDS[profile]
    return OneClassSetup(base, images, external, EXTERNAL[name], chosen, seeds,
                         absolute(results_dir), absolute(runs_dir))


def _run_dir(setup: OneClassSetup, config: profiles.RunConfig, normal: int) -> Path:
    key = run_key(config, f"{setup.dataset.name} class {normal}", (Path(__file__),))
    return (setup.runs_dir / config.profile / f"oneclass-{setup.dataset.name}" /
            f"class-{normal}" / f"{config.variant}-{key}")


def run_class(setup: OneClassSetup, normal: int, seed: int, variant: str = "adtr",
              progress: bool = False, wait: bool = True) -> dict[str, Any] | None:
    """Train (or read back) the model of one normal class; image AUROC on the test split.

    ``wait=False``: None at once when another notebook is training this run now."""
    config = profiles.with_overrides(setup.base, seed=seed, variant=variant)
    base_checkpoint = None
    if variant == "adtr_plus":
        base = run_class(setup, normal, seed, "adtr", progress, wait)
        if base is None:
            return None
        base_checkpoint = Path(base["record"]["checkpoint"])
    def compute(out: Path) -> dict[str, Any]:
        result = _train_class(setup, config, normal, out, base_checkpoint, progress)
        write_json(out / "metrics.json", result)
        return result

    return shared_run(_run_dir(setup, config, normal), config, compute, wait)


def _train_class(setup: OneClassSetup, config: profiles.RunConfig, normal: int, out: Path,
                 base_checkpoint: Path | None, progress: bool) -> dict[str, Any]:
    started = time.perf_counter()
    device = train.pick_device(config.device)
    extractor = build_extractor(config.backbone, config.stages, config.image_size,
                                config.feature_stride, config.weights)
    ident = extractor_id(extractor, config.backbone, config.stages, config.image_size,
                         config.feature_stride)
    split = one_class_split(setup.dataset, normal)
    features = {
        part: cached_array_features(extractor, ident, images, config.image_size, device,
                                    default_cache_dir(), progress, desc=f"{part} features")
        for part, images in (("train", split.train_images), ("test", split.test_images))
    }
    category = f"{setup.dataset.name} class {setup.dataset.classes[normal]}"
    extra: dict[str, Any] = {}
    if base_checkpoint is None:
        model, standardizer, history = train.train(config, category, features["train"], out,
                                                   device, progress)
    else:
        def objective(standardizer: torch.nn.Module) -> tuple[plus.ExternalLoss, dict]:
            external = cached_array_features(extractor, ident, setup.external,
                                             config.image_size, device, default_cache_dir(),
                                             progress, desc="external anomaly features")
            return (plus.ExternalLoss(standardizer(external), config, device),
                    {"kind": "external", "labels": "image", "loss": "L_img",
                     "name": setup.external_name, "n_images": len(setup.external)})

        model, standardizer, history, extra = plus.fine_tune(
            config, category, features["train"], base_checkpoint, out, device, objective,
            progress)
    diff = train.differences(model, standardizer, features["test"], device,
                             precision=config.precision)
    scores = anomaly_map(diff, torch.zeros_like(diff)).mean(dim=(1, 2)).numpy()
    auroc = metrics.image_auroc(split.test_labels, scores)
    record = run_record(
        experiment="oneclass", variant=config.variant, category=category,
        metrics={"image_auroc": auroc},
        config=config.to_dict(), data={**setup.dataset.describe(), "normal_class": normal,
                                       "n_train_used": len(split.train_images)},
        backbone={"name": config.backbone, "weights": extractor.weights_source,
                  "stages": list(config.stages), "channels": int(features["train"].shape[1])},
        seed=config.seed, environment=environment(str(device)), score="mean of the anomaly map",
        epochs_trained=len(history["epoch_loss"]), loss_history=history["epoch_loss"],
        wall_time_s=round(time.perf_counter() - started, 2),
        checkpoint=str(out / "checkpoint.pt"), **extra)
    return {"image_auroc": auroc, "normal_class": normal, "record": record}


def run_grid(setup: OneClassSetup, variants: tuple[str, ...] = ("adtr", "adtr_plus"),
             progress: bool = True) -> tuple[Any, list[dict]]:
    """Every (variant, class, seed): a table of image AUROC and the runs' records."""
    import pandas as pd

    jobs = [(v, c, s) for v in variants for c in setup.classes for s in setup.seeds]
    results = run_all(jobs, lambda job, wait: run_class(setup, job[1], job[2], job[0],
                                                        wait=wait), progress)
    rows, records = [], []
    for (variant, normal, seed), result in zip(jobs, results, strict=True):
        record = result["record"]
        rows.append({"variant": variant, "class": setup.dataset.classes[normal],
                     "seed": seed, "image_auroc": result["image_auroc"],
                     "wall_time_s": record["wall_time_s"]})
        records.append(record)
    return pd.DataFrame(rows), records


def per_class(runs: Any) -> Any:
    """Class x variant image AUROC in % (mean over seeds), with a mean row."""
    table = 100 * runs.pivot_table(index="class", columns="variant", values="image_auroc",
                                   aggfunc="mean", sort=False)
    table.loc["mean"] = table.mean()
    return table.round(2)


def examples_figure(setup: OneClassSetup, normal: int = 0, count: int = 8):
    """Training images of one class, anomalies of its test split, external anomalies."""
    from adtr import viz

    split = one_class_split(setup.dataset, normal)
    anomalies = split.test_images[split.test_labels == 1]
    rows = {f"normal: class {setup.dataset.classes[normal]}": split.train_images[:count],
            "test anomalies": anomalies[:count],
            f"external ({setup.external_name})": setup.external[:count]}
    return viz.image_grid(rows, columns=count)
