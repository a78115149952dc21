"""Tests for the synthetic MVTec-AD-style data generator (adtr.synth)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adtr import synth
from adtr.errors import ConfigError

SMALL = {"n_train": 3, "n_test_good": 2, "n_test_per_defect": 2, "image_size": 64}
TWO = ["brick", "grass"]


def _generate(out: Path, **kwargs: object) -> dict:
    """Generate a tiny data set quietly; kwargs override the small defaults."""
    options: dict = {**SMALL, "categories": TWO, "progress": False, **kwargs}
    return synth.generate(out, **options)


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root, keyed by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One tiny data set shared by the read-only tests."""
    out = tmp_path_factory.mktemp("synth")
    return out, _generate(out)


def test_layout_is_exactly_mvtec(dataset: tuple[Path, dict]) -> None:
    root, _ = dataset
    expected = {"synth.json"}
    for cat in TWO:
        expected |= {f"{cat}/train/good/{i:03d}.png" for i in range(3)}
        expected |= {f"{cat}/test/good/{i:03d}.png" for i in range(2)}
        for kind in synth.DEFECT_KINDS:
            expected |= {f"{cat}/test/{kind}/{i:03d}.png" for i in range(2)}
            expected |= {f"{cat}/ground_truth/{kind}/{i:03d}_mask.png" for i in range(2)}
    assert set(_hashes(root)) == expected


def test_images_are_rgb_and_masks_binary_same_size(dataset: tuple[Path, dict]) -> None:
    root, _ = dataset
    for image_path in root.glob("*/t*/*/*.png"):
        with Image.open(image_path) as image:
            assert (image.mode, image.size) == ("RGB", (64, 64))
    for cat in TWO:
        for kind in synth.DEFECT_KINDS:
            for stem in ("000", "001"):
                with Image.open(root / cat / "ground_truth" / kind / f"{stem}_mask.png") as m:
                    assert (m.mode, m.size) == ("L", (64, 64))
                    values = np.asarray(m)
                assert set(np.unique(values)) == {0, 255}


def test_written_files_match_example(dataset: tuple[Path, dict]) -> None:
    root, _ = dataset
    normal, defective, mask = synth.example("grass", "hole", index=1, image_size=64)
    written = np.asarray(Image.open(root / "grass/test/hole/001.png"))
    written_mask = np.asarray(Image.open(root / "grass/ground_truth/hole/001_mask.png"))
    np.testing.assert_array_equal(written, defective)
    np.testing.assert_array_equal(written_mask, mask.astype(np.uint8) * 255)
    good = np.asarray(Image.open(root / "grass/test/good/001.png"))
    np.testing.assert_array_equal(good, synth.example("grass", None, index=1, image_size=64)[1])


