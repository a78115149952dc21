"""The scientific judgement, as pure functions of the numbers: what each of the paper's
experiments claims, how our ranking of its variants compares with the paper's, and whether
ADTR+ improves on ADTR by more than seed noise. Nothing here formats a page."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from adtr import catalog, stats
from adtr.catalog import Claim
from adtr.report.formatting import interval, signed
from adtr.report.loading import METRICS, Experiment, paper_values
from adtr.schema import unit_column

#: Two means closer than this (in points) count as the same number on real MVTec-AD.
SAME_POINTS = 1.0
#: A difference larger than this many standard deviations over seeds is not seed noise.
NOISE_FACTOR = 2
#: Fig. 5: k-NN accuracy in the t-SNE plane from which normal and anomalous difference
#: vectors count as separated, and below which as not separated at all.
SEPARATED, PARTLY_SEPARATED = 0.9, 0.7


# --- the paper's claims, decided by paired intervals --------------------------------

#: The claims of the experiments that rank variants (Table 4), from the catalog.
CLAIMS: dict[str, Claim] = {e.name: e.claim for e in catalog.EXPERIMENTS.values() if e.claim}

#: A comparison's interval as a verdict on the claim: a > b, a < b, or 0 inside it.
AGREES, DISAGREES, NOT_SEPARATED = stats.AGREES, stats.DISAGREES, stats.NOT_SEPARATED


def our_values(exp: Experiment, metric: str = "pixel_auroc") -> dict[str, float]:
    """Variant -> our mean of ``metric`` in %, in the order the notebook ran them."""
    summary = exp.summary
    if summary.empty:
        return {}
    return {row["variant"]: 100 * row[f"{metric}_mean"] for _, row in summary.iterrows()}


def at_ceiling(exp: Experiment, a: str, b: str, metric: str, category: str = "all") -> bool:
    """Whether both variants' means over seeds of ``metric`` in ``category`` (over all
    categories: the mean of those) are at or above ``stats.SATURATION``, where no
    difference can show."""
    runs = exp.runs
    if category != "all":
        runs = runs[runs[unit_column(runs)] == category]
    means = runs.groupby("variant")[metric].mean()
    return {a, b} <= set(means.index) and min(means[a], means[b]) >= stats.SATURATION


def ranks(values: dict[str, float]) -> dict[str, int]:
    """1 = highest; tied values share the better rank."""
    return {k: 1 + sum(other > v for other in values.values()) for k, v in values.items()}


@dataclass(frozen=True)
class Comparison:
    """The paired 95 % interval of a - b over all categories, in points (the notebook's
    ``experiments.intervals``)."""

    a: str
    b: str
    claim: bool  # one of the claim's pairs (else a reference row against the claim's pick)
    difference: float
    low: float
    high: float
    interval_verdict: str  # stats.BETTER / WORSE / NOT_SEPARATED
    seeds: int
    same_sign: int = 0  # the categories whose own difference has the overall one's sign
    categories: int = 0  # the categories with a difference of their own

    @property
    def sign_holds(self) -> str:
        """'5 of 6 categories' (empty without per-category rows)."""
        return f"{self.same_sign} of {self.categories} categories" if self.categories else ""

    @property
    def verdict(self) -> str:
        return stats.CLAIM_VERDICTS[self.interval_verdict]

    @property
    def shown(self) -> str:
        return interval(self.difference, self.low, self.high)


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim against our intervals, pair by pair (``stats.pair_verdict``: agrees, does not
    agree, not separated, or saturated where both variants are at the ceiling), said at
    once by ``stats.pairs_reading``; pairs of stand-ins for the paper's variants are a
    substitute test (``Claim.substitutes``)."""

    claim: Claim
    paper: dict[str, float]
    ours: dict[str, float]
    comparisons: list[Comparison]  # the claim's pairs that ran
    references: list[Comparison]  # reference rows against the claim's pick
    decided: bool = True  # False: the results hold no intervals

    def pair_verdict(self, c: Comparison) -> str:
        """One pair on the verdict scale (ours in %, the saturation bound an AUROC)."""
        a, b = (self.ours.get(v) for v in (c.a, c.b))
        return stats.pair_verdict(c.interval_verdict, None if a is None else a / 100,
                                  None if b is None else b / 100)

    def is_substitute(self, c: Comparison) -> bool:
        return (c.a, c.b) in self.claim.substitutes

    @property
    def substitute(self) -> bool:
        """Every pair that ran is a substitute test."""
        return bool(self.comparisons) and all(map(self.is_substitute, self.comparisons))

    @property
    def verdict(self) -> str:
        if not self.decided:
            return "not decided (these results hold no intervals)"
        if not self.comparisons:
            return "cannot be compared"
        parts = []
        for substitute in (False, True):
            said = [self.pair_verdict(c) for c in self.comparisons
                    if self.is_substitute(c) == substitute]
            if said:
                reading = stats.pairs_reading(said)
                parts.append(f"{stats.SUBSTITUTE}: {reading}" if substitute else reading)
        return "; ".join(parts)


def comparisons_of(exp: Experiment, metric: str | None = None) -> list[Comparison]:
    """The experiment's comparisons over all categories, from its ``intervals`` table, each
    with the number of categories in which its sign holds."""
    return comparisons_from([r for r in exp.table("intervals") or []
                             if r["metric"] == (metric or r["metric"])])


