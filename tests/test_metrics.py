"""Tests of adtr.metrics against hand-computed values and brute-force references."""

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from adtr.errors import UndefinedMetricError
from adtr.metrics import aupro, image_auroc, pixel_auroc


def brute_force_auroc(masks: NDArray, maps: NDArray) -> float:
    """Mann–Whitney statistic: fraction of (anomalous, normal) pixel pairs ranked right."""
    masks = masks.astype(bool)
    anomalous = maps[masks][:, None]
    normal = maps[~masks][None, :]
    wins = np.count_nonzero(anomalous > normal) + 0.5 * np.count_nonzero(anomalous == normal)
    return wins / (anomalous.size * normal.size)


def brute_force_aupro(masks: NDArray, maps: NDArray, fpr_limit: float = 0.3) -> float:
    """AUPRO by evaluating every distinct threshold, as described by Bergmann et al."""
    masks = masks.astype(bool)
    regions = []
    for image, mask in enumerate(masks):
        labelled, n_regions = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [(image, labelled == k) for k in range(1, n_regions + 1)]
    fprs, pros = [0.0], [0.0]
    for threshold in np.unique(maps)[::-1]:
        detected = maps >= threshold
        fprs.append(detected[~masks].mean())
        pros.append(np.mean([detected[image][region].mean() for image, region in regions]))
    return trapezoid_up_to(fprs, pros, fpr_limit) / fpr_limit


def trapezoid_up_to(xs: list[float], ys: list[float], x_max: float) -> float:
    """Trapezoid area under (xs, ys) from xs[0] to x_max, interpolating at x_max."""
    area = 0.0
    for x0, x1, y0, y1 in zip(xs[:-1], xs[1:], ys[:-1], ys[1:], strict=True):
        if x0 >= x_max:
            break
        if x1 > x_max:
            y1 = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
            x1 = x_max
        area += (x1 - x0) * (y0 + y1) / 2
    return area


def hand_made_masks() -> list[NDArray[np.bool_]]:
    """Small mask stacks: diagonal neighbours, regions of different sizes, several images."""
    diagonal = np.zeros((1, 5, 5), dtype=bool)
    diagonal[0, 0, 0] = diagonal[0, 1, 1] = True  # one region under 8-connectivity
    diagonal[0, 3:5, 2:5] = True

    sizes = np.zeros((2, 6, 6), dtype=bool)
    sizes[0, 0, 5] = True
    sizes[0, 2:6, 0:3] = True
    sizes[1, 1:3, 1:3] = True
    sizes[1, 4, 4] = sizes[1, 5, 5] = True

    # The same spot in consecutive images must stay two regions, not merge across images.
    stacked = np.zeros((3, 4, 4), dtype=bool)
    stacked[0, 1:3, 1:3] = stacked[1, 1:3, 1:3] = True
    stacked[1, 0, 3] = True
    return [diagonal, sizes, stacked]


def random_blob_masks(rng: np.random.Generator, shape: tuple[int, int, int]) -> NDArray[np.bool_]:
    """Random masks with a few blobs, every image normal somewhere, at least one anomaly."""
    masks = rng.random(shape) < 0.15
    masks[:, 0, 0] = False
    masks[0, -1, -1] = True
    return masks


# image_auroc


def test_image_auroc_hand_made_example_with_a_tie() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    # 0.8 beats all 3 normals; 0.4 beats 0.1 and 0.35 and ties 0.4: (3 + 2.5) / 6.
    assert image_auroc(labels, scores) == pytest.approx(5.5 / 6)


def test_image_auroc_is_not_flipped_below_one_half() -> None:
    assert image_auroc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.1, 0.2])) == 0.0


@pytest.mark.parametrize("label", [0, 1])
def test_image_auroc_with_one_class_raises(label: int) -> None:
    with pytest.raises(UndefinedMetricError, match=rf"all 4 images .*label {label}"):
        image_auroc(np.full(4, label), np.arange(4.0))


