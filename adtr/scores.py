"""A run's test-set scores in a form any resample of its images can use, and the
identity-shortcut statistics of a reconstruction.

A run's test set is kept as :class:`RunScores`: image labels and scores, and per image a
histogram of its map values over K bins, split by mask label. Any resample of the test
images is then a vector of multiplicities, and a metric of B resamples at once is a few
matrix products (:func:`metric_values`). :func:`shortcut_stats` measures how far a model
copies its input features (the identity shortcut that the auxiliary query is meant to
prevent). What a run computes depends on this module; the verdicts drawn from its scores
(``adtr.stats``) do not enter a run's identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from adtr.errors import DataError, UndefinedMetricError
from adtr.records import atomic_path

METRICS = ("image_auroc", "pixel_auroc")
_FORMAT = "adtr.stats.RunScores/1"


@dataclass(frozen=True)
class RunScores:
    """The test-set scores of one run, in a form that any resample of its images can use.

    ``pixel_counts[i, k, c]`` is the number of pixels of image ``i`` with mask label ``c``
    (0 normal, 1 anomalous) whose map value falls in score bin ``k`` (bins ascending).
    """

    labels: NDArray[np.int64]  # (n,) image labels, 1 = anomalous
    image_scores: NDArray[np.float64]  # (n,)
    pixel_counts: NDArray[np.int64] | None = None  # (n, K, 2); None without masks

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if self.labels.ndim != 1 or not np.isin(self.labels, (0, 1)).all():
            raise ValueError(f"labels must be a 1-D array of 0/1, got shape {self.labels.shape}")
        if self.image_scores.shape != (n,) or not np.isfinite(self.image_scores).all():
            raise ValueError(f"image_scores must be {n} finite values, "
                             f"got shape {self.image_scores.shape}")
        counts = self.pixel_counts
        if counts is not None and (counts.ndim != 3 or counts.shape[::2] != (n, 2)):
            raise ValueError(f"pixel_counts must have shape ({n}, K, 2), got {counts.shape}")

    def save(self, path: str | Path) -> None:
        """Write a compressed ``.npz`` atomically (a temporary file beside it, then a rename)."""
        path = Path(path)
        arrays = {"format": np.array(_FORMAT), "labels": self.labels,
                  "image_scores": self.image_scores}
        if self.pixel_counts is not None:
            arrays["pixel_counts"] = self.pixel_counts
        with atomic_path(path) as tmp, open(tmp, "wb") as file:
            np.savez_compressed(file, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> RunScores:
        """Read a file written by :meth:`save`; DataError naming the file if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"test scores file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["format"]) != _FORMAT:
                    raise ValueError(f"format {archive['format']}, expected {_FORMAT}")
                counts = archive["pixel_counts"] if "pixel_counts" in archive else None
                return cls(archive["labels"], archive["image_scores"], counts)
        except Exception as error:  # a truncated zip, a missing array, wrong shapes, ...
            raise DataError(f"{path} is not a test scores file written by RunScores.save: "
                            f"{type(error).__name__}: {error}") from error


def run_scores(labels: ArrayLike, image_scores: ArrayLike, masks: ArrayLike | None = None,
                maps: ArrayLike | None = None, bins: int = 1024) -> RunScores:
    """Keep a run's scores; with ``masks`` and ``maps`` (N, H, W), also binned pixel counts.

    Bin edges are ``bins`` quantiles of all the run's map values, so each bin holds about
    1/K of the pixels and a value shared by more than that starts a bin (K < ``bins`` when
    quantiles coincide). The binned pixel AUROC counts a normal and an anomalous pixel in
    one bin as half a win, so it is off from the exact one by at most half the share of
    such pairs: about 1/(2K) times (all pixels / normal pixels), and exact for maps whose
    distinct values each cover at least 1/K of the pixels.
    """
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(image_scores, dtype=np.float64)
    if (masks is None) != (maps is None):
        raise ValueError("give both masks and maps, or neither")
    if masks is None:
        return RunScores(labels, scores)
    masks, maps = np.asarray(masks), np.asarray(maps)
    if masks.shape != maps.shape or masks.ndim != 3 or masks.shape[0] != labels.shape[0]:
        raise ValueError(f"masks and maps must both have shape ({labels.shape[0]}, H, W), "
                         f"got {masks.shape} and {maps.shape}")
    if not np.isin(masks, (0, 1)).all():
        raise ValueError("masks must be binary (0/1 or False/True)")
    if not np.isfinite(maps).all():
        raise ValueError("maps must be finite")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    # Bin k holds the values in [edges[k], edges[k + 1]); the last one, those >= edges[-1].
    edges = np.unique(np.quantile(maps, np.arange(bins) / bins, method="lower"))
    inner, n_bins = edges[1:], edges.size
    counts = np.zeros((labels.shape[0], n_bins, 2), dtype=np.int64)
    for image, (mask, values) in enumerate(zip(masks, maps, strict=True)):
        index = 2 * np.searchsorted(inner, values.ravel(), side="right") + mask.ravel()
        counts[image] = np.bincount(index.astype(np.int64), minlength=2 * n_bins).reshape(-1, 2)
    return RunScores(labels, scores, counts)


