"""Figures for the notebooks and the book: galleries, paper-vs-ours bars, t-SNE.

Every figure function runs under the book's one style (``adtr.style``): at most
``style.WIDTH`` inches wide, labels at body-text size once shown in the book, and legends
outside the data."""

from __future__ import annotations

import re
from typing import Any

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no display is needed

import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from adtr.analysis import DifferenceSample  # noqa: E402
from adtr.catalog import EXPERIMENTS, KIND_FOUND, METRIC_NAMES  # noqa: E402
from adtr.style import WIDTH, styled, wrap  # noqa: E402


@styled
def gallery(images: list[np.ndarray], masks: np.ndarray, maps: np.ndarray, scores: np.ndarray,
            titles: list[str], vmax: float | None = None) -> Figure:
    """One column per test image: the image, its ground truth, the predicted map."""
    count = len(images)
    side = min(2.1, WIDTH / count)
    fig, axes = plt.subplots(3, count, figsize=(side * count + 1.2, 3.2 * side),
                             squeeze=False, layout="constrained")
    vmax = float(np.percentile(maps, 99.5)) if vmax is None else vmax
    for col in range(count):
        axes[0, col].imshow(images[col])
        axes[0, col].set_title(wrap(titles[col].replace("/", " / "), 12), fontsize=10)
        axes[1, col].imshow(images[col])
        axes[1, col].contour(masks[col], levels=[0.5], colors="red", linewidths=0.8)
        overlay = axes[2, col].imshow(maps[col], cmap="jet", vmin=0, vmax=vmax)
        axes[2, col].set_xlabel(f"score {scores[col]:.2f}")
    for row, label in enumerate(("image", "ground truth", "anomaly map")):
        axes[row, 0].set_ylabel(label)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(overlay, ax=axes[2, :].tolist(), shrink=0.8, label="s(u) = ||d(:, u)||")
    return fig


@styled
def paper_vs_ours(summary: pd.DataFrame, paper: dict[str, float], labels: dict[str, str],
                  metric: str = "pixel_auroc", title: str = "") -> Figure:
    """Bars of our mean (error bar: std over seeds, where there are several) beside the
    paper's value, per variant; the legend, above the axes, lists only what is drawn."""
    names = list(summary["variant"])
    x = np.arange(len(names))
    ours = 100 * summary[f"{metric}_mean"].to_numpy()
    several = "seeds" in summary and bool((summary["seeds"] > 1).any())
    spread = 100 * summary[f"{metric}_std"].fillna(0).to_numpy() if several \
        else np.zeros(len(names))
    theirs = np.array([paper.get(name, np.nan) for name in names], dtype=float)
    fig, ax = plt.subplots(figsize=(min(WIDTH, 1.2 * len(names) + 1.5), 3.8),
                           layout="constrained")
    if np.isfinite(theirs).any():
        ax.bar(x - 0.2, theirs, 0.4, label="paper (MVTec-AD)", color="#999999")
    ax.bar(x + 0.2, ours, 0.4, yerr=spread if several else None, capsize=3,
           label="ours (error bar: std over seeds)" if several else "ours", color="#1f77b4")
    for xi, value, error in zip(x, ours, spread, strict=True):
        ax.text(xi + 0.2, value + error + 0.3, f"{value:.1f}", ha="center", va="bottom",
                fontsize=9.5)
    ax.set_xticks(x, [wrap(labels.get(n, n), 13) for n in names])
    low = np.nanmin(np.concatenate([ours - spread, theirs]))
    ax.set_ylim(max(0.0, low - 5), 101)
    ax.set_ylabel(f"{METRIC_NAMES.get(metric, metric)} (%)")
    ax.grid(axis="y")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)
    if title:
        fig.suptitle(title)
    return fig


