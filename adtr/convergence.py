"""The convergence study: how long each variant needs to finish learning, and the one
schedule the book trains every variant for (``catalog.CONVERGENCE`` says what runs).

- ``variants``: every trained variant of the Table 4 claims, once per distinct set of
  run parameters (ADTR is Table 4a's "Attn + Query", 4b's "Features" and 4d's
  "Multi-scale" at once).
- the curves it reads (``adtr.curves``): each run's probes at its checkpoints
  (``pipeline.shortcut_probe``: test-set pixel and image AUROC, the error at normal tokens)
  with its training loss and learning rate at that epoch.
- ``schedule_rule``: the book's schedule read from the long runs' curves, the same for
  every variant (``rule_by_tolerance``: at other tolerances; ``rule_by_window``: as
  shorter long runs would read it; ``doubling_gain``: why a slowly rising curve moves it
  with the long runs' length); ``flattened`` and
  ``against_long`` check the book's own runs against it.
- ``seed_check``: how far seeds move a variant and a pair, beside the test-image
  intervals' half-widths.

The probes are computed on the test set. The rule reads them to choose one length for all
variants, never one per variant or per verdict.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from adtr import catalog, experiments, pipeline, profiles, stats, study, train
from adtr.curves import category_means, late_base_phase
from adtr.schema import RunRecord


def variants(setup: experiments.Setup) -> dict[str, dict[str, Any]]:
    """Name -> run parameters of every trained variant of the study's claims on this
    set-up: the training-free references left out, each set of parameters once (under the
    first name it has: ``adtr`` for Table 4a's ADTR, 4b's features, 4d's multi-scale; the
    same resolved parameters count once, e.g. standardised pixels in a profile that
    standardises)."""
    chosen: dict[str, dict[str, Any]] = {}
    resolved = []
    for claim in catalog.CONVERGENCE.claims:
        for name, overrides in experiments.variants(setup, catalog.get(claim)).items():
            config = profiles.with_overrides(setup.base, **overrides)
            if overrides.get("variant") == "pca" or config in resolved:
                continue
            resolved.append(config)
            chosen["adtr" if not overrides else name] = overrides
    return chosen


def labels() -> dict[str, str]:
    """The variants' labels as the Table 4 pages give them (ADTR for the shared run)."""
    names = {"adtr": "ADTR"}
    for claim in catalog.CONVERGENCE.claims:
        for variant in catalog.get(claim).variants:
            names.setdefault(variant.name, variant.label)
    return names


def categories(setup: experiments.Setup,
               wanted: tuple[str, ...] = catalog.CONVERGENCE.categories) -> list[str]:
    """The long runs' categories (or, given the study's ``seed_categories``, the seed
    check's): those of ``wanted`` the set-up has, else its first texture and first object."""
    chosen = [c for c in wanted if c in setup.categories]
    if chosen:
        return chosen
    kinds = {c: study.category_kind(c) for c in setup.categories}
    return [next(c for c in setup.categories if kinds[c] == kind)
            for kind in ("texture", "object") if kind in kinds.values()]


def flattened_at(epochs: list[int], values: list[float], tolerance: float) -> int:
    """The first epoch of a curve from which it never rises more than ``tolerance`` above
    its value there (the last epoch, at the latest)."""
    for i, value in enumerate(values):
        if max(values[i:]) - value <= tolerance:
            return int(epochs[i])
    raise ValueError("an empty curve has no plateau")


def schedule_for(plateau: int, step: int) -> int:
    """The fewest epochs, a multiple of ``step``, whose lr cut (``train.lr_cut_epoch``)
    comes at or after ``plateau``: the base learning rate has done its work by then."""
    epochs = step * max(1, math.ceil(plateau / train.LR_CUT_FRACTION / step))
    while train.lr_cut_epoch(epochs) < plateau:
        epochs += step
    return epochs


