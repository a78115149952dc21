"""The object categories of the offline data set (adtr.objects through adtr.synth): normal
images keep one layout, and the structural / logical defects are what their names say."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from adtr import objects, synth
from adtr.shapes import keyed_rng

SIZE = 96
INDICES = range(4)


def _scenes(category: str, kind: str, index: int, size: int = SIZE) -> tuple[dict, dict]:
    """The normal and the defective scene behind ``synth.example(category, kind, index)``.

    They are drawn from the example's own generator in the same order; the defect is the
    first one drawn (all of these land within their area range at the first try).
    """
    rng = keyed_rng(0, category, "test", kind, index)
    scene = objects.draw(category, rng, size)
    return scene, objects.with_defect(scene, kind, rng)


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(float).mean(axis=-1)


def _pooled(image: np.ndarray, cells: int = 12) -> np.ndarray:
    step = image.shape[0] // cells
    grey = _grey(image)[: step * cells, : step * cells]
    return grey.reshape(cells, step, cells, step).mean(axis=(1, 3)).ravel()


@pytest.mark.parametrize("category", synth.OBJECT_CATEGORIES)
def test_normal_objects_vary_but_keep_their_layout(category: str) -> None:
    images = [synth._train_image(category, 0, i, SIZE) for i in range(6)]
    pooled = np.array([_pooled(image) for image in images])
    for i, image in enumerate(images):
        # Every image differs from every other (position, instances, light) ...
        for other in images[i + 1 :]:
            assert np.abs(image.astype(int) - other).mean() > 4
        # ... but its coarse layout is that of the others' mean: the same object, in place.
        template = np.delete(pooled, i, axis=0).mean(axis=0)
        assert np.corrcoef(pooled[i], template)[0, 1] > 0.5
    # A texture has no such layout: the check above means something.
    textures = np.array([_pooled(synth._train_image("gravel", 0, i, SIZE)) for i in range(6)])
    assert np.corrcoef(textures[0], textures[1:].mean(axis=0))[0, 1] < 0.4


def test_coin_trays_hold_different_coins() -> None:
    sources = [
        [c["source"] for c in objects.draw("coins", keyed_rng(0, "t", i), SIZE)["coins"]]
        for i in range(3)
    ]
    assert len(sources[0]) == 16 and sources[0] != sources[1] != sources[2]
    assert len(set(sum(sources, []))) >= 12  # many of the 18 cut-out coins appear


@pytest.mark.parametrize("category", synth.OBJECT_CATEGORIES)
def test_objects_are_deterministic_per_seed(category: str) -> None:
    kind = synth.DEFECT_KINDS[category][0]
    first = synth.example(category, kind, seed=3, index=2, image_size=64)
    again = synth.example(category, kind, seed=3, index=2, image_size=64)
    other = synth.example(category, kind, seed=4, index=2, image_size=64)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def _slot_distance(scene: dict, point: tuple[float, float]) -> float:
    """Distance (in slot pitches) from an image point to the nearest slot centre."""
    centres = [objects._tray_point(scene, (i - 1.5, j - 1.5)) for i in range(4) for j in range(4)]
    return min(np.hypot(point[0] - y, point[1] - x) for y, x in centres) / scene["pitch"]


@pytest.mark.parametrize("index", INDICES)
def test_missing_coin_leaves_its_slot_empty(index: int) -> None:
    normal, defective, mask = synth.example("coins", "missing", index=index, image_size=SIZE)
    scene, broken = _scenes("coins", "missing", index)
    (gone,) = [c for c in scene["coins"] if c not in broken["coins"]]
    cy, cx = objects._tray_point(scene, gone["pos"])
    np.testing.assert_array_equal(defective[~mask], normal[~mask])
    assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 1
    assert mask[int(round(cy)), int(round(cx))]
    centre = np.argwhere(mask).mean(axis=0)
    assert np.hypot(*(centre - (cy, cx))) < 0.15 * scene["pitch"]
    coin_area = np.pi * (0.37 * scene["pitch"]) ** 2
    assert 0.6 * coin_area < mask.sum() < 2.0 * coin_area
    # The bright coin is gone: what is left is the dark recess of the slot.
    assert _grey(defective)[mask].mean() < _grey(normal)[mask].mean() - 40


@pytest.mark.parametrize("index", INDICES)
def test_extra_coin_lies_between_the_slots(index: int) -> None:
    normal, defective, mask = synth.example("coins", "extra", index=index, image_size=SIZE)
    scene, broken = _scenes("coins", "extra", index)
    assert len(broken["coins"]) == 17 and broken["coins"][:16] == scene["coins"]
    centre = tuple(np.argwhere(mask).mean(axis=0))
    assert _slot_distance(scene, centre) > 0.45  # nowhere near a slot's centre
    assert _grey(defective)[mask].mean() > _grey(normal)[mask].mean()


@pytest.mark.parametrize("index", INDICES)
def test_wrong_metal_is_one_whole_coin_in_another_colour(index: int) -> None:
    normal, defective, mask = synth.example("coins", "colour", index=index, image_size=SIZE)
    scene, _ = _scenes("coins", "colour", index)
    centre = tuple(np.argwhere(mask).mean(axis=0))
    assert _slot_distance(scene, centre) < 0.15
    assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 1
    warmth = lambda image: (image[..., 0].astype(float) - image[..., 2])[mask].mean()  # noqa: E731
    assert warmth(defective) > warmth(normal) + 25


def _print_disc(scene: dict, shrink: float = 0.9) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    cy, cx = scene["centre"]
    return np.hypot(yy - cy, xx - cx) <= shrink * scene["radius"]


@pytest.mark.parametrize("index", INDICES)
def test_rotated_sticker_is_the_same_print_turned(index: int) -> None:
    normal, defective, mask = synth.example("logo", "rotated", index=index, image_size=SIZE)
    scene, turned = _scenes("logo", "rotated", index)
    turn = turned["angle"] - scene["angle"]
    assert np.isclose(turn % (np.pi / 2), 0) and not np.isclose(turn % (2 * np.pi), 0)
    disc = _print_disc(scene)
    assert mask[disc].mean() > 0.6 and not mask[~_print_disc(scene, 1.1)].any()
    # Turning the normal image about the sticker's centre gives the defective print.
    c, s = np.cos(turn), np.sin(turn)
    matrix = np.array([[c, s], [-s, c]])
    centre = np.asarray(scene["centre"])
    offset = centre - matrix @ centre
    back = np.stack(
        [ndimage.affine_transform(normal[..., k].astype(float), matrix, offset, order=1)
         for k in range(3)], axis=-1,
    )
    assert np.abs(back - defective)[disc].mean() < 0.4 * np.abs(normal.astype(float) -
                                                                 defective)[disc].mean()


@pytest.mark.parametrize("index", INDICES)
def test_torn_sticker_shows_the_board_at_its_rim(index: int) -> None:
    normal, defective, mask = synth.example("logo", "torn", index=index, image_size=SIZE)
    scene, _ = _scenes("logo", "torn", index)
    assert not mask[_print_disc(scene, 0.1)].any()  # the centre is never torn away
    assert mask[~_print_disc(scene, 0.9)].any()  # the tear starts at the rim
    board = defective[mask & ~_print_disc(scene, 0.0)].astype(float)
    # Brown cardboard where the paper was: clearly more red than blue, darker than paper.
    assert (board[:, 0] - board[:, 2]).mean() > 40 and board.mean() < _grey(normal)[mask].mean()


@pytest.mark.parametrize("index", INDICES)
def test_wrong_ink_recolours_one_field_of_the_print(index: int) -> None:
    normal, defective, mask = synth.example("logo", "colour", index=index, image_size=SIZE)
    scene, _ = _scenes("logo", "colour", index)
    assert not mask[~_print_disc(scene, 1.07)].any()  # on the sticker
    assert 0.25 < mask.sum() / _print_disc(scene, 1.0).sum() < 0.7  # one of the two fields
    hue_shift = np.abs(defective.astype(float) - normal)[mask].max(axis=-1).mean()
    assert hue_shift > 40


@pytest.mark.parametrize("index", INDICES)
def test_misprint_is_a_thin_offset_along_the_green_field(index: int) -> None:
    _, _, mask = synth.example("logo", "misprint", index=index, image_size=SIZE)
    scene, shifted = _scenes("logo", "misprint", index)
    shift = np.hypot(*shifted["plate"])
    assert 0.015 * SIZE <= shift <= 0.03 * SIZE
    # The changed band is about as wide as the shift: thin, not a filled region.
    inner = ndimage.binary_erosion(mask, iterations=int(np.ceil(shift)) + 2)
    assert inner.sum() < 0.1 * mask.sum()


def _metal(image: np.ndarray) -> np.ndarray:
    return _grey(image) > 90


@pytest.mark.parametrize("kind", ["broken", "bent"])
@pytest.mark.parametrize("index", INDICES)
def test_broken_or_bent_leg_is_low_on_the_horse(kind: str, index: int) -> None:
    # At 128 px a leg is a few pixels wide: enough to tell metal from mat.
    normal, defective, mask = synth.example("horse", kind, index=index, image_size=128)
    rows = np.nonzero(_metal(normal).any(axis=1))[0]
    top, bottom = rows.min(), rows.max()
    mask_rows = np.nonzero(mask.any(axis=1))[0]
    assert mask_rows.min() > top + 0.5 * (bottom - top)  # in the legs, not the body
    lost = (_metal(normal) & ~_metal(defective) & mask).sum()
    gained = (_metal(defective) & ~_metal(normal) & mask).sum()
    assert lost > 15
    if kind == "broken":  # mostly bare mat where the leg was
        assert (_grey(defective)[mask] < 70).mean() > 0.5
    else:  # metal gone at one place, come at another
        assert gained > 5


@pytest.mark.parametrize("index", INDICES)
def test_flipped_horse_faces_the_other_way(index: int) -> None:
    normal, defective, mask = synth.example("horse", "flip", index=index, image_size=SIZE)

    def facing(image: np.ndarray) -> float:
        """Positive when the head (the highest metal, the ears) is right of the middle."""
        metal = _metal(image)
        ys, xs = np.nonzero(metal)
        return float(xs[ys <= ys.min() + 3].mean() - xs.mean())

    assert facing(normal) > 5 and facing(defective) < -5
    assert mask.mean() <= 0.3
