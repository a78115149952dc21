"""Tests for the synthetic MVTec-AD-style data generator (adtr.synth)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adtr import cli, profiles, synth
from adtr.errors import ConfigError

SMALL = {"n_train": 3, "n_test_good": 2, "n_test_defective": 10, "image_size": 64}
TWO = ["brick", "coins"]  # a texture and an object; both have 5 kinds, so 2 images each
PAIRS = [(c, k) for c in synth.CATEGORIES for k in synth.DEFECT_KINDS[c]]


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
        for kind in synth.DEFECT_KINDS[cat]:
            expected |= {f"{cat}/test/{kind}/{i:03d}.png" for i in range(2)}
            expected |= {f"{cat}/ground_truth/{kind}/{i:03d}_mask.png" for i in range(2)}
            expected |= {f"{cat}/twins/{kind}/{i:03d}.png" for i in range(2)}
    assert set(_hashes(root)) == expected


def test_images_are_rgb_and_masks_binary_same_size(dataset: tuple[Path, dict]) -> None:
    root, _ = dataset
    for image_path in root.glob("*/t*/*/*.png"):
        with Image.open(image_path) as image:
            assert (image.mode, image.size) == ("RGB", (64, 64))
    for cat in TWO:
        for kind in synth.DEFECT_KINDS[cat]:
            for stem in ("000", "001"):
                with Image.open(root / cat / "ground_truth" / kind / f"{stem}_mask.png") as m:
                    assert (m.mode, m.size) == ("L", (64, 64))
                    values = np.asarray(m)
                assert set(np.unique(values)) == {0, 255}


@pytest.mark.parametrize(("category", "kind"), [("brick", "hole"), ("coins", "missing")])
def test_written_files_match_example(dataset: tuple[Path, dict], category: str, kind: str) -> None:
    root, _ = dataset
    normal, defective, mask = synth.example(category, kind, index=1, image_size=64)
    written = np.asarray(Image.open(root / f"{category}/test/{kind}/001.png"))
    written_mask = np.asarray(Image.open(root / f"{category}/ground_truth/{kind}/001_mask.png"))
    np.testing.assert_array_equal(written, defective)
    np.testing.assert_array_equal(written_mask, mask.astype(np.uint8) * 255)
    good = np.asarray(Image.open(root / f"{category}/test/good/001.png"))
    expected = synth.example(category, None, index=1, image_size=64)[1]
    np.testing.assert_array_equal(good, expected)


def test_summary_and_manifest(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    assert summary["seed"] == 0 and summary["image_size"] == 64
    assert set(summary["categories"]) == set(TWO)
    for cat in TWO:
        assert summary["categories"][cat]["train"] == 3
        assert summary["categories"][cat]["test"] == {
            "good": 2, **{k: 2 for k in synth.DEFECT_KINDS[cat]}
        }
    assert "coins" in summary["categories"]["coins"]["source"]
    assert summary["defect_kinds"] == {c: list(k) for c, k in synth.DEFECT_KINDS.items()}
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
    _generate(tmp_path, categories=["coins"])
    full = _hashes(root)
    subset = _hashes(tmp_path)
    assert all(full[p] == h for p, h in subset.items() if p != "synth.json")
    _generate(tmp_path / "reversed", categories=TWO[::-1])
    reversed_hashes = _hashes(tmp_path / "reversed")
    assert {p: h for p, h in reversed_hashes.items() if p != "synth.json"} == {
        p: h for p, h in full.items() if p != "synth.json"
    }


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 48-pixel images of every defect kind of every category, with their twins."""
    out = tmp_path_factory.mktemp("every_kind")
    most = max(len(kinds) for kinds in synth.DEFECT_KINDS.values())
    synth.generate(out, categories=synth.CATEGORIES, n_train=1, n_test_good=1,
                   n_test_defective=2 * most, image_size=48, progress=False)
    return out


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.mark.parametrize(("category", "kind"), PAIRS)
def test_written_twin_differs_from_its_image_exactly_inside_the_mask(
    every_kind: Path, category: str, kind: str
) -> None:
    folder = every_kind / category
    stems = sorted(p.stem for p in (folder / "test" / kind).glob("*.png"))
    assert len(stems) >= 2
    for stem in stems:
        image = _read(folder / "test" / kind / f"{stem}.png")
        twin = _read(folder / "twins" / kind / f"{stem}.png")
        mask = _read(folder / "ground_truth" / kind / f"{stem}_mask.png") > 0
        assert twin.shape == image.shape == (48, 48, 3) and twin.dtype == np.uint8
        changed = (image != twin).any(axis=-1)
        np.testing.assert_array_equal(changed, mask)  # equal outside, different inside
        assert mask.mean() >= synth.area_range(category, kind)[0] > 0
        # The twin is the normal image of the same key, not some other normal image.
        index = int(stem)
        np.testing.assert_array_equal(
            twin, synth.example(category, kind, index=index, image_size=48)[0])
    # Good test images are their own twins: none is written.
    assert not (folder / "twins" / "good").exists()


