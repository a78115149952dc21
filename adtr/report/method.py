"""The method page: the choices the paper leaves open beside the values we set, the channels
and strides of the backbone's stages (asked of timm), and the pipeline drawn as boxes and
arrows (timm and matplotlib are imported only when used)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from adtr.schema import RunRecord
from adtr.style import styled


def _stages(c: dict[str, Any]) -> str:
    return ", ".join(str(s) for s in c["stages"])


#: Every choice the paper leaves open: (choice, what the paper or UniAD says, what we set).
OPEN_CHOICES: tuple[tuple[str, str, Any], ...] = (
    ("Input size and feature grid", "256 px and a 16×16 grid in the text; UniAD: 224 px, "
     "stride 16, 14×14", lambda c: f"{c['image_size']} px, stride {c['feature_stride']}: "
     f"{c['image_size'] // c['feature_stride']}×{c['image_size'] // c['feature_stride']}"),
    ("Backbone stages", "EfficientNet-B4; strides 2–32 (C = 720) in the figure, UniAD strides "
     "2–16 (C = 272)", lambda c: f"{c['backbone']}, timm feature indices {_stages(c)}"),
    ("Feature standardisation", "not mentioned",
     lambda c: "per channel, training-set statistics" if c["standardize"] else "off"),
    ("Transformer size", "4 + 4 layers, 8 heads, feed-forward 1024, d = 256, dropout 0.1 "
     "(UniAD)", lambda c: f"{c['num_encoder_layers']} + {c['num_decoder_layers']} layers, "
     f"{c['num_heads']} heads, feed-forward {c['feedforward_dim']}, d = {c['hidden_dim']}, "
     f"dropout {c['dropout']:g}"),
    ("Positional embedding", "learned, DETR style; UniAD: learned row and column halves",
     lambda c: f"learned rows and columns, {c['hidden_dim'] // 2} + {c['hidden_dim'] // 2}"),
    ("Loss normalisation", "1/(HW)·‖f − f̂‖², summed over channels",
     lambda c: "mean over positions and channels (a constant factor 1/C)"),
    ("Optimiser and schedule", "AdamW, lr 1e-4, weight decay 1e-4, 500 epochs, lr × 0.1 at "
     "400 (UniAD: 1000 and 800)", lambda c: f"AdamW, lr {c['lr']:g}, weight decay "
     f"{c['weight_decay']:g}, {c['epochs']} epochs, lr × 0.1 once, at the paper's share of "
     f"them (``adtr.train.lr_cut_epoch``)"),
    ("Batch size", "16 (UniAD: 8)", lambda c: str(c["batch_size"])),
    ("Gradient clipping", "not stated; UniAD: norm 0.1", lambda c: f"norm {c['grad_clip']:g}"),
    ("Image score", "max of the average-pooled map, pool not stated (UniAD: 16 px at 224 px)",
     lambda c: f"max of the {c['score_pool']}×{c['score_pool']} px average-pooled map"),
    ("Map smoothing", "not stated", lambda c: f"Gaussian, σ = {c['smoothing_sigma']:g} px"
     if c["smoothing_sigma"] else "off"),
    ("Models", "one per category (UniAD: one model for all)", lambda c: "one per category"),
    ("AUROC below 0.5", "UniAD's code reports 1 − AUROC", lambda c: "reported as is"),
    ("Localisation metrics", "pixel AUROC", lambda c: "pixel AUROC and AUPRO (FPR ≤ 0.3)"),
)


def choices_table(paper_config: dict[str, Any], rendered: dict[str, Any] | None,
                  profile: str) -> pd.DataFrame:
    """The open choices with the ``paper`` profile's value and the rendered profile's."""
    rows = []
    for choice, said, ours in OPEN_CHOICES:
        row = {"Choice": choice, "The paper (UniAD where the paper is silent)": said,
               "Ours: `paper` profile": ours(paper_config)}
        if rendered is not None and profile != "paper":
            row[f"Ours: `{profile}` profile (shown in this book)"] = ours(rendered)
        rows.append(row)
    return pd.DataFrame(rows)


def model_sentence(record: RunRecord) -> str:
    """'a transformer of width 184 on the 192 feature channels, dropout 0.1, unstandardised
    features, 240 epochs at 160 px': the model and schedule of a run record."""
    c = record.config
    features = "per-channel standardised" if c["standardize"] else "unstandardised"
    return (f"a transformer of width {c['hidden_dim']} on the {record.backbone['channels']} "
            f"feature channels, dropout {c['dropout']:g}, {features} features, "
            f"{c['epochs']} epochs at {c['image_size']} px")


def backbone_widths(records: Iterable[RunRecord], labels: dict[str, str]) -> str:
    """'d = 184 on 192 channels for EfficientNet-Lite0, d = 200 on 208 for EfficientNet-Lite2':
    each backbone's reconstruction width beside its channels, from its runs' records, in
    the order they ran (``labels``: the backbones' names)."""
    widths = {r.backbone["name"]: (r.config["hidden_dim"], r.backbone["channels"])
              for r in records}
    parts = [f"d = {d} on {c}{' channels' if i == 0 else ''} for {labels.get(name, name)}"
             for i, (name, (d, c)) in enumerate(widths.items())]
    return ", ".join(parts)


