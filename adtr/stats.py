"""Verdicts from paired bootstrap intervals of two variants' test-set scores.

:func:`paired_differences` compares two variants (a, b) with a paired, label-stratified
bootstrap of their :class:`adtr.scores.RunScores`; :func:`pair_verdict` reads one pair on
the verdict scale (agrees, does not agree, not separated, saturated), :func:`pairs_reading`
says a claim's pairs at once ("2 of 3 pairs agree, ..."), and :func:`claim_verdict` reads
them into one of the first three. Nothing here enters a run's
identity: the scores and shortcut statistics a run writes are in ``adtr.scores``
(re-exported here for the analysis code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from adtr.scores import (
    METRICS,
    RunScores,
    metric_values,
    pass_through,
    run_scores,
    shortcut_stats,
    token_fraction,
    token_mask,
)

__all__ = [
    "AGREES", "BETTER", "CLAIM_VERDICTS", "DISAGREES", "Interval", "METRICS", "NOT_SEPARATED",
    "RunScores", "SATURATED", "SATURATION", "SUBSTITUTE", "VERDICT_SCALE", "WORSE",
    "claim_verdict", "metric_values", "pair_verdict", "paired_difference",
    "paired_differences", "pairs_reading", "pass_through", "resample_weights", "run_scores",
    "shortcut_stats", "token_fraction", "token_mask"
]

BETTER, WORSE, NOT_SEPARATED = "a better", "a worse", "not separated"
#: A claim "a beats b" read against the interval of a - b: the same three outcomes.
AGREES, DISAGREES = "agrees", "does not agree"
CLAIM_VERDICTS = {BETTER: AGREES, WORSE: DISAGREES, NOT_SEPARATED: NOT_SEPARATED}
#: Two more readings of a pair: both variants at the metric's ceiling, where no difference
#: can show (``SATURATION``), and a test on stand-ins for the paper's variants (e.g. other
#: backbones), which can agree or not but is not the paper's comparison.
SATURATED, SUBSTITUTE = "saturated", "substitute test"
#: The verdict scale, in the order a reader meets it.
VERDICT_SCALE = (AGREES, DISAGREES, NOT_SEPARATED, SATURATED, SUBSTITUTE)
#: An AUROC from which a variant is at the ceiling: a pair with both at or above it is
#: saturated, whatever its interval says.
SATURATION = 0.995
#: A verdict after a count above one, where its verb changes ('3 do not agree').
_PLURAL = {DISAGREES: "do not agree"}


def claim_verdict(interval_verdicts: Sequence[str]) -> str:
    """A claim made of pairs "a beats b": agrees when every pair's interval is above 0,
    does not agree when one is below 0, not separated otherwise."""
    said = {CLAIM_VERDICTS[v] for v in interval_verdicts}
    if said == {AGREES}:
        return AGREES
    return DISAGREES if DISAGREES in said else NOT_SEPARATED


def pair_verdict(interval_verdict: str, a: float | None = None, b: float | None = None) -> str:
    """One pair "a beats b" read from its interval: agrees, does not agree, not separated;
    saturated when both values (AUROC in [0, 1]) are at or above ``SATURATION``."""
    if a is not None and b is not None and min(a, b) >= SATURATION:
        return SATURATED
    return CLAIM_VERDICTS[interval_verdict]


def pairs_reading(pair_verdicts: Sequence[str]) -> str:
    """A claim's pairs said at once: the verdict itself for one pair, else how many of the
    pairs agree and how the others read, e.g. '2 of 3 pairs agree, 1 not separated'."""
    if not pair_verdicts:
        raise ValueError("a claim needs at least one pair")
    if len(pair_verdicts) == 1:
        return pair_verdicts[0]
    counts = {v: list(pair_verdicts).count(v) for v in VERDICT_SCALE}
    parts = [f"{counts[AGREES]} of {len(pair_verdicts)} pairs agree"]
    parts += [f"{n} {v if n == 1 else _PLURAL.get(v, v)}" for v, n in counts.items()
              if n and v != AGREES]
    return ", ".join(parts)


@dataclass(frozen=True)
class Interval:
    """A paired difference a - b in metric units (AUROC in [0, 1]) and its bootstrap interval.

    ``mean`` is the difference on the full test sets; ``low`` and ``high`` bound the central
    ``level`` share of the ``n_resamples`` bootstrap replicates (percentile interval).
    ``verdict`` is BETTER if low > 0, WORSE if high < 0, NOT_SEPARATED otherwise.
    """

    mean: float
    low: float
    high: float
    verdict: str
    n_resamples: int
    level: float


def resample_weights(labels: ArrayLike, n_resamples: int,
                     rng: np.random.Generator) -> NDArray[np.int64]:
    """Multiplicities (B, n) of B bootstrap resamples stratified by label.

    Normal and anomalous images are drawn with replacement separately, so every resample
    keeps both class counts.
    """
    labels = np.asarray(labels)
    weights = np.zeros((n_resamples, labels.size), dtype=np.int64)
    rows = np.arange(n_resamples)[:, None]
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        if members.size:
            draws = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
            np.add.at(weights, (rows, draws), 1)
    return weights


def paired_differences(groups: Mapping[str, Sequence[tuple[RunScores, RunScores]]],
                       metric: str, n_resamples: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[Interval, dict[str, Interval]]:
    """Bootstrap the difference metric(a) - metric(b): overall, and per category.

    ``groups`` maps a category to one (a, b) pair per training seed, all on the same test
    images. Each replicate resamples every category's images (stratified by label) and
    applies that same resample to a and b and to every seed: the comparison is paired. A
    category's statistic is the mean over its seeds; the overall one is the mean over
    categories (each weighs the same). A plain numpy bootstrap: ``scipy.stats.bootstrap``
    would recompute each metric per replicate instead of as one matrix product. A
    category's resamples depend only on ``seed`` and its name, so its interval does not
    change when other categories are added.
    """
    if not groups:
        raise ValueError("groups is empty: give at least one category")
    if not 0 < level < 1 or n_resamples < 1:
        raise ValueError(f"need 0 < level < 1 and n_resamples >= 1, got {level}, {n_resamples}")
    points, replicates = {}, {}
    for category, pairs in groups.items():
        if not pairs:
            raise ValueError(f"category {category!r} has no (a, b) pairs")
        labels = pairs[0][0].labels
        for run in (run for pair in pairs for run in pair):
            if not np.array_equal(run.labels, labels):
                raise ValueError(f"category {category!r}: the runs' test labels differ; "
                                 "every (a, b) pair must be scored on the same test images")
        rng = np.random.default_rng([seed, *category.encode()])
        weights = np.vstack([np.ones(labels.size), resample_weights(labels, n_resamples, rng)])
        differences = np.mean([metric_values(a, metric, weights) - metric_values(b, metric, weights)
                               for a, b in pairs], axis=0)
        points[category], replicates[category] = differences[0], differences[1:]
    per_group = {c: _interval(points[c], replicates[c], level) for c in groups}
    overall = _interval(np.mean(list(points.values())),
                        np.mean(list(replicates.values()), axis=0), level)
    return overall, per_group


def paired_difference(groups: Mapping[str, Sequence[tuple[RunScores, RunScores]]],
                      metric: str, n_resamples: int = 2000, level: float = 0.95,
                      seed: int = 0) -> Interval:
    """The overall interval of :func:`paired_differences`."""
    return paired_differences(groups, metric, n_resamples, level, seed)[0]


def _interval(point: float, replicates: NDArray[np.float64], level: float) -> Interval:
    low, high = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    verdict = BETTER if low > 0 else WORSE if high < 0 else NOT_SEPARATED
    return Interval(float(point), float(low), float(high), verdict, replicates.size, level)