def metric_values(scores: RunScores, metric: str, weights: ArrayLike) -> NDArray[np.float64]:
    """The metric of B resamples: ``weights`` (B, n) holds each test image's multiplicity.

    ``image_auroc``: the weighted share of (anomalous, normal) image pairs ranked right,
    ties counting 1/2. ``pixel_auroc``: the same over pixels, from the summed bin counts
    (pairs in one bin count 1/2). Values are AUROCs in [0, 1].
    """
    weights = np.asarray(weights, dtype=np.float64)
    n = scores.labels.shape[0]
    if weights.ndim != 2 or weights.shape[1] != n or (weights < 0).any():
        raise ValueError(f"weights must be non-negative with shape (B, {n}), "
                         f"got shape {weights.shape}")
    if metric == "image_auroc":
        anomalous = scores.labels == 1
        pos, neg = scores.image_scores[anomalous], scores.image_scores[~anomalous]
        wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        w_pos, w_neg = weights[:, anomalous], weights[:, ~anomalous]
        numerator = np.einsum("bp,bp->b", w_pos @ wins, w_neg)
        totals = w_pos.sum(axis=1) * w_neg.sum(axis=1)
        unit = "images"
    elif metric == "pixel_auroc":
        if scores.pixel_counts is None:
            raise ValueError("pixel_auroc needs pixel counts: call run_scores with masks and maps")
        summed = (weights @ scores.pixel_counts.reshape(n, -1)).reshape(len(weights), -1, 2)
        neg, pos = summed[..., 0], summed[..., 1]
        below = np.cumsum(neg, axis=1) - 0.5 * neg  # normal pixels below a bin, half of its own
        numerator = np.einsum("bk,bk->b", pos, below)
        totals = pos.sum(axis=1) * neg.sum(axis=1)
        unit = "pixels"
    else:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if (totals == 0).any():
        raise UndefinedMetricError(f"AUROC needs both normal and anomalous {unit} in every "
                                   f"resample, but {np.count_nonzero(totals == 0)} lack one")
    return numerator / totals


def pass_through(features: ArrayLike, reconstruction: ArrayLike, positions: ArrayLike) -> float:
    """How much of a feature's deviation the reconstruction copies, at ``positions``.

    The least-squares slope of f_hat on f over the chosen tokens, each channel centred on
    its mean there, pooled over channels: sum((f - m)(f_hat - m_hat)) / sum((f - m)^2).
    1 for an identity reconstruction (also with a constant offset), 0 for a constant one,
    0.5 for f_hat = 0.5 f. ``features``, ``reconstruction``: (N, C, H, W); ``positions``:
    (N, H, W) bool.
    """
    f, f_hat = _tokens(features, reconstruction, positions)
    if f.shape[0] == 0:
        raise ValueError("pass_through needs at least one position, got none")
    deviation = f - f.mean(axis=0)
    spread = float(np.sum(deviation**2))
    if spread == 0:
        raise ValueError(f"pass_through is undefined: the features do not vary over the "
                         f"{f.shape[0]} chosen positions")
    return float(np.sum(deviation * (f_hat - f_hat.mean(axis=0))) / spread)


