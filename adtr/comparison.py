"""A method against others on the same categories: the tables, intervals, costs and
figures that the peers and the unified notebooks show, computed and saved in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from adtr import catalog, experiments, viz
from adtr.schema import RunRecord

#: The metrics a comparison gives paired intervals for.
INTERVAL_METRICS = ("image_auroc", "pixel_auroc")


@dataclass
class Comparison:
    """What ``compare`` computed: the summary (mean and spread per variant), per metric the
    per-category means (%), the paired intervals, the cost table, the saved figures and
    the folder of the result files."""

    summary: pd.DataFrame
    per_category: dict[str, pd.DataFrame]
    intervals: pd.DataFrame
    cost: pd.DataFrame
    folder: Path
    figures: dict[str, Figure] = field(default_factory=dict)


def compare(setup: experiments.Setup, experiment: catalog.Experiment, runs: pd.DataFrame,
            records: list[RunRecord], tables: dict[str, Any] | None = None) -> Comparison:
    """Summarise ``runs`` (a ``run_grid`` table of every variant, with their ``records``),
    give the experiment's paired intervals on image and pixel AUROC and the cost table,
    write the result files (``experiments.save_table``, with ``tables`` besides) and the
    figures (one paired plot per metric and the costs)."""
    summary = experiments.summarize(runs)
    per_category = {metric: experiments.per_category(runs, metric).mul(100).round(2)
                    for metric in catalog.METRICS}
    intervals = pd.concat([experiments.intervals(experiment, runs, records, metric)
                           for metric in INTERVAL_METRICS], ignore_index=True)
    cost = experiments.cost_table(runs, records)
    folder = experiments.save_table(
        setup, experiment, runs, summary, records,
        tables={"per_category": {m: experiments.table_records(t)
                                 for m, t in per_category.items()},
                "intervals": intervals.to_dict(orient="records"),
                "cost": cost.to_dict(orient="records"), **(tables or {})})
    figures = {f"paired_{metric}": viz.paired(runs[["category", "variant", "seed", metric]],
                                              metric, experiment.labels)
               for metric in catalog.METRICS}
    figures["cost"] = viz.cost_bars(cost, experiment.labels)
    for name, figure in figures.items():
        experiments.save_figure(figure, setup, experiment.name, name)
    return Comparison(summary, per_category, intervals, cost, folder, figures)
