"""The book's first screens: the at-a-glance table of every claim (``overview``), the
intro's findings (``findings``: the Table 4 headline, the regime, the convergence caveat, one
line per claim, the identity shortcut) and a page's own verdict line (``finding``)."""

from __future__ import annotations

import pandas as pd

from adtr import catalog, stats
from adtr.report.convergence import long_categories, longer_training
from adtr.report.data import data_label, is_synthetic
from adtr.report.formatting import listing, ordinal, percent, plural, signed
from adtr.report.loading import METRIC_NAMES, PAGES, TITLES, Experiment, label, paper_values
from adtr.report.statements import _at_ceiling, tsne_reading
from adtr.report.study import error_ratios, twin_pass_through
from adtr.report.verdicts import (
    AGREES,
    CLAIMS,
    DISAGREES,
    NOT_SEPARATED,
    PAPER_DATA,
    SAME_POINTS,
    _paper_gain,
    at_ceiling,
    comparisons_of,
    experiment_verdict,
    paper_methods,
    plus_differences,
)

# --- at a glance ---------------------------------------------------------------------

#: The metric of each ADTR+ experiment in the at-a-glance table.
PLUS_OVERVIEW_METRIC = {e.name: e.metric for e in catalog.EXPERIMENTS.values()
                        if e.kind == "method"}


def overview(experiments: dict[str, Experiment | None], paper_samples: int) -> pd.DataFrame:
    """One row per claim of the paper (its number, ours, the verdict, with the page), then
    one per comparison of ADTR with other methods beyond the paper: each experiment is
    summarised by the function of its kind in the catalog (``catalog.KINDS``)."""
    rows = []
    for name, exp in experiments.items():
        kind = catalog.get(name).kind
        if kind not in _OVERVIEW:
            continue  # the studies beyond the paper have pages of their own
        link = f"{{doc}}`{TITLES[name]} <{PAGES[name]}>`"
        if exp is None:
            rows.append({"Claim": link, "Paper": _paper_claim(name, paper_samples),
                         "Ours": "not run", "Verdict": "—"})
        else:
            rows.append(_OVERVIEW[kind](exp, link, paper_samples))
    return pd.DataFrame(rows)


def finding(exp: Experiment | None, paper_samples: int = catalog.FIG5_SAMPLES) -> str:
    """A page's first line: its verdict and our numbers as the intro's claims table gives
    them, e.g. '**4 of 6 categories agree, 2 partly agree.** Ours: k-NN accuracy 92.0% (mean
    over 6 categories).' ('' for an experiment the table does not summarise)."""
    if exp is None or catalog.get(exp.name).kind not in _OVERVIEW:
        return ""
    kind = catalog.get(exp.name).kind
    if kind == "peers":  # the peers pages decide image and pixel AUROC alike
        said = []
        for metric in ("image_auroc", "pixel_auroc"):
            ours, verdict = _peer_pairs(exp, metric)
            if ours:
                said.append(f"**In {METRIC_NAMES[metric]}, {verdict}.** {ours} points.")
        return " ".join(said)
    row = _OVERVIEW[kind](exp, "", paper_samples)
    return f"**{row['Verdict'][:1].upper()}{row['Verdict'][1:]}.** Ours: {row['Ours']}."


