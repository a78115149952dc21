"""Tests of adtr.stats: binned metrics, the paired bootstrap, identity-shortcut statistics.

The module is used as ``stats.<name>``, as the package code does.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from adtr import metrics, stats
from adtr.errors import DataError


def realistic_run(rng: np.random.Generator, n_normal: int = 12, n_anomalous: int = 12,
                  size: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, smooth blob masks and smooth noisy maps that are higher inside the blobs."""
    labels = np.r_[np.zeros(n_normal, int), np.ones(n_anomalous, int)]
    masks = np.zeros((labels.size, size, size), bool)
    for i in np.flatnonzero(labels):
        blob = ndimage.gaussian_filter(rng.normal(size=(size, size)), 5)
        masks[i] = blob > np.quantile(blob, 0.93)
    noise = ndimage.gaussian_filter(rng.normal(size=masks.shape), (0, 2, 2))
    maps = (noise + 0.15 * ndimage.gaussian_filter(masks.astype(float), (0, 2, 2))).astype(
        np.float32)
    return labels, masks, maps


def quantised(maps: np.ndarray, levels: int = 40) -> np.ndarray:
    """``maps`` rounded to ``levels`` equally frequent values: each one gets its own bin."""
    return np.digitize(maps, np.quantile(maps, np.linspace(0, 1, levels + 1)[1:-1])) / levels


def image_run(labels: np.ndarray, separation: float, seed: int) -> stats.RunScores:
    """Image scores: noise, plus ``separation`` for the anomalous images."""
    noise = np.random.default_rng(seed).normal(size=labels.size)
    return stats.run_scores(labels, noise + separation * labels)


LABELS = np.r_[np.zeros(20, int), np.ones(15, int)]


def test_binned_pixel_auroc_agrees_with_the_exact_one() -> None:
    for seed in range(3):
        labels, masks, maps = realistic_run(np.random.default_rng(seed))
        scores = stats.run_scores(labels, maps.max(axis=(1, 2)), masks, maps)
        binned = stats.metric_values(scores, "pixel_auroc", np.ones((1, labels.size)))[0]
        assert abs(binned - metrics.pixel_auroc(masks, maps)) < 1e-3
        assert scores.pixel_counts.shape == (labels.size, 1024, 2)
        assert scores.pixel_counts.sum() == masks.size


def test_weights_of_all_ones_reproduce_the_plain_metrics() -> None:
    rng = np.random.default_rng(1)
    labels, masks, maps = realistic_run(rng)
    maps = quantised(maps)  # binned exactly
    image_scores = np.round(rng.normal(size=labels.size), 1) + labels  # with ties
    scores = stats.run_scores(labels, image_scores, masks, maps)
    ones = np.ones((3, labels.size))
    assert stats.metric_values(scores, "image_auroc", ones) == pytest.approx(
        [metrics.image_auroc(labels, image_scores)] * 3, abs=1e-12)
    assert stats.metric_values(scores, "pixel_auroc", ones) == pytest.approx(
        [metrics.pixel_auroc(masks, maps)] * 3, abs=1e-12)


def test_integer_multiplicities_equal_the_metric_of_repeated_samples() -> None:
    rng = np.random.default_rng(2)
    labels, masks, maps = realistic_run(rng)
    maps = quantised(maps)
    image_scores = np.round(rng.normal(size=labels.size), 1) + labels
    scores = stats.run_scores(labels, image_scores, masks, maps)
    weights = rng.integers(0, 4, size=(5, labels.size))
    weights[:, [0, -1]] = 1  # both classes present
    for row, value in zip(weights, stats.metric_values(scores, "image_auroc", weights),
                          strict=True):
        assert value == pytest.approx(
            metrics.image_auroc(np.repeat(labels, row), np.repeat(image_scores, row)), abs=1e-12)
    for row, value in zip(weights, stats.metric_values(scores, "pixel_auroc", weights),
                          strict=True):
        assert value == pytest.approx(
            metrics.pixel_auroc(np.repeat(masks, row, 0), np.repeat(maps, row, 0)), abs=1e-12)


