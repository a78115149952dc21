"""Evaluation metrics: image AUROC, pixel AUROC and AUPRO (area under the PRO curve).

The pixel metrics are computed exactly, without choosing thresholds, on test sets the
size of MVTec AD (about 86 M pixels). Both are areas under a curve of a weighted hit
rate against the false-positive rate (FPR) on normal pixels:

* pixel AUROC: every anomalous pixel weighs ``1 / P`` (the hit rate is the TPR);
* AUPRO: a pixel of region ``k`` weighs ``1 / (R * |k|)`` (the hit rate is the mean
  per-region overlap, PRO, of Bergmann et al., IJCV 2021).

With the curve joining its points at the distinct score thresholds by straight lines
(the trapezoid rule, as in scikit-learn), each anomalous pixel ``p`` adds its weight
times the area under its own hit indicator: 0 up to ``a_p = FPR(score > s_p)``, then
rising linearly to 1 at ``b_p = FPR(score >= s_p)`` (the tie with normal pixels), and
1 afterwards. This needs only the sorted normal scores and two binary searches per
anomalous pixel, so it never sorts or weights the whole test set at once.
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from adtr.errors import UndefinedMetricError

__all__ = ["aupro", "image_auroc", "pixel_auroc"]

# 8-connectivity inside each image and none across images of an (N, H, W) stack.
_REGION_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_REGION_STRUCTURE[1] = True


def image_auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Return the AUROC of per-image anomaly scores (label 1 = anomalous).

    An AUROC below 0.5 is returned as is: it means the scores are inverted.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    for name, array in (("labels", labels), ("scores", scores)):
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one value per image), got shape {array.shape}")
    if labels.shape != scores.shape:
        raise ValueError(
            f"labels and scores must have the same length, got {labels.size} labels "
            f"and {scores.size} scores"
        )
    _check_binary(labels, "labels")
    _check_finite(scores, "scores")
    labels = labels.astype(bool)
    _check_both_classes(labels, "images", "label")
    return float(roc_auc_score(labels, scores))


def pixel_auroc(masks: ArrayLike, maps: ArrayLike) -> float:
    """Return the AUROC over all pixels of ``maps`` (N, H, W) against ``masks`` (N, H, W)."""
    masks, maps = _validate_pixels(masks, maps)
    _check_both_classes(masks, "pixels", "mask")
    normal = _sorted_normal_scores(masks, maps)
    anomalous = maps[masks]
    weights = np.full(anomalous.size, 1.0 / anomalous.size)
    return _weighted_area(normal, anomalous, weights, fpr_limit=1.0)


def aupro(masks: ArrayLike, maps: ArrayLike, fpr_limit: float = 0.3) -> float:
    """Return the area under the PRO curve up to ``fpr_limit``, divided by ``fpr_limit``.

    Regions are the 8-connected components of each image's mask. A perfect map gives 1.0.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    masks, maps = _validate_pixels(masks, maps)
    if not masks.any():
        raise UndefinedMetricError(
            f"AUPRO needs at least one anomalous region, but all {masks.shape[0]} masks are empty"
        )
    if masks.all():
        raise UndefinedMetricError(
            f"AUPRO needs normal pixels, but all {masks.size} pixels are anomalous"
        )
    weights = _region_weights(masks)
    normal = _sorted_normal_scores(masks, maps)
    return _weighted_area(normal, maps[masks], weights, fpr_limit) / fpr_limit


