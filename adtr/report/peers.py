"""The pages that set ADTR beside other choices: anomalib's PaDiM and PatchCore on the same
data and weights, and one model for all categories (the unified setting). Tables and
sentences computed from the notebooks' tables."""

from __future__ import annotations

from typing import Any

import pandas as pd

from adtr import catalog, stats
from adtr.report.formatting import mean_std, percent
from adtr.report.loading import METRIC_NAMES, METRICS, Experiment
from adtr.report.statements import KIND_FOUND
from adtr.report.tables import _interval_cell, defect_kinds, per_category_variants
from adtr.report.verdicts import at_ceiling

#: How a pair's interval reads when neither method is the paper's claim.
_AHEAD = {stats.BETTER: "{a} ahead", stats.WORSE: "{b} ahead",
          stats.NOT_SEPARATED: stats.NOT_SEPARATED, stats.SATURATED: stats.SATURATED}


def labels(exp: Experiment) -> dict[str, str]:
    return catalog.get(exp.name).labels


def peers_ran(exp: Experiment | None) -> bool:
    """Whether the peers notebook found anomalib and ran PaDiM and PatchCore."""
    return bool(exp is not None and (exp.table("peers") or {}).get("installed"))


def missing_peers(exp: Experiment | None) -> str:
    """What the page says where the peers were not run."""
    if exp is None:
        return "The peers notebook has not been run for this profile."
    return ("**The peers were not run** for these results: " +
            ((exp.table("peers") or {}).get("missing") or "anomalib was not installed.") +
            " The table below holds ADTR's rows only.")


def unified_ran(exp: Experiment | None) -> bool:
    """Whether the unified notebook trained its one model (it needs two categories or more)."""
    return bool(exp is not None and "unified" in set(exp.summary["variant"]))


def missing_unified(exp: Experiment | None) -> str:
    """What the page says where no unified model was trained."""
    if exp is None:
        return "The unified notebook has not been run for this profile."
    return ("**No unified model was trained** for these results: they hold "
            f"{_list(exp.record.categories)} alone, and one model for all categories needs "
            "two or more. The tables below hold the per-category model only.")


def means_table(exp: Experiment) -> pd.DataFrame:
    """One row per method: each metric's mean over categories, mean ± std over seeds."""
    names = labels(exp)
    rows = []
    for _, row in exp.summary.iterrows():
        rows.append({"Method": names.get(row["variant"], row["variant"]),
                     **{METRIC_NAMES[m]: mean_std(row[f"{m}_mean"], row[f"{m}_std"],
                                                  int(row["seeds"]))
                        for m in METRICS if f"{m}_mean" in row},
                     "Seeds": int(row["seeds"])})
    return pd.DataFrame(rows)


def published_table(exp: Experiment) -> pd.DataFrame:
    """The published MVTec-AD means the page sets beside ours (never computed here)."""
    return pd.DataFrame([{"Method (as published)": method,
                          **{METRIC_NAMES[m]: f"{values[m]:.1f}" if m in values else "—"
                             for m in METRICS}}
                         for method, values in exp.paper.items()])


def per_category_table(exp: Experiment, metric: str) -> pd.DataFrame:
    return per_category_variants(exp, metric, labels(exp))


def pair_table(exp: Experiment, metric: str) -> pd.DataFrame:
    """One row per compared pair: a − b in points with its paired 95 % interval over all
    categories and per category, and which method is ahead."""
    names = labels(exp)
    rows = [r for r in exp.table("intervals") or [] if r["metric"] == metric]
    table = []
    for a, b in dict.fromkeys((r["a"], r["b"]) for r in rows):
        mine = [r for r in rows if (r["a"], r["b"]) == (a, b)]
        overall = next(r for r in mine if r["category"] == "all")
        row = {"Pair (a − b)": f"{names.get(a, a)} − {names.get(b, b)}",
               "All categories": _interval_cell(overall),
               "Over all categories": _ahead(exp, overall, names)}
        row.update({r["category"]: _interval_cell(r) for r in mine if r["category"] != "all"})
        table.append(row)
    return pd.DataFrame(table)


def _reading(exp: Experiment, row: dict[str, Any]) -> str:
    """How a pair's interval row reads: its verdict (who is ahead, or not separated), or
    saturated where both methods are at the ceiling in its category (``at_ceiling``)."""
    if at_ceiling(exp, row["a"], row["b"], row["metric"], row["category"]):
        return stats.SATURATED
    return row["verdict"]


def _ahead(exp: Experiment, row: dict[str, Any], names: dict[str, str]) -> str:
    return _AHEAD[_reading(exp, row)].format(a=names.get(row["a"], row["a"]),
                                             b=names.get(row["b"], row["b"]))


