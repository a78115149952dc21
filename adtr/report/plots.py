"""Figures the book draws from ``results/`` at build time (the notebooks draw the others).

``forest_plot``: an experiment's paired differences, one panel per pair, one row per
category and one for all categories together, each a difference with its paired 95 %
interval, a line at zero and the side the paper's claim expects shaded.
"""

from __future__ import annotations

from typing import Any

from adtr import catalog, stats
from adtr.report.loading import METRIC_NAMES, Experiment, label
from adtr.report.tables import reference_verdict
from adtr.style import WIDTH, styled, wrap

#: The row of the differences over all categories together.
ALL = "all"
#: Colours: the paper's side of zero, an interval that excludes zero, one that does not.
PAPER_SIDE, SEPARATED, OVERLAPS = "#e3f1e0", "#1f5f99", "#8c8c8c"


def forest_rows(exp: Experiment, metric: str | None = None) -> list[dict[str, Any]]:
    """The experiment's ``intervals`` rows for its catalog metric, pairs in table order,
    within a pair the all-categories row first."""
    metric = metric or catalog.get(exp.name).metric
    rows = [r for r in exp.table("intervals") or [] if r["metric"] == metric]
    pairs = list(dict.fromkeys((r["a"], r["b"]) for r in rows))
    return [r for pair in pairs
            for r in sorted((r for r in rows if (r["a"], r["b"]) == pair),
                            key=lambda r: r["category"] != ALL)]


