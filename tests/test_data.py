import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adtr import data
from adtr.errors import DataError


def _copy(tiny_root: Path, tmp_path: Path, category: str = "brick") -> Path:
    root = tmp_path / "root"
    shutil.copytree(tiny_root / category, root / category)
    return root


def test_lists_the_mvtec_layout(tiny_root: Path) -> None:
    train = data.list_samples(tiny_root, "brick", "train")
    test = data.list_samples(tiny_root, "brick", "test")
    assert len(train) == 4 and all(s.label == 0 and s.mask is None for s in train)
    anomalous = [s for s in test if s.label == 1]
    assert len(test) == 2 + 5 and len(anomalous) == 5
    for sample in anomalous:
        assert sample.mask == tiny_root / "brick" / "ground_truth" / sample.defect / (
            f"{sample.image.stem}_mask.png")
    info = data.describe_root(tiny_root, "brick")
    assert info["synthetic"] is True and info["n_test_anomalous"] == 5
    assert data.available_categories(tiny_root) == ["brick", "grass"]


def test_masks_are_binary_and_resized_with_nearest_neighbour(tiny_root: Path) -> None:
    test = data.list_samples(tiny_root, "brick", "test")
    masks = data.load_masks(test, 32)
    assert masks.dtype == bool and masks.shape == (7, 32, 32)
    for sample, mask in zip(test, masks, strict=True):
        original = np.asarray(Image.open(sample.mask)) > 0 if sample.mask else np.zeros((64, 64))
        np.testing.assert_array_equal(mask, original[1::2, 1::2] if sample.mask else False)


def test_missing_root_and_unknown_category_say_what_was_expected(tiny_root, tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist; expected <root>/<category>/train/good"):
        data.list_samples(tmp_path / "nowhere", "brick", "train")
    with pytest.raises(DataError, match=r"category 'bottle' not found .*\['brick', 'grass'\]"):
        data.list_samples(tiny_root, "bottle", "train")


def test_empty_train_good(tiny_root, tmp_path) -> None:
    root = _copy(tiny_root, tmp_path)
    for image in (root / "brick" / "train" / "good").iterdir():
        image.unlink()
    with pytest.raises(DataError, match="train/good has no images"):
        data.list_samples(root, "brick", "train")


def test_anomalous_image_without_mask(tiny_root, tmp_path) -> None:
    root = _copy(tiny_root, tmp_path)
    (root / "brick" / "ground_truth" / "hole" / "000_mask.png").unlink()
    with pytest.raises(DataError, match=r"test/hole/000.png has no mask; expected .*000_mask.png"):
        data.list_samples(root, "brick", "test")


def test_mask_of_the_wrong_size(tiny_root, tmp_path) -> None:
    root = _copy(tiny_root, tmp_path)
    Image.new("L", (32, 32), 255).save(root / "brick" / "ground_truth" / "hole" / "000_mask.png")
    test = data.list_samples(root, "brick", "test")
    with pytest.raises(DataError, match="000_mask.png is 32x32 but its image .* is 64x64"):
        data.load_masks(test, 64)


def test_unreadable_image_and_stray_files_are_named(tiny_root, tmp_path) -> None:
    root = _copy(tiny_root, tmp_path)
    broken = root / "brick" / "train" / "good" / "001.png"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DataError, match="cannot read image .*001.png"):
        data.load_image(broken, 64)
    (root / "brick" / "train" / "good" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"not images: \['notes.txt'\]"):
        data.list_samples(root, "brick", "train")


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_other_image_modes_become_normalised_rgb(tmp_path, mode) -> None:
    path = tmp_path / "image.png"
    if mode == "I;16":
        Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, (8, 8), 255 if mode == "L" else (255, 255, 255, 255)).save(path)
    array, size = data.load_image(path, 16)
    assert array.shape == (3, 16, 16) and size == (8, 8)
    white = (1.0 - data.IMAGENET_MEAN) / data.IMAGENET_STD
    np.testing.assert_allclose(array[:, 0, 0], white, rtol=1e-5)


def test_twins_folder_is_not_read_as_a_split_and_not_a_stray(tiny_root: Path) -> None:
    folder = tiny_root / "brick"
    assert (folder / "twins").is_dir() and not (folder / "test" / "twins").exists()
    test = data.list_samples(tiny_root, "brick", "test")
    assert all("twins" not in s.image.parts for s in test)
    assert {s.defect for s in test} == {"good", *[p.name for p in (folder / "twins").iterdir()]}
    assert data.available_categories(tiny_root) == ["brick", "grass"]
    assert data.describe_root(tiny_root, "brick")["n_test_anomalous"] == 5


def test_twin_samples_pair_each_test_image_with_its_twin(tiny_root: Path) -> None:
    test = data.list_samples(tiny_root, "brick", "test")
    twins = data.twin_samples(tiny_root, "brick", test)
    assert len(twins) == len(test) and data.has_twins(tiny_root, "brick")
    for sample, twin in zip(test, twins, strict=True):
        if sample.label == 0:
            assert twin == sample  # a good image is its own twin
            continue
        assert twin == data.Sample(
            tiny_root / "brick" / "twins" / sample.defect / sample.image.name, 0, "good", None)
        image, _ = data.load_image(sample.image, 64)
        normal, _ = data.load_image(twin.image, 64)
        mask = data.load_masks([sample], 64)[0]
        changed = (image != normal).any(axis=0)
        np.testing.assert_array_equal(changed, mask)


def test_a_missing_twin_is_named(tiny_root: Path, tmp_path: Path) -> None:
    root = _copy(tiny_root, tmp_path)
    missing = root / "brick" / "twins" / "hole" / "000.png"
    missing.unlink()
    test = data.list_samples(root, "brick", "test")
    assert not data.has_twins(root, "brick")
    with pytest.raises(DataError, match=f"no defect-free twin; expected {missing}"):
        data.twin_samples(root, "brick", test)
    # Good images alone need no twin files.
    good = [s for s in test if s.label == 0]
    assert data.twin_samples(root, "brick", good) == good
    other = data.list_samples(tiny_root, "brick", "test")
    with pytest.raises(DataError, match="is not in .*test/hole"):
        data.twin_samples(root, "brick", [s for s in other if s.defect == "hole"])