def test_twins_change_the_generator_version_and_are_removed_when_stale(tmp_path: Path) -> None:
    assert synth.GENERATOR_VERSION == "3"
    _generate(tmp_path, categories=["brick"], n_test_defective=10)
    assert len(list((tmp_path / "brick/twins/hole").glob("*.png"))) == 2
    _generate(tmp_path, categories=["brick"], n_test_defective=5)
    assert sorted(p.name for p in (tmp_path / "brick/twins/hole").iterdir()) == ["000.png"]


@pytest.mark.parametrize(("category", "kind"), PAIRS)
def test_mask_is_exactly_the_changed_pixels(category: str, kind: str) -> None:
    low, high = synth.area_range(category, kind)
    for index in range(4):
        normal, defective, mask = synth.example(category, kind, index=index, image_size=96)
        assert normal.shape == defective.shape == (96, 96, 3) and normal.dtype == np.uint8
        delta = np.abs(defective.astype(int) - normal.astype(int)).max(axis=-1)
        np.testing.assert_array_equal(delta > 0, mask)
        # Visible: every defect pixel moved by several grey levels, not by rounding.
        assert delta[mask].min() >= 10
        # At least a few dozen pixels, at most 30 % of the image.
        assert low <= mask.mean() <= high <= 0.3 and mask.sum() >= 28
        # The normal image is the test/good-style image of the same key, without the defect.
        assert (normal != defective).any()


def test_defect_kinds_per_category() -> None:
    texture = ("scratch", "hole", "stain", "foreign", "perlin")
    assert len(synth.CATEGORIES) >= 6 and len(synth.OBJECT_CATEGORIES) >= 3
    assert set(synth.DEFECT_KINDS) == set(synth.CATEGORIES)
    for category in synth.TEXTURE_CATEGORIES:
        assert synth.defect_kinds(category) == texture
        assert synth.area_range(category, "hole") == synth.AREA_RANGE
    for category in synth.OBJECT_CATEGORIES:
        kinds = synth.defect_kinds(category)
        structural = [k for k in kinds if synth.area_range(category, k) != synth.AREA_RANGE]
        assert len(structural) >= 2 and len(structural) < len(kinds), category
    with pytest.raises(ConfigError, match="category.*coins"):
        synth.defect_kinds("bottle")
    with pytest.raises(ConfigError, match="kind.*missing"):
        synth.example("coins", "perlin")


def test_texture_bytes_are_those_of_generator_version_1() -> None:
    """The object categories were added without changing a texture image."""
    digest = hashlib.sha256()
    for category in synth.TEXTURE_CATEGORIES:
        for kind in (None, *synth.DEFECT_KINDS[category]):
            for part in synth.example(category, kind, index=1, image_size=64):
                digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(synth._train_image(category, 0, 2, 64).tobytes())
    assert digest.hexdigest() == (
        "62d10bf77bab27112b2869531639f44a9a67404628196ad8a1ee16ee9a24a55a"
    )