def _counted(readings: list[str], words: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Reading -> 'n word' for each of ``words`` (reading -> its singular and plural) that
    ``readings`` hold, in the order of ``words``: {'does not agree': '2 do not agree'}."""
    counted = {}
    for reading, (one, many) in words.items():
        n = readings.count(reading)
        if n:
            counted[reading] = f"{n} {one if n == 1 else many}"
    return counted


def _overview_tsne(exp: Experiment, link: str, paper_samples: int) -> dict[str, str]:
    """Fig. 5 read category by category (the page's thresholds), e.g. '4 of 6 categories
    agree, 2 partly agree', beside the mean k-NN accuracy."""
    knn = pd.DataFrame(exp.table("separation"))["knn_accuracy_tsne"]
    readings = [tsne_reading(k) for k in knn]
    if len(set(readings)) == 1:
        verdict = readings[0]
    else:
        others = _counted(readings, {"partly agrees": ("partly agrees", "partly agree"),
                                     "does not agree": ("does not agree", "do not agree")})
        verdict = ", ".join([f"{readings.count('agrees')} of {len(readings)} categories agree",
                             *others.values()])
    return {"Claim": link, "Paper": f"plot of {paper_samples} vectors, no number",
            "Ours": f"k-NN accuracy {percent(knn.mean())}% (mean over "
                    f"{plural(len(knn), 'category', 'categories')})", "Verdict": verdict}


def _paper_claim(name: str, paper_samples: int) -> str:
    """The paper's number for an experiment, from the catalog (when ours is missing)."""
    kind = catalog.get(name).kind
    if kind == "main":
        return f"pixel AUROC {paper_values('main')['ADTR']['pixel_auroc']:.1f}"
    if kind == "figure":
        return f"plot of {paper_samples} vectors, no number"
    if kind == "method":
        return _paper_plus_claim(name, paper_methods(None, name))
    if kind == "peers":
        return _published(name)
    return _paper_pairs(name)


def _paper_pairs(name: str) -> str:
    """The pairs a Table 4 claim compares, as the paper ran them ("a > b; ...")."""
    claim, values = CLAIMS[name], paper_values(name)
    return "; ".join(f"{label(a)} > {label(b)}" for a, b in claim.comparisons
                     if a in values and b in values) or claim.text


def _overview_main(exp: Experiment, link: str, paper_samples: int = 0) -> dict[str, str]:
    row, paper = exp.summary.iloc[0], exp.paper.get("ADTR", {})
    ours = percent(row["pixel_auroc_mean"])
    verdict = "data differ" if is_synthetic(exp) else (
        "agrees" if abs(100 * row["pixel_auroc_mean"] - paper.get("pixel_auroc", 0))
        <= SAME_POINTS else "does not agree")
    return {"Claim": link, "Paper": f"pixel AUROC {paper.get('pixel_auroc', '—')}",
            "Ours": f"pixel AUROC {ours} ({data_label(exp)})", "Verdict": verdict}


def _paper_plus_claim(name: str, paper: dict[str, dict[str, float]]) -> str:
    metric = PLUS_OVERVIEW_METRIC[name]
    gain = _paper_gain(paper, metric)
    return (f"ADTR+ − ADTR: {'—' if gain is None else signed(gain)} {METRIC_NAMES[metric]} "
            f"({PAPER_DATA[name]})")


def _overview_plus(exp: Experiment, link: str, paper_samples: int = 0) -> dict[str, str]:
    metric = PLUS_OVERVIEW_METRIC[exp.name]
    difference = plus_differences(exp).get(metric)
    paper = _paper_plus_claim(exp.name, paper_methods(exp))
    if difference is None:
        return {"Claim": link, "Paper": paper, "Ours": "not run", "Verdict": "—"}
    readings = {"improves": AGREES, "worse": DISAGREES,
                # an interval that holds 0 is the verdict scale's 'not separated'
                "no clear difference": NOT_SEPARATED if difference.interval is not None
                else difference.verdict}
    verdict = readings[difference.verdict]
    if _at_ceiling(exp, [metric]):
        verdict = stats.SATURATED  # both at the ceiling: no difference can show
    elif difference.verdict_text.endswith("(one seed)"):
        verdict += " (one seed)"
    return {"Claim": link, "Paper": paper,
            "Ours": f"ADTR+ − ADTR: {difference.shown} {METRIC_NAMES[metric]} "
                    f"({data_label(exp)})", "Verdict": verdict}


def _overview_ablation(exp: Experiment, link: str, paper_samples: int = 0) -> dict[str, str]:
    result = experiment_verdict(exp)
    ours = "; ".join(f"{label(c.a)} − {label(c.b)} {c.shown}"
                     + (f" (sign in {c.sign_holds})" if c.sign_holds else "")
                     for c in result.comparisons)
    return {"Claim": link, "Paper": _paper_pairs(exp.name), "Ours": ours or "—",
            "Verdict": result.verdict}


def _published(name: str) -> str:
    """The published MVTec-AD means the catalog sets beside an experiment, short names."""
    metric = catalog.get(name).metric
    said = [f"{method.split(' (')[0]} {values[metric]:.1f}"
            for method, values in paper_values(name).items() if metric in values]
    return f"{METRIC_NAMES[metric]} as published (MVTec-AD): " + ", ".join(said)


def _peer_pairs(exp: Experiment, metric: str) -> tuple[str, str]:
    """ADTR against each method it is compared with (the experiment's pairs with ADTR as
    a), by the paired intervals of ``metric``: the differences ('ADTR − PaDiM +0.19 [...]')
    and who is ahead ('ADTR not separated from PaDiM'); ('', '') where none ran."""
    entry = catalog.get(exp.name)
    names = {name: text.split(" (")[0] for name, text in entry.labels.items()}
    pairs = [c for c in comparisons_of(exp, metric) if c.a == "adtr"]
    sides = {stats.BETTER: "ahead of", stats.WORSE: "behind",
             stats.NOT_SEPARATED: "not separated from", stats.SATURATED: "saturated with"}
    readings = [stats.SATURATED if at_ceiling(exp, c.a, c.b, metric) else c.interval_verdict
                for c in pairs]
    return ("; ".join(f"{names[c.a]} − {names[c.b]} {c.shown}" for c in pairs),
            "; ".join(f"{names[c.a]} {sides[reading]} {names[c.b]}"
                      for c, reading in zip(pairs, readings, strict=True)))


def _overview_peers(exp: Experiment, link: str, paper_samples: int = 0) -> dict[str, str]:
    """ADTR against each method it is compared with, by the experiment's metric."""
    metric = catalog.get(exp.name).metric
    ours, verdict = _peer_pairs(exp, metric)
    if not ours:
        return {"Claim": link, "Paper": _published(exp.name), "Ours": "not run",
                "Verdict": "—"}
    return {"Claim": link, "Paper": _published(exp.name),
            "Ours": f"{METRIC_NAMES[metric]}: {ours} ({data_label(exp)})",
            "Verdict": verdict}


#: How each kind of experiment (``catalog.KINDS``) is summarised in the at-a-glance table.
_OVERVIEW = {"main": _overview_main, "ablation": _overview_ablation, "figure": _overview_tsne,
             "method": _overview_plus, "peers": _overview_peers}


# --- the first screen ------------------------------------------------------------------

def regime_sentence(main: Experiment) -> str:
    """The regime of the book's numbers in one sentence, from the main results' record."""
    c = main.record.config
    grid = c["image_size"] // c["feature_stride"]
    data = "Offline synthetic MVTec-layout data" if is_synthetic(main) else data_label(main)
    return (f"{data} ({len(main.record.categories or [])} categories), {c['backbone']} with "
            f"ImageNet weights, {c['image_size']} px ({grid}×{grid} tokens), d = "
            f"{c['hidden_dim']}, {c['epochs']} epochs at lr {c['lr']:g} (×0.1 once, at 80 % "
            f"of them), {plural(len(main.record.seeds), 'seed')} a category")


def _convergence_line(convergence: Experiment | None) -> str:
    """What the convergence study says of the book's schedule, as a line of the first
    screen: a caveat where a variant ends below its plateau ('' without a study)."""
    if convergence is None:
        return ""
    rule = convergence.table("rule") or {}
    checked = convergence.table("against_long") or []
    behind = [r for r in checked if not r["within"]]
    labels = convergence.table("labels") or {}
    if not rule or not checked:
        return ""
    page = "({doc}`convergence <convergence>`)"
    book = checked[0]["book_epochs"]
    changes = longer_training(convergence, rule["long_epochs"], book)
    changes = f" {changes}" if changes else ""
    unconfirmed = "" if rule["enough"] else ", and those runs are too short to confirm it"
    if not behind and book >= rule["epochs"]:
        head = ("**Trained to the plateau.**" if rule["enough"] else
                "**Trained to the rule's schedule.**")
        return (f"{head} At the book's {book} epochs every trained "
                f"Table 4 variant is within {100 * rule['tolerance']:.1f} points of its best "
                f"in runs of {rule['long_epochs']} epochs on "
                f"{listing(long_categories(convergence))}, and "
                f"the rule that reads the schedule off those runs asks for {rule['epochs']}"
                f"{unconfirmed} {page}.{changes}")
    if not behind:
        return (f"**Caveat.** The book's runs stop at {book} epochs; the rule that reads the "
                f"schedule off much longer runs asks for {rule['epochs']}{unconfirmed} "
                f"{page}.{changes}")
    worst = max(behind, key=lambda r: r["gap_points"])
    return (f"**Caveat.** The book's runs stop at {book} epochs, where "
            f"{len(behind)} of {len(checked)} variants are more than "
            f"{100 * rule['tolerance']:.1f} points below their best in much longer runs "
            f"({labels.get(worst['variant'], worst['variant'])}: "
            f"{worst['gap_points']:.2f} points); the convergence study's rule, which reads "
            f"the schedule off those runs, asks for {rule['epochs']} "
            f"epochs{unconfirmed} {page}.{changes}")


def shortcut_finding(exp: Experiment | None) -> str:
    """What the identity-shortcut probes show at the last checkpoint, in one sentence: how
    much of a defect ADTR and the CNN copy, and where ADTR ranks by the error ratio ('' where
    the probes have neither)."""
    copied = twin_pass_through(exp)
    if not {"adtr", "cnn"} <= set(copied):
        return ""
    line = (f"ADTR's reconstruction keeps {copied['adtr']:.2f} of a defect's own deviation, "
            f"the CNN's {copied['cnn']:.2f} (0 = none, 1 = a copy)")
    ratios = list(error_ratios(exp))
    if "adtr" in ratios and len(ratios) > 1:
        rank = ratios.index("adtr") + 1
        if rank == 1:
            line += (f"; by the error at anomalous over normal tokens ADTR is first of "
                     f"{len(ratios)} variants, as the paper's argument expects")
        else:
            line += (f"; {'yet ' if copied['adtr'] < copied['cnn'] else ''}by the error at "
                     f"anomalous over normal tokens ADTR is {ordinal(rank)} of {len(ratios)} "
                     f"variants ({label(ratios[0])} highest), where the paper's argument puts "
                     f"it first")
    return line + "."


def table4_headline(experiments: dict[str, Experiment | None]) -> str:
    """The Table 4 pairs at once, in plain words: how many agree with the paper, go against
    it (each named) or are not separated, and the substitute tests apart ('' when no Table 4
    claim ran)."""
    readings, against, substitutes = [], [], []
    for name, exp in experiments.items():
        if exp is None or catalog.get(name).kind != "ablation":
            continue
        result = experiment_verdict(exp)
        for c in result.comparisons:
            if result.is_substitute(c):
                substitutes.append(result.pair_verdict(c))
                continue
            readings.append(result.pair_verdict(c))
            if readings[-1] == DISAGREES:
                against.append(f"{label(c.b)} ahead of {label(c.a)}")
    if not readings:
        return ""
    said = _counted(readings, {AGREES: ("agrees", "agree"),
                               DISAGREES: ("does not agree", "do not agree"),
                               NOT_SEPARATED: ("is not separated", "are not separated"),
                               stats.SATURATED: ("is saturated", "are saturated")})
    if against:
        said[DISAGREES] += f" ({'; '.join(against)})"
    text = (f"**In short.** Of the {len(readings)} pairs of variants that the paper's "
            f"Table 4 ranks and these runs test, {listing(list(said.values()))}")
    if substitutes:
        text += (f"; stand-ins for the paper's backbones (a substitute test): "
                 f"{stats.pairs_reading(substitutes)}")
    return text + ". The claims' lines below give the intervals."


def findings(experiments: dict[str, Experiment | None], paper_samples: int) -> str:
    """The intro's first screen: the regime, one line per claim of the paper (its verdict,
    and what it rests on), and the comparisons beyond the paper, each with its page; every
    number read from the results."""
    main = experiments.get("main")
    if main is None:
        return ""
    headline = table4_headline(experiments)
    lines = [headline] if headline else []
    lines += [f"**Regime.** {regime_sentence(main)}. Absolute numbers are not MVTec-AD's; the "
             f"claims are about order, which these data can test."
             if is_synthetic(main) else f"**Regime.** {regime_sentence(main)}."]
    converged = _convergence_line(experiments.get("convergence"))
    if converged:
        lines.append(converged)
    table = overview(experiments, paper_samples)
    for row in table.to_dict(orient="records"):
        lines.append(f"{row['Claim']}: **{row['Verdict']}**. Ours: {row['Ours']}.")
    shortcut = shortcut_finding(experiments.get("shortcut"))
    if shortcut:
        lines.append(f"{{doc}}`The identity shortcut <shortcut>`, beyond the paper: {shortcut}")
    return "\n".join(f"- {line}" for line in lines)