def schedule_rule(long_curves: pd.DataFrame, long_epochs: int, step: int,
                  study_: catalog.ConvergenceStudy = catalog.CONVERGENCE) -> dict[str, Any]:
    """The book's schedule from the long runs: per variant, the epoch from which its
    category-mean pixel AUROC rises by no more than the tolerance until the long runs'
    cut (their base-lr phase); the slowest variant's epoch sets the schedule for all
    (``schedule_for``, in multiples of ``step``, the probes' spacing). ``enough``: the long
    runs are at least twice that long."""
    cut = train.lr_cut_epoch(long_epochs)
    means = category_means(long_curves)
    plateaus = {}
    for variant, curve in means.groupby("variant", sort=False):
        base = curve[curve["epoch"] <= cut].sort_values("epoch")
        plateaus[variant] = flattened_at(list(base["epoch"]), list(base["pixel_auroc"]),
                                         study_.tolerance)
    slowest = max(plateaus, key=plateaus.get)
    epochs = schedule_for(plateaus[slowest], step)
    return {"plateau_epoch": plateaus, "slowest": slowest, "epochs": epochs,
            "lr_cut_epoch": train.lr_cut_epoch(epochs), "long_epochs": long_epochs,
            "long_lr_cut_epoch": cut, "tolerance": study_.tolerance, "step": step,
            "enough": 2 * epochs <= long_epochs}


#: Tolerances (AUROC) at which ``rule_by_tolerance`` reads the rule again: below, at and
#: above the study's, up to more than twice the probes' jitter between checkpoints.
TOLERANCES = (0.001, 0.002, 0.003, 0.005)


def rule_by_tolerance(long_curves: pd.DataFrame, long_epochs: int, step: int,
                      tolerances: tuple[float, ...] = TOLERANCES) -> pd.DataFrame:
    """The rule read at each of ``tolerances`` instead of the study's: the slowest
    variant, the epoch from which it is flat and the schedule, per tolerance. How much the
    schedule hangs on the tolerance, which the probes' own jitter makes uncertain; the
    study's tolerance still decides the book's schedule."""
    rows = []
    for tolerance in tolerances:
        found = schedule_rule(long_curves, long_epochs, step,
                              replace(catalog.CONVERGENCE, tolerance=tolerance))
        rows.append({"tolerance": tolerance, "slowest": found["slowest"],
                     "plateau_epoch": found["plateau_epoch"][found["slowest"]],
                     "epochs": found["epochs"], "enough": found["enough"]})
    return pd.DataFrame(rows)


#: Shares of the long runs' length at which ``rule_by_window`` reads the rule again.
WINDOWS = (0.25, 0.5, 0.75, 1.0)


def rule_by_window(long_curves: pd.DataFrame, long_epochs: int, step: int,
                   shares: tuple[float, ...] = WINDOWS) -> pd.DataFrame:
    """The rule as shorter long runs would read it. Until its learning-rate cut a run trains
    at the base rate on the same batches (they depend only on the seed and the epoch),
    whatever its length, so a run of ``length`` epochs has the long runs' curve up to
    ``train.lr_cut_epoch(length)``. Per length (a share of ``long_epochs``, in multiples
    of ``step``, with two probes or more before its cut) and variant: the epoch from which
    the variant is flat, and the schedule the rule picks (``doubling_gain`` says how far
    that epoch moves with the length)."""
    rows = []
    lengths = dict.fromkeys(step * max(1, round(share * long_epochs / step)) for share in shares)
    probed = long_curves["epoch"].unique()
    for length in lengths:
        if (probed <= train.lr_cut_epoch(length)).sum() < 2:
            continue  # one probe before that length's cut is no curve
        found = schedule_rule(long_curves, length, step)
        for variant, epoch in found["plateau_epoch"].items():
            rows.append({"long_epochs": length, "variant": variant, "plateau_epoch": epoch,
                         "epochs": found["epochs"], "enough": found["enough"]})
    return pd.DataFrame(rows)


