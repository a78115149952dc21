"""Showing things in an executing page: the only part that needs IPython (and myst_nb, for
glue). Both are imported inside each function, so that importing ``adtr.report`` stays fast."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from adtr import catalog
from adtr.report.data import data_label, data_note, is_synthetic, missing_note, stale_note
from adtr.report.formatting import figure_grid, markdown_table, mean_std, plural
from adtr.report.loading import Experiment, paper_values
from adtr.report.plots import (
    forest_caption,
    forest_plot,
    loss_curves_caption,
    loss_curves_plot,
    loss_flatness_statement,
)
from adtr.report.tracing import _run_records, data_table, provenance_detail, run_table
from adtr.report.verdicts import CLAIMS, experiment_verdict


def show_markdown(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_table(frame: pd.DataFrame, caption: str | None = None) -> None:
    """Display ``frame`` as a MyST table; an empty frame shows nothing."""
    if not frame.empty:
        show_markdown(markdown_table(frame, caption))


def show_figure(path: Path, caption: str, width: int | None = None) -> None:
    """Embed a PNG from ``results/`` (the build copies it into the HTML) with a caption."""
    from IPython.display import Image, display

    if not path.is_file():
        show_markdown(f"```{{warning}}\nFigure `{path.name}` is missing from `{path.parent}`.\n```")
        return
    display(Image(filename=str(path), width=width))
    show_markdown(f"*{caption}*")


def show_figure_grid(figures: list[tuple[Path, str]], columns: int = 2) -> None:
    if figures:
        show_markdown(figure_grid(figures, columns))


def show_matplotlib(fig: Any, caption: str) -> None:
    """Display a matplotlib figure as a PNG with a caption (no global pyplot state)."""
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    display(Image(data=buffer.getvalue()))
    show_markdown(f"*{caption}*")


def show_forest(exp: Experiment | None, metric: str | None = None) -> None:
    """The experiment's paired differences as a forest plot (``plots.forest_plot``), where
    its results hold intervals."""
    if exp is None:
        return
    fig = forest_plot(exp, metric)
    if fig is not None:
        import matplotlib.pyplot as plt

        show_matplotlib(fig, forest_caption(exp, metric))
        plt.close(fig)


def show_schedule(exp: Experiment | None) -> None:
    """Whether the experiment's own schedule ran its training loss flat, with the curves."""
    if exp is None:
        return
    show_markdown(loss_flatness_statement(exp))
    fig = loss_curves_plot(exp)
    if fig is None:
        return
    import matplotlib.pyplot as plt

    show_matplotlib(fig, loss_curves_caption(exp))
    plt.close(fig)


def glue_text(name: str, text: str) -> None:
    """Glue ``text`` for ``{glue:md}`name``` in a page's prose."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(text), display=False)


def glue_experiment(name: str, exp: Experiment | None,
                    variants: Iterable[str] | None = None) -> None:
    """Glue what an ablation page's prose quotes: ``paper_<v>`` for every variant of the
    paper's table and ``ours_<v>`` for ``variants`` (by default the catalog's; 'not run'
    when missing), ``verdict``, ``data``, ``categories`` and ``seeds``, all of the
    experiment's metric."""
    entry = catalog.get(name)
    variants = list(entry.labels) if variants is None else variants
    metric = entry.metric
    paper = paper_values(name)
    for variant, value in paper.items():
        glue_text(f"paper_{variant}", f"{value:.1f}")
    summary = exp.summary.set_index("variant") if exp is not None and not exp.summary.empty \
        else pd.DataFrame()
    for variant in variants:
        row = summary.loc[variant] if variant in summary.index else None
        glue_text(f"ours_{variant}", "not run" if row is None else mean_std(
            row[f"{metric}_mean"], row[f"{metric}_std"], int(row["seeds"])))
    glue_text("verdict", experiment_verdict(exp, metric).verdict if exp is not None
              and name in CLAIMS else "cannot be compared (not run)")
    glue_text("data", "no data (not run)" if exp is None else (
        "the offline synthetic data" if is_synthetic(exp) else data_label(exp)))
    glue_text("categories", plural(len(exp.record.categories or []) if exp else 0,
                                   "category", "categories"))
    glue_text("seeds", plural(len(exp.record.seeds) if exp else 0, "seed"))


def show_note(exp: Experiment | None, experiment: str) -> None:
    """The page's data admonition (and the warning that the code has changed since, where it
    has), or the note that the experiment has not been run."""
    if exp is None:
        show_markdown(missing_note(experiment))
        return
    show_markdown(data_note(exp))
    stale = stale_note(exp)
    if stale:
        show_markdown(stale)


def show_provenance(name: str, experiments: dict[str, Experiment | None],
                    reference: str = "main") -> None:
    """An experiment's provenance: the fields that differ from the ``reference``
    experiment's (all of them for the reference itself), and its data per category where
    that differs from the reference's (shown once, with the reference)."""
    exp, base = experiments.get(name), experiments.get(reference)
    if exp is None:
        show_markdown(missing_note(name))
        return
    others = [e for e in experiments.values() if e is not None]
    fields = provenance_detail(exp, others)
    if base is not None and base is not exp:
        theirs = dict(provenance_detail(base, others).itertuples(index=False))
        fields = fields[[field in ("Experiment", "Notebook") or theirs.get(field) != value
                         for field, value in fields.itertuples(index=False)]]
        show_table(fields, f"{exp.title}: what differs from {base.title}'s record.")
    else:
        show_table(fields, f"{exp.title}: what produced it.")
    data = data_table(exp)
    if base is None or base is exp or not data.equals(data_table(base)):
        show_table(data, f"{exp.title}: the data, per category.")


def show_runs(name: str, experiments: dict[str, Experiment | None]) -> None:
    exp = experiments.get(name)
    if exp is not None and _run_records(exp):
        show_table(run_table(exp), f"{exp.title}: every run, with its own metrics in %.")