def test_summary_and_manifest(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    assert summary["seed"] == 0 and summary["image_size"] == 64
    assert set(summary["categories"]) == set(TWO)
    expected_test = {"good": 2, **{k: 2 for k in synth.DEFECT_KINDS}}
    assert summary["categories"]["brick"]["train"] == 3
    assert summary["categories"]["brick"]["test"] == expected_test
    manifest = json.loads((root / "synth.json").read_text())
    assert manifest == summary
    assert manifest["version"] == synth.GENERATOR_VERSION


def test_train_and_test_good_differ(dataset: tuple[Path, dict]) -> None:
    root, _ = dataset
    hashes = _hashes(root)
    for cat in TWO:
        train = {h for p, h in hashes.items() if p.startswith(f"{cat}/train/")}
        good = {h for p, h in hashes.items() if p.startswith(f"{cat}/test/good/")}
        assert len(train) == 3 and len(good) == 2 and not train & good


def test_same_seed_same_bytes_other_seed_other_bytes(
    dataset: tuple[Path, dict], tmp_path: Path
) -> None:
    root, _ = dataset
    _generate(tmp_path / "again")
    assert _hashes(tmp_path / "again") == _hashes(root)
    _generate(tmp_path / "other", seed=1)
    first, other = _hashes(root), _hashes(tmp_path / "other")
    images = [p for p in first if p.endswith(".png") and "ground_truth" not in p]
    assert all(first[p] != other[p] for p in images)


def test_category_subset_and_order_do_not_change_bytes(
    dataset: tuple[Path, dict], tmp_path: Path
) -> None:
    root, _ = dataset
    _generate(tmp_path, categories=["grass"])
    full = _hashes(root)
    subset = _hashes(tmp_path)
    assert all(full[p] == h for p, h in subset.items() if p != "synth.json")
    _generate(tmp_path / "reversed", categories=TWO[::-1])
    reversed_hashes = _hashes(tmp_path / "reversed")
    assert {p: h for p, h in reversed_hashes.items() if p != "synth.json"} == {
        p: h for p, h in full.items() if p != "synth.json"
    }


@pytest.mark.parametrize("kind", synth.DEFECT_KINDS)
@pytest.mark.parametrize("category", synth.CATEGORIES)
def test_mask_is_exactly_the_changed_pixels(category: str, kind: str) -> None:
    for index in range(3):
        normal, defective, mask = synth.example(category, kind, index=index, image_size=96)
        assert normal.shape == defective.shape == (96, 96, 3) and normal.dtype == np.uint8
        delta = np.abs(defective.astype(int) - normal.astype(int)).max(axis=-1)
        np.testing.assert_array_equal(delta > 0, mask)
        # Visible: every defect pixel moved by several grey levels, not by rounding.
        assert delta[mask].min() >= 10


@pytest.mark.parametrize("kind", synth.DEFECT_KINDS)
def test_defect_area_within_bounds_and_varied(kind: str) -> None:
    low, high = synth.AREA_RANGE
    assert (low, high) == (0.003, 0.05)
    areas, centres = [], []
    for size in (64, 128):
        for category in synth.CATEGORIES:
            for index in range(4):
                _, _, mask = synth.example(category, kind, index=index, image_size=size)
                areas.append(mask.mean())
                centres.append(tuple(np.argwhere(mask).mean(axis=0) / size))
    assert low <= min(areas) and max(areas) <= high
    # Sizes and positions vary: not one stamp pasted at one place.
    assert max(areas) > 2 * min(areas)
    assert np.ptp(np.array(centres), axis=0).min() > 0.3


def test_good_example_has_empty_mask() -> None:
    normal, image, mask = synth.example("gravel", None, index=0, image_size=64)
    np.testing.assert_array_equal(normal, image)
    assert not mask.any()


def test_images_are_colour_not_grey() -> None:
    for category in synth.CATEGORIES:
        image = synth.example(category, None, image_size=64)[0].astype(float)
        channel_means = image.reshape(-1, 3).mean(axis=0)
        assert np.ptp(channel_means) > 10, category


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"categories": ["carpet"]}, "categories"),
        ({"categories": []}, "categories"),
        ({"n_train": 0}, "n_train"),
        ({"n_test_good": -1}, "n_test_good"),
        ({"n_test_per_defect": 0}, "n_test_per_defect"),
        ({"image_size": 31}, "image_size"),
        ({"seed": -1}, "seed"),
        ({"n_train": 2.5}, "n_train"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict, name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        _generate(tmp_path / "out", **kwargs)
    if name == "categories":
        assert all(c in str(info.value) for c in synth.CATEGORIES)
    assert not (tmp_path / "out").exists()


def test_example_rejects_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="kind.*scratch"):
        synth.example("brick", "dent")


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="out"):
        _generate(target)


def test_rerun_keeps_foreign_files_and_drops_own_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "brick/train/good").mkdir(parents=True)
    (tmp_path / "README.txt").write_text("mine")
    (tmp_path / "brick/train/good/notes.txt").write_text("mine too")
    _generate(tmp_path, categories=["brick"], n_train=3)
    _generate(tmp_path, categories=["brick"], n_train=2)
    assert sorted(p.name for p in (tmp_path / "brick/train/good").iterdir()) == [
        "000.png",
        "001.png",
        "notes.txt",
    ]
    assert (tmp_path / "README.txt").read_text() == "mine"
    # A later call for another category adds to the manifest instead of replacing it.
    _generate(tmp_path, categories=["gravel"])
    manifest = json.loads((tmp_path / "synth.json").read_text())
    assert set(manifest["categories"]) == {"brick", "gravel"}
    assert manifest["categories"]["brick"]["train"] == 2
    assert not list(tmp_path.rglob("*.tmp"))


def test_describe_says_what_the_data_is() -> None:
    text = synth.describe()
    assert "scikit-image" in text and "not MVTec-AD" in text and "synthetic" in text


def test_contact_sheet_shape(tmp_path: Path) -> None:
    sheet = synth.contact_sheet(tmp_path / "sheet.png", image_size=32)
    step = 32 + 4
    assert sheet.shape == (
        len(synth.CATEGORIES) * step,
        (1 + 2 * len(synth.DEFECT_KINDS)) * step,
        3,
    )
    assert (tmp_path / "sheet.png").is_file()