def _gain(curve: pd.DataFrame) -> float:
    """The slope of pixel AUROC over log2(epoch), in points: the gain per doubling."""
    epochs = np.log2(curve["epoch"].to_numpy(float))
    return 100 * float(np.polyfit(epochs, curve["pixel_auroc"].to_numpy(float), 1)[0])


def doubling_gain(long_curves: pd.DataFrame, long_epochs: int,
                  tolerance: float = catalog.CONVERGENCE.tolerance) -> pd.DataFrame:
    """Per variant: how much its category-mean pixel AUROC gains per doubling of the epochs
    (points) in the later half of the long runs' base-lr phase (``late_base_phase``), the
    slope of a least-squares line over log2(epoch), and the category that gains most.

    On a curve that keeps a gain g, the rule's flat-from epoch is the share
    2 ** (-tolerance / g) of the window it reads: it grows with the long runs for any g > 0,
    but stays within their first half, where runs twice the schedule confirm it, only while
    g is no more than the tolerance. ``rising``: the gain is more than the tolerance."""
    cut = train.lr_cut_epoch(long_epochs)
    late = late_base_phase(long_curves, cut)
    rows = []
    for variant, curve in category_means(late).groupby("variant", sort=False):
        if len(curve) < 3:
            continue
        by_category = {category: _gain(points) for category, points in
                       late[late["variant"] == variant].groupby("category", sort=False)}
        top = max(by_category, key=by_category.get)
        gain = _gain(curve)
        rows.append({"variant": variant, "gain_points": gain, "rising": gain > 100 * tolerance,
                     "top_category": top, "top_gain_points": by_category[top],
                     "from_epoch": int(curve["epoch"].min()),
                     "to_epoch": int(curve["epoch"].max())})
    return pd.DataFrame(rows, columns=["variant", "gain_points", "rising", "top_category",
                                       "top_gain_points", "from_epoch", "to_epoch"])


def steady_schedule(rule: dict[str, Any], gains: pd.DataFrame) -> int | None:
    """The schedule the rule (``schedule_rule``) would pick from the variants that are not
    rising (``doubling_gain``): those whose flat-from epoch runs twice the schedule can
    confirm. None where every variant is rising."""
    steady = gains.loc[~gains["rising"].astype(bool), "variant"]
    if steady.empty:
        return None
    return schedule_for(max(rule["plateau_epoch"][v] for v in steady), rule["step"])


def flattened(book_curves: pd.DataFrame, tolerance: float = catalog.CONVERGENCE.tolerance
              ) -> pd.DataFrame:
    """Per variant and category of the book's runs: the epoch from which its pixel AUROC
    rose by no more than ``tolerance`` before its lr cut, whether that came before its last
    probe ahead of the cut (it had flattened), and its pixel AUROC at the last probe."""
    rows = []
    for (variant, category), curve in book_curves.groupby(["variant", "category"], sort=False):
        curve = curve.groupby("epoch")["pixel_auroc"].mean().sort_index()
        cut = train.lr_cut_epoch(int(curve.index.max()))
        base = curve[curve.index <= cut]
        at = flattened_at(list(base.index), list(base.values), tolerance)
        # flat from before its last probe at the base lr: the last probe alone proves nothing
        rows.append({"variant": variant, "category": category, "flattened_at": at,
                     "lr_cut_epoch": cut, "flattened": at < base.index.max(),
                     "pixel_auroc": float(curve.iloc[-1])})
    return pd.DataFrame(rows)


