"""What each page says about its numbers, in plain sentences computed from the verdicts
(where an ablation agrees with the paper, the main results, Fig. 5, ADTR+), the settings the
ADTR+ prose quotes, and the at-a-glance table of every claim."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from adtr import catalog, stats
from adtr.report.data import is_stand_in, is_synthetic
from adtr.report.formatting import listing, over_seeds, percent, plural, signed
from adtr.report.loading import (
    METRIC_NAMES,
    Experiment,
    book_profile,
    label,
)
from adtr.report.tables import defect_kinds
from adtr.report.verdicts import (
    AGREES,
    DISAGREES,
    NOISE_FACTOR,
    NOT_SEPARATED,
    PAPER_DATA,
    PARTLY_SEPARATED,
    SAME_POINTS,
    SEPARATED,
    ClaimVerdict,
    Comparison,
    PlusDifference,
    _paper_gain,
    at_ceiling,
    paper_methods,
    plus_differences,
)
from adtr.schema import unit_column

# --- where we agree -----------------------------------------------------------------

_SAID = {AGREES: "agrees with the paper", DISAGREES: "does not agree with the paper",
         NOT_SEPARATED: "does not separate what the paper compares",
         stats.SATURATED: "is saturated: both variants are at the ceiling"}


def _pair(result: ClaimVerdict, c: Comparison) -> str:
    where = f", sign in {c.sign_holds}" if c.sign_holds else ""
    return f"{label(c.a)} − {label(c.b)}: {c.shown} points{where}, {result.pair_verdict(c)}"


def statement(result: ClaimVerdict) -> str:
    """The plain statement of where ours agrees with the paper, computed from the intervals
    of the pairs the claim compares."""
    if not result.decided:
        return (f"**Not decided.** The paper's claim: {result.claim.text}. These results "
                f"were written without the paired intervals that decide it.")
    if not result.comparisons:
        return (f"**Cannot be compared.** The paper's claim: {result.claim.text}. None of the "
                f"pairs that claim is about was run here.")
    verdict = result.verdict
    headline = f"Ours {_SAID[verdict]}" if verdict in _SAID else verdict[0].upper() + verdict[1:]
    parts = [f"**{headline}.** The paper's claim: {result.claim.text}."]
    if result.claim.reading:
        parts.append(f"How we test it: {result.claim.reading}.")
    if result.substitute or any(map(result.is_substitute, result.comparisons)):
        parts.append(f"A substitute test: {result.claim.substitute_reading}.")
    seeds = max(c.seeds for c in result.comparisons)
    parts.append(f"Each pair's difference a − b, mean over categories and {plural(seeds, 'seed')}, "
                 f"with its paired 95 % interval from resampling the test images and the "
                 f"categories in which its sign holds: "
                 + "; ".join(_pair(result, c) for c in result.comparisons) + ".")
    said = [result.pair_verdict(c) for c in result.comparisons]
    if NOT_SEPARATED in said:
        parts.append("An interval that contains 0 means these test sets cannot tell the "
                     "two variants apart: neither agreement nor disagreement.")
    if stats.SATURATED in said:
        parts.append(f"A saturated pair has both variants at or above "
                     f"{100 * stats.SATURATION:.1f} %: no difference can show there.")
    parts.append("The intervals hold the noise of the test images, not that of training; "
                 "the convergence page measures the seeds' share.")
    kinds = {v.name: v.reference_kind for e in catalog.EXPERIMENTS.values() for v in e.variants
             if v.reference}
    for ref in result.references:
        side = {AGREES: f"{label(ref.a)} ahead",
                DISAGREES: f"{label(ref.a)} behind"}.get(ref.verdict, "not separated")
        parts.append(f"Reference ({kinds.get(ref.b, 'without training')}): {label(ref.a)} − "
                     f"{label(ref.b)} {ref.shown} points ({side}).")
    return " ".join(parts)


# --- main results and Fig. 5 ---------------------------------------------------------

def main_statement(exp: Experiment, method: str = "ADTR") -> str:
    """Where our ADTR means stand against the paper's, said for the data they come from."""
    row, paper = exp.summary.iloc[0], exp.paper.get(method, {})
    n_categories = len(exp.record.categories or [])
    seeds = int(row["seeds"])
    ours = {m: 100 * row[f"{m}_mean"] for m in ("image_auroc", "pixel_auroc")}
    said = " and ".join(f"{ours[m]:.1f} {METRIC_NAMES[m]}" for m in ours)
    theirs = " and ".join(f"{paper[m]:.1f}" for m in ours if m in paper)
    text = (f"Our {method} reaches {said} (mean over {n_categories} categories, {seeds} "
            f"seed{'s' if seeds > 1 else ''}); the paper reports {theirs} on MVTec-AD.")
    if is_synthetic(exp):
        return text + (" The data sets differ, so the gap between these numbers measures the "
                       "data, not the method: no agreement or disagreement with the paper can "
                       "be read from it. What this page does show is whether the model finds "
                       "and outlines defects it never saw in training.")
    gaps = {m: ours[m] - paper[m] for m in ours if m in paper}
    same = [METRIC_NAMES[m] for m, g in gaps.items() if abs(g) <= SAME_POINTS]
    off = [f"{METRIC_NAMES[m]} ({g:+.1f} points)" for m, g in gaps.items()
           if abs(g) > SAME_POINTS]
    if same:
        text += f" We agree within {SAME_POINTS:.0f} point on {' and '.join(same)}."
    if off:
        text += f" We do not agree on {' and '.join(off)}."
    return text