def wins_and_losses(exp: Experiment, a: str, b: str, metric: str) -> str:
    """A sentence: the categories where a is ahead of b, where b is ahead, and where the
    interval cannot tell, by the paired intervals of ``metric``."""
    names = labels(exp)
    rows = [r for r in exp.table("intervals") or []
            if (r["a"], r["b"], r["metric"]) == (a, b, metric) and r["category"] != "all"]
    if not rows:
        return ""
    sides = {verdict: [r["category"] for r in rows if _reading(exp, r) == verdict]
             for verdict in (stats.BETTER, stats.WORSE, stats.NOT_SEPARATED, stats.SATURATED)}
    overall = next(r for r in exp.table("intervals")
                   if (r["a"], r["b"], r["metric"], r["category"]) == (a, b, metric, "all"))
    parts = [f"{names[a]} ahead: {_list(sides[stats.BETTER])}",
             f"{names[b]} ahead: {_list(sides[stats.WORSE])}",
             f"not separated: {_list(sides[stats.NOT_SEPARATED])}"]
    if sides[stats.SATURATED]:
        parts.append(f"saturated (both at or above {100 * stats.SATURATION:.1f} %): "
                     f"{_list(sides[stats.SATURATED])}")
    return (f"**{names[a]} against {names[b]}**, {METRIC_NAMES[metric]}: "
            f"{_ahead(exp, overall, names)} over all categories "
            f"({_interval_cell(overall)} points); " + "; ".join(parts) + ".")


def _list(categories: list[str]) -> str:
    return ", ".join(categories) if categories else "none"


def defect_kind_table(exp: Experiment) -> pd.DataFrame:
    """Category x defect kind: type, test images, share of the image, and each method's
    image AUROC of that kind alone against the normal images (%, mean over seeds)."""
    kinds = defect_kinds(exp)
    if kinds.empty:
        return kinds
    names = labels(exp)
    first = kinds.groupby(["category", "kind"], sort=False).first()
    wide = kinds.pivot_table(index=["category", "kind"], columns="variant",
                             values="image_auroc").reindex(first.index)
    table = pd.DataFrame({"Category": [c for c, _ in first.index],
                          "Defect kind": [k for _, k in first.index],
                          "Type": first["type"].fillna("—").to_numpy(),
                          "Images": first["images"].to_numpy(),
                          "Area (%)": [f"{a:.1f}" for a in first["area_percent"]]})
    for method in dict.fromkeys(kinds["variant"]):  # short headers: the table is wide
        name = names.get(method, method).removesuffix(" (anomalib)")
        table[name] = [percent(v) for v in wide[method]]
    return table


def defect_kind_statement(exp: Experiment, ours: str = "adtr") -> str:
    """How many defect kinds each method finds on its own, and the kinds that ``ours``
    misses and every method it is compared with (the experiment's pairs) finds."""
    kinds = defect_kinds(exp)
    if kinds.empty:
        return ""
    names = labels(exp)
    methods = list(dict.fromkeys(kinds["variant"]))
    found = (kinds.pivot_table(index=["category", "kind"], columns="variant",
                               values="image_auroc") >= KIND_FOUND)[methods]  # mean over seeds
    counts = ", ".join(f"{names.get(m, m)} {int(found[m].sum())}" for m in methods)
    text = (f"Defect kinds (of {len(found)}) that reach {percent(KIND_FOUND, 0)}% image AUROC "
            f"on their own: {counts}.")
    others = [b for a, b in catalog.get(exp.name).pairs if a == ours and b in methods]
    if ours in methods and others:
        missed = found[~found[ours] & found[others].all(axis=1)]
        listed = ", ".join(f"{c} {k}" for c, k in missed.index) or "none"
        text += (f" Missed by {names.get(ours, ours)} and found by "
                 f"{' and '.join(names.get(m, m) for m in others)}: {listed}.")
    return text


def cost_table(exp: Experiment) -> pd.DataFrame:
    """One row per method: the backbone's passes, training and testing time and peak
    memory, the mean over categories of each category's mean over seeds (``—`` where runs
    recorded none, as records from before the backbone was timed apart)."""
    names = labels(exp)
    cost = pd.DataFrame(exp.table("cost") or [])
    if cost.empty:
        return cost
    fields = ["backbone_s", "train_s", "train_peak_mb", "test_s", "test_peak_mb"]
    cost[fields] = cost.reindex(columns=fields).apply(pd.to_numeric, errors="coerce")
    means = cost.groupby("variant", sort=False)[fields].mean()

    def cell(value: float, digits: int) -> str:
        return "—" if pd.isna(value) else f"{value:.{digits}f}"

    return pd.DataFrame([{
        "Method": names.get(variant, variant),
        "Backbone passes (s)": cell(row["backbone_s"], 1),
        "Training (s)": cell(row["train_s"], 1),
        "Testing a category (s)": cell(row["test_s"], 1),
        "Peak memory, training (MiB)": cell(row["train_peak_mb"], 0),
        "Peak memory, testing (MiB)": cell(row["test_peak_mb"], 0),
    } for variant, row in means.iterrows()])


def settings_table(exp: Experiment) -> pd.DataFrame:
    """What each peer was run with: backbone, layers and options (the run record's)."""
    names = labels(exp)
    settings = (exp.table("peers") or {}).get("settings") or {}
    return pd.DataFrame([{"Peer": names.get(name, name), "Backbone": values["backbone"],
                          "Layers": ", ".join(values["layers"]),
                          "Options": ", ".join(f"{k} = {v}"
                                               for k, v in values["options"].items())}
                         for name, values in settings.items()])
