"""The pages beyond the paper: the identity shortcut over training, and where each claim
holds (the sensitivity study). Tables and sentences computed from the notebooks' tables."""

from __future__ import annotations

import pandas as pd

from adtr import catalog, stats
from adtr.report.formatting import fixed, interval, listing
from adtr.report.loading import TITLES, Experiment, label

#: The shortcut statistics as the page names them (those a table holds are shown).
SHORTCUT_COLUMNS = {
    "error_ratio": "Error ratio, anomalous / normal",
    "anomalous_above_normal_p99": "Detection share (above normal p99)",
    "twin_pass_through": "Twin pass-through, anomalous",
    "pass_through_anomalous": "Slope of f̂ on f, anomalous",
    "pass_through_normal": "Slope of f̂ on f, normal",
    "error_anomalous": "Error, anomalous",
    "error_normal": "Error, normal",
    "error_normal_p99": "Normal-error tail (p99)",
    "pixel_auroc": "Pixel AUROC (%)",
}


def _probes(exp: Experiment) -> pd.DataFrame:
    """The probes, with the error ratio where the table was written without it."""
    probes = pd.DataFrame(exp.table("shortcut"))
    if not probes.empty and "error_ratio" not in probes:
        probes["error_ratio"] = probes["error_anomalous"] / probes["error_normal"]
    return probes


def _at(probes: pd.DataFrame, first: bool) -> pd.DataFrame:
    """Each run's first (before training) or last probe."""
    pick = probes.groupby(["variant", "category", "seed"])["epoch"].transform(
        "min" if first else "max")
    return probes[probes["epoch"] == pick]


def shortcut_table(exp: Experiment, by_kind: bool = False) -> pd.DataFrame:
    """One row per statistic (per kind of category with ``by_kind``), one column per variant
    and moment (before training, at the last checkpoint; with ``by_kind`` the last checkpoint
    only): means over categories and seeds, with two decimals (errors: one)."""
    probes = _probes(exp)
    if probes.empty:
        return pd.DataFrame()
    keys = ["kind", "variant"] if by_kind else ["variant"]
    columns = {k: v for k, v in SHORTCUT_COLUMNS.items() if k in probes}
    moments = ((False, "last"),) if by_kind else ((True, "before"), (False, "last"))
    table: dict[str, dict[tuple[str, ...], str]] = {}
    for first, when in moments:
        means = _at(probes, first).groupby(keys, sort=False)[list(columns)].mean()
        for key, values in means.iterrows():
            key = key if isinstance(key, tuple) else (key,)
            name = label(key[-1]) + ("" if by_kind else f", {when}")
            for column, statistic in columns.items():
                digits = 1 if column.startswith("error_") and column != "error_ratio" else 2
                value = values[column]
                if column == "pixel_auroc":  # in % as on every other page
                    value, digits = 100 * value, 1
                row = (key[0], statistic) if by_kind else (statistic,)
                table.setdefault(name, {})[row] = fixed(value, digits)
    frame = pd.DataFrame(table)
    frame.index.names = ["Categories", "Statistic"] if by_kind else ["Statistic"]
    return frame.reset_index()


def twin_pass_through(exp: Experiment | None) -> dict[str, float]:
    """Variant -> the twin pass-through at the last checkpoint, mean over categories and
    seeds (empty where the probes have none)."""
    probes = _probes(exp) if exp is not None else pd.DataFrame()
    if probes.empty or "twin_pass_through" not in probes:
        return {}
    last = _at(probes, first=False).groupby("variant", sort=False)["twin_pass_through"].mean()
    return {v: float(x) for v, x in last.dropna().items()}


def error_ratios(exp: Experiment | None) -> dict[str, float]:
    """Variant -> the error at anomalous tokens over that at normal ones at the last
    checkpoint, mean over categories and seeds, highest first (empty without probes)."""
    probes = _probes(exp) if exp is not None else pd.DataFrame()
    if probes.empty or "error_ratio" not in probes:
        return {}
    last = _at(probes, first=False).groupby("variant", sort=False)["error_ratio"].mean()
    return {v: float(x) for v, x in last.dropna().sort_values(ascending=False).items()}