def tsne_reading(knn: float) -> str:
    """One category of Fig. 5 by its k-NN accuracy: agrees (separated), partly agrees,
    does not agree."""
    if knn >= SEPARATED:
        return "agrees"
    return "partly agrees" if knn >= PARTLY_SEPARATED else "does not agree"


def tsne_statement(exp: Experiment, paper_samples: int) -> str:
    """How well normal and anomalous difference vectors separate, against the paper's plot."""
    rows = exp.table("separation")
    if not rows:
        return "No separation numbers were written."
    frame = pd.DataFrame(rows)
    knn, auroc = frame["knn_accuracy_tsne"].mean(), frame["score_auroc"].mean()
    by_reading: dict[str, list[str]] = {}
    for r in rows:
        by_reading.setdefault(tsne_reading(r["knn_accuracy_tsne"]), []).append(r["category"])
    clear, partly, weak = (by_reading.get(reading, []) for reading in
                           ("agrees", "partly agrees", "does not agree"))
    sampled = int((frame["n_normal"] + frame["n_anomalous"]).min())
    text = (f"The paper's Fig. 5 shows normal and anomalous difference vectors as separate "
            f"groups, with no number attached. In ours, a 5-nearest-neighbour classifier in the "
            f"t-SNE plane tells them apart with {percent(knn)}% accuracy on average (chance: "
            f"50%), and s(u) ranks them with an AUROC of {percent(auroc)}%.")
    if clear:
        text += f" Separated (k-NN ≥ {percent(SEPARATED, 0)}%): {', '.join(clear)}."
    if partly:
        text += (f" Partly separated (k-NN {percent(PARTLY_SEPARATED, 0)}–"
                 f"{percent(SEPARATED, 0)}%): {', '.join(partly)}.")
    if weak:
        text += f" Not separated (k-NN < {percent(PARTLY_SEPARATED, 0)}%): {', '.join(weak)}."
    if sampled < paper_samples:
        text += (f" Our samples are smaller than the paper's {paper_samples} vectors where the "
                 f"test masks cover few positions (the smallest here has {sampled}), so those "
                 f"plots are sparser than the paper's.")
    return text


#: The image AUROC at which a defect kind counts as found on its own.
KIND_FOUND = catalog.KIND_FOUND
#: At most this many kinds below ``KIND_FOUND`` are named, the lowest first.
KINDS_NAMED = 10


