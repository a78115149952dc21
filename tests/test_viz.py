"""The figures' layout: what each shows, and labels that neither collide nor exaggerate."""

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest

from adtr import viz
from adtr.analysis import DifferenceSample
from adtr.style import WIDTH


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


def _labels_collide(fig, labels) -> bool:
    """Whether any two of the drawn, non-empty ``labels`` (text artists) overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    shown = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
    return any(a.overlaps(b) for i, a in enumerate(shown) for b in shown[i + 1:])


def test_log_axes_label_few_enough_ticks_never_minor_ones():
    cost = pd.DataFrame({"category": ["a", "a", "b", "b"], "variant": ["adtr", "padim"] * 2,
                         "train_s": [560.0, 1.3, 480.0, 1.9], "test_s": [0.7, 1.5, 0.8, 1.4],
                         "train_peak_mb": [240.0, 700.0, 250.0, 690.0]})
    train = viz.cost_bars(cost, {}).axes[0]
    histories = {"brick seed 0": list(np.geomspace(80, 0.7, 240)),
                 "logo seed 0": list(np.geomspace(60, 3.3, 240))}
    loss = viz.loss_curves(histories).axes[0]
    for ax, which in ((train, "x"), (loss, "y")):
        ax.figure.canvas.draw()  # tick labels get their text when drawn
        axis = getattr(ax, f"{which}axis")
        assert axis.get_scale() == "log"
        assert not any(t.label1.get_text() for t in axis.get_minor_ticks())
        low, high = getattr(ax, f"get_{which}lim")()
        shown = [t.label1 for t in axis.get_major_ticks() if low <= t.get_loc() <= high]
        assert len([t for t in shown if t.get_text()]) >= 2
        assert not _labels_collide(ax.figure, shown)
    narrow = viz.loss_curves({"brick": [1.05, 0.6, 0.33]}).axes[0]
    assert narrow.get_yscale() == "linear"  # a span under a factor of 10 stays linear


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


def test_paper_vs_ours_bars_start_at_chance_and_the_axis_ends_at_100():
    summary = pd.DataFrame({"variant": ["cnn", "adtr"], "pixel_auroc_mean": [0.975, 0.999],
                            "pixel_auroc_std": [0.004, 0.003], "seeds": [3, 3]})
    ax = viz.paper_vs_ours(summary, {"cnn": 94.4, "adtr": 97.2}, {}).axes[0]
    assert ax.get_ylim() == (50.0, 100.0)  # not zoomed onto the gaps, never above 100 %
    assert "chance (50 %)" in ax.get_ylabel()
    heights = sorted(round(p.get_y() + p.get_height(), 1) for p in ax.patches)
    assert heights == [94.4, 97.2, 97.5, 99.9]  # the bars still reach their values
    aupro = summary.rename(columns=lambda c: c.replace("pixel_auroc", "aupro"))
    assert viz.paper_vs_ours(aupro, {}, {}, metric="aupro").axes[0].get_ylim() == (0.0, 100.0)


def test_shortcut_panels_are_titled():
    summary = pd.DataFrame({"variant": ["adtr", "adtr"], "epoch": [0, 10],
                            "error_ratio": [1.0, 2.0], "pixel_auroc": [0.6, 0.9]})
    fig = viz.shortcut_curves(summary, {"adtr": "ADTR"})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 6 and all(titles) and titles[0] == "Error ratio"


def _verdicts() -> pd.DataFrame:
    """Table 4a in the book's regime, three pairs: over all categories two agree and one is
    not separated; on brick all three are separated against the claim."""
    rows = [("all", "a better"), ("all", "a better"), ("all", "not separated"),
            ("brick", "a worse"), ("brick", "a worse"), ("brick", "a worse")]
    return pd.DataFrame([{"setting": "base", "claim_of": "attention_query", "claim": True,
                          "category": c, "verdict": v} for c, v in rows]
                        + [{"setting": "base", "claim_of": "attention_query", "claim": False,
                            "category": "all", "verdict": "a worse"}])  # a reference row


def test_verdict_cells_read_each_pair_as_the_table_does_and_look_mixed_when_mixed():
    fig = viz.verdict_matrix(_verdicts())
    ax = fig.axes[0]
    cells = [t.get_text() for t in ax.texts]
    assert cells == ["2 of 3 pairs agree,\n1 not separated", "0 of 3 pairs agree,\n3 do not agree"]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Table 4a: the book's regime"]  # the catalog's title, the setting's label
    assert [t.get_text() for t in ax.get_xticklabels()] == ["all categories", "brick"]
    # the mixed cell (x in [0, 1]) in two colours, in proportion to its pairs
    filled = [p for p in ax.patches if p.get_fill() and p.get_width() > 0]
    shares = {viz._VERDICT_COLOURS[v]: w for v, w in (("agrees", 2 / 3), ("not separated", 1 / 3))}
    mixed = [(matplotlib.colors.to_hex(p.get_facecolor()), p.get_width()) for p in filled
             if p.get_x() < 1]
    assert [(c, pytest.approx(w)) for c, w in mixed] == list(shares.items())
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["agrees", "does not agree", "not separated"]


def test_verdict_matrix_says_which_table_it_needs():
    matrix = pd.DataFrame({"setting": ["the book's regime"], "claim": ["attention_query"],
                           "all": ["not separated"]})  # collapsed verdicts: no pair counts
    with pytest.raises(ValueError, match="sensitivity_verdicts"):
        viz.verdict_matrix(matrix)


def test_gallery_shows_every_image_in_rows_of_at_most_six():
    kinds = ["good", "bent", "broken", "flip", "hole", "scratch", "stain"]
    images = [np.zeros((16, 16, 3), np.uint8)] * len(kinds)
    masks = np.zeros((len(kinds), 16, 16))
    masks[1:, 4:8, 4:8] = 1
    fig = viz.gallery(images, masks, np.random.default_rng(0).random((len(kinds), 16, 16)),
                      np.arange(len(kinds), dtype=float), [f"{k}/000" for k in kinds])
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [t.split(" / ")[0] for t in titles] == kinds  # a column per defect kind
    scores = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel().startswith("score")]
    assert len(scores) == len(kinds)
    assert fig.get_figwidth() <= WIDTH + 1e-9
    assert not _labels_collide(fig, [ax.yaxis.label for ax in fig.axes])
    # seven images wrap into two rows of 4 and 3, not 6 and 1
    rows = [sum(ax.get_visible() and bool(ax.get_title()) for ax in sub.axes)
            for sub in fig.subfigs]
    assert rows == [4, 3]


def test_image_grid_row_labels_do_not_run_into_each_other():
    rows = {"training image": np.zeros((8, 16, 16, 3)), "with confetti": np.zeros((8, 16, 16, 3))}
    fig = viz.image_grid(rows, np.ones((8, 16, 16)))
    assert not _labels_collide(fig, [ax.yaxis.label for ax in fig.axes])


def test_tsne_plot_tells_normal_from_anomalous_by_colour_and_marker():
    labels = np.arange(40) >= 20
    sample = DifferenceSample(np.zeros((40, 2)), labels, np.ones(40))
    fig = viz.tsne_plot(np.random.default_rng(0).normal(size=(40, 2)), sample, title="brick")
    ax = fig.axes[0]
    normal, anomalous = ax.collections
    assert normal.get_facecolor()[0].tolist() != anomalous.get_facecolor()[0].tolist()
    assert normal.get_paths()[0] != anomalous.get_paths()[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["normal (20)",
                                                                  "anomalous (20)"]
    assert fig.get_figwidth() <= 4  # shown two to a row in the book, near its own size


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