def against_long(book_curves: pd.DataFrame, long_curves: pd.DataFrame,
                 tolerance: float = catalog.CONVERGENCE.tolerance) -> pd.DataFrame:
    """Per variant, on the long runs' categories: the book's run at its last probe (mean
    over those categories) against the best category mean of the long run at any probe;
    within the tolerance or not. Beside it, the long run's own end (its last probe, the
    kind of number the book reports), which the probes' jitter does not lift as it lifts
    the best of many probes, and the image AUROC at both ends, which the rule does not
    read."""
    rows = []
    long_means = category_means(long_curves)
    shared = book_curves[book_curves["category"].isin(set(long_curves["category"]))]
    for variant, curve in category_means(shared).groupby("variant", sort=False):
        long = long_means[long_means["variant"] == variant]
        if long.empty:
            continue
        best = long.loc[long["pixel_auroc"].idxmax()]
        long_end = long.sort_values("epoch").iloc[-1]
        book_end = curve.sort_values("epoch").iloc[-1]
        end, book = float(long_end["pixel_auroc"]), float(book_end["pixel_auroc"])
        rows.append({"variant": variant, "book_epochs": int(curve["epoch"].max()),
                     "book_pixel_auroc": book, "long_best_pixel_auroc": float(best["pixel_auroc"]),
                     "long_best_epoch": int(best["epoch"]),
                     "gap_points": 100 * (float(best["pixel_auroc"]) - book),
                     "within": float(best["pixel_auroc"]) - book <= tolerance,
                     "long_end_pixel_auroc": end, "end_gap_points": 100 * (end - book),
                     "book_image_auroc": float(book_end["image_auroc"]),
                     "long_end_image_auroc": float(long_end["image_auroc"]),
                     "image_end_gap_points": 100 * float(long_end["image_auroc"]
                                                         - book_end["image_auroc"])})
    return pd.DataFrame(rows)


def seed_check(runs: pd.DataFrame, records: list[RunRecord], pair: tuple[str, str],
               metric: str = "pixel_auroc") -> pd.DataFrame:
    """Per category of the seed runs: each variant's ``metric`` over seeds (mean and
    sample SD, ddof = 1), the pair's difference a − b over seeds (mean and SD), and the mean
    half-width of the pair's paired 95 % test-image interval of one seed; in points."""
    a, b = pair
    scores = {(r["variant"], r["category"], r["seed"]): record
              for r, record in zip(runs.to_dict(orient="records"), records, strict=True)}
    rows = []
    for category, part in runs.groupby("category", sort=False):
        values = part.pivot_table(index="seed", columns="variant", values=metric)
        difference = 100 * (values[a] - values[b])
        widths = []
        for seed in values.index:
            load = [stats.RunScores.load(pipeline.scores_path(
                scores[v, category, seed])) for v in (a, b)]
            interval = stats.paired_difference({category: [tuple(load)]}, metric)
            widths.append(100 * (interval.high - interval.low) / 2)
        row = {"category": category, "seeds": len(values)}
        for variant in (a, b):
            row[f"{variant}_mean"] = 100 * values[variant].mean()
            row[f"{variant}_sd"] = 100 * values[variant].std(ddof=1)
        row.update(difference_mean=difference.mean(), difference_sd=difference.std(ddof=1),
                   interval_half_width=float(np.mean(widths)))
        rows.append(row)
    return pd.DataFrame(rows)


def claim_intervals(setup: experiments.Setup, runs: pd.DataFrame,
                    records: list[RunRecord]) -> pd.DataFrame:
    """Each study claim decided on ``runs`` (named as ``variants`` names them, e.g. the
    long runs): the claim's variants found among them under their own names, then
    ``experiments.intervals``, with the claim's name beside each row."""
    ours = variants(setup)
    frames = []
    for claim in catalog.CONVERGENCE.claims:
        experiment = catalog.get(claim)
        names = {next(n for n, o in ours.items() if o == overrides): name
                 for name, overrides in experiments.variants(setup, experiment).items()
                 if overrides in ours.values()}
        index = [i for i, v in enumerate(runs["variant"]) if v in names]
        subset = runs.iloc[index].assign(variant=[names[v] for v in runs["variant"].iloc[index]])
        table = experiments.intervals(experiment, subset.reset_index(drop=True),
                                      [records[i] for i in index])
        frames.append(table.assign(claim_of=claim))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