def defect_kind_statement(exp: Experiment) -> str:
    """Which defect kinds the main runs find on their own, and how large those they miss
    are (read from ``tables.defect_kinds``)."""
    kinds = defect_kinds(exp)
    if kinds.empty:
        return "No defect kinds were written."
    found = kinds["image_auroc"] >= KIND_FOUND
    bar = f"{percent(KIND_FOUND, 0)}%"
    text = (f"{int(found.sum())} of {len(kinds)} defect kinds reach {bar} image AUROC on their "
            f"own ({over_seeds(exp.record.seeds, 'mean')}).")
    for kind_type in dict.fromkeys(kinds["type"].dropna()):
        of_type = kinds["type"] == kind_type
        text += (f" {kind_type.capitalize()}: {int((found & of_type).sum())} of "
                 f"{int(of_type.sum())}.")
    missed = kinds[~found].sort_values("image_auroc")
    if missed.empty:
        return text
    named = ", ".join(f"{r.category} {r.kind} ({percent(r.image_auroc)}%, "
                      f"{r.area_percent:.2f}% of the image)"
                      for r in missed.head(KINDS_NAMED).itertuples())
    lowest = f"the {KINDS_NAMED} lowest: " if len(missed) > KINDS_NAMED else ""
    text += f" Below {bar}: {lowest}{named}."
    if len(missed) > 1 and found.sum() > 1:
        text += (f" The kinds below {bar} cover a median {missed['area_percent'].median():.2f}% "
                 f"of the image, those at or above it "
                 f"{kinds[found]['area_percent'].median():.2f}%.")
    return text


# --- ADTR+ beside ADTR --------------------------------------------------------------

def _names(metrics: Iterable[str]) -> str:
    return listing([METRIC_NAMES[m] for m in metrics])


def plus_statement(exp: Experiment) -> str:
    """Whether ADTR+ improves on ADTR here, metric by metric, against the paper's claim."""
    differences = plus_differences(exp)
    if not differences:
        return "**Cannot be compared.** ADTR and ADTR+ were not both run on the same data."
    paper, where = paper_methods(exp), PAPER_DATA.get(exp.name, "MVTec-AD")
    parts = [_plus_head(exp, differences)]
    claimed = [m for m in differences if _paper_gain(paper, m) is not None]
    if claimed:
        said = ", ".join(f"{METRIC_NAMES[m]} {paper['ADTR'][m]:.1f} → {paper['ADTR+'][m]:.1f} "
                         f"({signed(_paper_gain(paper, m))})" for m in claimed)
        parts.append(f"The paper reports ADTR+ above ADTR on {where}: {said}.")
    parts += _plus_evidence(differences)
    parts.append(_plus_claim(exp, differences, claimed))
    if is_synthetic(exp) or is_stand_in(exp):
        parts.append(f"Our data are not {where}, so only the direction of these differences "
                     f"can be set beside the paper's, not their size.")
    return " ".join(p for p in parts if p)


def plus_headline(exp: Experiment) -> str:
    """What a page on ADTR+ shows first: what ADTR+ does here metric by metric, and what
    that says of the paper's claim (``plus_statement`` says what it rests on)."""
    differences = plus_differences(exp)
    if not differences:
        return ""
    claimed = [m for m in differences if _paper_gain(paper_methods(exp), m) is not None]
    said = [_plus_head(exp, differences), _plus_claim(exp, differences, claimed)]
    if any(d.interval is not None for d in differences.values()):
        said.append("The paired intervals are below.")
    return " ".join(p for p in said if p)


def _at_ceiling(exp: Experiment, metrics: Iterable[str]) -> list[str]:
    """The metrics in which ADTR and ADTR+ both are at the ceiling (``at_ceiling``)."""
    return [m for m in metrics if at_ceiling(exp, "adtr", "adtr_plus", m)]