def _region_weights(masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Weight ``1 / (R * |k|)`` for each anomalous pixel (in ``masks`` order) of region ``k``."""
    regions, n_regions = ndimage.label(masks, structure=_REGION_STRUCTURE)
    region_of_pixel = regions[masks]
    del regions  # as large as the whole test set
    sizes = np.bincount(region_of_pixel)
    return 1.0 / (n_regions * sizes[region_of_pixel].astype(np.float64))


def _sorted_normal_scores(masks: NDArray[np.bool_], maps: NDArray) -> NDArray:
    """Return the scores of normal pixels in ascending order."""
    normal = maps[~masks]
    normal.sort()  # in place: a second copy of the largest array would double the peak
    return normal


def _weighted_area(
    normal: NDArray, anomalous: NDArray, weights: NDArray[np.float64], fpr_limit: float
) -> float:
    """Area under the weighted hit rate against FPR from 0 to ``fpr_limit`` (trapezoid rule).

    ``normal`` must be sorted ascending; ``weights`` are those of the ``anomalous`` scores.
    """
    # Ascending queries keep the binary searches in cache: over ten times faster on 86 M pixels.
    order = np.argsort(anomalous)
    anomalous, weights = anomalous[order], weights[order]
    n_normal = normal.size
    fpr_above = (n_normal - np.searchsorted(normal, anomalous, side="right")) / n_normal
    fpr_at_or_above = (n_normal - np.searchsorted(normal, anomalous, side="left")) / n_normal
    area = _ramp_area(fpr_above, fpr_at_or_above, fpr_limit)
    return float(np.dot(weights, area))


def _ramp_area(
    start: NDArray[np.float64], end: NDArray[np.float64], limit: float
) -> NDArray[np.float64]:
    """Area on [0, limit] under a ramp: 0 before ``start``, 1 after ``end``, linear between."""
    full = limit - (start + end) / 2
    width = end - start
    # The division only matters where start < limit < end, which implies width > 0.
    partial = np.divide((limit - start) ** 2, 2 * width, out=np.zeros_like(width), where=width > 0)
    area = np.where(limit >= end, full, partial)
    area[limit <= start] = 0.0
    return area


def _validate_pixels(masks: ArrayLike, maps: ArrayLike) -> tuple[NDArray[np.bool_], NDArray]:
    """Check masks and maps and return them as a boolean array and a numeric array."""
    masks = np.asarray(masks)
    maps = np.asarray(maps)
    if masks.shape != maps.shape:
        raise ValueError(
            "masks and maps must have the same shape, "
            f"got masks {masks.shape} and maps {maps.shape}"
        )
    if masks.ndim != 3:
        raise ValueError(f"masks and maps must have shape (N, H, W), got {masks.shape}")
    if maps.dtype.kind not in "fiu":
        raise ValueError(f"maps must hold real numbers, got dtype {maps.dtype}")
    _check_binary(masks, "masks")
    _check_finite(maps, "maps")
    return masks.astype(bool, copy=False), maps


def _check_binary(array: NDArray, name: str) -> None:
    """Raise ValueError unless ``array`` holds only 0/1 (or False/True)."""
    if array.dtype == bool:
        return
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be binary (0/1 or False/True), got dtype {array.dtype}")
    others = array[(array != 0) & (array != 1)]
    if others.size:
        # Naming a few values makes the usual mistake (0/255 masks from PNGs) obvious.
        examples = ", ".join(str(v) for v in np.unique(others)[:3])
        raise ValueError(f"{name} must be binary (0/1 or False/True), got also {examples}")


def _check_finite(array: NDArray, name: str) -> None:
    """Raise ValueError if ``array`` holds NaN or infinite values."""
    n_bad = array.size - np.count_nonzero(np.isfinite(array))
    if n_bad:
        raise ValueError(f"{name} must be finite, got {n_bad} NaN or infinite values")


def _check_both_classes(is_anomalous: NDArray[np.bool_], unit: str, label_name: str) -> None:
    """Raise UndefinedMetricError unless there are both normal and anomalous ``unit``s."""
    n_anomalous = int(np.count_nonzero(is_anomalous))
    n_total = is_anomalous.size
    if 0 < n_anomalous < n_total:
        return
    if n_total == 0:
        raise UndefinedMetricError(f"AUROC is undefined for 0 {unit}")
    single = f"anomalous ({label_name} 1)" if n_anomalous else f"normal ({label_name} 0)"
    raise UndefinedMetricError(
        f"AUROC needs both normal and anomalous {unit}, but all {n_total} {unit} are {single}"
    )