def test_metric_values_of_2000_resamples_take_well_under_a_second() -> None:
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(30, int), np.ones(50, int)]
    counts = rng.integers(0, 50, size=(80, 1024, 2))
    scores = stats.RunScores(labels, rng.normal(size=80), counts)
    weights = stats.resample_weights(labels, 2000, rng)
    for metric in stats.METRICS:
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            values = stats.metric_values(scores, metric, weights)
            best = min(best, time.perf_counter() - start)
        assert values.shape == (2000,) and best < 1.0, (metric, best)


def test_metric_values_rejects_bad_input() -> None:
    scores = image_run(LABELS, 1.0, 0)
    with pytest.raises(ValueError, match="pixel counts"):
        stats.metric_values(scores, "pixel_auroc", np.ones((1, LABELS.size)))
    with pytest.raises(ValueError, match="metric must be"):
        stats.metric_values(scores, "aupro", np.ones((1, LABELS.size)))
    with pytest.raises(ValueError, match="shape"):
        stats.metric_values(scores, "image_auroc", np.ones(LABELS.size))


def test_stratified_resamples_keep_the_class_counts() -> None:
    weights = stats.resample_weights(LABELS, 500, np.random.default_rng(0))
    assert weights.shape == (500, LABELS.size)
    assert (weights[:, LABELS == 0].sum(axis=1) == 20).all()
    assert (weights[:, LABELS == 1].sum(axis=1) == 15).all()
    assert weights.std(axis=0).min() > 0  # really resampled


def groups_of(separation_a: float, separation_b: float, offset: int = 0) -> dict:
    """Two categories, three seeds each; a and b with independent noise per seed."""
    return {category: [(image_run(LABELS, separation_a, 100 * c + seed + offset),
                        image_run(LABELS, separation_b, 100 * c + seed + 50 + offset))
                       for seed in range(3)]
            for c, category in enumerate(("brick", "grass"))}


def test_a_clear_win_is_better_and_the_swapped_case_worse() -> None:
    overall, per_group = stats.paired_differences(groups_of(4.0, 0.0), "image_auroc", 500)
    assert overall.verdict == stats.BETTER and overall.low > 0.2
    assert {i.verdict for i in per_group.values()} == {stats.BETTER}
    assert overall.low <= overall.mean <= overall.high
    assert (overall.n_resamples, overall.level) == (500, 0.95)
    swapped = stats.paired_difference(groups_of(0.0, 4.0), "image_auroc", 500)
    assert swapped.verdict == stats.WORSE and swapped.high < -0.2


def test_ties_are_not_separated() -> None:
    same = image_run(LABELS, 1.0, 0)
    identical = stats.paired_difference({"brick": [(same, same)]}, "image_auroc", 200)
    assert (identical.mean, identical.low, identical.high) == (0.0, 0.0, 0.0)
    assert identical.verdict == stats.NOT_SEPARATED
    equally_good = stats.paired_difference(groups_of(1.5, 1.5), "image_auroc", 500)
    assert equally_good.verdict == stats.NOT_SEPARATED
    assert equally_good.low < 0 < equally_good.high


def test_the_bootstrap_on_pixel_auroc_pairs_the_resamples() -> None:
    labels, masks, maps = realistic_run(np.random.default_rng(4))
    good = stats.run_scores(labels, labels * 1.0, masks, maps)
    worse = stats.run_scores(labels, labels * 1.0, masks, maps + 0.5 * masks * -0.15)
    interval = stats.paired_difference({"brick": [(good, worse)]}, "pixel_auroc", 300)
    assert interval.verdict == stats.BETTER


def test_the_bootstrap_is_deterministic_for_a_seed() -> None:
    groups = groups_of(1.5, 1.0)
    first = stats.paired_differences(groups, "image_auroc", 300, seed=7)
    assert stats.paired_differences(groups, "image_auroc", 300, seed=7) == first
    assert stats.paired_differences(groups, "image_auroc", 300, seed=8)[0].low != first[0].low
    alone = stats.paired_differences({"grass": groups["grass"]}, "image_auroc", 300, seed=7)
    assert alone[1]["grass"] == first[1]["grass"]  # independent of the other categories


