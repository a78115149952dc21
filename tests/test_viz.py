"""The cost figure's axes: a log scale only where a panel's times span a factor of 10."""

import pandas as pd

from adtr import viz


def test_cost_bars_log_scale_only_for_wide_time_ranges():
    cost = pd.DataFrame({
        "category": ["a", "a", "b", "b"],
        "variant": ["adtr", "padim", "adtr", "padim"],
        "train_s": [80.0, 1.2, 75.0, 1.5],  # spans ~70x: log
        "test_s": [0.7, 1.5, 0.8, 1.4],  # spans ~2x: linear, bars from 0
        "train_peak_mb": [240.0, 700.0, 250.0, 690.0],
    })
    fig = viz.cost_bars(cost, {"adtr": "ADTR", "padim": "PaDiM"})
    train, test, memory = fig.axes
    assert [ax.get_xscale() for ax in (train, test, memory)] == ["log", "linear", "linear"]
    assert test.get_xlim()[0] == 0
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    assert labels == ["ADTR", "PaDiM"]


def _overlaps(fig, legend, ax) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_loss_curves_colour_by_category_style_by_seed_legends_outside():
    histories = {f"{c} seed {s}": [10.0 / (e + s + 1) for e in range(5)]
                 for c in ("brick", "coins", "grass") for s in (0, 1)}
    fig = viz.loss_curves(histories)
    ax = fig.axes[0]
    colours = {line.get_color() for line in ax.get_lines()}
    styles = {line.get_linestyle() for line in ax.get_lines()}
    assert len(colours) == 3 and len(styles) == 2
    texts = [[t.get_text() for t in legend.get_texts()] for legend in fig.legends]
    assert texts == [["brick", "coins", "grass"], ["seed 0", "seed 1"]]
    assert not any(_overlaps(fig, legend, ax) for legend in fig.legends)
    assert min(t.get_size() for t in ax.get_yticklabels() + ax.get_xticklabels()) >= 10


def test_paper_vs_ours_lists_only_what_is_drawn_and_wraps_long_labels():
    summary = pd.DataFrame({"variant": ["a", "pca"], "pixel_auroc_mean": [0.95, 0.9],
                            "pixel_auroc_std": [0.0, 0.0], "seeds": [1, 1]})
    fig = viz.paper_vs_ours(summary, {}, {"a": "A", "pca": "PCA residual (no training)"})
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["ours"]
    assert not _overlaps(fig, legend, ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "PCA residual\n(no training)"]


def test_shortcut_panels_are_titled_and_verdict_rows_read_the_catalog():
    summary = pd.DataFrame({"variant": ["adtr", "adtr"], "epoch": [0, 10],
                            "error_ratio": [1.0, 2.0], "pixel_auroc": [0.6, 0.9]})
    fig = viz.shortcut_curves(summary, {"adtr": "ADTR"})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 6 and all(titles) and titles[0] == "Error ratio"
    matrix = pd.DataFrame({"setting": ["the profile's regime"], "claim": ["attention_query"],
                           "all": ["agrees"], "brick": ["agrees"]})
    labels = [t.get_text() for t in viz.verdict_matrix(matrix).axes[0].get_yticklabels()]
    assert labels[0].startswith("Table 4a:") and "attention_query" not in labels[0]


def test_convergence_curves_draw_one_category_mean_per_variant_for_any_number_of_categories():
    rows = [{"variant": v, "category": c, "seed": 0, "epoch": e,
             "pixel_auroc": 0.9 + 0.01 * i + 0.001 * e / 10, "image_auroc": 0.8,
             "error_normal": 10.0 / (1 + e), "train_loss": 1.0 / (1 + e) if e else float("nan"),
             "lr": 1e-3}
            for v in ("adtr", "cnn") for i, c in enumerate("abcdef") for e in range(0, 50, 10)]
    curves = pd.DataFrame(rows)
    rule = {"epochs": 30, "long_epochs": 40, "long_lr_cut_epoch": 32}
    fig = viz.convergence_curves(curves, {"adtr": "ADTR"}, rule, title="Long runs")
    pixel = fig.axes[0]
    assert len(pixel.get_lines()) == 2 + 1  # a mean per variant, and the rule's line
    mean_of_adtr = pixel.get_lines()[0].get_ydata()
    assert abs(mean_of_adtr[0] - 100 * (0.9 + 0.01 * 2.5)) < 1e-9  # the mean of six categories
    assert fig._suptitle.get_text() == "Long runs: each line the mean of 6 categories"
    by_category = viz.curves_by_category(curves, {"adtr": "ADTR"})
    assert [ax.get_title() for ax in by_category.axes if ax.get_visible()] == list("abcdef")