def stage_info(backbone: str, stages: Iterable[int]) -> tuple[int, list[int]]:
    """C of the concatenated stages and their strides, asked of timm (no weights loaded)."""
    import timm

    info = timm.create_model(backbone, features_only=True, pretrained=False).feature_info
    stages = list(stages)
    return sum(info.channels()[s] for s in stages), [info.reduction()[s] for s in stages]


@styled
def architecture_figure(config: dict[str, Any], channels: int, strides: list[int]) -> Any:
    """The pipeline as boxes and arrows: frozen backbone, trained transformer, comparison.

    Embedding runs down the left column, reconstruction and comparison up the middle one;
    the auxiliary query enters the decoder from the right.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 7.6))
    ax = fig.add_axes((0, 0.08, 1, 0.92))
    ax.set_axis_off()
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(0.01, 1.01)
    grid, d = config["image_size"] // config["feature_stride"], config["hidden_dim"]
    colours = {"frozen": "#d9d9d9", "trained": "#c6dbef", "query": "#fdd0a2", "fixed": "#c7e9c0"}
    left, mid, right = 0.15, 0.5, 0.85
    rows = (0.92, 0.715, 0.51, 0.305, 0.1)
    boxes = {
        "image": (left, rows[0], f"Input image\n{config['image_size']}×{config['image_size']}"
                  "×3", "fixed"),
        "cnn": (left, rows[1], f"Frozen CNN\n{config['backbone']}\n(ImageNet weights)",
                "frozen"),
        "features": (left, rows[2], f"Strides {min(strides)}–{max(strides)}, resized\nto "
                     f"{grid}×{grid}, concatenated:\n"
                     r"$f \in \mathbb{R}^{C\times H\times W}$" f", C = {channels}", "fixed"),
        "proj_in": (left, rows[3], f"Projection C → d = {d}\n(per token)", "trained"),
        "encoder": (left, rows[4], f"Encoder × {config['num_encoder_layers']}\nself-attention"
                    " + FFN", "trained"),
        "decoder": (mid, rows[4], f"Decoder × {config['num_decoder_layers']}\nself- and "
                    "cross-attention\n+ FFN", "trained"),
        "query": (right, rows[4], "Auxiliary query\n" r"$q \in \mathbb{R}^{HW\times d}$"
                  "\nlearned, not from\nthe image", "query"),
        "proj_out": (mid, rows[3], "Projection d → C\n(per token)", "trained"),
        "diff": (mid, rows[2], "Difference\n" r"$d(:,u) = f(:,u) - \hat f(:,u)$", "fixed"),
        "map": (mid, rows[1], "Anomaly map\n" r"$s(u) = \Vert d(:,u)\Vert_2$" "\nupsampled "
                "to the image", "fixed"),
        "score": (mid, rows[0], "Image score\nmax of the average-\npooled map", "fixed"),
    }
    size = (0.26, 0.15)
    for x, y, text, kind in boxes.values():
        _box(ax, (x, y), size, text, colours[kind])
    arrows = [("image", "cnn", ""), ("cnn", "features", ""), ("features", "proj_in", ""),
              ("proj_in", "encoder", "tokens"), ("encoder", "decoder", "memory"),
              ("query", "decoder", "tgt"), ("decoder", "proj_out", ""),
              ("proj_out", "diff", r"$\hat f$"), ("features", "diff", "$f$"), ("diff", "map", ""),
              ("map", "score", "")]
    for start, end, text in arrows:
        _arrow(ax, boxes[start][:2], boxes[end][:2], size, text)
    _legend(fig, colours)
    return fig


def _box(ax: Any, centre: tuple[float, float], size: tuple[float, float], text: str,
         colour: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    (x, y), (w, h) = centre, size
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.006",
                                facecolor=colour, edgecolor="#333333", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=11, linespacing=1.4)


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float],
           size: tuple[float, float], text: str) -> None:
    """An arrow from box edge to box edge, within a row or within a column."""
    (x0, y0), (x1, y1), (w, h) = start, end, size
    if abs(y1 - y0) < 1e-6:
        sign = 1 if x1 > x0 else -1
        x0, x1 = x0 + sign * w / 2, x1 - sign * w / 2
        label_at, align = ((x0 + x1) / 2, y0 + 0.015), ("center", "bottom")
    else:
        sign = 1 if y1 > y0 else -1
        y0, y1 = y0 + sign * h / 2, y1 - sign * h / 2
        label_at, align = (x0 + 0.012, (y0 + y1) / 2), ("left", "center")
    ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "-|>", "color": "#333333",
                                                    "linewidth": 1.3, "shrinkA": 3, "shrinkB": 3})
    if text:
        ax.text(*label_at, text, fontsize=11, color="#08306b", ha=align[0], va=align[1])


def _legend(fig: Any, colours: dict[str, str]) -> None:
    from matplotlib.patches import Patch

    names = {"frozen": "frozen (ImageNet)", "trained": "trained on normal images",
             "query": "learned input, not from the image", "fixed": "no parameters"}
    fig.legend([Patch(facecolor=colours[k], edgecolor="#333333") for k in names],
               list(names.values()), loc="lower center", ncol=2, frameon=False, fontsize=10.5)