def _plus_head(exp: Experiment, differences: dict[str, PlusDifference]) -> str:
    """'**Here ADTR+ is not separated from ADTR in image AUROC; ADTR+ − ADTR is +0.6 points
    in AUPRO (one seed, no interval).**' Metrics where both are at the ceiling are said as
    such, not read as a difference; a difference of one seed without an interval is given
    as a number, not a verdict."""
    ceiling = _at_ceiling(exp, differences)
    parts = [f"is at the ceiling with ADTR in {_names(ceiling)}"] if ceiling else []
    rest = {m: d for m, d in differences.items() if m not in ceiling}
    # no interval and one seed: given as a number, never as a verdict
    one_seed = {m: d for m, d in rest.items() if d.interval is None and d.spread is None}
    phrases = {"improves": "improves on ADTR in {}",
               "no clear difference": "shows no clear difference from ADTR in {}",
               "worse": "is worse than ADTR in {}"}
    for verdict, phrase in phrases.items():
        found = [m for m, d in rest.items() if m not in one_seed and d.verdict == verdict]
        if verdict == "no clear difference":  # a paired interval that contains 0
            not_separated = [m for m in found if rest[m].interval is not None]
            if not_separated:
                parts.append(f"is not separated from ADTR in {_names(not_separated)}")
            found = [m for m in found if m not in not_separated]
        if found:
            parts.append(phrase.format(_names(found)))
    said = [f"ADTR+ {'; '.join(parts)}"] if parts else []
    if one_seed:
        values = ", ".join(f"{d.shown} points in {METRIC_NAMES[m]}" for m, d in one_seed.items())
        said.append(f"ADTR+ − ADTR is {values} (one seed, no interval)")
    return f"**Here {'; '.join(said)}.**"


def _below_ceiling(exp: Experiment, metric: str) -> str:
    """Where ADTR and ADTR+ are at the ceiling on average: the categories (classes) in which
    one of them is below it, with ADTR+ − ADTR there ('' when there are none)."""
    unit = unit_column(exp.runs)
    values = exp.runs.pivot_table(index=unit, columns="variant", values=metric, sort=False)
    if not {"adtr", "adtr_plus"} <= set(values.columns):
        return ""
    below = values[values[["adtr", "adtr_plus"]].min(axis=1) < stats.SATURATION]
    if below.empty:
        return ""
    named = "class " if unit == "class" else ""  # 'class 4', but 'coins'
    said = ", ".join(f"{named}{name}: {signed(100 * (row['adtr_plus'] - row['adtr']))}"
                     for name, row in below.iterrows())
    seeds = over_seeds(exp.record.seeds, "mean")
    return (f"Per {unit}, both are at the ceiling in {len(values) - len(below)} of "
            f"{len(values)}; where one of them is below it, ADTR+ − ADTR is {said} points "
            f"({seeds}, no interval).")


def _plus_claim(exp: Experiment, differences: dict[str, PlusDifference],
                claimed: list[str]) -> str:
    """What the differences say of the paper's claim, over the ``claimed`` metrics: where
    both methods are at the ceiling in every one, that no difference can show; a difference
    of one seed without an interval marked as such; no clear difference as not separated
    (it cannot say that the claim fails)."""
    ceiling = _at_ceiling(exp, claimed)
    if claimed and ceiling == claimed:
        said = [f"The paper's claim that ADTR+ improves on ADTR is saturated here: both are "
                f"at or above {100 * stats.SATURATION:.1f} % in {_names(ceiling)}, where no "
                f"difference can show."]
        for metric in ceiling:
            said.append(_below_ceiling(exp, metric))
        return " ".join(s for s in said if s)
    claimed = [m for m in claimed if m not in ceiling]
    held = [m for m in claimed if differences[m].verdict == "improves"]
    open_ = [m for m in claimed if differences[m].verdict == "no clear difference"]
    one_seed = any(differences[m].verdict_text.endswith("(one seed)") for m in claimed)
    if len(claimed) == 1:
        said = "holds" if held else "is not separated" if open_ else "does not hold"
        return (f"The paper's claim that ADTR+ improves on ADTR {said} here"
                + (" (one seed)." if one_seed else "."))
    if claimed and open_ == claimed:
        either = "either metric" if len(claimed) == 2 else "any metric"
        return (f"The paper's claim that ADTR+ improves on ADTR is not separated here in "
                f"{either} it reports ({_names(open_)}).")
    if claimed:
        return (f"The paper's claim that ADTR+ improves on ADTR holds here for {len(held)} "
                f"of the {len(claimed)} metrics it reports"
                + (f" ({_names(held)})" if held else "")
                + (f"; in {_names(open_)} it is not separated" if open_ else "")
                + (" (one seed where there is no interval)." if one_seed else "."))
    return ""