def comparisons_from(rows: list[dict]) -> list[Comparison]:
    """Interval rows (``experiments.intervals``: one per pair and category, and one over all
    categories) as comparisons over all categories, each with the number of categories in
    which its sign holds."""
    found = []
    for r in (r for r in rows if r["category"] == "all"):
        own = [p["difference"] for p in rows
               if p["category"] != "all" and (p["a"], p["b"]) == (r["a"], r["b"])]
        same = sum(d * r["difference"] > 0 for d in own)
        found.append(Comparison(r["a"], r["b"], bool(r["claim"]), r["difference"], r["low"],
                                r["high"], r["verdict"], int(r["seeds"]), same, len(own)))
    return found


def experiment_verdict(exp: Experiment, metric: str = "pixel_auroc") -> ClaimVerdict:
    """The experiment's claim decided by its intervals of ``metric``."""
    found = comparisons_of(exp, metric)
    decided = "intervals" in exp.results.tables
    return ClaimVerdict(CLAIMS[exp.name], dict(exp.paper), our_values(exp, metric),
                        [c for c in found if c.claim], [c for c in found if not c.claim],
                        decided)


# --- ADTR+ beside ADTR --------------------------------------------------------------

#: Where the paper's ADTR / ADTR+ means come from, per experiment.
PAPER_DATA = {e.name: e.paper_data for e in catalog.EXPERIMENTS.values()
              if "adtr_plus" in e.labels}


#: An interval of ADTR+ − ADTR read as what ADTR+ does.
PLUS_READINGS = {stats.BETTER: "improves", stats.WORSE: "worse",
                 stats.NOT_SEPARATED: "no clear difference"}


@dataclass(frozen=True)
class PlusDifference:
    """ADTR+ minus ADTR on one metric, in points. ADTR+ starts from the ADTR model of the
    same category (or class) and seed, so the difference is taken run by run, averaged over
    categories per seed; ``delta`` is its mean over seeds, ``spread`` its std over seeds.
    ``interval``: the paired test-image interval of the difference (the notebook's
    ``intervals`` table), where the results hold one; it then decides the verdict."""

    metric: str
    delta: float
    spread: float | None  # None with one seed
    seeds: int
    interval: Comparison | None = None

    @property
    def verdict(self) -> str:
        """'improves', 'worse', or 'no clear difference': by the paired interval where there
        is one (0 inside it: no clear difference); else zero at one decimal, or within
        ``NOISE_FACTOR`` standard deviations over seeds."""
        if self.interval is not None:
            return PLUS_READINGS[self.interval.interval_verdict]
        noise = NOISE_FACTOR * self.spread if self.spread is not None else 0.0
        if round(self.delta, 1) == 0 or abs(self.delta) <= noise:
            return "no clear difference"
        return "improves" if self.delta > 0 else "worse"

    @property
    def verdict_text(self) -> str:
        """The verdict, marked when one seed, with no interval, cannot tell it from noise."""
        if self.interval is None and self.spread is None and \
                self.verdict != "no clear difference":
            return f"{self.verdict} (one seed)"
        return self.verdict

    @property
    def shown(self) -> str:
        """'+0.10 [-0.21, +0.43]' with an interval, else '+0.1 ± 0.2' over seeds."""
        return self.interval.shown if self.interval is not None else \
            signed(self.delta, self.spread)


def _paired_differences(runs: pd.DataFrame, metric: str) -> pd.Series:
    """ADTR+ − ADTR in points for every (category or class, seed) where both ran."""
    unit = unit_column(runs)
    paired = runs.pivot_table(index=[unit, "seed"], columns="variant", values=metric,
                              aggfunc="mean", sort=False)
    if not {"adtr", "adtr_plus"} <= set(paired.columns):
        return pd.Series(dtype=float)
    return (100 * (paired["adtr_plus"] - paired["adtr"])).dropna()


def plus_differences(exp: Experiment) -> dict[str, PlusDifference]:
    """Metric -> ADTR+ against ADTR, for every metric the experiment measured, with the
    paired interval of each metric the results hold one for."""
    runs, differences = exp.runs, {}
    for metric in (m for m in METRICS if m in runs.columns):
        per_seed = _paired_differences(runs, metric).groupby(level="seed").mean()
        if per_seed.empty:
            continue
        spread = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else None
        interval = next((c for c in comparisons_of(exp, metric)
                         if (c.a, c.b) == ("adtr_plus", "adtr")), None)
        differences[metric] = PlusDifference(metric, float(per_seed.mean()), spread,
                                             len(per_seed), interval)
    return differences


def paper_methods(exp: Experiment | None, name: str = "adtr_plus") -> dict[str, dict[str, float]]:
    """The paper's means as {method: {metric: value}} in %: MVTec-AD for ``adtr_plus``,
    CIFAR-10 image AUROC for ``oneclass`` (from the catalog)."""
    values = paper_values(exp.name if exp is not None else name)
    if "cifar10_image_auroc" in values:
        return {method: {"image_auroc": v} for method, v in values["cifar10_image_auroc"].items()}
    return {method: dict(v) for method, v in values.items()}


def _paper_gain(paper: dict[str, dict[str, float]], metric: str) -> float | None:
    before, after = paper.get("ADTR", {}).get(metric), paper.get("ADTR+", {}).get(metric)
    return None if before is None or after is None else after - before