def test_image_auroc_rejects_mismatched_lengths_and_2d_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        image_auroc(np.array([0, 1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="scores must be 1-D"):
        image_auroc(np.array([0, 1]), np.array([[0.1, 0.2]]))


# pixel_auroc


def test_pixel_auroc_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        masks = random_blob_masks(rng, (3, 7, 9))
        maps = rng.integers(0, 6, size=masks.shape) / 5  # few distinct values: many ties
        assert pixel_auroc(masks, maps) == pytest.approx(brute_force_auroc(masks, maps), abs=1e-12)


def test_pixel_auroc_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    masks = random_blob_masks(rng, (4, 32, 32))
    maps = (rng.random(masks.shape) + 0.5 * masks).astype(np.float32)
    expected = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(masks.astype(np.uint8), maps) == pytest.approx(expected, abs=1e-12)


def test_pixel_auroc_of_inverted_map_is_zero() -> None:
    masks = random_blob_masks(np.random.default_rng(2), (2, 8, 8))
    assert pixel_auroc(masks, (~masks).astype(float)) == 0.0


def test_pixel_auroc_with_one_class_raises() -> None:
    with pytest.raises(UndefinedMetricError, match=r"all 32 pixels are normal"):
        pixel_auroc(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))


# aupro


@pytest.mark.parametrize("case", range(len(hand_made_masks())))
def test_aupro_matches_brute_force_on_hand_made_masks(case: int) -> None:
    masks = hand_made_masks()[case]
    rng = np.random.default_rng(case)
    for levels in (3, 8, 1000):  # from heavy ties to nearly distinct scores
        maps = rng.integers(0, levels, size=masks.shape) / levels + 0.2 * masks
        assert aupro(masks, maps) == pytest.approx(brute_force_aupro(masks, maps), abs=1e-12)


def test_aupro_matches_brute_force_on_random_masks_and_limits() -> None:
    rng = np.random.default_rng(3)
    for fpr_limit in (0.05, 0.3, 1.0):
        masks = random_blob_masks(rng, (3, 10, 10))
        maps = rng.integers(0, 10, size=masks.shape) / 10 + 0.3 * masks
        expected = brute_force_aupro(masks, maps, fpr_limit)
        assert aupro(masks, maps, fpr_limit) == pytest.approx(expected, abs=1e-12)


def test_aupro_of_perfect_map_is_one() -> None:
    masks = hand_made_masks()[1]
    maps = np.random.default_rng(4).random(masks.shape) * 0.5 + masks
    assert aupro(masks, maps) == pytest.approx(1.0, abs=1e-12)


def test_aupro_hand_computed_with_diagonal_region_and_normalisation() -> None:
    # Regions: A = {(0, 0), (1, 1)} (diagonal neighbours: one region), B = {(3, 3)}.
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 3, 3] = True
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = 1.0
    # Curve: (0, 0) -> (0, PRO = mean(1/2, 0) = 0.25) -> (1, 1); at FPR 0.3, PRO = 0.475.
    # (With 4-connectivity PRO would start at 1/3 and give 0.4333... instead.)
    assert aupro(masks, maps, fpr_limit=0.3) == pytest.approx(0.3 * (0.25 + 0.475) / 2 / 0.3)
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx((0.25 + 1.0) / 2)


def test_aupro_without_regions_or_without_normal_pixels_raises() -> None:
    maps = np.zeros((2, 4, 4))
    with pytest.raises(UndefinedMetricError, match="anomalous region"):
        aupro(np.zeros((2, 4, 4), dtype=bool), maps)
    with pytest.raises(UndefinedMetricError, match="normal pixels"):
        aupro(np.ones((2, 4, 4), dtype=bool), maps)


def test_aupro_rejects_fpr_limit_outside_unit_interval() -> None:
    masks, maps = hand_made_masks()[0], np.zeros((1, 5, 5))
    for fpr_limit in (0.0, 1.5):
        with pytest.raises(ValueError, match="fpr_limit"):
            aupro(masks, maps, fpr_limit)


# validation shared by the pixel metrics


@pytest.mark.parametrize("metric", [pixel_auroc, aupro])
def test_pixel_metrics_validate_inputs(metric: Callable[..., float]) -> None:
    masks = hand_made_masks()[1]
    maps = np.random.default_rng(5).random(masks.shape)
    with pytest.raises(ValueError, match=r"masks \(2, 6, 6\) and maps \(2, 6, 5\)"):
        metric(masks, maps[..., :5])
    with pytest.raises(ValueError, match="binary .* got also 255"):
        metric(masks.astype(np.uint8) * 255, maps)
    with pytest.raises(ValueError, match="shape \\(N, H, W\\)"):
        metric(masks[0], maps[0])
    maps[0, 0, :3] = [np.nan, np.inf, -np.inf]
    with pytest.raises(ValueError, match="3 NaN or infinite"):
        metric(masks, maps)
