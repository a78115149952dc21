"""Training curves read from run records, with no torch: each run's probes at its
checkpoints beside the training loss and learning rate of that epoch (``curves``), and their
means over categories and seeds (``category_means``). The convergence study's rule reads them
(``adtr.convergence``) and so does the book (``adtr.report.convergence``), from the same
records."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adtr.schema import RunRecord

#: What a curve row holds beside its keys, in the order the page shows them.
CURVE_STATS = ("pixel_auroc", "image_auroc", "error_normal", "train_loss", "lr")


def curves(runs: pd.DataFrame, records: list[RunRecord]) -> pd.DataFrame:
    """One row per probe of every run (its record in the same order): variant, category,
    seed, epoch, the probe's AUROCs and normal-token error, and the training loss and
    learning rate of that epoch (NaN before training)."""
    rows = []
    for row, record in zip(runs.to_dict(orient="records"), records, strict=True):
        losses, lrs = record.loss_history or [], record.lr_history or []
        for probe in record.probes or []:
            epoch = int(probe["epoch"])
            rows.append({"variant": row["variant"], "category": row["category"],
                         "seed": row["seed"], "epoch": epoch,
                         "pixel_auroc": probe.get("pixel_auroc", np.nan),
                         "image_auroc": probe.get("image_auroc", np.nan),
                         "error_normal": probe.get("error_normal", np.nan),
                         "train_loss": losses[epoch - 1] if 0 < epoch <= len(losses) else np.nan,
                         "lr": lrs[epoch - 1] if 0 < epoch <= len(lrs) else np.nan})
    return pd.DataFrame(rows, columns=["variant", "category", "seed", "epoch", *CURVE_STATS])


def category_means(table: pd.DataFrame) -> pd.DataFrame:
    """The mean of every curve statistic over categories and seeds, per variant and epoch."""
    return table.groupby(["variant", "epoch"], sort=False)[list(CURVE_STATS)].mean(
        ).reset_index()


def late_base_phase(table: pd.DataFrame, cut: int) -> pd.DataFrame:
    """The rows of ``table`` in the later half of the base-lr phase that ends at ``cut``
    (cut / 2 < epoch <= cut): where the convergence rule looks for a plateau."""
    return table[(table["epoch"] > cut / 2) & (table["epoch"] <= cut)]