def test_mismatched_labels_raise() -> None:
    a = image_run(LABELS, 1.0, 0)
    b = stats.run_scores(LABELS[::-1], np.zeros(LABELS.size))
    with pytest.raises(ValueError, match="'brick'.*labels differ"):
        stats.paired_difference({"brick": [(a, b)]}, "image_auroc", 10)


def features_and_positions() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.normal(size=(3, 4, 6, 6)), rng.random((3, 6, 6)) < 0.3


def test_pass_through_of_identity_constant_and_half() -> None:
    f, positions = features_and_positions()
    assert stats.pass_through(f, f, positions) == pytest.approx(1.0, abs=1e-12)
    assert stats.pass_through(f, f + 3.0, positions) == pytest.approx(1.0, abs=1e-12)
    constant = np.broadcast_to(np.arange(4.0)[None, :, None, None], f.shape)
    assert stats.pass_through(f, constant, positions) == pytest.approx(0.0, abs=1e-12)
    assert stats.pass_through(f, 0.5 * f, positions) == pytest.approx(0.5, abs=1e-12)
    noisy = 0.5 * f + 0.1 * np.random.default_rng(0).normal(size=f.shape)
    assert stats.pass_through(f, noisy, positions) == pytest.approx(0.5, abs=0.05)


def test_pass_through_without_positions_or_variance_raises() -> None:
    f, positions = features_and_positions()
    with pytest.raises(ValueError, match="at least one position"):
        stats.pass_through(f, f, np.zeros_like(positions))
    with pytest.raises(ValueError, match="do not vary"):
        stats.pass_through(np.ones_like(f), f, positions)
    with pytest.raises(ValueError, match="positions"):
        stats.pass_through(f, f, positions[:, :3])


def test_shortcut_stats_on_a_hand_made_case() -> None:
    # One channel, 1 x 4 tokens: two anomalous copied exactly, two normal reconstructed
    # as their mean 1 (errors 1 and 1).
    f = np.array([[[[5.0, 7.0, 0.0, 2.0]]]])
    f_hat = np.array([[[[5.0, 7.0, 1.0, 1.0]]]])
    anomalous = np.array([[[True, True, False, False]]])
    result = stats.shortcut_stats(f, f_hat, anomalous, ~anomalous)
    assert result == pytest.approx({
        "pass_through_anomalous": 1.0, "pass_through_normal": 0.0, "error_anomalous": 0.0,
        "error_normal": 1.0, "error_normal_p99": 1.0, "anomalous_above_normal_p99": 0.0})
    # Two channels: per-token error is the Euclidean norm over channels.
    f2 = np.zeros((1, 2, 1, 2))
    f2_hat = np.array([[[[3.0, 0.0]], [[4.0, 1.0]]]])
    tokens = np.array([[[True, False]]])
    with pytest.raises(ValueError, match="do not vary"):  # one token: no variance
        stats.shortcut_stats(f2, f2_hat, tokens, ~tokens)
    f2[0, :, 0, 1] = [1.0, 2.0]
    f2[0, :, 0, 0] = [2.0, 2.0]
    both = np.ones((1, 1, 2), bool)
    error = np.hypot(*(f2 - f2_hat)[0, :, 0, :])
    result = stats.shortcut_stats(f2, f2_hat, both, both)
    assert result["error_normal"] == pytest.approx(error.mean())
    assert result["error_normal_p99"] == pytest.approx(np.percentile(error, 99))