def shortcut_statement(exp: Experiment) -> str:
    """What the probes say at the last checkpoint, in numbers, against the paper's argument
    (the variants fed by their own input show less of an anomaly than ADTR)."""
    probes = _probes(exp)
    if probes.empty:
        return "No run recorded shortcut statistics."
    last = _at(probes, first=False).groupby("variant", sort=False).mean(numeric_only=True)
    ratio = pd.Series(error_ratios(exp))
    said = ", ".join(f"{label(v)} {x:.2f}" for v, x in ratio.items())
    epoch = int(probes["epoch"].max())
    text = (f"At the last checkpoint (epoch {epoch}), the error at anomalous tokens over the "
            f"error at normal ones, highest first: {said}. The paper's argument predicts ADTR "
            f"highest: a variant that passes anomalies through shows a ratio near 1.")
    if "adtr" in ratio.index and len(ratio) > 1:
        rank = list(ratio.index).index("adtr") + 1
        text += (f" Here ADTR is {'first' if rank == 1 else f'number {rank}'} of "
                 f"{len(ratio)}.")
    if "twin_pass_through" in last and last["twin_pass_through"].notna().any():
        copied = last["twin_pass_through"].dropna().sort_values()
        text += (" Twin pass-through (how much of the defect's own deviation the "
                 "reconstruction keeps; 0 = none, 1 = a copy), lowest first: "
                 + ", ".join(f"{label(v)} {x:.2f}" for v, x in copied.items()) + ".")
        least, shows = copied.index[0], ratio.index[0]
        if least != shows and "error_normal" in last:
            normal = last["error_normal"]
            text += (f" The variant that copies least of the defect is not the one whose map "
                     f"shows it most: {label(shows)} keeps {copied[shows]:.2f} of it and "
                     f"still has the highest error ratio, because it reconstructs normal "
                     f"tokens more closely (mean normal error {normal[shows]:.2f} against "
                     f"{normal[least]:.2f} for {label(least)}): "
                     f"what a reconstruction leaves of an anomaly shows against the error "
                     f"it makes everywhere.")
    if "anomalous_above_normal_p99" in last:
        shares = last["anomalous_above_normal_p99"].sort_values(ascending=False)
        text += (" Share of anomalous tokens whose error is above the normal tokens' 99th "
                 "percentile: " + ", ".join(f"{label(v)} {x:.2f}" for v, x in shares.items())
                 + ".")
    return text


def sensitivity_table(exp: Experiment) -> pd.DataFrame:
    """Setting x claim: each claim's verdict over all the categories and on each, with the
    intervals of its pairs over all of them."""
    rows = pd.DataFrame(exp.table("sensitivity"))
    if rows.empty:
        return rows
    labels = {s.name: s.label for s in catalog.SENSITIVITY_SETTINGS}
    table = []
    claimed = rows[rows["claim"].astype(bool)]
    for (setting, claim), group in claimed.groupby(["setting", "claim_of"], sort=False):
        row = {"Setting": labels.get(setting, setting), "Claim": TITLES[claim].split(":")[0]}
        for category, part in group.groupby("category", sort=False):
            name = "All categories" if category == "all" else category
            row[name] = stats.pairs_reading([stats.CLAIM_VERDICTS[v] for v in part["verdict"]])
        overall = group[group["category"] == "all"]
        row["Pairs (a − b, all categories)"] = "; ".join(
            f"{label(r.a)} − {label(r.b)} {interval(r.difference, r.low, r.high)}"
            for r in overall.itertuples())
        table.append(row)
    return pd.DataFrame(table)


def changed_factors() -> str:
    """What the sensitivity study changes from the book's regime, as words: the labels of
    its settings other than the regime itself ('per-channel standardised features')."""
    return listing([s.label for s in catalog.SENSITIVITY_SETTINGS if s.overrides])


def sensitivity_statement(exp: Experiment) -> str:
    """Under which settings each claim agrees with the paper, over all the categories."""
    table = sensitivity_table(exp)
    if table.empty:
        return "The sensitivity study was not run."
    parts = []
    for claim, group in table.groupby("Claim", sort=False):
        by_verdict: dict[str, list[str]] = {}
        for _, row in group.iterrows():
            by_verdict.setdefault(row["All categories"], []).append(row["Setting"])
        if len(by_verdict) == 1 and len(group) > 1:
            every = "both settings" if len(group) == 2 else "every setting"
            said = f"in {every}, {next(iter(by_verdict))}"
        else:
            said = "; ".join(f"{' and '.join(settings)}: {verdict}"
                             for verdict, settings in by_verdict.items())
        parts.append(f"**{claim}**: {said}.")
    return " ".join(parts)


def setting_metrics(exp: Experiment, variant: str = "adtr", metric: str = "image_auroc"
                    ) -> pd.DataFrame:
    """Setting x category: the ``metric`` (%) of the study's Table 4a ``variant`` run in each
    setting, mean over the study's seeds."""
    runs = exp.runs
    if runs.empty:
        return runs
    setting, experiment, name = runs["variant"].str.split("/", expand=True).T.to_numpy()
    chosen = runs.assign(setting=setting)[(experiment == "attention_query") & (name == variant)]
    table = chosen.pivot_table(index="setting", columns="category", values=metric, sort=False)
    labels = {s.name: s.label for s in catalog.SENSITIVITY_SETTINGS}
    table.index = [labels.get(s, s) for s in table.index]
    return (100 * table).round(1).rename_axis(index="Setting", columns=None).reset_index()