@styled
def tsne_plot(embedding: np.ndarray, sample: DifferenceSample, title: str = "") -> Figure:
    """Fig. 5: circles normal, triangles anomalous, colour the predicted score s(u)."""
    fig, ax = plt.subplots(figsize=(5.8, 5.0), layout="constrained")
    vmin, vmax = np.percentile(sample.scores, [1, 99])
    for anomalous, marker, label in ((False, "o", "normal"), (True, "^", "anomalous")):
        keep = sample.anomalous == anomalous
        points = ax.scatter(embedding[keep, 0], embedding[keep, 1], c=sample.scores[keep],
                            cmap="coolwarm", vmin=vmin, vmax=vmax, marker=marker, s=16,
                            edgecolors="k", linewidths=0.2, label=label)
    fig.colorbar(points, ax=ax, label="predicted anomaly score s(u)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)
    if title:
        fig.suptitle(title)
    return fig


@styled
def loss_curves(histories: dict[str, list[float]], ylabel: str = "feature MSE") -> Figure:
    """Training loss per epoch for a few runs. Runs named '<group> seed <n>' are coloured by
    group and drawn in one line style per seed, with one legend for each, right of the plot
    (``fig.axes[0]`` is the plot)."""
    runs = [(*_group_and_seed(name), losses) for name, losses in histories.items()]
    groups = list(dict.fromkeys(group for group, _, _ in runs))
    seeds = list(dict.fromkeys(seed for _, seed, _ in runs if seed is not None))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", ":", "-.")
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), layout="constrained")
    for group, seed, losses in runs:
        ax.plot(range(1, len(losses) + 1), losses, color=colours[groups.index(group) % 10],
                linestyle=styles[seeds.index(seed) % 4] if seed is not None else "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[i % 10], label=g) for i, g in enumerate(groups)]
    first = fig.legend(handles=handles, loc="outside right upper")
    if len(seeds) > 1:
        lines = [Line2D([], [], color="black", linestyle=styles[i % 4], label=f"seed {s}")
                 for i, s in enumerate(seeds)]
        fig.legend(handles=lines, loc="outside right lower")
    elif seeds:
        first.set_title(f"seed {seeds[0]}")
    return fig


def _group_and_seed(name: str) -> tuple[str, str | None]:
    """'brick seed 1' -> ('brick', '1'); a name without a seed is its own group."""
    match = re.fullmatch(r"(.+) seed (\S+)", name)
    return (match[1], match[2]) if match else (name, None)


@styled
def defect_kind_bars(kinds: pd.DataFrame, found: float = KIND_FOUND) -> Figure:
    """One panel per category: the image AUROC of each defect kind alone against the normal
    images (``analysis.defect_kinds``; bar: mean over seeds, dots: seeds), coloured by the
    kind's type, with the share of the image its defects cover; a dashed line at ``found``."""
    categories = list(dict.fromkeys(kinds["category"]))
    columns = min(2, len(categories))
    rows = -(-len(categories) // columns)
    most = int(kinds.groupby("category")["kind"].nunique().max())
    fig, axes = plt.subplots(rows, columns,
                             figsize=(WIDTH * columns / 2, (0.3 * most + 0.9) * rows + 1.0),
                             squeeze=False, sharex=True, layout="constrained")
    colours = dict(zip(dict.fromkeys(kinds["type"].fillna("defect")),
                       plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    low = min(50.0, 100 * float(kinds["image_auroc"].min()) - 2)
    for ax, category in zip(axes.flat, categories, strict=False):
        rows_of = kinds[kinds["category"] == category]
        order = list(dict.fromkeys(rows_of["kind"]))
        per_kind = rows_of.groupby("kind", sort=False)
        means = 100 * per_kind["image_auroc"].mean().reindex(order)
        areas = per_kind["area_percent"].mean().reindex(order)
        types = per_kind["type"].first().reindex(order).fillna("defect")
        y = np.arange(len(order))
        ax.barh(y, means - low, left=low, color=[colours[t] for t in types], alpha=0.8)
        ax.scatter(100 * rows_of["image_auroc"], [order.index(k) for k in rows_of["kind"]],
                   s=9, color="black", zorder=3)
        ax.set_yticks(y, [f"{kind} ({area:.1f} %)" for kind, area in zip(order, areas,
                                                                          strict=True)])
        ax.invert_yaxis()
        ax.set_xlim(low, 100.5)
        ax.axvline(100 * found, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(category)
        ax.tick_params(axis="y", labelsize=9.5)
    for ax in axes.flat[len(categories):]:
        ax.set_visible(False)
    fig.supxlabel("image AUROC (%) of one defect kind against the normal images")
    handles = [matplotlib.patches.Patch(color=c, alpha=0.8, label=t) for t, c in colours.items()]
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles),
               title="kind (share of the image it covers); dots: seeds; "
               f"dashed: {100 * found:.0f} %")
    return fig


@styled
def image_grid(rows: dict[str, np.ndarray], masks: np.ndarray | None = None,
               columns: int = 8) -> Figure:
    """Rows of small images (each row a labelled set); masks outlined in red on the last row."""
    side = min(1.3, (WIDTH - 1.2) / columns)
    fig, axes = plt.subplots(len(rows), columns,
                             figsize=(side * columns + 1.2, (side + 0.1) * len(rows)),
                             squeeze=False, layout="constrained")
    for r, (label, images) in enumerate(rows.items()):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray" if images[c].ndim == 2 else None)
                if masks is not None and r == len(rows) - 1 and masks[c].any():
                    ax.contour(masks[c], levels=[0.5], colors="red", linewidths=0.6)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(wrap(label, 14))
    return fig




@styled
def paired(table: pd.DataFrame, metric: str, labels: dict[str, str]) -> Figure:
    """One row per category/class: each variant's value (mean over seeds) and the seeds."""
    groups = list(dict.fromkeys(table.iloc[:, 0]))
    key = table.columns[0]
    variants = list(dict.fromkeys(table["variant"]))
    fig, ax = plt.subplots(figsize=(6, 0.42 * len(groups) + 1.6), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for v, variant in enumerate(variants):
        rows = table[table["variant"] == variant]
        means = 100 * rows.groupby(key, sort=False)[metric].mean().reindex(groups)
        y = np.arange(len(groups)) + (v - (len(variants) - 1) / 2) * 0.18
        seeds_y = y[[groups.index(g) for g in rows[key]]]
        ax.scatter(100 * rows[metric], seeds_y, s=10, color=colours[v], alpha=0.45)
        several = rows["seed"].nunique() > 1
        ax.scatter(means, y, s=45, marker="D", color=colours[v],
                   label=labels.get(variant, variant) + (" (mean over seeds)" if several
                                                          else ""))
    ax.set_yticks(np.arange(len(groups)), groups)
    ax.set_ylabel(key)
    ax.invert_yaxis()
    several = table["seed"].nunique() > 1 if "seed" in table else False
    ax.set_xlabel(f"{METRIC_NAMES.get(metric, metric)} (%)"
                  + ("; small dots: single seeds" if several else ""))
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=min(len(variants), 2),
              borderaxespad=0.2)
    return fig


#: The cost figure's panels: (column of ``experiments.cost_table``, axis label).
_COST_PANELS = (("train_s", "training time (s)"), ("test_s", "testing time (s)"),
                ("train_peak_mb", "peak training memory\n(MiB above the start)"))


@styled
def cost_bars(cost: pd.DataFrame, labels: dict[str, str]) -> Figure:
    """Per category, each method's training and testing time (log scale where a panel's
    times span more than a factor of 10) and peak memory in training: one bar per method,
    from ``experiments.cost_table``."""
    groups = list(dict.fromkeys(cost["category"]))
    variants = list(dict.fromkeys(cost["variant"]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(_COST_PANELS), figsize=(WIDTH, 0.45 * len(groups) + 2.2),
                             sharey=True, layout="constrained")
    height = 0.8 / len(variants)
    for ax, (column, label) in zip(axes, _COST_PANELS, strict=True):
        for v, variant in enumerate(variants):
            rows = cost[cost["variant"] == variant].set_index("category").reindex(groups)
            y = np.arange(len(groups)) + (v - (len(variants) - 1) / 2) * height
            ax.barh(y, rows[column], height=height, color=colours[v % len(colours)],
                    label=labels.get(variant, variant))
        values = cost[column].dropna()
        if column.endswith("_s") and values.min() > 0 and values.max() > 10 * values.min():
            # times that span more than a factor of 10: log scale, labelled at 1-2-5 steps
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(np.arange(len(groups)), groups)
    axes[0].invert_yaxis()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper left",
               ncol=min(len(variants), 3))
    return fig


#: The shortcut figure's panels: (statistics drawn, title, y label, reference line at 1);
#: a second statistic is drawn dashed.
_SHORTCUT_PANELS = (
    (("error_ratio",), "Error ratio", "anomalous / normal error", True),
    (("anomalous_above_normal_p99",), "Detection share",
     "anomalous tokens above\nnormal p99", False),
    (("twin_pass_through",), "Twin pass-through", "Δf̂ on Δf (1 = copy)", True),
    (("pass_through_anomalous", "pass_through_normal"), "Slope of f̂ on f",
     "solid: anomalous\ndashed: normal", True),
    (("error_normal_p99",), "Normal-error tail", "p99 at normal tokens", False),
    (("pixel_auroc",), "Pixel AUROC", "pixel AUROC", False),
)


@styled
def shortcut_curves(summary: pd.DataFrame, labels: dict[str, str], title: str = "") -> Figure:
    """The identity-shortcut statistics over training, one line per variant (``summary``:
    ``study.shortcut_summary``, means over categories and seeds per variant and epoch): one
    titled panel per statistic, two to a row, the legend above them."""
    n_rows = -(-len(_SHORTCUT_PANELS) // 2)
    fig, axes = plt.subplots(n_rows, 2, figsize=(WIDTH, 2.6 * n_rows + 0.8), sharex=True,
                             squeeze=False, layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = list(summary.groupby("variant", sort=False))
    for ax, (columns, panel, ylabel, one) in zip(axes.flat, _SHORTCUT_PANELS, strict=False):
        for colour, (variant, rows) in zip(colours * 2, groups, strict=False):
            for column, style in zip(columns, ("-", "--")[:len(columns)], strict=True):
                if column in rows:
                    ax.plot(rows["epoch"], rows[column], style, color=colour, marker=".",
                            label=labels.get(variant, variant) if style == "-" else None)
        ax.set_title(panel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if one:
            ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes.flat[len(_SHORTCUT_PANELS):]:
        ax.set_visible(False)
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center",
               ncol=min(len(groups), 4))
    if title:
        fig.suptitle(title)
    return fig


@styled
def verdict_matrix(matrix: pd.DataFrame, title: str = "") -> Figure:
    """Setting x claim (and category) verdicts as coloured cells (``study.sensitivity_matrix``)."""
    colours = {"agrees": "#4caf50", "does not agree": "#e57373", "not separated": "#bdbdbd"}
    cells = matrix.drop(columns=["setting", "claim"])
    fig, ax = plt.subplots(figsize=(WIDTH, 0.5 * len(matrix) + 1.2), layout="constrained")
    for i, (_, row) in enumerate(cells.iterrows()):
        for j, value in enumerate(row):
            ax.add_patch(plt.Rectangle((j, i), 1, 1, color=colours.get(value, "white")))
            ax.text(j + 0.5, i + 0.5, value if isinstance(value, str) else "—", ha="center",
                    va="center", fontsize=10)
    ax.set_xlim(0, len(cells.columns))
    ax.set_ylim(len(matrix), 0)
    names = {"all": "all categories"}
    ax.set_xticks(np.arange(len(cells.columns)) + 0.5,
                  [names.get(c, c) for c in cells.columns])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    ax.set_yticks(np.arange(len(matrix)) + 0.5,
                  [wrap(f"{_claim_title(c)}: {s}", 34)
                   for s, c in zip(matrix["setting"], matrix["claim"], strict=True)])
    if title:
        ax.set_title(title)
    return fig


def _claim_title(name: str) -> str:
    """'attention_query' -> 'Table 4a' (the catalog's short title); other names as they are."""
    return EXPERIMENTS[name].short_title if name in EXPERIMENTS else name


#: The convergence figure's panels: (curve statistic, title, axis label, log scale).
_CONVERGENCE_PANELS = (
    ("pixel_auroc", "Pixel AUROC", "pixel AUROC (%), test-set probe", False),
    ("image_auroc", "Image AUROC", "image AUROC (%), test-set probe", False),
    ("train_loss", "Training loss", "training loss (log scale)", True),
    ("error_normal", "Error at normal tokens", "test-set error (log scale)", True))


def _zoom_on_the_plateau(ax: Any, epochs: pd.Series, values: pd.Series) -> None:
    """Start the y axis just below what the curves reach after their first tenth of epochs,
    so that differences of tenths of a point near the plateau can be seen (the first
    probes fall below it, as the axis label says)."""
    late = values[(epochs >= 0.1 * epochs.max()) & values.notna()]
    if len(late):
        low, high = late.quantile(0.02), late.max()
        margin = 0.08 * max(high - low, 0.5)
        ax.set_ylim(low - margin, high + margin)


@styled
def convergence_curves(curves: pd.DataFrame, labels: dict[str, str], rule: dict,
                       title: str = "") -> Figure:
    """The long runs over training (``convergence.curves``): one panel per statistic, a
    line per variant, each the mean over the runs' categories (the pixel AUROC's is what
    the rule reads). A grey band after the long runs' lr cut, a black line at the schedule
    the rule picks (``rule``: ``convergence.schedule_rule``)."""
    from adtr.convergence import category_means  # the means the rule reads

    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, 7.4), layout="constrained")
    colours = dict(zip(curves["variant"].unique(), plt.colormaps["tab10"].colors, strict=False))
    all_means = category_means(curves)
    for ax, (column, panel, ylabel, log) in zip(axes.ravel(), _CONVERGENCE_PANELS,
                                                strict=True):
        scale = 1 if log else 100  # AUROCs in %
        means = all_means.dropna(subset=[column])
        for variant, rows in means.groupby("variant", sort=False):
            rows = rows.sort_values("epoch")
            ax.plot(rows["epoch"], scale * rows[column], color=colours[variant], lw=1.8)
        ax.axvspan(rule["long_lr_cut_epoch"], rule["long_epochs"], color="0.9", zorder=0)
        ax.axvline(rule["epochs"], color="black", lw=1.3)
        values = means[column]
        if log and len(values) and values.min() > 0 and values.max() > 10 * values.min():
            ax.set_yscale("log")  # only where the values span more than a factor of 10
            ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        else:
            ylabel = ylabel.replace(" (log scale)", "")
        if not log:
            _zoom_on_the_plateau(ax, means["epoch"], scale * values)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(panel)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=c, lw=2, label=labels.get(v, v))
               for v, c in colours.items()]
    handles += [matplotlib.patches.Patch(color="0.9", label="after the long runs' lr cut"),
                plt.Line2D([], [], color="black", lw=1.3,
                           label=f"the rule's schedule ({rule['epochs']} epochs)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    means = f"each line the mean of {curves['category'].nunique()} categories"
    fig.suptitle(f"{title}: {means}" if title else means.capitalize())
    return fig


@styled
def curves_by_category(curves: pd.DataFrame, labels: dict[str, str],
                       title: str = "") -> Figure:
    """Runs' pixel AUROC over training (``convergence.curves``, the book's or the long
    runs'), one panel per category, a colour per variant; a dotted line at the lr cut (80 %
    of the schedule)."""
    from adtr.train import lr_cut_epoch

    categories = list(curves["category"].unique())
    columns = min(3, len(categories))
    n_rows = -(-len(categories) // columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(WIDTH, 2.9 * n_rows + 1.2),
                             squeeze=False, layout="constrained", sharex=True)
    colours = dict(zip(curves["variant"].unique(), plt.colormaps["tab10"].colors, strict=False))
    cut = lr_cut_epoch(int(curves["epoch"].max()))
    for ax, category in zip(axes.ravel(), categories, strict=False):
        for variant, rows in curves[curves["category"] == category].groupby("variant", sort=False):
            rows = rows[rows["epoch"] > 0].groupby("epoch")["pixel_auroc"].mean()
            ax.plot(rows.index, 100 * rows.values, color=colours[variant], lw=1.4, marker=".")
        mine = curves[curves["category"] == category]
        _zoom_on_the_plateau(ax, mine["epoch"], 100 * mine["pixel_auroc"])
        ax.axvline(cut, color="black", lw=0.8, ls=":")
        ax.set_title(category)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("pixel AUROC (%)")
    for ax in axes.ravel()[len(categories):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=c, lw=2, label=labels.get(v, v))
               for v, c in colours.items()]
    handles.append(plt.Line2D([], [], color="black", ls=":", label="lr cut"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    if title:
        fig.suptitle(title)
    return fig
