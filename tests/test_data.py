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