def test_token_mask_on_a_hand_made_mask() -> None:
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, 0, :2] = 1  # top-left token: 2 of 4 pixels
    mask[0, 2:, 2:] = 255  # bottom-right token: all 4 (0/255 masks count as binary)
    mask[0, 3, 0] = 1  # bottom-left token: 1 of 4
    assert stats.token_mask(mask, 2).tolist() == [[[True, False], [False, True]]]
    assert stats.token_mask(mask, 2, threshold=0.25).tolist() == [[[True, False], [True, True]]]
    assert stats.token_mask(mask, 2, threshold=1.0).tolist() == [[[False, False], [False, True]]]
    assert stats.token_mask(mask, 4).sum() == 7
    with pytest.raises(ValueError, match="divisible"):
        stats.token_mask(mask, 3)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    labels, masks, maps = realistic_run(np.random.default_rng(6), 3, 3, 16)
    for scores in (stats.run_scores(labels, maps.mean(axis=(1, 2)), masks, maps, bins=64),
                   stats.run_scores(labels, maps.mean(axis=(1, 2)))):
        path = tmp_path / "runs" / "scores.npz"
        scores.save(path)
        loaded = stats.RunScores.load(path)
        assert np.array_equal(loaded.labels, scores.labels)
        assert np.array_equal(loaded.image_scores, scores.image_scores)
        if scores.pixel_counts is None:
            assert loaded.pixel_counts is None
        else:
            assert np.array_equal(loaded.pixel_counts, scores.pixel_counts)
    assert sorted(p.name for p in path.parent.iterdir()) == ["scores.npz"]  # no temporary left


def test_loading_a_missing_or_malformed_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.npz does not exist"):
        stats.RunScores.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="bad.npz is not a test scores file"):
        stats.RunScores.load(bad)
    other = tmp_path / "other.npz"
    np.savez_compressed(other, labels=np.zeros(3))
    with pytest.raises(DataError, match="other.npz"):
        stats.RunScores.load(other)


def test_twin_pass_through_of_copy_normal_only_and_half() -> None:
    from adtr.scores import twin_pass_through

    rng = np.random.default_rng(0)
    twin = rng.normal(size=(2, 3, 4, 4))
    f = twin + rng.normal(size=twin.shape)  # the defect's deviation from the twin
    positions = rng.random((2, 4, 4)) < 0.5
    twin_hat = rng.normal(size=twin.shape)  # any reconstruction of the twin
    assert twin_pass_through(f, f, twin, twin, positions) == pytest.approx(1.0, abs=1e-12)
    assert twin_pass_through(f, twin_hat, twin, twin_hat, positions) == 0.0
    constant = np.full_like(f, 2.0)
    assert twin_pass_through(f, constant, twin, constant, positions) == 0.0
    half = twin_hat + 0.5 * (f - twin)
    assert twin_pass_through(f, half, twin, twin_hat, positions) == pytest.approx(0.5, abs=1e-12)
    # Only the chosen tokens count: a copy elsewhere does not move the slope.
    mixed = np.where(positions[:, None], half, f)
    assert twin_pass_through(f, mixed, twin, twin_hat, positions) == pytest.approx(0.5, abs=1e-12)


def test_twin_pass_through_is_nan_without_positions_or_deviation() -> None:
    from adtr.scores import twin_pass_through

    f = np.random.default_rng(1).normal(size=(1, 2, 3, 3))
    positions = np.ones((1, 3, 3), bool)
    assert np.isnan(twin_pass_through(f, f, f + 1, f, np.zeros_like(positions)))
    assert np.isnan(twin_pass_through(f, f + 1, f, f, positions))  # f equals its twin
    with pytest.raises(ValueError, match="same shape"):
        twin_pass_through(f, f, f[:, :1], f[:, :1], positions)


def test_the_verdict_scale_reads_pairs_one_by_one_and_together() -> None:
    assert stats.pair_verdict(stats.BETTER) == "agrees"
    assert stats.pair_verdict(stats.WORSE, 0.97, 0.99) == "does not agree"
    assert stats.pair_verdict(stats.BETTER, 0.997, 0.996) == "saturated"  # both at the ceiling
    assert stats.pair_verdict(stats.WORSE, 0.999, 0.994) == "does not agree"  # one below it
    assert stats.pairs_reading(["not separated"]) == "not separated"
    assert stats.pairs_reading(["agrees", "does not agree", "agrees"]) == \
        "2 of 3 pairs agree, 1 does not agree"
    assert stats.pairs_reading(["saturated", "not separated"]) == \
        "0 of 2 pairs agree, 1 not separated, 1 saturated"
    assert stats.pairs_reading(["does not agree"] * 3) == "0 of 3 pairs agree, 3 do not agree"
    with pytest.raises(ValueError):
        stats.pairs_reading([])