@pytest.mark.parametrize("kind", synth.DEFECT_KINDS["brick"])
def test_defect_area_within_bounds_and_varied(kind: str) -> None:
    low, high = synth.AREA_RANGE
    assert (low, high) == (0.003, 0.05)
    areas, centres = [], []
    for size in (64, 128):
        for category in synth.TEXTURE_CATEGORIES:
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
    for category in (*synth.TEXTURE_CATEGORIES, "coins", "logo"):
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
        ({"n_test_defective": 0}, "n_test_defective"),
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
    for name in (*synth.CATEGORIES, "skimage.data.coins", "skimage.data.logo", "horse"):
        assert name in text


def test_defective_images_spread_evenly_over_kinds(tmp_path: Path) -> None:
    summary = _generate(tmp_path, categories=["logo", "gravel"], n_test_defective=8)
    logo = summary["categories"]["logo"]["test"]
    assert list(logo) == ["good", *synth.DEFECT_KINDS["logo"]]
    assert list(logo.values())[1:] == [2, 2, 1, 1, 1, 1]
    assert summary["categories"]["gravel"]["test"] == {
        "good": 2, "scratch": 2, "hole": 2, "stain": 2, "foreign": 1, "perlin": 1
    }
    assert len(list((tmp_path / "logo/test/rotated").glob("*.png"))) == 2
    # Fewer images than kinds: the last kinds get none, and no folder.
    summary = _generate(tmp_path, categories=["logo"], n_test_defective=3)
    assert sum(summary["categories"]["logo"]["test"].values()) == 2 + 3
    kinds = synth.DEFECT_KINDS["logo"]
    assert not list((tmp_path / "logo/test" / kinds[-1]).glob("*.png"))
    assert len(list((tmp_path / "logo/test/rotated").glob("*.png"))) == 1


def test_profile_sizes() -> None:
    sizes = profiles.SYNTH_SIZES
    cpu = sizes["cpu"]
    assert cpu["n_train"] == 120 and "categories" not in cpu
    assert cpu["n_test_good"] + cpu["n_test_defective"] >= 80
    assert cpu["n_test_defective"] >= cpu["n_test_good"]
    for category in synth.CATEGORIES:
        assert min(synth._kind_counts(category, cpu["n_test_defective"]).values()) >= 5
    smoke = sizes["smoke"]
    assert smoke["categories"][0] == "brick" and len(smoke["categories"]) == 2
    assert smoke["categories"][1] in synth.OBJECT_CATEGORIES
    for category in smoke["categories"]:
        assert min(synth._kind_counts(category, smoke["n_test_defective"]).values()) >= 1
    total = len(smoke["categories"]) * (
        smoke["n_train"] + smoke["n_test_good"] + smoke["n_test_defective"]
    )
    assert total <= 66  # no more images than the three texture categories made before


def test_smoke_profile_generates_its_categories(tmp_path: Path) -> None:
    options = {**profiles.SYNTH_SIZES["smoke"], "image_size": 48, "progress": False}
    summary = synth.generate(tmp_path / "smoke", seed=0, **options)
    assert list(summary["categories"]) == list(profiles.SYNTH_SIZES["smoke"]["categories"])
    assert cli.main(["synth", "--out", str(tmp_path / "cli"), "--profile", "smoke",
                     "--categories", "logo", "--quiet"]) in (0, None)
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["logo", "synth.json"]


def test_contact_sheet_shape(tmp_path: Path) -> None:
    sheet = synth.contact_sheet(tmp_path / "sheet.png", image_size=32)
    step = 32 + 4
    widest = max(len(kinds) for kinds in synth.DEFECT_KINDS.values())
    assert sheet.shape == (len(synth.CATEGORIES) * step, (1 + 2 * widest) * step, 3)
    assert (tmp_path / "sheet.png").is_file()
    # A row per category: the objects are on it, each with its own kinds.
    row = synth.contact_sheet(image_size=32, categories=["horse"])
    assert row.shape[0] == step
    np.testing.assert_array_equal(row[:32, :32], synth.example("horse", None, image_size=32)[0])
