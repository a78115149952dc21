"""The study beyond the paper: the identity shortcut over training, and where each claim holds.

- ``shortcut_table``: the statistics every reconstruction run records at its checkpoints
  (``pipeline.shortcut_probe``), one row per (variant, category, seed, epoch). The paper's
  Eq. 4-5 argue that a network fed by its own input learns to pass anomalies through; these
  rows measure how far each Table 4a variant does.
- ``sensitivity_grid`` / ``sensitivity_verdicts``: the Table 4 claims decided again in
  settings that change one factor of the profile's regime (``catalog.SENSITIVITY_SETTINGS``),
  on a texture and an object category, each by the paired intervals of
  ``experiments.intervals``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from adtr import catalog, experiments, stats, synth
from adtr.schema import RunRecord

#: MVTec-AD's texture categories (the other ten are objects).
MVTEC_TEXTURES = ("carpet", "grid", "leather", "tile", "wood")

#: The statistics of a probe, in the order the page shows them; ``error_ratio`` (anomalous
#: over normal error: how much of the anomaly the map shows) is derived from two of them.
SHORTCUT_STATS = ("twin_pass_through", "pass_through_anomalous", "pass_through_normal",
                  "error_anomalous",
                  "error_normal", "error_ratio", "anomalous_above_normal_p99",
                  "error_normal_p99", "pixel_auroc", "loss")


def category_kind(category: str) -> str:
    """"texture" or "object": the generated categories by how they are made, MVTec-AD's by
    its own split."""
    if category in synth.TEXTURE_CATEGORIES or category in MVTEC_TEXTURES:
        return "texture"
    return "object"


def shortcut_table(runs: pd.DataFrame, records: list[RunRecord]) -> pd.DataFrame:
    """One row per probe of every run of ``runs`` (their records in the same order): the
    variant, category, its kind (texture or object), seed, epoch and the statistics."""
    rows = []
    for row, record in zip(runs.to_dict(orient="records"), records, strict=True):
        for probe in record.probes or []:
            probe = {**probe, "error_ratio": probe["error_anomalous"] / probe["error_normal"]}
            rows.append({"variant": row["variant"], "category": row["category"],
                         "kind": category_kind(row["category"]), "seed": row["seed"],
                         **{k: probe[k] for k in ("epoch", *SHORTCUT_STATS) if k in probe}})
    return pd.DataFrame(rows)


def shortcut_summary(table: pd.DataFrame, by: tuple[str, ...] = ("variant", "epoch")
                     ) -> pd.DataFrame:
    """The mean of every statistic over the rest (categories and seeds), per ``by``."""
    present = [s for s in SHORTCUT_STATS if s in table]
    return table.groupby(list(by), sort=False)[present].mean().reset_index()


def sensitivity_categories(setup: experiments.Setup) -> list[str]:
    """The set-up's first texture and first ``catalog.SENSITIVITY_OBJECTS`` object
    categories (those it has)."""
    textures = [c for c in setup.categories if category_kind(c) == "texture"]
    objects = [c for c in setup.categories if category_kind(c) == "object"]
    return textures[:1] + objects[:catalog.SENSITIVITY_OBJECTS]


def sensitivity_grid(setup: experiments.Setup) -> dict[str, dict[str, Any]]:
    """``setting/claim/variant`` -> run parameters, for every setting, the claims decided in
    it and those claims' variants (their training-free references left out)."""
    grid = {}
    for setting in catalog.SENSITIVITY_SETTINGS:
        for claim in setting.claims or catalog.SENSITIVITY_CLAIMS:
            experiment = catalog.get(claim)
            for name, overrides in experiments.variants(setup, experiment).items():
                if name not in {v.name for v in experiment.compared}:
                    continue
                grid[f"{setting.name}/{claim}/{name}"] = {**overrides, **setting.overrides}
    return grid


def sensitivity_verdicts(runs: pd.DataFrame, records: list[RunRecord]) -> pd.DataFrame:
    """Every claim's intervals in every setting, on each category and over both
    (``experiments.intervals``), with the setting and claim beside each row."""
    runs = runs.reset_index(drop=True)  # row i is records[i], as run_grid returns them
    keys = runs["variant"].str.split("/", expand=True)
    frames = []
    for (setting, claim), index in runs.groupby([keys[0], keys[1]], sort=False).groups.items():
        subset = runs.loc[index].assign(variant=keys.loc[index, 2])
        chosen = [records[i] for i in index]
        table = experiments.intervals(catalog.get(claim), subset.reset_index(drop=True), chosen)
        frames.append(table.assign(setting=setting, claim_of=claim))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sensitivity_matrix(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Setting x claim: the claim's verdict over both categories, and on each."""
    labels = {s.name: s.label for s in catalog.SENSITIVITY_SETTINGS}
    rows = []
    for (setting, claim), group in verdicts[verdicts["claim"]].groupby(
            ["setting", "claim_of"], sort=False):
        row = {"setting": labels.get(setting, setting), "claim": claim}
        for category, part in group.groupby("category", sort=False):
            row[category] = stats.claim_verdict(list(part["verdict"]))
        rows.append(row)
    return pd.DataFrame(rows)
