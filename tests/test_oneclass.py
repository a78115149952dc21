"""The one-class setting: splits, the CIFAR reader, the digits stand-in, runs end to end."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from adtr import catalog, experiments, oneclass, profiles
from adtr.errors import AdtrError, DataError


def _numbered_set(classes: int = 3, train_per_class: int = 6, test_per_class: int = 4
                  ) -> oneclass.ImageSet:
    """Images whose first pixel is a unique id: train ids 0.., test ids 100.."""
    def images(start: int, count: int) -> np.ndarray:
        rng = np.random.default_rng(start)
        out = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
        out[:, 0, 0, 0] = np.arange(start, start + count)
        return out

    train_labels = np.repeat(np.arange(classes), train_per_class)
    test_labels = np.tile(np.arange(classes), test_per_class)
    return oneclass.ImageSet("numbered", "test", True, [f"c{i}" for i in range(classes)],
                             images(0, len(train_labels)), train_labels,
                             images(100, len(test_labels)), test_labels)


def test_one_class_split_never_trains_on_a_test_image_or_another_class() -> None:
    dataset = _numbered_set()
    for normal in range(3):
        split = oneclass.one_class_split(dataset, normal)
        train_ids = set(split.train_images[:, 0, 0, 0].tolist())
        test_ids = set(split.test_images[:, 0, 0, 0].tolist())
        assert not train_ids & test_ids
        assert train_ids == set(np.flatnonzero(dataset.train_labels == normal).tolist())
        assert np.array_equal(split.test_labels, (dataset.test_labels != normal).astype(int))
        assert split.test_labels.sum() == 8 and len(split.test_labels) == 12
    with pytest.raises(AdtrError, match=r"normal class 3 out of range.*0\.\.2"):
        oneclass.one_class_split(dataset, 3)


def test_digits_stand_in_is_split_in_half_per_class() -> None:
    dataset = oneclass.digits()
    assert len(dataset.train_images) + len(dataset.test_images) == 1797
    assert dataset.train_images.shape[1:] == (8, 8, 3) and dataset.train_images.dtype == np.uint8
    assert dataset.train_images.max() == 255 and dataset.stand_in
    train_counts = np.bincount(dataset.train_labels)
    test_counts = np.bincount(dataset.test_labels)
    assert np.all(np.abs(train_counts - test_counts) <= 1)
    again = oneclass.digits()
    assert np.array_equal(again.test_images, dataset.test_images)  # fixed seed


def test_skimage_patches_are_grey_8x8_and_full_range() -> None:
    patches = oneclass.skimage_patches(count=20)
    assert patches.shape == (20, 8, 8, 3)
    assert np.all(patches[..., 0] == patches[..., 2])  # grey
    assert patches.reshape(20, -1).max(axis=1).min() == 255
    assert patches.reshape(20, -1).min(axis=1).max() == 0


def _write_batch(path: Path, images: np.ndarray, labels: list[int], key: bytes) -> None:
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # R plane, G, B
    with open(path, "wb") as handle:
        pickle.dump({b"data": data, key: labels}, handle)


def test_cifar10_reads_torchvision_python_format(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
        batches[name] = images
        _write_batch(folder / name, images, [0, 1, 2, 1], b"labels")
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird"]}, handle)
    dataset = oneclass.cifar10(tmp_path)
    assert dataset.classes == ["airplane", "automobile", "bird"] and not dataset.stand_in
    assert dataset.train_images.shape == (20, 32, 32, 3)
    assert np.array_equal(dataset.train_images[4:8], batches["data_batch_2"])
    assert np.array_equal(dataset.test_images, batches["test_batch"])
    assert dataset.train_labels.tolist() == [0, 1, 2, 1] * 5
    assert np.array_equal(oneclass.cifar10(folder).test_images, dataset.test_images)


def test_missing_cifar_names_the_folder_and_the_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"CIFAR-10 not found: .*cifar-10-batches-py lacks "
                                        r"\['data_batch_1'.*never downloaded"):
        oneclass.cifar10(tmp_path)
    (tmp_path / "cifar-100-python").mkdir()
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"lacks \['test', 'meta'\]"):
        oneclass.cifar100(tmp_path)
    for name in ("test", "meta"):
        (tmp_path / "cifar-100-python" / name).write_bytes(b"")
    with pytest.raises(DataError, match=r"cannot read CIFAR batch .*train"):
        oneclass.cifar100(tmp_path)


def test_runs_end_to_end_and_are_reused(tmp_path: Path) -> None:
    dataset = _numbered_set()
    base = profiles.resolve("smoke", "oneclass", image_size=64, plus_epochs=1,
                            data_root="numbered", plus_anomalies="random")
    external = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    setup = experiments.OneClassSetup(base, dataset, external, "random", [0, 1], [0],
                                      tmp_path / "results", tmp_path / "runs")
    grid = experiments.variants(setup, catalog.get("oneclass"))
    runs, records = experiments.run_grid(setup, grid, progress=False)
    assert runs["variant"].tolist() == ["adtr", "adtr", "adtr_plus", "adtr_plus"]
    assert runs["class"].tolist() == ["c0", "c1", "c0", "c1"]
    assert runs["image_auroc"].between(0, 1).all() and "pixel_auroc" not in runs
    plus_record = records[2]
    assert plus_record.anomalies["loss"] == "L_img" and plus_record.base_epochs == 2
    assert plus_record.data["n_train_used"] == 6 and plus_record.data["normal_class"] == 0
    assert plus_record.score == "mean of the anomaly map"
    again, _ = experiments.run_grid(setup, grid, progress=False)
    assert again["image_auroc"].tolist() == runs["image_auroc"].tolist()
    assert again["wall_time_s"].tolist() == runs["wall_time_s"].tolist()  # read back
    table = experiments.per_category(runs, "image_auroc")
    assert list(table.index) == ["c0", "c1", "mean"]


def test_the_one_class_notebook_alone_does_not_need_mvtec(tmp_path: Path) -> None:
    """`adtr reproduce --profile paper --only 08` checks the CIFAR folders, not MVTec-AD."""
    from adtr import reproduce

    with pytest.raises(DataError, match="needs cifar_root"):
        reproduce.reproduce("paper", only=["08"], parameters={"results_dir": str(tmp_path)})
    with pytest.raises(DataError, match=r"CIFAR-10 not found: .*nowhere"):
        reproduce.reproduce("paper", only=["08"], parameters={
            "results_dir": str(tmp_path), "cifar_root": str(tmp_path / "nowhere")})
