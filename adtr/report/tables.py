"""The tables that set the paper's numbers beside ours: the ablations' variants, the main
results, Fig. 5's separation, and ADTR+ against ADTR, overall and per category or class."""

from __future__ import annotations

from typing import Any

import pandas as pd

from adtr import catalog, stats
from adtr.report.data import data_label
from adtr.report.formatting import interval, mean_std, percent, signed
from adtr.report.loading import METRIC_NAMES, METRICS, PLUS_LABELS, Experiment, label
from adtr.report.verdicts import (
    PAPER_DATA,
    _paired_differences,
    _paper_gain,
    comparisons_of,
    our_values,
    paper_methods,
    plus_differences,
    ranks,
)
from adtr.schema import unit_column

# --- paper beside ours ---------------------------------------------------------------

def comparison_table(exp: Experiment, metric: str = "pixel_auroc") -> pd.DataFrame:
    """One row per variant: the paper's value beside ours (mean ± std over seeds), ranks."""
    summary = exp.summary.set_index("variant") if not exp.summary.empty else pd.DataFrame()
    paper, ours = exp.paper, our_values(exp, metric)
    paper_ranks, our_ranks = ranks(paper), ranks(ours)
    data, name = data_label(exp), METRIC_NAMES[metric]
    rows = []
    for variant in list(paper) + [v for v in ours if v not in paper]:
        row = summary.loc[variant] if variant in ours else None
        seeds = int(row["seeds"]) if row is not None else 0

        def ours_of(m: str, row: Any = row, seeds: int = seeds) -> str:
            return mean_std(row[f"{m}_mean"], row[f"{m}_std"], seeds) if row is not None \
                else "not run"

        rows.append({
            "Variant": label(variant),
            f"Paper {name} (MVTec-AD)": f"{paper[variant]:.1f}" if variant in paper else "—",
            f"Ours {name} ({data})": ours_of(metric),
            "Paper rank": f"{paper_ranks[variant]} of {len(paper)}" if variant in paper else "—",
            "Our rank": f"{our_ranks[variant]} of {len(ours)}" if variant in ours else "—",
            f"Ours {METRIC_NAMES['image_auroc']}": ours_of("image_auroc"),
            f"Ours {METRIC_NAMES['aupro']}": ours_of("aupro"),
            "Seeds": seeds or "—",
        })
    return pd.DataFrame(rows)


def interval_table(exp: Experiment) -> pd.DataFrame:
    """One column per comparison (the claim's pairs, then the training-free references); rows:
    whether the claim holds it, its verdict, the difference a − b in points with its paired
    95 % interval over all categories, the categories whose own difference has its sign,
    then each category's interval (one decimal: the intervals are wider than that)."""
    metric = catalog.get(exp.name).metric
    rows = [r for r in exp.table("intervals") or [] if r["metric"] == metric]
    pairs = list(dict.fromkeys((r["a"], r["b"]) for r in rows))
    signs = {(c.a, c.b): c.sign_holds for c in comparisons_of(exp, metric)}
    columns: dict[str, dict[str, str]] = {}
    for a, b in pairs:
        mine = [r for r in rows if (r["a"], r["b"]) == (a, b)]
        overall = next(r for r in mine if r["category"] == "all")
        verdict = stats.CLAIM_VERDICTS[overall["verdict"]] if overall["claim"] \
            else reference_verdict(overall["verdict"], label(a))
        columns[f"{label(a)} − {label(b)}"] = {
            "In the claim": "yes" if overall["claim"] else "reference", "Verdict": verdict,
            "All categories": _interval_cell(overall),
            "Sign holds in": signs[a, b],
            **{r["category"]: _interval_cell(r) for r in mine if r["category"] != "all"}}
    if not columns:
        return pd.DataFrame()
    return pd.DataFrame(columns).rename_axis("a − b").reset_index()


def reference_verdict(verdict: str, a: str) -> str:
    """A reference column's verdict: the claim's variant ahead of it, behind it, or neither."""
    return {stats.BETTER: f"{a} ahead", stats.WORSE: f"{a} behind"}.get(verdict, verdict)


def _interval_cell(row: dict[str, Any]) -> str:
    return interval(row["difference"], row["low"], row["high"], digits=1)


def _cells_over_seeds(runs: pd.DataFrame, by: list[str], metric: str) -> pd.Series:
    """Per ``by`` group: 'mean ± std' over seeds of the per-seed value, in %."""
    per_seed = runs.groupby([*by, "seed"], sort=False)[metric].mean()
    grouped = per_seed.groupby(level=list(range(len(by))), sort=False)
    return grouped.agg(lambda s: mean_std(s.mean(), s.std(ddof=1), len(s)))