def shortcut_stats(features: ArrayLike, reconstruction: ArrayLike, anomalous_tokens: ArrayLike,
                   normal_tokens: ArrayLike) -> dict[str, float]:
    """Identity-shortcut numbers of one model's reconstruction of test features.

    ``pass_through_*``: :func:`pass_through` at anomalous / normal tokens (near 1 means the
    model copies its input there). ``error_*``: mean ||f - f_hat||_2 per token (the anomaly
    score before upsampling). ``error_normal_p99``: the 99th percentile of that error at
    normal tokens, and ``anomalous_above_normal_p99`` the share of anomalous tokens above it.
    Without anomalous tokens the anomalous entries are NaN.
    """
    anomalous, normal = np.asarray(anomalous_tokens, bool), np.asarray(normal_tokens, bool)
    if not normal.any():
        raise ValueError("shortcut_stats needs normal tokens, got none")
    f, f_hat = np.asarray(features, np.float64), np.asarray(reconstruction, np.float64)
    error = np.sqrt(np.sum((f - f_hat) ** 2, axis=1))  # (N, H, W)
    tail = float(np.percentile(error[normal], 99))
    values = {"pass_through_normal": pass_through(features, reconstruction, normal),
              "error_normal": float(error[normal].mean()), "error_normal_p99": tail}
    if not anomalous.any():  # e.g. defects all smaller than half a token: nothing to measure
        return {"pass_through_anomalous": float("nan"), "error_anomalous": float("nan"),
                "anomalous_above_normal_p99": float("nan"), **values}
    return {"pass_through_anomalous": pass_through(features, reconstruction, anomalous),
            "error_anomalous": float(error[anomalous].mean()),
            "anomalous_above_normal_p99": float(np.mean(error[anomalous] > tail)), **values}


def token_fraction(masks: ArrayLike, grid: int) -> NDArray[np.float64]:
    """Pixel masks (N, h, w) to tokens (N, grid, grid): the fraction of each token's pixels
    that are anomalous (area-average downsampling; nonzero = anomalous)."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[1] % grid or masks.shape[2] % grid:
        raise ValueError(f"masks must be (N, h, w) with h and w divisible by grid={grid}, "
                         f"got {masks.shape}")
    n, h, w = masks.shape
    return (masks != 0).reshape(n, grid, h // grid, grid, w // grid).mean(axis=(2, 4))


def token_mask(masks: ArrayLike, grid: int, threshold: float = 0.5) -> NDArray[np.bool_]:
    """Tokens (N, grid, grid) at least ``threshold`` of whose pixels are anomalous."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    return token_fraction(masks, grid) >= threshold - 1e-12


def _tokens(features: ArrayLike, reconstruction: ArrayLike,
            positions: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The (M, C) feature and reconstruction vectors at the M chosen positions."""
    f = np.asarray(features, dtype=np.float64)
    f_hat = np.asarray(reconstruction, dtype=np.float64)
    chosen = np.asarray(positions, dtype=bool)
    if f.ndim != 4 or f.shape != f_hat.shape or chosen.shape != f.shape[:1] + f.shape[2:]:
        raise ValueError(f"need features and reconstruction (N, C, H, W) of one shape and "
                         f"positions (N, H, W), got {f.shape}, {f_hat.shape}, {chosen.shape}")
    return np.moveaxis(f, 1, -1)[chosen], np.moveaxis(f_hat, 1, -1)[chosen]


def twin_pass_through(features: ArrayLike, reconstruction: ArrayLike, twin_features: ArrayLike,
                      twin_reconstruction: ArrayLike, positions: ArrayLike) -> float:
    """How much of an anomaly's deviation from its defect-free twin the reconstruction keeps.

    The least-squares slope (through the origin) of (f_hat - f_hat_twin) on (f - f_twin)
    over the chosen tokens, pooled over channels: sum(df * df_hat) / sum(df^2), with
    ``df = f - f_twin`` and ``df_hat = f_hat - f_hat_twin``. 1 when the reconstruction
    carries the whole deviation (a copy), 0 when it reconstructs the same thing whatever
    the defect (the ideal model of normal images only), 0.5 for f_hat = f_hat_twin +
    0.5 (f - f_twin). Unlike :func:`pass_through`, the twin tells apart what the defect
    changed from how normal features vary, so no centring is needed.

    All four arrays: (N, C, H, W) of one shape (image i of the twin arrays is the twin of
    image i); ``positions``: (N, H, W) bool. NaN when no position is chosen or when the
    features equal their twin's at every chosen position (nothing to carry).
    """
    f, f_hat = _tokens(features, reconstruction, positions)
    f_twin, f_hat_twin = _tokens(twin_features, twin_reconstruction, positions)
    if f.shape != f_twin.shape:
        raise ValueError(f"need the twin arrays of the same shape as the others, got "
                         f"features {np.shape(features)} and twin {np.shape(twin_features)}")
    deviation = f - f_twin
    spread = float(np.sum(deviation**2))
    if spread == 0:  # also when no position is chosen
        return float("nan")
    return float(np.sum(deviation * (f_hat - f_hat_twin)) / spread)
