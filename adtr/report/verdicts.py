"""The scientific judgement, as pure functions of the numbers: what each of the paper's
experiments claims, how our ranking of its variants compares with the paper's, and whether
ADTR+ improves on ADTR by more than seed noise. Nothing here formats a page."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from adtr import catalog
from adtr.catalog import Claim
from adtr.report.formatting import signed
from adtr.report.loading import METRICS, Experiment, paper_values
from adtr.schema import unit_column

#: Two means closer than this (in points) count as the same number on real MVTec-AD.
SAME_POINTS = 1.0
#: A difference larger than this many standard deviations over seeds is not seed noise.
NOISE_FACTOR = 2
#: Fig. 5: k-NN accuracy in the t-SNE plane from which normal and anomalous difference
#: vectors count as separated, and below which as not separated at all.
SEPARATED, PARTLY_SEPARATED = 0.9, 0.7


# --- the paper's claims and our ranking --------------------------------------------

#: The claims of the experiments that rank variants (Table 4), from the catalog.
CLAIMS: dict[str, Claim] = {e.name: e.claim for e in catalog.EXPERIMENTS.values() if e.claim}


def our_values(exp: Experiment, metric: str = "pixel_auroc") -> dict[str, float]:
    """Variant -> our mean of ``metric`` in %, in the order the notebook ran them."""
    summary = exp.summary
    if summary.empty:
        return {}
    return {row["variant"]: 100 * row[f"{metric}_mean"] for _, row in summary.iterrows()}


def ranks(values: dict[str, float]) -> dict[str, int]:
    """1 = highest; tied values share the better rank."""
    return {k: 1 + sum(other > v for other in values.values()) for k, v in values.items()}


def expected_pairs(paper: dict[str, float], claim: Claim) -> list[tuple[str, str]]:
    """(worse, better) pairs that the claim implies: by the paper's values, then its chains."""
    pairs = [(a, b) for a in paper for b in paper if paper[a] < paper[b]]
    for chain in claim.chains:
        pairs += [(chain[i], chain[j]) for i in range(len(chain))
                  for j in range(i + 1, len(chain))]
    return pairs


def expected_best(paper: dict[str, float], ours: dict[str, float], claim: Claim) -> str | None:
    """Among the variants we ran, the one the claim says should win."""
    if claim.best in ours:
        return claim.best
    for chain in (tuple(sorted(paper, key=paper.get)), *claim.chains):
        ran = [v for v in chain if v in ours]
        if ran:
            return ran[-1]
    return None


@dataclass(frozen=True)
class Agreement:
    """The paper's ranking of an experiment's variants against ours."""

    claim: str
    paper: dict[str, float]
    ours: dict[str, float]
    expected: str | None
    kept: list[tuple[str, str]]
    reversed: list[tuple[str, str]]
    spread: float | None  # largest std over seeds, in points; None with one seed

    @property
    def our_ranks(self) -> dict[str, int]:
        return ranks(self.ours)

    @property
    def our_order(self) -> list[str]:
        return sorted(self.ours, key=self.ours.get, reverse=True)

    @property
    def verdict(self) -> str:
        if self.expected is None:
            return "cannot be compared"
        first = self.our_ranks[self.expected] == 1
        if first and not self.reversed:
            return "agrees"
        if first or len(self.kept) > len(self.reversed):
            return "partly agrees"
        return "does not agree"


def agreement(paper: dict[str, float], ours: dict[str, float], claim: Claim,
              stds: dict[str, float] | None = None) -> Agreement:
    """Compare rankings; ``paper`` and ``ours`` in %, ``stds`` (over seeds) in points."""
    pairs = [(a, b) for a, b in expected_pairs(paper, claim) if a in ours and b in ours]
    kept = [(a, b) for a, b in pairs if ours[a] < ours[b]]
    reversed_ = [(a, b) for a, b in pairs if ours[a] >= ours[b]]
    spread = max(stds.values()) if stds else None
    return Agreement(claim.text, dict(paper), dict(ours), expected_best(paper, ours, claim),
                     kept, reversed_, spread)


def experiment_agreement(exp: Experiment, metric: str = "pixel_auroc") -> Agreement:
    summary = exp.summary
    several = not summary.empty and int(summary["seeds"].max()) > 1
    stds = {r["variant"]: 100 * r[f"{metric}_std"] for _, r in summary.iterrows()}
    return agreement(exp.paper, our_values(exp, metric), CLAIMS[exp.name],
                     stds if several else None)


# --- ADTR+ beside ADTR --------------------------------------------------------------

#: Where the paper's ADTR / ADTR+ means come from, per experiment.
PAPER_DATA = {e.name: e.paper_data for e in catalog.EXPERIMENTS.values()
              if "adtr_plus" in e.labels}


@dataclass(frozen=True)
class PlusDifference:
    """ADTR+ minus ADTR on one metric, in points. ADTR+ starts from the ADTR model of the
    same category (or class) and seed, so the difference is taken run by run, averaged over
    categories per seed; ``delta`` is its mean over seeds, ``spread`` its std over seeds."""

    metric: str
    delta: float
    spread: float | None  # None with one seed
    seeds: int

    @property
    def verdict(self) -> str:
        """'improves', 'worse', or 'no clear difference': zero at one decimal, or within
        ``NOISE_FACTOR`` standard deviations over seeds."""
        noise = NOISE_FACTOR * self.spread if self.spread is not None else 0.0
        if round(self.delta, 1) == 0 or abs(self.delta) <= noise:
            return "no clear difference"
        return "improves" if self.delta > 0 else "worse"

    @property
    def verdict_text(self) -> str:
        """The verdict, marked when one seed cannot tell it from seed noise."""
        if self.spread is None and self.verdict != "no clear difference":
            return f"{self.verdict} (one seed)"
        return self.verdict

    @property
    def shown(self) -> str:
        return signed(self.delta, self.spread)


def _paired_differences(runs: pd.DataFrame, metric: str) -> pd.Series:
    """ADTR+ − ADTR in points for every (category or class, seed) where both ran."""
    unit = unit_column(runs)
    paired = runs.pivot_table(index=[unit, "seed"], columns="variant", values=metric,
                              aggfunc="mean", sort=False)
    if not {"adtr", "adtr_plus"} <= set(paired.columns):
        return pd.Series(dtype=float)
    return (100 * (paired["adtr_plus"] - paired["adtr"])).dropna()


def plus_differences(exp: Experiment) -> dict[str, PlusDifference]:
    """Metric -> ADTR+ against ADTR, for every metric the experiment measured."""
    runs, differences = exp.runs, {}
    for metric in (m for m in METRICS if m in runs.columns):
        per_seed = _paired_differences(runs, metric).groupby(level="seed").mean()
        if per_seed.empty:
            continue
        spread = float(per_seed.std(ddof=0)) if len(per_seed) > 1 else None
        differences[metric] = PlusDifference(metric, float(per_seed.mean()), spread,
                                             len(per_seed))
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