def per_category_variants(exp: Experiment, metric: str = "pixel_auroc",
                          labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Category (or class) x variant table of ``metric`` (mean ± std over seeds), in the
    order the notebook ran them, with the mean row; ``labels`` rename variants."""
    runs = exp.runs
    unit = unit_column(runs)
    cells = _cells_over_seeds(runs, [unit, "variant"], metric).unstack("variant")
    variants = list(dict.fromkeys(runs["variant"]))
    table = cells.reindex(list(dict.fromkeys(runs[unit])))[variants].reset_index()
    means = {row["variant"]: mean_std(row[f"{metric}_mean"], row[f"{metric}_std"],
                                      int(row["seeds"])) for _, row in exp.summary.iterrows()}
    table.loc[len(table)] = ["mean", *(means[v] for v in variants)]
    table.columns = [unit.capitalize(), *((labels or {}).get(v) or label(v) for v in variants)]
    return table


def per_category_metrics(exp: Experiment) -> pd.DataFrame:
    """Category x metric table (mean ± std over seeds) for the main results, with the mean."""
    runs = exp.runs
    columns = {m: _cells_over_seeds(runs, ["category"], m) for m in METRICS}
    table = pd.DataFrame(columns).reset_index(names="category")
    row = exp.summary.iloc[0]
    table.loc[len(table)] = ["mean", *(mean_std(row[f"{m}_mean"], row[f"{m}_std"],
                                                int(row["seeds"])) for m in METRICS)]
    table.columns = ["Category", *(METRIC_NAMES[m] for m in METRICS)]
    return table


# --- main results and Fig. 5 ---------------------------------------------------------

def main_table(exp: Experiment) -> pd.DataFrame:
    """The paper's MVTec-AD means (ADTR, ADTR+) beside ours, one row per metric."""
    row = exp.summary.iloc[0]
    seeds = int(row["seeds"])
    rows = []
    for metric in METRICS:
        paper_cells = {f"Paper {method} (MVTec-AD)": (f"{values[metric]:.1f}" if metric in values
                                                      else "not reported")
                       for method, values in exp.paper.items()}
        rows.append({"Metric": METRIC_NAMES[metric], **paper_cells,
                     f"Ours ADTR ({data_label(exp)})": mean_std(row[f"{metric}_mean"],
                                                                row[f"{metric}_std"], seeds)})
    return pd.DataFrame(rows)


def weakest_category(exp: Experiment, metric: str = "pixel_auroc") -> tuple[str, float]:
    """The category with the lowest mean ``metric`` over seeds, and that value in %."""
    means = exp.runs.groupby("category")[metric].mean()
    return str(means.idxmin()), 100 * float(means.min())


def defect_kinds(exp: Experiment) -> pd.DataFrame:
    """The experiment's ``defect_kinds`` table, one row per (variant, category, kind): the
    kind's type, test images, mean share of the image (%) and image AUROC (mean and std over
    seeds, fractions). Empty when the results have none."""
    rows = pd.DataFrame(exp.table("defect_kinds"))
    if rows.empty:
        return rows
    grouped = rows.groupby(["variant", "category", "kind"], sort=False, dropna=False)
    return grouped.agg(type=("type", "first"), images=("images", "first"),
                       area_percent=("area_percent", "mean"),
                       image_auroc=("image_auroc", "mean"),
                       image_auroc_std=("image_auroc", lambda s: s.std(ddof=1)),
                       seeds=("seed", "nunique")).reset_index()


def defect_kind_table(exp: Experiment) -> pd.DataFrame:
    """Category x defect kind: type, test images, share of the image, image AUROC of that
    kind alone against the normal images (mean ± std over seeds, %)."""
    kinds = defect_kinds(exp)
    if kinds.empty:
        return kinds
    return pd.DataFrame({
        "Category": kinds["category"], "Defect kind": kinds["kind"],
        "Type": kinds["type"].fillna("—"), "Test images": kinds["images"],
        "Share of the image (%)": [f"{a:.2f}" for a in kinds["area_percent"]],
        "Image AUROC (%)": [mean_std(m, s, int(n)) for m, s, n in
                            zip(kinds["image_auroc"], kinds["image_auroc_std"], kinds["seeds"],
                                strict=True)]})


def separation_table(exp: Experiment) -> pd.DataFrame:
    """Fig. 5's separation numbers per category, in %."""
    rows = [{"Category": r["category"], "Normal vectors": r["n_normal"],
             "Anomalous vectors": r["n_anomalous"],
             "k-NN accuracy in the t-SNE plane": percent(r["knn_accuracy_tsne"]),
             "Silhouette (t-SNE)": f"{r['silhouette_tsne']:.2f}",
             "AUROC of s(u) on these positions": percent(r["score_auroc"])}
            for r in exp.table("separation")]
    return pd.DataFrame(rows)


# --- ADTR+ beside ADTR --------------------------------------------------------------

def plus_table(exp: Experiment) -> pd.DataFrame:
    """One row per metric: the paper's ADTR and ADTR+ means beside ours (mean ± std over
    seeds), both differences, and what ours says."""
    paper, where, data = paper_methods(exp), PAPER_DATA.get(exp.name, "MVTec-AD"), \
        data_label(exp)
    summary = exp.summary.set_index("variant")
    rows = []
    for metric, difference in plus_differences(exp).items():
        def ours(variant: str, metric: str = metric) -> str:
            row = summary.loc[variant]
            return mean_std(row[f"{metric}_mean"], row[f"{metric}_std"], int(row["seeds"]))

        def theirs(method: str, metric: str = metric) -> str:
            value = paper.get(method, {}).get(metric)
            return "not reported" if value is None else f"{value:.1f}"

        gain = _paper_gain(paper, metric)
        rows.append({"Metric": METRIC_NAMES[metric],
                     f"Paper ADTR ({where})": theirs("ADTR"),
                     f"Paper ADTR+ ({where})": theirs("ADTR+"),
                     "Paper ADTR+ − ADTR": "—" if gain is None else signed(gain),
                     f"Ours ADTR ({data})": ours("adtr"), f"Ours ADTR+ ({data})": ours("adtr_plus"),
                     "Ours ADTR+ − ADTR": difference.shown,
                     "ADTR+ here": difference.verdict_text})
    return pd.DataFrame(rows)


def plus_table_by_method(exp: Experiment) -> pd.DataFrame:
    """The means of ``plus_table`` on their side, for few metrics: one row for ADTR, one for
    ADTR+, one for their difference; the paper's column beside ours for each metric."""
    paper, where, data = paper_methods(exp), PAPER_DATA.get(exp.name, "MVTec-AD"), \
        data_label(exp)
    summary = exp.summary.set_index("variant")
    rows: list[dict[str, str]] = [{"": "ADTR"}, {"": "ADTR+"}, {"": "ADTR+ − ADTR"}]
    for metric, difference in plus_differences(exp).items():
        name = METRIC_NAMES[metric]
        if _paper_gain(paper, metric) is not None:
            column = f"Paper {name} ({where})"
            rows[0][column] = f"{paper['ADTR'][metric]:.1f}"
            rows[1][column] = f"{paper['ADTR+'][metric]:.1f}"
            rows[2][column] = signed(_paper_gain(paper, metric))
        column = f"Ours {name} ({data})"
        for row, variant in ((rows[0], "adtr"), (rows[1], "adtr_plus")):
            values = summary.loc[variant]
            row[column] = mean_std(values[f"{metric}_mean"], values[f"{metric}_std"],
                                   int(values["seeds"]))
        rows[2][column] = difference.shown
    return pd.DataFrame(rows)


def plus_per_unit(exp: Experiment, metric: str) -> pd.DataFrame:
    """Category (or class) x ADTR, ADTR+ (mean ± std over seeds) and their difference: its
    paired test-image interval where the results hold one, else its mean ± std over seeds;
    with the mean row."""
    table = per_category_variants(exp, metric, PLUS_LABELS)
    unit = unit_column(exp.runs)
    paired = _paired_differences(exp.runs, metric)
    cells = paired.groupby(level=unit, sort=False).agg(
        lambda s: signed(s.mean(), s.std(ddof=1) if len(s) > 1 else None))
    cells.update({r["category"]: interval(r["difference"], r["low"], r["high"])
                  for r in exp.table("intervals") or []
                  if r["metric"] == metric and (r["a"], r["b"]) == ("adtr_plus", "adtr")
                  and r["category"] != "all"})
    overall = plus_differences(exp).get(metric)
    table["ADTR+ − ADTR"] = [*(cells.get(u, "—") for u in table.iloc[:-1, 0]),
                             overall.shown if overall is not None else "—"]
    return table
