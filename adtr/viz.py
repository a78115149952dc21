"""Figures for the notebooks and the book: galleries, paper-vs-ours bars, t-SNE."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no display is needed

import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from adtr.analysis import DifferenceSample  # noqa: E402
from adtr.catalog import KIND_FOUND, METRIC_NAMES  # noqa: E402


def gallery(images: list[np.ndarray], masks: np.ndarray, maps: np.ndarray, scores: np.ndarray,
            titles: list[str], vmax: float | None = None) -> Figure:
    """One column per test image: the image, its ground truth, the predicted map."""
    count = len(images)
    fig, axes = plt.subplots(3, count, figsize=(2.1 * count, 6.6), squeeze=False)
    vmax = float(np.percentile(maps, 99.5)) if vmax is None else vmax
    for col in range(count):
        axes[0, col].imshow(images[col])
        axes[0, col].set_title(titles[col], fontsize=8)
        axes[1, col].imshow(images[col])
        axes[1, col].contour(masks[col], levels=[0.5], colors="red", linewidths=0.8)
        overlay = axes[2, col].imshow(maps[col], cmap="jet", vmin=0, vmax=vmax)
        axes[2, col].set_xlabel(f"score {scores[col]:.2f}", fontsize=8)
    for row, label in enumerate(("image", "ground truth", "anomaly map")):
        axes[row, 0].set_ylabel(label)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(overlay, ax=axes[2, :].tolist(), shrink=0.8, label="s(u) = ||d(:, u)||")
    return fig


def paper_vs_ours(summary: pd.DataFrame, paper: dict[str, float], labels: dict[str, str],
                  metric: str = "pixel_auroc", title: str = "") -> Figure:
    """Bars of our mean (± std over seeds) beside the paper's value, per variant."""
    names = list(summary["variant"])
    x = np.arange(len(names))
    ours = 100 * summary[f"{metric}_mean"].to_numpy()
    spread = 100 * summary[f"{metric}_std"].to_numpy()
    theirs = [paper.get(name, np.nan) for name in names]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 3.6))
    ax.bar(x - 0.2, theirs, 0.4, label="paper (MVTec-AD)", color="#999999")
    ax.bar(x + 0.2, ours, 0.4, yerr=spread, capsize=3, label="ours", color="#1f77b4")
    for xi, value in zip(x, ours, strict=True):
        ax.text(xi + 0.2, value + 0.3, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [labels.get(n, n) for n in names])
    low = np.nanmin(np.concatenate([ours - spread, np.asarray(theirs, dtype=float)]))
    ax.set_ylim(max(0.0, low - 5), 100)
    ax.set_ylabel(f"{metric.replace('_', ' ')} (%)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def tsne_plot(embedding: np.ndarray, sample: DifferenceSample, title: str = "") -> Figure:
    """Fig. 5: circles normal, triangles anomalous, colour the predicted score s(u)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    vmin, vmax = np.percentile(sample.scores, [1, 99])
    for anomalous, marker, label in ((False, "o", "normal"), (True, "^", "anomalous")):
        keep = sample.anomalous == anomalous
        points = ax.scatter(embedding[keep, 0], embedding[keep, 1], c=sample.scores[keep],
                            cmap="coolwarm", vmin=vmin, vmax=vmax, marker=marker, s=16,
                            edgecolors="k", linewidths=0.2, label=label)
    fig.colorbar(points, ax=ax, label="predicted anomaly score s(u)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def loss_curves(histories: dict[str, list[float]]) -> Figure:
    """Training loss per epoch for a few runs."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, losses in histories.items():
        ax.plot(range(1, len(losses) + 1), losses, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("feature MSE")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def defect_kind_bars(kinds: pd.DataFrame, found: float = KIND_FOUND) -> Figure:
    """One panel per category: the image AUROC of each defect kind alone against the normal
    images (``analysis.defect_kinds``; bar: mean over seeds, dots: seeds), coloured by the
    kind's type, with the share of the image its defects cover; a dashed line at ``found``."""
    categories = list(dict.fromkeys(kinds["category"]))
    columns = min(3, len(categories))
    rows = -(-len(categories) // columns)
    most = int(kinds.groupby("category")["kind"].nunique().max())
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, (0.32 * most + 1.1) * rows),
                             squeeze=False, sharex=True)
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
        ax.set_title(category, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
    for ax in axes.flat[len(categories):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("image AUROC (%), this kind vs normal")
    handles = [matplotlib.patches.Patch(color=c, alpha=0.8, label=t) for t, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=len(handles), frameon=False, title="kind (share of the image it covers); "
               f"dots: seeds; dashed: {100 * found:.0f} %")
    fig.tight_layout()
    return fig


def image_grid(rows: dict[str, np.ndarray], masks: np.ndarray | None = None,
               columns: int = 8) -> Figure:
    """Rows of small images (each row a labelled set); masks outlined in red on the last row."""
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.3 * columns, 1.4 * len(rows)),
                             squeeze=False)
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
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig




def paired(table: pd.DataFrame, metric: str, labels: dict[str, str]) -> Figure:
    """One row per category/class: each variant's value (mean over seeds) and the seeds."""
    groups = list(dict.fromkeys(table.iloc[:, 0]))
    key = table.columns[0]
    variants = list(dict.fromkeys(table["variant"]))
    fig, ax = plt.subplots(figsize=(6, 0.42 * len(groups) + 1.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for v, variant in enumerate(variants):
        rows = table[table["variant"] == variant]
        means = 100 * rows.groupby(key, sort=False)[metric].mean().reindex(groups)
        y = np.arange(len(groups)) + (v - (len(variants) - 1) / 2) * 0.18
        seeds_y = y[[groups.index(g) for g in rows[key]]]
        ax.scatter(100 * rows[metric], seeds_y, s=10, color=colours[v], alpha=0.45)
        ax.scatter(means, y, s=45, marker="D", color=colours[v],
                   label=f"{labels.get(variant, variant)} (mean over seeds)")
    ax.set_yticks(np.arange(len(groups)), groups)
    ax.set_ylabel(key)
    ax.invert_yaxis()
    ax.set_xlabel(f"{METRIC_NAMES.get(metric, metric)} (%); small dots: single seeds")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=min(len(variants), 2), frameon=False)
    fig.tight_layout()
    return fig


#: The cost figure's panels: (column of ``experiments.cost_table``, axis label).
_COST_PANELS = (("train_s", "training time (s)"), ("test_s", "testing time (s)"),
                ("train_peak_mb", "peak memory in training\n(MiB above the start)"))


def cost_bars(cost: pd.DataFrame, labels: dict[str, str]) -> Figure:
    """Per category, each method's training and testing time (log scale where a panel's
    times span more than a factor of 10) and peak memory in training: one bar per method,
    from ``experiments.cost_table``."""
    groups = list(dict.fromkeys(cost["category"]))
    variants = list(dict.fromkeys(cost["variant"]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(_COST_PANELS), figsize=(11, 0.45 * len(groups) + 1.8),
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
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="outside upper left",
               ncol=len(variants), frameon=False)
    return fig


#: The shortcut figure's panels: (statistics drawn, y label); dashed = the second statistic.
_SHORTCUT_PANELS = (
    (("error_ratio",), "error at anomalous / at normal tokens\n(how much of the anomaly shows)"),
    (("anomalous_above_normal_p99",),
     "share of anomalous tokens above\nthe normal tokens' 99th percentile"),
    (("twin_pass_through",),
     "twin pass-through at anomalous tokens\n(Δf̂ on Δf against the defect-free twin; 1 = copy)"),
    (("pass_through_anomalous", "pass_through_normal"),
     "slope of f̂ on f (1 = copy)\nsolid: anomalous tokens, dashed: normal"),
    (("error_normal_p99",), "normal-error tail\n(99th percentile, normal tokens)"),
    (("pixel_auroc",), "pixel AUROC"),
)


def shortcut_curves(summary: pd.DataFrame, labels: dict[str, str], title: str = "") -> Figure:
    """The identity-shortcut statistics over training, one line per variant (``summary``:
    ``study.shortcut_summary``, means over categories and seeds per variant and epoch)."""
    n_rows = (len(_SHORTCUT_PANELS) + 2) // 3
    fig, axes = plt.subplots(n_rows, 3, figsize=(11.5, 3.4 * n_rows), squeeze=False)
    axes = axes.ravel()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (columns, ylabel) in zip(axes, _SHORTCUT_PANELS, strict=False):
        groups = summary.groupby("variant", sort=False)
        for colour, (variant, rows) in zip(colours * 2, groups, strict=False):
            for column, style in zip(columns, ("-", "--")[:len(columns)], strict=True):
                if column in rows:
                    ax.plot(rows["epoch"], rows[column], style, color=colour, marker=".",
                            label=labels.get(variant, variant) if style == "-" else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].axhline(1.0, color="grey", lw=0.8, ls=":")
    axes[0].text(0, 1.0, " no difference", va="bottom", fontsize=7, color="grey")
    for ax in axes[2:4]:
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def verdict_matrix(matrix: pd.DataFrame, title: str = "") -> Figure:
    """Setting x claim (and category) verdicts as coloured cells (``study.sensitivity_matrix``)."""
    colours = {"agrees": "#4caf50", "does not agree": "#e57373", "not separated": "#bdbdbd"}
    cells = matrix.drop(columns=["setting", "claim"])
    fig, ax = plt.subplots(figsize=(2.2 * len(cells.columns) + 3, 0.45 * len(matrix) + 1.2))
    for i, (_, row) in enumerate(cells.iterrows()):
        for j, value in enumerate(row):
            ax.add_patch(plt.Rectangle((j, i), 1, 1, color=colours.get(value, "white")))
            ax.text(j + 0.5, i + 0.5, value if isinstance(value, str) else "—", ha="center",
                    va="center", fontsize=7)
    ax.set_xlim(0, len(cells.columns))
    ax.set_ylim(len(matrix), 0)
    ax.set_xticks(np.arange(len(cells.columns)) + 0.5, list(cells.columns), fontsize=8)
    ax.set_yticks(np.arange(len(matrix)) + 0.5,
                  [f"{s} · {c}" for s, c in zip(matrix["setting"], matrix["claim"], strict=True)],
                  fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


#: The convergence figures' panels: (curve statistic, title, axis label, log scale).
_CONVERGENCE_PANELS = (
    ("pixel_auroc", "Pixel AUROC", "pixel AUROC (%), test-set probe", False),
    ("image_auroc", "Image AUROC", "image AUROC (%), test-set probe", False),
    ("train_loss", "Training loss", "training loss (log scale)", True),
    ("error_normal", "Error at normal tokens", "test-set error (log scale)", True))


def convergence_curves(curves: pd.DataFrame, labels: dict[str, str], rule: dict,
                       title: str = "") -> Figure:
    """The long runs over training (``convergence.curves``): one panel per statistic, a
    colour per variant, a line style per category; dotted lines at the long runs' lr cut
    and the book's schedule and its cut (``rule``: ``convergence.schedule_rule``)."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), layout="constrained")
    colours = dict(zip(curves["variant"].unique(), plt.colormaps["tab10"].colors, strict=False))
    styles = dict(zip(curves["category"].unique(), ("-", "--", ":", "-."), strict=False))
    for ax, (column, panel, ylabel, log) in zip(axes.ravel(), _CONVERGENCE_PANELS, strict=True):
        scale = 1 if log else 100  # AUROCs in %
        for (variant, category), rows in curves.groupby(["variant", "category"], sort=False):
            rows = rows.dropna(subset=[column]).sort_values("epoch")
            ax.plot(rows["epoch"], scale * rows[column], styles[category],
                    color=colours[variant], lw=1.4)
        for epoch, text in ((rule["long_lr_cut_epoch"], "long runs' lr cut"),
                            (rule["epochs"], "book's schedule")):
            ax.axvline(epoch, color="black", lw=0.8, ls=":")
            ax.annotate(f" {text}", (epoch, 1), xycoords=("data", "axes fraction"),
                        va="top", fontsize=9, rotation=90)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(panel)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=c, lw=2, label=labels.get(v, v))
               for v, c in colours.items()]
    handles += [plt.Line2D([], [], color="grey", ls=s, label=c) for c, s in styles.items()]
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def book_curves(curves: pd.DataFrame, labels: dict[str, str], title: str = "") -> Figure:
    """The book's runs' pixel AUROC over training, one panel per category, a colour per
    variant; a dotted line at the lr cut (80 % of the schedule)."""
    from adtr.train import lr_cut_epoch

    categories = list(curves["category"].unique())
    columns = min(3, len(categories))
    n_rows = -(-len(categories) // columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(4.2 * columns, 3.4 * n_rows),
                             squeeze=False, layout="constrained")
    colours = dict(zip(curves["variant"].unique(), plt.colormaps["tab10"].colors, strict=False))
    cut = lr_cut_epoch(int(curves["epoch"].max()))
    for ax, category in zip(axes.ravel(), categories, strict=False):
        for variant, rows in curves[curves["category"] == category].groupby("variant", sort=False):
            rows = rows[rows["epoch"] > 0].groupby("epoch")["pixel_auroc"].mean()
            ax.plot(rows.index, 100 * rows.values, color=colours[variant], lw=1.4, marker=".")
        ax.axvline(cut, color="black", lw=0.8, ls=":")
        ax.set_title(category)
        ax.set_xlabel("epoch")
        ax.set_ylabel("pixel AUROC (%)")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(categories):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=c, lw=2, label=labels.get(v, v))
               for v, c in colours.items()]
    handles.append(plt.Line2D([], [], color="black", ls=":", label="lr cut"))
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    if title:
        fig.suptitle(title)
    return fig