@styled
def forest_plot(exp: Experiment, metric: str | None = None) -> Any:
    """One panel per pair a − b: the difference in points with its paired 95 % interval,
    over all categories (top, larger) and per category; the claim's expected side of zero
    (a better) shaded. None when the results hold no intervals."""
    import matplotlib.pyplot as plt

    metric = metric or catalog.get(exp.name).metric
    rows = forest_rows(exp, metric)
    if not rows:
        return None
    pairs = list(dict.fromkeys((r["a"], r["b"]) for r in rows))
    categories = list(dict.fromkeys(r["category"] for r in rows))
    columns = {1: 1, 2: 2, 4: 2}.get(len(pairs), 3)  # 4 panels as 2 x 2
    lines = -(-len(pairs) // columns)
    height = 0.42 * len(categories) + 1.5
    fig, axes = plt.subplots(lines, columns, figsize=(WIDTH, height * lines), sharey=True,
                             squeeze=False)
    labels = catalog.get(exp.name).labels

    def name(variant: str) -> str:
        return labels.get(variant) or label(variant)

    where = {c: len(categories) - 1 - i for i, c in enumerate(categories)}
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):  # spare panels hidden below
        mine = [r for r in rows if (r["a"], r["b"]) == (a, b)]
        claim = bool(mine[0]["claim"])
        values = [v for r in mine for v in (r["low"], r["high"])]
        reach = max(1.0, *(abs(v) for v in values)) * 1.12
        if claim:  # the paper claims a > b
            ax.axvspan(0, reach, color=PAPER_SIDE, zorder=0)
        ax.axvline(0, color="black", linewidth=0.9, zorder=1)
        for r in mine:
            overall = r["category"] == ALL
            colour = OVERLAPS if r["verdict"] == stats.NOT_SEPARATED else SEPARATED
            y = where[r["category"]]
            ax.plot([r["low"], r["high"]], [y, y], color=colour,
                    linewidth=3.2 if overall else 1.6, zorder=2)
            ax.plot(r["difference"], y, "D" if overall else "o", color=colour,
                    markersize=8 if overall else 5, zorder=3)
        ax.set_xlim(-reach, reach)
        verdict = (stats.CLAIM_VERDICTS[mine[0]["verdict"]] if claim
                   else reference_verdict(mine[0]["verdict"], name(a)))
        title = wrap(f"{name(a)} − {name(b)}", 84 // columns)
        ax.set_title(f"{title}\n({verdict})", fontsize=10.5)
    for ax in axes.flat[len(pairs):]:
        ax.set_visible(False)
    axes[0, 0].set_yticks(range(len(categories)),
                          [("All categories" if c == ALL else c) for c in reversed(categories)])
    axes[0, 0].set_ylim(-0.7, len(categories) - 0.3)
    for line in axes:
        line[0].tick_params(axis="y", length=0)
    fig.supxlabel("a − b (points)", fontsize=11)
    fig.suptitle(f"{METRIC_NAMES.get(metric, metric)}: paired differences with 95 % "
                 "intervals", y=1.0)
    fig.tight_layout()
    return fig


def forest_caption(exp: Experiment, metric: str | None = None) -> str:
    """What the forest plot shows, in a reader's words."""
    metric = metric or catalog.get(exp.name).metric
    return (f"Each pair's difference a − b in {METRIC_NAMES.get(metric, metric)} points: "
            "over all categories together (diamond, thick bar) and in each category (dot), "
            "with its paired 95 % interval from resampling the test images. Blue: the "
            "interval excludes zero; grey: it does not. The shaded side of zero is where "
            "the paper's claim puts the pair (a better); a pair outside the paper's claims "
            "has none.")


def reconstruction_losses(exp: Experiment) -> dict[str, list[float]]:
    """Unit -> the mean over seeds of each epoch's training loss of its ADTR runs (the
    reconstruction objective; ADTR+'s fine-tuning left out)."""
    curves: dict[str, list[list[float]]] = {}
    for run in exp.record.runs:
        if run.objective in (None, "reconstruction") and run.loss_history:
            curves.setdefault(run.category, []).append(run.loss_history)
    return {unit: [sum(values) / len(values) for values in zip(*losses, strict=True)]
            for unit, losses in curves.items()}


#: A training loss counts as flat when, over the last ``FLAT_SHARE`` of its epochs (the
#: second half of the stretch after the learning-rate cut at 80 %, past the cut's own
#: drop), it loses less than ``FLAT_LOSS`` of its value; curves shorter than
#: ``FLAT_MIN_EPOCHS`` are too short to tell.
FLAT_SHARE, FLAT_LOSS, FLAT_MIN_EPOCHS = 0.1, 0.02, 10


def loss_fall(curve: list[float]) -> float | None:
    """The share of its value a loss curve loses over its last ``FLAT_SHARE`` of epochs
    (negative where it rose); None for a curve too short to tell."""
    if len(curve) < FLAT_MIN_EPOCHS:
        return None
    start = curve[len(curve) - 1 - round(FLAT_SHARE * len(curve))]
    return (start - curve[-1]) / start if start else 0.0


def _cut_epoch(exp: Experiment) -> int | None:
    """The last epoch at the base learning rate, as the runs recorded their lr."""
    for run in exp.record.runs:
        lrs = run.lr_history or []
        drops = [i for i in range(1, len(lrs)) if lrs[i] < lrs[0]]
        if drops:
            return drops[0]
    return None


@styled
def loss_curves_plot(exp: Experiment) -> Any:
    """Each unit's mean training loss over epochs (log scale), the lr cut marked; None
    without loss histories."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    curves = reconstruction_losses(exp)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6))
    colours = plt.get_cmap("tab10")
    for i, (unit, curve) in enumerate(curves.items()):
        ax.plot(range(1, len(curve) + 1), curve, color=colours(i % 10), label=str(unit))
    cut = _cut_epoch(exp)
    if cut is not None:
        ax.axvline(cut + 0.5, color="black", linestyle=":", linewidth=1)
        ax.text(cut + 0.5, 1.0, " lr ×0.1", transform=ax.get_xaxis_transform(), va="top",
                fontsize=10)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    ax.legend(title="normal class", loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1)
    fig.tight_layout()
    return fig


def loss_curves_caption(exp: Experiment) -> str:
    cut = _cut_epoch(exp)
    return ("The mean training loss of each normal class's ADTR model over epochs (log scale), "
            "before ADTR+'s fine-tuning" + ("." if cut is None else
                                            f"; the dotted line is the learning-rate cut, after "
                                            f"epoch {cut}."))


def loss_flatness_statement(exp: Experiment) -> str:
    """Whether an experiment's own schedule ran its training loss flat: the share it still
    lost over its last ``FLAT_SHARE`` of epochs, per unit."""
    curves = reconstruction_losses(exp)
    if not curves:
        return "These results hold no training-loss histories."
    epochs = max(len(c) for c in curves.values())
    falls = {unit: loss_fall(curve) for unit, curve in curves.items()}
    if any(f is None for f in falls.values()):
        return (f"With {epochs} epochs the curves are too short to tell whether the loss "
                f"had flattened.")
    still = sum(f >= FLAT_LOSS for f in falls.values())
    head = ("**Its training loss had flattened.**" if not still else
            f"**Its training loss was still falling in {still} of {len(curves)} classes.**")
    low, high = min(falls.values()), max(falls.values())
    change = (f"fell by {100 * low:.1f}–{100 * high:.1f} %" if low >= 0
              else f"changed by {-100 * low:+.1f} to {-100 * high:+.1f} %")
    return (f"{head} Over the last {100 * FLAT_SHARE:.0f} % of its {epochs} epochs (past the "
            f"learning-rate cut's own drop) the mean training loss {change} per class; "
            f"losing under {100 * FLAT_LOSS:.0f} % there counts as flat. The convergence "
            f"study's probes need pixel labels, which these data sets do not have, so the loss "
            f"is the curve this setting has.")