def _plus_evidence(differences: dict[str, PlusDifference]) -> list[str]:
    """What ADTR+ − ADTR rests on, metric by metric: paired test-image intervals, with the
    categories where the sign holds, and, for metrics without one, the spread over seeds."""
    decided = {m: d for m, d in differences.items() if d.interval is not None}
    rest = {m: d for m, d in differences.items() if d.interval is None}
    parts = []
    if decided:
        said = ", ".join(f"{METRIC_NAMES[m]} {d.shown}"
                         + (f" (its sign holds in {d.interval.sign_holds})"
                            if d.interval.sign_holds else "")
                         for m, d in decided.items())
        parts.append(f"Ours, ADTR+ − ADTR with its paired 95 % interval from resampling the "
                     f"test images (the same resample for both models): {said} points; an "
                     f"interval that contains 0 counts as not separated.")
    if not rest:
        return parts
    ours = ", ".join(f"{METRIC_NAMES[m]} {d.shown}" for m, d in rest.items())
    seeds = next(iter(rest.values())).seeds
    if seeds > 1:
        parts.append(f"{'Without an interval' if decided else 'Ours'}, ADTR+ − ADTR as the "
                     f"mean ± std over {seeds} seeds of the difference between runs of the "
                     f"same seed: {ours} points; a difference within {NOISE_FACTOR} standard "
                     f"deviations of zero counts as no clear difference.")
    else:
        parts.append(f"{'Without an interval' if decided else 'Ours'}, ADTR+ − ADTR: {ours} "
                     f"points, with one seed, so how much of "
                     f"{'this difference' if len(rest) == 1 else 'these differences'} is "
                     f"seed noise is unknown.")
    return parts


def plus_difference_caption(exp: Experiment, metric: str | None = None) -> str:
    """What the tables' ADTR+ − ADTR cells are (of ``metric`` only, if given): 'ADTR+ − ADTR
    in points, taken run by run (same category and seed): image AUROC and pixel AUROC with
    its paired 95 % test-image interval, AUPRO seed 0.'"""
    differences = {m: d for m, d in plus_differences(exp).items() if metric in (None, m)}
    with_interval = [m for m, d in differences.items() if d.interval is not None]
    without = [m for m in differences if m not in with_interval]
    unit = unit_column(exp.runs)
    over = over_seeds(exp.record.seeds)
    said = f"ADTR+ − ADTR in points, taken run by run (same {unit} and seed)"
    if not with_interval:
        return f"{said}, {over}."
    each = "each " if len(with_interval) > 1 else ""
    said += f": {_names(with_interval)} {each}with its paired 95 % test-image interval"
    return said + (f", {_names(without)} {over}." if without else ".")


def plus_settings(exp: Experiment | None, profile: str | None = None) -> dict[str, str]:
    """What the ADTR+ prose quotes, from the run's resolved parameters (from ``profile``'s,
    the book's by default, when ``exp`` is None): ``alpha``, ``top_k``, ``plus_lr``, and
    ``plus_epochs`` and ``epochs`` as '300 epochs'."""
    from adtr import profiles
    from adtr.errors import ConfigError

    if exp is not None:
        config = exp.record.config
    else:
        try:
            config = profiles.resolve(profile or book_profile()).to_dict()
        except ConfigError:
            config = {}
    keys = {"alpha": "plus_alpha", "top_k": "plus_top_k", "plus_lr": "plus_lr"}
    settings = {name: f"{config[key]:g}" if key in config else "?" for name, key in keys.items()}
    for name in ("plus_epochs", "epochs"):
        settings[name] = plural(int(config[name]), "epoch") if name in config else "? epochs"
    return settings
