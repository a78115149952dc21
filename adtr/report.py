"""What the book's pages call: read ``results/``, set the paper's numbers beside ours, say
plainly where they agree, and trace every number back to the runs that produced it.

The book renders one profile, named by the environment variable ``ADTR_BOOK_PROFILE``
(default ``cpu``), from ``results/`` (or the folder ``$ADTR_BOOK_RESULTS``). Nothing here
trains or computes a metric: every number a page shows is read from
``results/<profile>/<experiment>/results.json`` (written by the experiment notebooks through
``adtr.experiments``) and only formatted here. Result files hold fractions in [0, 1]; the
paper's numbers are percentages, and so is everything shown.

Kept light on purpose (no torch import), so that a page executes in a second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from adtr.records import project_root

PROFILE_ENV = "ADTR_BOOK_PROFILE"
RESULTS_ENV = "ADTR_BOOK_RESULTS"
DEFAULT_PROFILE = "cpu"
METRICS = ("image_auroc", "pixel_auroc", "aupro")
METRIC_NAMES = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}
EXPERIMENTS = ("main", "attention_query", "target", "backbone", "scales", "tsne", "adtr_plus",
               "oneclass")
NOTEBOOKS = {"main": "01_main_results", "attention_query": "02_attention_query",
             "target": "03_target", "backbone": "04_backbone", "scales": "05_scales",
             "tsne": "06_tsne", "adtr_plus": "07_adtr_plus", "oneclass": "08_one_class"}
TITLES = {"main": "Main results", "attention_query": "Table 4a: attention and query",
          "target": "Table 4b: reconstruction target", "backbone": "Table 4c: backbone",
          "scales": "Table 4d: feature scales", "tsne": "Fig. 5: t-SNE of d(:, u)",
          "adtr_plus": "ADTR+: fine-tuning with anomalies",
          "oneclass": "One-class setting (CIFAR-10 table)"}
SHORT_TITLES = {"main": "Main results", "attention_query": "Table 4a", "target": "Table 4b",
                "backbone": "Table 4c", "scales": "Table 4d", "tsne": "Fig. 5",
                "adtr_plus": "ADTR+", "oneclass": "One-class"}
#: The book page (under ``book/``) that shows each experiment.
PAGES = {"main": "main_results", "attention_query": "attention_query", "target": "target",
         "backbone": "backbone", "scales": "scales", "tsne": "tsne", "adtr_plus": "adtr_plus",
         "oneclass": "one_class"}
LABELS = {"adtr": "Attn + Query (ADTR)", "cnn": "CNN", "no_attention": "w/o Attn",
          "no_query": "w/o Query", "pixels": "Pixels", "features": "Features",
          "resnet18": "ResNet-18", "resnet34": "ResNet-34", "efficientnet_b0": "EfficientNet-B0",
          "efficientnet_b4": "EfficientNet-B4", "efficientnet_lite0": "EfficientNet-Lite0",
          "efficientnet_lite1": "EfficientNet-Lite1", "efficientnet_lite2": "EfficientNet-Lite2",
          "last_layer": "Last layer", "multi_scale": "Multi-scale"}
#: The ADTR+ pages compare two methods, not ablation variants.
PLUS_LABELS = {"adtr": "ADTR", "adtr_plus": "ADTR+"}
#: The one-class data sets, by the name their records give.
DATASET_NAMES = {"digits": "scikit-learn digits", "cifar10": "CIFAR-10"}
DATASET_DESCRIPTIONS = {"digits": "the handwritten digits bundled with scikit-learn",
                        "cifar10": "CIFAR-10"}
EXTERNAL_DESCRIPTIONS = {"skimage-patches": "grey patches of the natural photographs bundled "
                                            "with scikit-image, scaled like the digits",
                         "cifar100": "CIFAR-100 training images"}
#: Two means closer than this (in points) count as the same number on real MVTec-AD.
SAME_POINTS = 1.0
#: A difference larger than this many standard deviations over seeds is not seed noise.
NOISE_FACTOR = 2
#: Fig. 5: k-NN accuracy in the t-SNE plane from which normal and anomalous difference
#: vectors count as separated, and below which as not separated at all.
SEPARATED, PARTLY_SEPARATED = 0.9, 0.7


@dataclass(frozen=True)
class Claim:
    """What one of the paper's experiments claims, in a form the numbers can be checked by.

    ``best`` is the variant the paper says wins. ``chains`` are further orders the claim
    implies (worst first) for variants the paper did not run, e.g. a family of backbones
    of growing size; the paper's own values always imply their order too.
    """

    text: str
    best: str | None = None
    chains: tuple[tuple[str, ...], ...] = ()


CLAIMS = {
    "attention_query": Claim("attention plus the auxiliary query reconstructs better anomaly "
                             "maps than a CNN, a transformer without attention and one without "
                             "the query", best="adtr"),
    "target": Claim("reconstructing backbone features beats reconstructing raw pixels",
                    best="features"),
    "backbone": Claim("the method works with every backbone, and a stronger backbone gives a "
                      "better map", chains=(("efficientnet_lite0", "efficientnet_lite1",
                                             "efficientnet_lite2"),)),
    "scales": Claim("multi-scale features beat the deepest stage alone", best="multi_scale"),
}


def label(variant: str) -> str:
    """The display name of a variant (its key when it has none)."""
    return LABELS.get(variant, variant)


def book_profile() -> str:
    """The profile the book renders: ``$ADTR_BOOK_PROFILE``, else ``cpu``."""
    return os.environ.get(PROFILE_ENV, "").strip() or DEFAULT_PROFILE


def results_root(results_dir: str | Path | None = None) -> Path:
    """``results_dir``, else ``$ADTR_BOOK_RESULTS`` (e.g. an unpacked CI artifact), else
    ``results/`` of the project."""
    chosen = results_dir or os.environ.get(RESULTS_ENV, "").strip()
    return Path(chosen).resolve() if chosen else project_root() / "results"


# --- loading ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    """One experiment's ``results.json``, the folder it lies in, and the notebook's stamp."""

    name: str
    profile: str
    folder: Path
    data: dict[str, Any]
    stamp: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> dict[str, Any]:
        return self.data.get("record", {})

    @property
    def paper(self) -> dict[str, Any]:
        return self.data.get("paper", {})

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(self.data.get("summary", []))

    @property
    def runs(self) -> pd.DataFrame:
        return pd.DataFrame(self.data.get("runs", []))

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)

    @property
    def notebook(self) -> str:
        return NOTEBOOKS.get(self.name, self.name)

    @property
    def executed_notebook(self) -> Path:
        return self.folder.parent / "executed" / f"{self.notebook}.ipynb"

    def figure(self, name: str) -> Path:
        return self.folder / name


def load(experiment: str, profile: str | None = None,
         results_dir: str | Path | None = None) -> Experiment | None:
    """The experiment's results for ``profile`` (the book's by default); None if not run."""
    profile = profile or book_profile()
    folder = results_root(results_dir) / profile / experiment
    path = folder / "results.json"
    if not path.is_file():
        return None
    stamp_path = folder.parent / "executed" / f"{NOTEBOOKS.get(experiment, experiment)}.json"
    stamp = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    return Experiment(experiment, profile, folder, json.loads(path.read_text()), stamp)


def load_all(profile: str | None = None,
             results_dir: str | Path | None = None) -> dict[str, Experiment | None]:
    return {name: load(name, profile, results_dir) for name in EXPERIMENTS}


# --- formatting ------------------------------------------------------------------------

def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage without the sign: 0.9724 -> '97.2'; missing -> '—'."""
    if value is None or pd.isna(value):
        return "—"
    return f"{100 * value:.{digits}f}"


def mean_std(mean: float, std: float | None, seeds: int, digits: int = 1) -> str:
    """'97.2 ± 0.3' (in %) over several seeds; '97.2' for one seed, where std means nothing."""
    text = percent(mean, digits)
    if seeds > 1 and std is not None and not pd.isna(std):
        return f"{text} ± {100 * std:.{digits}f}"
    return text


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def number_word(n: int) -> str:
    """'eight' for 8; digits from 13 on."""
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
             "ten", "eleven", "twelve")
    return words[n] if 0 <= n < len(words) else str(n)


def ordinal(n: int) -> str:
    words = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
    return words[n - 1] if 0 < n <= len(words) else f"{n}th"


def duration(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', '2 h 07 min'."""
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A MyST table of ``frame`` (index dropped); with a caption it becomes a numbered table."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    table = "\n".join([header, rule, *rows])
    if caption is None:
        return table
    return f"~~~{{table}} {caption}\n:align: left\n\n{table}\n~~~"


# --- data ------------------------------------------------------------------------------

def data_info(exp: Experiment) -> list[dict[str, Any]]:
    """The per-category data descriptions of an experiment's record."""
    return list(exp.record.get("data", {}).values())


def is_synthetic(exp: Experiment) -> bool:
    return any(d.get("synthetic", False) for d in data_info(exp))


def one_class_data(exp: Experiment) -> dict[str, Any]:
    """The one-class setting's data set description; empty for the MVTec-layout experiments."""
    return exp.record.get("dataset", {})


def is_stand_in(exp: Experiment) -> bool:
    """Whether a one-class experiment ran on the offline stand-in instead of CIFAR-10."""
    return bool(one_class_data(exp).get("stand_in", False))


def units(exp: Experiment) -> list[str]:
    """The categories an experiment ran; in the one-class setting, its normal classes."""
    dataset = one_class_data(exp)
    if not dataset:
        return [str(c) for c in exp.record.get("categories", [])]
    names = dataset.get("classes", [])
    return [str(names[c]) if isinstance(c, int) and 0 <= c < len(names) else str(c)
            for c in exp.record.get("classes", [])]


def unit_column(runs: pd.DataFrame) -> str:
    """The column of a runs table that names what each model was trained on."""
    return "class" if "class" in runs.columns else "category"


def data_label(exp: Experiment) -> str:
    """'synthetic' for the offline set, 'MVTec-AD' for real data, else the data set's name
    ('..., stand-in' for the one-class setting's offline stand-in)."""
    dataset = one_class_data(exp)
    if dataset:
        name = DATASET_NAMES.get(dataset.get("name", "?"), dataset.get("name", "?"))
        return f"{name}, stand-in" if is_stand_in(exp) else name
    if is_synthetic(exp):
        return "synthetic"
    names = {d.get("name", "") for d in data_info(exp)}
    return "MVTec-AD" if not names or all("mvtec" in n.lower() for n in names) else ", ".join(
        sorted(names))


def data_note(exp: Experiment | None) -> str:
    """An admonition saying what data the page's numbers come from (and that it is not
    MVTec-AD when it is the offline set)."""
    if exp is None:
        return ""
    if one_class_data(exp):
        return one_class_note(exp)
    categories = ", ".join(exp.record.get("categories", []))
    infos = data_info(exp)
    name = infos[0].get("name", "?") if infos else "?"
    path = infos[0].get("path", "?") if infos else "?"
    profile = f"profile `{exp.profile}`"
    if is_synthetic(exp):
        text = (f"Every number and figure on this page was computed on the **offline synthetic "
                f"data set**, not on MVTec-AD: {name}, categories {categories} ({profile}). "
                f"It shows whether the code and the paper's claims hold up on a stand-in; its "
                f"absolute values cannot be compared with the paper's MVTec-AD numbers.")
        title, kind = "Synthetic data, not MVTec-AD", "warning"
    else:
        text = (f"The numbers on this page were computed on {name} at `{path}`, categories "
                f"{categories} ({profile}).")
        title, kind = f"Data: {data_label(exp)}", "note"
    return _admonition(exp, title, kind, text)


def _admonition(exp: Experiment, title: str, kind: str, text: str) -> str:
    if exp.profile == "smoke":
        epochs = exp.record.get("config", {}).get("epochs", "?")
        text += (f" The `smoke` profile trains a tiny model for {epochs} epochs only to check "
                 f"that the code runs: its numbers mean nothing.")
    return f"```{{admonition}} {title}\n:class: {kind}\n\n{text}\n```"


def one_class_note(exp: Experiment) -> str:
    """The one-class page's data admonition: a loud one when the data is the stand-in."""
    dataset, config = one_class_data(exp), exp.record.get("config", {})
    name, source = dataset.get("name", "?"), dataset.get("source", "?")
    described = DATASET_DESCRIPTIONS.get(name, name)
    height, width = (dataset.get("image_shape") or ["?", "?"])[:2]
    count = int(dataset.get("n_train", 0)) + int(dataset.get("n_test", 0))
    external = exp.record.get("external_anomalies", {})
    anomalies = EXTERNAL_DESCRIPTIONS.get(external.get("name"), external.get("name", "?"))
    classes, profile = ", ".join(units(exp)), f"profile `{exp.profile}`"
    if is_stand_in(exp):
        text = (f"Every number and figure on this page was computed on a **stand-in, not on "
                f"CIFAR-10**: {described} (`{source}`), {count:,} images of {height}×{width} px "
                f"upscaled to {config.get('image_size', '?')} px, classes {classes} "
                f"({profile}). ADTR+'s external anomalies are {anomalies}. The paper's "
                f"numbers come from CIFAR-10, a different data set: what can be set beside "
                f"them is the direction, ADTR+ against ADTR, not the values.")
        return _admonition(exp, "Stand-in data, not CIFAR-10", "warning", text)
    text = (f"The numbers on this page were computed on {described} at `{source}`, classes "
            f"{classes} ({profile}). ADTR+'s external anomalies are {anomalies}.")
    return _admonition(exp, f"Data: {data_label(exp)}", "note", text)


def profile_sentence(main: Experiment | None) -> str:
    """What this build shows, in one sentence (from the main experiment's record)."""
    profile = main.profile if main is not None else book_profile()
    if main is None:
        return (f"This build shows the `{profile}` profile, which has no results yet: run "
                f"`adtr reproduce --profile {profile}` and build the book again.")
    seeds = plural(len(main.record.get("seeds", [])), "seed")
    data = "the offline synthetic data set" if is_synthetic(main) else data_label(main)
    return (f"This build shows the `{profile}` profile: {data}, categories "
            f"{', '.join(main.record.get('categories', []))}, {seeds} per setting.")


def missing_note(experiment: str, profile: str | None = None) -> str:
    profile = profile or book_profile()
    notebook = NOTEBOOKS.get(experiment, experiment)
    return (f"```{{warning}}\nNo results for this page yet: `results/{profile}/{experiment}/"
            f"results.json` does not exist. Run `adtr reproduce --profile {profile} --only "
            f"{notebook}` and build the book again.\n```")


# --- paper beside ours ---------------------------------------------------------------------

def our_values(exp: Experiment, metric: str = "pixel_auroc") -> dict[str, float]:
    """Variant -> our mean of ``metric`` in %, in the order the notebook ran them."""
    summary = exp.summary
    if summary.empty:
        return {}
    return {row["variant"]: 100 * row[f"{metric}_mean"] for _, row in summary.iterrows()}


def ranks(values: dict[str, float]) -> dict[str, int]:
    """1 = highest; tied values share the better rank."""
    return {k: 1 + sum(other > v for other in values.values()) for k, v in values.items()}


def comparison_table(exp: Experiment, metric: str = "pixel_auroc") -> pd.DataFrame:
    """One row per variant: the paper's value beside ours (mean ± std over seeds), ranks."""
    summary = exp.summary.set_index("variant") if not exp.summary.empty else pd.DataFrame()
    paper, ours = exp.paper, our_values(exp, metric)
    paper_ranks, our_ranks = ranks(paper), ranks(ours)
    data, name = data_label(exp), METRIC_NAMES[metric]
    rows = []
    for variant in list(paper) + [v for v in ours if v not in paper]:
        row = summary.loc[variant] if variant in ours else None
        seeds = int(row["seeds"]) if row is not None else 0

        def ours_of(m: str, row: Any = row, seeds: int = seeds) -> str:
            return mean_std(row[f"{m}_mean"], row[f"{m}_std"], seeds) if row is not None \
                else "not run"

        rows.append({
            "Variant": label(variant),
            f"Paper {name} (MVTec-AD)": f"{paper[variant]:.1f}" if variant in paper else "—",
            f"Ours {name} ({data})": ours_of(metric),
            "Paper rank": f"{paper_ranks[variant]} of {len(paper)}" if variant in paper else "—",
            "Our rank": f"{our_ranks[variant]} of {len(ours)}" if variant in ours else "—",
            f"Ours {METRIC_NAMES['image_auroc']}": ours_of("image_auroc"),
            f"Ours {METRIC_NAMES['aupro']}": ours_of("aupro"),
            "Seeds": seeds or "—",
        })
    return pd.DataFrame(rows)


def _cells_over_seeds(runs: pd.DataFrame, by: list[str], metric: str) -> pd.Series:
    """Per ``by`` group: 'mean ± std' over seeds of the per-seed value, in %."""
    per_seed = runs.groupby([*by, "seed"], sort=False)[metric].mean()
    grouped = per_seed.groupby(level=list(range(len(by))), sort=False)
    return grouped.agg(lambda s: mean_std(s.mean(), s.std(ddof=0), len(s)))


def per_category_variants(exp: Experiment, metric: str = "pixel_auroc",
                          labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Category (or class) x variant table of ``metric`` (mean ± std over seeds), in the
    order the notebook ran them, with the mean row; ``labels`` rename variants."""
    runs = exp.runs
    unit = unit_column(runs)
    cells = _cells_over_seeds(runs, [unit, "variant"], metric).unstack("variant")
    variants = list(dict.fromkeys(runs["variant"]))
    table = cells.reindex(list(dict.fromkeys(runs[unit])))[variants].reset_index()
    means = {row["variant"]: mean_std(row[f"{metric}_mean"], row[f"{metric}_std"],
                                      int(row["seeds"])) for _, row in exp.summary.iterrows()}
    table.loc[len(table)] = ["mean", *(means[v] for v in variants)]
    table.columns = [unit.capitalize(), *((labels or {}).get(v) or label(v) for v in variants)]
    return table


def per_category_metrics(exp: Experiment) -> pd.DataFrame:
    """Category x metric table (mean ± std over seeds) for the main results, with the mean."""
    runs = exp.runs
    columns = {m: _cells_over_seeds(runs, ["category"], m) for m in METRICS}
    table = pd.DataFrame(columns).reset_index(names="category")
    row = exp.summary.iloc[0]
    table.loc[len(table)] = ["mean", *(mean_std(row[f"{m}_mean"], row[f"{m}_std"],
                                                int(row["seeds"])) for m in METRICS)]
    table.columns = ["Category", *(METRIC_NAMES[m] for m in METRICS)]
    return table


# --- where we agree ------------------------------------------------------------------------

def expected_pairs(paper: dict[str, float], claim: Claim) -> list[tuple[str, str]]:
    """(worse, better) pairs that the claim implies: by the paper's values, then its chains."""
    pairs = [(a, b) for a in paper for b in paper if paper[a] < paper[b]]
    for chain in claim.chains:
        pairs += [(chain[i], chain[j]) for i in range(len(chain))
                  for j in range(i + 1, len(chain))]
    return pairs


def expected_best(paper: dict[str, float], ours: dict[str, float], claim: Claim) -> str | None:
    """Among the variants we ran, the one the claim says should win."""
    if claim.best in ours:
        return claim.best
    for chain in (tuple(sorted(paper, key=paper.get)), *claim.chains):
        ran = [v for v in chain if v in ours]
        if ran:
            return ran[-1]
    return None


@dataclass(frozen=True)
class Agreement:
    """The paper's ranking of an experiment's variants against ours."""

    claim: str
    paper: dict[str, float]
    ours: dict[str, float]
    expected: str | None
    kept: list[tuple[str, str]]
    reversed: list[tuple[str, str]]
    spread: float | None  # largest std over seeds, in points; None with one seed

    @property
    def our_ranks(self) -> dict[str, int]:
        return ranks(self.ours)

    @property
    def our_order(self) -> list[str]:
        return sorted(self.ours, key=self.ours.get, reverse=True)

    @property
    def verdict(self) -> str:
        if self.expected is None:
            return "cannot be compared"
        first = self.our_ranks[self.expected] == 1
        if first and not self.reversed:
            return "agrees"
        if first or len(self.kept) > len(self.reversed):
            return "partly agrees"
        return "does not agree"


def agreement(paper: dict[str, float], ours: dict[str, float], claim: Claim,
              stds: dict[str, float] | None = None) -> Agreement:
    """Compare rankings; ``paper`` and ``ours`` in %, ``stds`` (over seeds) in points."""
    pairs = [(a, b) for a, b in expected_pairs(paper, claim) if a in ours and b in ours]
    kept = [(a, b) for a, b in pairs if ours[a] < ours[b]]
    reversed_ = [(a, b) for a, b in pairs if ours[a] >= ours[b]]
    spread = max(stds.values()) if stds else None
    return Agreement(claim.text, dict(paper), dict(ours), expected_best(paper, ours, claim),
                     kept, reversed_, spread)


def experiment_agreement(exp: Experiment, metric: str = "pixel_auroc") -> Agreement:
    summary = exp.summary
    several = not summary.empty and int(summary["seeds"].max()) > 1
    stds = {r["variant"]: 100 * r[f"{metric}_std"] for _, r in summary.iterrows()}
    return agreement(exp.paper, our_values(exp, metric), CLAIMS[exp.name],
                     stds if several else None)


def _value(values: dict[str, float], variant: str) -> str:
    return f"{label(variant)} ({values[variant]:.1f})"


def statement(result: Agreement) -> str:
    """The plain statement of where ours agrees with the paper, computed from the numbers."""
    paper, ours = result.paper, result.ours
    if result.expected is None or not ours:
        return (f"**Cannot be compared.** The paper's claim: {result.claim}. None of the "
                f"variants that claim is about was run here.")
    paper_best = max(paper, key=paper.get)
    parts = [f"**Ours {result.verdict} with the paper.** The paper's claim: {result.claim}; "
             f"it ranks {_value(paper, paper_best)} first of {len(paper)} on MVTec-AD."]
    rank = result.our_ranks[result.expected]
    if result.expected == paper_best:
        ours_text = f"Ours ranks {_value(ours, result.expected)} {ordinal(rank)} of {len(ours)}"
    else:
        ours_text = (f"Among the variants we ran, the claim favours "
                     f"{_value(ours, result.expected)}; ours ranks it {ordinal(rank)} of "
                     f"{len(ours)}")
    if rank != 1:
        ours_text += f"; our first is {_value(ours, result.our_order[0])}"
    parts.append(ours_text + ".")
    if result.kept or result.reversed:
        total = len(result.kept) + len(result.reversed)
        text = (f"Of the {total} orderings between two variants that the claim implies and "
                f"that we ran, ours keeps {len(result.kept)}")
        if result.reversed:
            flips = "; ".join(f"{label(b)} ≤ {label(a)}" for a, b in result.reversed)
            text += f" and reverses {len(result.reversed)} (ours: {flips})"
        parts.append(text + ".")
    parts.append(_noise(result))
    return " ".join(parts)


def _noise(result: Agreement) -> str:
    if len(result.ours) < 2:
        return ""
    first, second = result.our_order[:2]
    gap = result.ours[first] - result.ours[second]
    if result.spread is None:
        return (f"Each variant ran with one seed, so how much of the {gap:.1f}-point gap between "
                f"our first two variants is seed noise is unknown.")
    if gap > 2 * result.spread:
        return (f"Our first two variants differ by {gap:.1f} points, more than twice the largest "
                f"standard deviation over seeds ({result.spread:.1f}): the top of our order is "
                f"not seed noise.")
    return (f"Our first two variants differ by {gap:.1f} points, within twice the largest "
            f"standard deviation over seeds ({result.spread:.1f}): our runs do not separate "
            f"them.")


# --- main results and Fig. 5 -----------------------------------------------------------------

def main_table(exp: Experiment) -> pd.DataFrame:
    """The paper's MVTec-AD means (ADTR, ADTR+) beside ours, one row per metric."""
    row = exp.summary.iloc[0]
    seeds = int(row["seeds"])
    rows = []
    for metric in METRICS:
        paper_cells = {f"Paper {method} (MVTec-AD)": (f"{values[metric]:.1f}" if metric in values
                                                      else "not reported")
                       for method, values in exp.paper.items()}
        rows.append({"Metric": METRIC_NAMES[metric], **paper_cells,
                     f"Ours ADTR ({data_label(exp)})": mean_std(row[f"{metric}_mean"],
                                                                row[f"{metric}_std"], seeds)})
    return pd.DataFrame(rows)


def main_statement(exp: Experiment, method: str = "ADTR") -> str:
    """Where our ADTR means stand against the paper's, said for the data they come from."""
    row, paper = exp.summary.iloc[0], exp.paper.get(method, {})
    n_categories = len(exp.record.get("categories", []))
    seeds = int(row["seeds"])
    ours = {m: 100 * row[f"{m}_mean"] for m in ("image_auroc", "pixel_auroc")}
    said = " and ".join(f"{ours[m]:.1f} {METRIC_NAMES[m]}" for m in ours)
    theirs = " and ".join(f"{paper[m]:.1f}" for m in ours if m in paper)
    text = (f"Our {method} reaches {said} (mean over {n_categories} categories, {seeds} "
            f"seed{'s' if seeds > 1 else ''}); the paper reports {theirs} on MVTec-AD.")
    if is_synthetic(exp):
        return text + (" The data sets differ, so the gap between these numbers measures the "
                       "data, not the method: no agreement or disagreement with the paper can "
                       "be read from it. What this page does show is whether the model finds "
                       "and outlines defects it never saw in training.")
    gaps = {m: ours[m] - paper[m] for m in ours if m in paper}
    same = [METRIC_NAMES[m] for m, g in gaps.items() if abs(g) <= SAME_POINTS]
    off = [f"{METRIC_NAMES[m]} ({g:+.1f} points)" for m, g in gaps.items()
           if abs(g) > SAME_POINTS]
    if same:
        text += f" We agree within {SAME_POINTS:.0f} point on {' and '.join(same)}."
    if off:
        text += f" We do not agree on {' and '.join(off)}."
    return text


def weakest_category(exp: Experiment, metric: str = "pixel_auroc") -> tuple[str, float]:
    """The category with the lowest mean ``metric`` over seeds, and that value in %."""
    means = exp.runs.groupby("category")[metric].mean()
    return str(means.idxmin()), 100 * float(means.min())


def separation_table(exp: Experiment) -> pd.DataFrame:
    """Fig. 5's separation numbers per category, in %."""
    rows = [{"Category": r["category"], "Normal vectors": r["n_normal"],
             "Anomalous vectors": r["n_anomalous"],
             "k-NN accuracy in the t-SNE plane": percent(r["knn_accuracy_tsne"]),
             "Silhouette (t-SNE)": f"{r['silhouette_tsne']:.2f}",
             "AUROC of s(u) on these positions": percent(r["score_auroc"])}
            for r in exp.data.get("separation", [])]
    return pd.DataFrame(rows)


def tsne_statement(exp: Experiment, paper_samples: int) -> str:
    """How well normal and anomalous difference vectors separate, against the paper's plot."""
    rows = exp.data.get("separation", [])
    if not rows:
        return "No separation numbers were written."
    frame = pd.DataFrame(rows)
    knn, auroc = frame["knn_accuracy_tsne"].mean(), frame["score_auroc"].mean()
    clear = [r["category"] for r in rows if r["knn_accuracy_tsne"] >= SEPARATED]
    weak = [r["category"] for r in rows if r["knn_accuracy_tsne"] < PARTLY_SEPARATED]
    sampled = int((frame["n_normal"] + frame["n_anomalous"]).min())
    text = (f"The paper's Fig. 5 shows normal and anomalous difference vectors as separate "
            f"groups, with no number attached. In ours, a 5-nearest-neighbour classifier in the "
            f"t-SNE plane tells them apart with {percent(knn)}% accuracy on average (chance: "
            f"50%), and s(u) ranks them with an AUROC of {percent(auroc)}%.")
    if clear:
        text += f" Separated (k-NN ≥ {percent(SEPARATED, 0)}%): {', '.join(clear)}."
    if weak:
        text += f" Not separated (k-NN < {percent(PARTLY_SEPARATED, 0)}%): {', '.join(weak)}."
    if sampled < paper_samples:
        text += (f" Our samples are smaller than the paper's {paper_samples} vectors where the "
                 f"test masks cover few positions (the smallest here has {sampled}), so those "
                 f"plots are sparser than the paper's.")
    return text


# --- ADTR+ beside ADTR --------------------------------------------------------------------

#: Where the paper's ADTR / ADTR+ means come from, per experiment.
PAPER_DATA = {"adtr_plus": "MVTec-AD", "oneclass": "CIFAR-10"}
#: The metric of each ADTR+ experiment in the at-a-glance table.
PLUS_OVERVIEW_METRIC = {"adtr_plus": "pixel_auroc", "oneclass": "image_auroc"}


def signed(delta: float, spread: float | None = None) -> str:
    """A difference in points: '+1.2', '-0.4 ± 0.3'; never '-0.0'."""
    text = f"{round(delta, 1) or 0.0:+.1f}"
    return text if spread is None else f"{text} ± {spread:.1f}"


@dataclass(frozen=True)
class PlusDifference:
    """ADTR+ minus ADTR on one metric, in points. ADTR+ starts from the ADTR model of the
    same category (or class) and seed, so the difference is taken run by run, averaged over
    categories per seed; ``delta`` is its mean over seeds, ``spread`` its std over seeds."""

    metric: str
    delta: float
    spread: float | None  # None with one seed
    seeds: int

    @property
    def verdict(self) -> str:
        """'improves', 'worse', or 'no clear difference': zero at one decimal, or within
        ``NOISE_FACTOR`` standard deviations over seeds."""
        noise = NOISE_FACTOR * self.spread if self.spread is not None else 0.0
        if round(self.delta, 1) == 0 or abs(self.delta) <= noise:
            return "no clear difference"
        return "improves" if self.delta > 0 else "worse"

    @property
    def verdict_text(self) -> str:
        """The verdict, marked when one seed cannot tell it from seed noise."""
        if self.spread is None and self.verdict != "no clear difference":
            return f"{self.verdict} (one seed)"
        return self.verdict

    @property
    def shown(self) -> str:
        return signed(self.delta, self.spread)


def _paired_differences(runs: pd.DataFrame, metric: str) -> pd.Series:
    """ADTR+ − ADTR in points for every (category or class, seed) where both ran."""
    unit = unit_column(runs)
    paired = runs.pivot_table(index=[unit, "seed"], columns="variant", values=metric,
                              aggfunc="mean", sort=False)
    if not {"adtr", "adtr_plus"} <= set(paired.columns):
        return pd.Series(dtype=float)
    return (100 * (paired["adtr_plus"] - paired["adtr"])).dropna()


def plus_differences(exp: Experiment) -> dict[str, PlusDifference]:
    """Metric -> ADTR+ against ADTR, for every metric the experiment measured."""
    runs, differences = exp.runs, {}
    for metric in (m for m in METRICS if m in runs.columns):
        per_seed = _paired_differences(runs, metric).groupby(level="seed").mean()
        if per_seed.empty:
            continue
        spread = float(per_seed.std(ddof=0)) if len(per_seed) > 1 else None
        differences[metric] = PlusDifference(metric, float(per_seed.mean()), spread,
                                             len(per_seed))
    return differences


def paper_methods(exp: Experiment | None, name: str = "adtr_plus") -> dict[str, dict[str, float]]:
    """The paper's means as {method: {metric: value}} in %: MVTec-AD for ``adtr_plus``,
    CIFAR-10 image AUROC for ``oneclass``; from ``adtr.paper`` when ``exp`` is None."""
    from adtr import paper

    if exp is not None:
        values, name = exp.paper, exp.name
    else:
        values = paper.MAIN_MVTEC if name == "adtr_plus" else {
            "cifar10_image_auroc": paper.MAIN_CIFAR10}
    if "cifar10_image_auroc" in values:
        return {method: {"image_auroc": v} for method, v in values["cifar10_image_auroc"].items()}
    return {method: dict(v) for method, v in values.items()}


def _paper_gain(paper: dict[str, dict[str, float]], metric: str) -> float | None:
    before, after = paper.get("ADTR", {}).get(metric), paper.get("ADTR+", {}).get(metric)
    return None if before is None or after is None else after - before


def plus_table(exp: Experiment) -> pd.DataFrame:
    """One row per metric: the paper's ADTR and ADTR+ means beside ours (mean ± std over
    seeds), both differences, and what ours says."""
    paper, where, data = paper_methods(exp), PAPER_DATA.get(exp.name, "MVTec-AD"), \
        data_label(exp)
    summary = exp.summary.set_index("variant")
    rows = []
    for metric, difference in plus_differences(exp).items():
        def ours(variant: str, metric: str = metric) -> str:
            row = summary.loc[variant]
            return mean_std(row[f"{metric}_mean"], row[f"{metric}_std"], int(row["seeds"]))

        def theirs(method: str, metric: str = metric) -> str:
            value = paper.get(method, {}).get(metric)
            return "not reported" if value is None else f"{value:.1f}"

        gain = _paper_gain(paper, metric)
        rows.append({"Metric": METRIC_NAMES[metric],
                     f"Paper ADTR ({where})": theirs("ADTR"),
                     f"Paper ADTR+ ({where})": theirs("ADTR+"),
                     "Paper ADTR+ − ADTR": "—" if gain is None else signed(gain),
                     f"Ours ADTR ({data})": ours("adtr"), f"Ours ADTR+ ({data})": ours("adtr_plus"),
                     "Ours ADTR+ − ADTR": difference.shown,
                     "ADTR+ here": difference.verdict_text})
    return pd.DataFrame(rows)


def plus_table_by_method(exp: Experiment) -> pd.DataFrame:
    """The means of ``plus_table`` on their side, for few metrics: one row for ADTR, one for
    ADTR+, one for their difference; the paper's column beside ours for each metric."""
    paper, where, data = paper_methods(exp), PAPER_DATA.get(exp.name, "MVTec-AD"), \
        data_label(exp)
    summary = exp.summary.set_index("variant")
    rows: list[dict[str, str]] = [{"": "ADTR"}, {"": "ADTR+"}, {"": "ADTR+ − ADTR"}]
    for metric, difference in plus_differences(exp).items():
        name = METRIC_NAMES[metric]
        if _paper_gain(paper, metric) is not None:
            column = f"Paper {name} ({where})"
            rows[0][column] = f"{paper['ADTR'][metric]:.1f}"
            rows[1][column] = f"{paper['ADTR+'][metric]:.1f}"
            rows[2][column] = signed(_paper_gain(paper, metric))
        column = f"Ours {name} ({data})"
        for row, variant in ((rows[0], "adtr"), (rows[1], "adtr_plus")):
            values = summary.loc[variant]
            row[column] = mean_std(values[f"{metric}_mean"], values[f"{metric}_std"],
                                   int(values["seeds"]))
        rows[2][column] = difference.shown
    return pd.DataFrame(rows)


def plus_per_unit(exp: Experiment, metric: str) -> pd.DataFrame:
    """Category (or class) x ADTR, ADTR+ (mean ± std over seeds) and their difference (its
    mean ± std over seeds), with the mean row."""
    table = per_category_variants(exp, metric, PLUS_LABELS)
    unit = unit_column(exp.runs)
    paired = _paired_differences(exp.runs, metric)
    cells = paired.groupby(level=unit, sort=False).agg(
        lambda s: signed(s.mean(), s.std(ddof=0) if len(s) > 1 else None))
    overall = plus_differences(exp).get(metric)
    table["ADTR+ − ADTR"] = [*(cells.get(u, "—") for u in table.iloc[:-1, 0]),
                             overall.shown if overall is not None else "—"]
    return table


def _names(metrics: Iterable[str]) -> str:
    names = [METRIC_NAMES[m] for m in metrics]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def plus_statement(exp: Experiment) -> str:
    """Whether ADTR+ improves on ADTR here, metric by metric, against the paper's claim."""
    differences = plus_differences(exp)
    if not differences:
        return "**Cannot be compared.** ADTR and ADTR+ were not both run on the same data."
    paper, where = paper_methods(exp), PAPER_DATA.get(exp.name, "MVTec-AD")
    phrases = {"improves": "improves on ADTR in {}",
               "no clear difference": "shows no clear difference from ADTR in {}",
               "worse": "is worse than ADTR in {}"}
    groups = {v: [m for m, d in differences.items() if d.verdict == v] for v in phrases}
    head = "; ".join(phrases[v].format(_names(ms)) for v, ms in groups.items() if ms)
    parts = [f"**Here ADTR+ {head}.**"]
    claimed = [m for m in differences if _paper_gain(paper, m) is not None]
    if claimed:
        said = ", ".join(f"{METRIC_NAMES[m]} {paper['ADTR'][m]:.1f} → {paper['ADTR+'][m]:.1f} "
                         f"({signed(_paper_gain(paper, m))})" for m in claimed)
        parts.append(f"The paper reports ADTR+ above ADTR on {where}: {said}.")
    ours = ", ".join(f"{METRIC_NAMES[m]} {d.shown}" for m, d in differences.items())
    seeds = next(iter(differences.values())).seeds
    if seeds > 1:
        parts.append(f"Ours, ADTR+ − ADTR as the mean ± std over {seeds} seeds of the "
                     f"difference between runs of the same seed: {ours} points; a difference "
                     f"within {NOISE_FACTOR} standard deviations of zero counts as no clear "
                     f"difference.")
    else:
        parts.append(f"Ours, ADTR+ − ADTR: {ours} points. Each ran with one seed, so how much "
                     f"of these differences is seed noise is unknown.")
    held = [m for m in claimed if differences[m].verdict == "improves"]
    if len(claimed) == 1:
        parts.append(f"The paper's claim that ADTR+ improves on ADTR "
                     f"{'holds' if held else 'does not hold'} here.")
    elif claimed:
        parts.append(f"The paper's claim that ADTR+ improves on ADTR holds here for "
                     f"{len(held)} of the {len(claimed)} metrics it reports"
                     + (f" ({_names(held)})." if held else "."))
    if is_synthetic(exp) or is_stand_in(exp):
        parts.append(f"Our data are not {where}, so only the direction of these differences "
                     f"can be set beside the paper's, not their size.")
    return " ".join(parts)


def plus_settings(exp: Experiment | None, profile: str | None = None) -> dict[str, str]:
    """What the ADTR+ prose quotes, from the run's resolved parameters (from ``profile``'s,
    the book's by default, when ``exp`` is None): ``alpha``, ``top_k``, ``plus_lr``, and
    ``plus_epochs`` and ``epochs`` as '300 epochs'."""
    from adtr import profiles
    from adtr.errors import ConfigError

    if exp is not None:
        config = exp.record.get("config", {})
    else:
        try:
            config = profiles.resolve(profile or book_profile()).to_dict()
        except ConfigError:
            config = {}
    keys = {"alpha": "plus_alpha", "top_k": "plus_top_k", "plus_lr": "plus_lr"}
    settings = {name: f"{config[key]:g}" if key in config else "?" for name, key in keys.items()}
    for name in ("plus_epochs", "epochs"):
        settings[name] = plural(int(config[name]), "epoch") if name in config else "? epochs"
    return settings


# --- at a glance -----------------------------------------------------------------------------

def overview(experiments: dict[str, Experiment | None], paper_samples: int) -> pd.DataFrame:
    """One row per claim of the paper: its number, ours, and the verdict, with the page."""
    rows = []
    for name, exp in experiments.items():
        link = f"{{doc}}`{TITLES[name]} <{PAGES[name]}>`"
        if exp is None:
            rows.append({"Claim": link, "Paper": _paper_claim(name, paper_samples),
                         "Ours": "not run", "Verdict": "—"})
        elif name == "main":
            rows.append(_overview_main(exp, link))
        elif name == "tsne":
            knn = pd.DataFrame(exp.data.get("separation", []))["knn_accuracy_tsne"].mean()
            verdict = ("agrees" if knn >= SEPARATED else "partly agrees"
                       if knn >= PARTLY_SEPARATED else "does not agree")
            rows.append({"Claim": link, "Paper": f"plot of {paper_samples} vectors, no number",
                         "Ours": f"k-NN accuracy {percent(knn)}%", "Verdict": verdict})
        elif name in PAPER_DATA:
            rows.append(_overview_plus(exp, link))
        else:
            rows.append(_overview_ablation(exp, link))
    return pd.DataFrame(rows)


def _paper_claim(name: str, paper_samples: int) -> str:
    """The paper's number for an experiment, from ``adtr.paper`` (when ours is missing)."""
    from adtr import paper

    if name == "main":
        return f"pixel AUROC {paper.MAIN_MVTEC['ADTR']['pixel_auroc']:.1f}"
    if name == "tsne":
        return f"plot of {paper_samples} vectors, no number"
    if name in PAPER_DATA:
        return _paper_plus_claim(name, paper_methods(None, name))
    values = paper.TABLE4_PIXEL_AUROC[name]
    best = max(values, key=values.get)
    return f"{label(best)}: first of {len(values)} ({values[best]:.1f})"


def _overview_main(exp: Experiment, link: str) -> dict[str, str]:
    row, paper = exp.summary.iloc[0], exp.paper.get("ADTR", {})
    ours = percent(row["pixel_auroc_mean"])
    verdict = "data differ" if is_synthetic(exp) else (
        "agrees" if abs(100 * row["pixel_auroc_mean"] - paper.get("pixel_auroc", 0))
        <= SAME_POINTS else "does not agree")
    return {"Claim": link, "Paper": f"pixel AUROC {paper.get('pixel_auroc', '—')}",
            "Ours": f"pixel AUROC {ours} ({data_label(exp)})", "Verdict": verdict}


def _paper_plus_claim(name: str, paper: dict[str, dict[str, float]]) -> str:
    metric = PLUS_OVERVIEW_METRIC[name]
    gain = _paper_gain(paper, metric)
    return (f"ADTR+ − ADTR: {'—' if gain is None else signed(gain)} {METRIC_NAMES[metric]} "
            f"({PAPER_DATA[name]})")


def _overview_plus(exp: Experiment, link: str) -> dict[str, str]:
    metric = PLUS_OVERVIEW_METRIC[exp.name]
    difference = plus_differences(exp).get(metric)
    paper = _paper_plus_claim(exp.name, paper_methods(exp))
    if difference is None:
        return {"Claim": link, "Paper": paper, "Ours": "not run", "Verdict": "—"}
    verdict = {"improves": "agrees", "worse": "does not agree"}.get(difference.verdict,
                                                                     difference.verdict)
    if difference.spread is None and difference.verdict != "no clear difference":
        verdict += " (one seed)"
    return {"Claim": link, "Paper": paper,
            "Ours": f"ADTR+ − ADTR: {difference.shown} {METRIC_NAMES[metric]} "
                    f"({data_label(exp)})", "Verdict": verdict}


def _overview_ablation(exp: Experiment, link: str) -> dict[str, str]:
    result = experiment_agreement(exp)
    paper_best = max(exp.paper, key=exp.paper.get)
    ours = "—"
    if result.expected is not None:
        rank = result.our_ranks[result.expected]
        ours = (f"{label(result.expected)}: {ordinal(rank)} of {len(result.ours)} "
                f"({result.ours[result.expected]:.1f})")
    return {"Claim": link,
            "Paper": f"{label(paper_best)}: first of {len(exp.paper)} "
                     f"({exp.paper[paper_best]:.1f})",
            "Ours": ours, "Verdict": result.verdict}


# --- provenance ------------------------------------------------------------------------------

def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v not in (None, "")))


def _run_records(exp: Experiment) -> list[dict[str, Any]]:
    return list(exp.record.get("runs", []))


def backbones(exp: Experiment, others: Iterable[Experiment] = ()) -> list[tuple[str, str]]:
    """(backbone, weights source) pairs of the runs; an experiment without run records (the
    t-SNE one reuses the main runs) borrows the weights of other experiments' runs."""
    pairs = _unique((r["backbone"]["name"], r["backbone"].get("weights", "?"))
                    for r in _run_records(exp))
    if pairs:
        return pairs
    name = exp.record.get("config", {}).get("backbone", "?")
    borrowed = _unique((n, w) for other in others if other is not exp and _run_records(other)
                       for n, w in backbones(other) if n == name)
    return borrowed or [(name, "?")]


def weights_kind(source: str) -> str:
    """The kind of a weights source: 'pip package', 'timm cache', 'file', 'random', ..."""
    for kind in ("pip package", "timm cache", "file", "random", "none"):
        if source.startswith(kind):
            return kind
    return source.split(" (")[0]


def _devices(exp: Experiment) -> list[str]:
    envs = [r.get("environment", {}) for r in _run_records(exp)] or [exp.record.get(
        "environment", {})]
    return _unique(f"{e.get('device', '?')} ({e.get('device_name', '?')}, "
                   f"{e.get('cpu_count', '?')} CPUs)" for e in envs)


def _software(exp: Experiment) -> tuple[list[str], list[str]]:
    envs = [r.get("environment", {}) for r in _run_records(exp)] + [exp.record.get(
        "environment", {})]
    versions = _unique(f"Python {e.get('python')}, torch {e.get('torch')}, timm {e.get('timm')}"
                       for e in envs if e)
    commits = _unique(e.get("git_commit") for e in envs if e)
    return versions, commits


def _epochs(exp: Experiment) -> str:
    """Epochs trained; ADTR+ runs as 'base + fine-tuning'."""
    runs = _run_records(exp)
    trained = _unique(r.get("epochs_trained") for r in runs if "base_epochs" not in r)
    tuned = _unique(f"{r['base_epochs']} + {r.get('epochs_trained')} fine-tuning" for r in runs
                    if "base_epochs" in r)
    if not runs:
        return f"{exp.record.get('config', {}).get('epochs', '?')} (as main results)"
    parts = [", ".join(str(e) for e in trained)] if trained else []
    if tuned:
        parts.append(f"ADTR+: {', '.join(tuned)}")
    return "; ".join(parts)


def _plus_anomalies(exp: Experiment) -> str:
    """Where an experiment's ADTR+ runs took their anomalies from ('' without ADTR+)."""
    kinds = []
    for run in _run_records(exp):
        anomalies = run.get("anomalies")
        if not anomalies:
            continue
        if anomalies.get("kind") == "confetti":
            kinds.append("confetti noise on the training images (pixel labels, L_px)")
        else:
            kinds.append(f"{anomalies.get('name', '?')}, {anomalies.get('n_images', '?')} "
                         f"images (image labels, L_img)")
    return "; ".join(_unique(kinds))


def _data_fields(exp: Experiment) -> dict[str, str]:
    """The provenance fields about the data: what, where, which categories, how many images."""
    dataset = one_class_data(exp)
    if dataset:
        used = sorted({int(r["data"]["n_train_used"]) for r in _run_records(exp)
                       if "n_train_used" in r.get("data", {})})
        each = (f"{used[0]}" if len(used) == 1 else f"{used[0]}–{used[-1]}") if used else "?"
        kind = "stand-in for CIFAR-10" if is_stand_in(exp) else "real"
        return {"Data": f"{dataset.get('name', '?')} ({kind})",
                "Data path": str(dataset.get("source", "?")),
                "Classes": ", ".join(units(exp)),
                "Images (train / test)": f"{dataset.get('n_train', '?')} / "
                                         f"{dataset.get('n_test', '?')} (each class's model "
                                         f"trains on its own {each} images)"}
    infos, config = data_info(exp), exp.record.get("config", {})
    n_train = sum(int(d.get("n_train", 0)) for d in infos)
    limit = int(config.get("max_train_images") or 0)
    n_used = sum(min(int(d.get("n_train", 0)), limit or int(d.get("n_train", 0))) for d in infos)
    n_test = sum(int(d.get("n_test_good", 0)) + int(d.get("n_test_anomalous", 0)) for d in infos)
    data_name = infos[0].get("name", "?") if infos else "?"
    return {
        "Data": f"{data_name} ({'synthetic' if is_synthetic(exp) else 'real'})",
        "Data path": ", ".join(_unique(d.get("path") for d in infos)),
        "Categories": ", ".join(exp.record.get("categories", [])),
        "Images (train / test)": f"{n_used} / {n_test}" + (
            f" (the first {limit} of each category's {n_train // max(len(infos), 1)} training "
            "images)" if limit else ""),
    }


def provenance(exp: Experiment, others: Iterable[Experiment] = ()) -> dict[str, str]:
    """Everything that produced an experiment's numbers, as display strings."""
    record = exp.record
    versions, commits = _software(exp)
    config = record.get("config", {})
    size, stride = config.get("image_size", "?"), config.get("feature_stride", 16)
    grid = size // stride if isinstance(size, int) else "?"
    anomalies = _plus_anomalies(exp)
    return {
        "Experiment": exp.title,
        "Notebook": f"notebooks/{exp.notebook}.ipynb",
        "Profile": exp.profile,
        **_data_fields(exp),
        "Input size": f"{size} px ({grid}×{grid} feature grid)",
        "Backbone and weights": "; ".join(f"{n}: {w}" for n, w in backbones(exp, others)),
        "Epochs trained": _epochs(exp),
        **({"ADTR+ anomalies": anomalies} if anomalies else {}),
        "Seeds": ", ".join(str(s) for s in record.get("seeds", [])),
        "Runs": str(len(exp.runs)) if not exp.runs.empty else "reuses the main runs",
        "Device": "; ".join(_devices(exp)),
        "Software": "; ".join(versions),
        "Commit": ", ".join(commits),
        "Written": str(record.get("written_at", "?")),
        "Training time (sum over runs)": duration(record.get("wall_time_s")),
        "Notebook time": duration(exp.stamp.get("seconds")),
    }


def provenance_summary(experiments: dict[str, Experiment | None]) -> pd.DataFrame:
    """One row per experiment with the fields a reader checks first (details below it)."""
    present = [e for e in experiments.values() if e is not None]
    rows = []
    for exp in present:
        info = provenance(exp, present)
        rows.append({
            "Experiment": SHORT_TITLES.get(exp.name, exp.name), "Data": data_label(exp),
            "Backbone (weights)": "; ".join(f"{n} ({weights_kind(w)})"
                                            for n, w in backbones(exp, present)),
            "Epochs": info["Epochs trained"], "Seeds": info["Seeds"],
            "Device": "; ".join(_unique(e.split(" (")[0] for e in _devices(exp))),
            "Commit": info["Commit"]})
    return pd.DataFrame(rows)


def provenance_detail(exp: Experiment, others: Iterable[Experiment] = ()) -> pd.DataFrame:
    return pd.DataFrame(list(provenance(exp, others).items()), columns=["Field", "Value"])


def run_table(exp: Experiment) -> pd.DataFrame:
    """Every fit behind an experiment: what it trained on, with which backbone, how long."""
    rows = [{"Variant": label(r.get("variant", "?")), "Category": r.get("category"),
             "Seed": r.get("seed"), "Backbone": r["backbone"]["name"],
             "Stages": ", ".join(str(s) for s in r["backbone"].get("stages", [])),
             "Channels": r["backbone"].get("channels"),
             "Epochs": r.get("epochs_trained"), "Device": r.get("environment", {}).get("device"),
             "Commit": r.get("environment", {}).get("git_commit"),
             "Wall time": duration(r.get("wall_time_s")),
             **{METRIC_NAMES[m]: percent(r.get("metrics", {}).get(m)) for m in METRICS}}
            for r in _run_records(exp)]
    return pd.DataFrame(rows)


def data_table(exp: Experiment) -> pd.DataFrame:
    """Per category: the data set, whether it is synthetic, and its image counts."""
    return pd.DataFrame([{
        "Category": d.get("category"), "Synthetic": "yes" if d.get("synthetic") else "no",
        "Train (good)": d.get("n_train"),
        "Test good": d.get("n_test_good"), "Test anomalous": d.get("n_test_anomalous"),
        "Defect kinds": ", ".join(d.get("defects", [])),
    } for d in data_info(exp)])


def _show_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def config_table(experiments: dict[str, Experiment | None],
                 reference: dict[str, Any]) -> pd.DataFrame:
    """Each resolved parameter beside the ``paper`` profile's value; experiments with the
    same parameters share one column."""
    groups: dict[tuple, list[str]] = {}
    configs: dict[tuple, dict[str, Any]] = {}
    for name, exp in experiments.items():
        if exp is None:
            continue
        config = {k: _show_value(v) for k, v in exp.record.get("config", {}).items()}
        key = tuple(sorted(config.items()))
        groups.setdefault(key, []).append(SHORT_TITLES.get(name, name))
        configs[key] = config
    if not groups:
        return pd.DataFrame()
    everyone = len(groups) == 1 and len(next(iter(groups.values()))) > 1
    keys = _unique(k for c in [reference, *configs.values()] for k in c if k != "profile")
    rows = []
    for key in keys:
        paper = _show_value(reference.get(key, "—"))
        values = {("Ours: all experiments" if everyone else f"Ours: {', '.join(names)}"):
                  configs[group].get(key, "—") for group, names in groups.items()}
        same = all(v == paper for v in values.values())
        rows.append({"Parameter": f"`{key}`", "`paper` profile": paper, **values,
                     "Same as `paper`": "yes" if same else "**no**"})
    return pd.DataFrame(rows)


# --- benchmarks ------------------------------------------------------------------------------

def benchmark_files(results_dir: str | Path | None = None) -> list[Path]:
    return sorted((results_root(results_dir) / "benchmarks").glob("*.json"))


def benchmark_tables(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A benchmark file as (its scalar fields, its table): the table is the first list of
    records found (or the file itself when it is a list); nested fields are flattened."""
    data = json.loads(path.read_text())
    if isinstance(data, list):
        return pd.DataFrame(), pd.json_normalize(data).map(_tidy)
    table_key = next((k for k, v in data.items() if isinstance(v, list) and v
                      and all(isinstance(x, dict) for x in v)), None)
    table = pd.json_normalize(data[table_key]).map(_tidy) if table_key else pd.DataFrame()
    rest = {k: v for k, v in data.items() if k != table_key}
    flat = pd.json_normalize(rest).T.reset_index() if rest else pd.DataFrame()
    if not flat.empty:
        flat.columns = ["Field", "Value"]
        flat["Value"] = flat["Value"].map(_tidy)
    return flat, table


def batch_files(results_dir: str | Path | None = None) -> list[Path]:
    """``<profile>/executed/batch.json`` of each profile: a whole ``adtr reproduce`` batch."""
    return sorted(results_root(results_dir).glob("*/executed/batch.json"))


def _arrangement(record: dict[str, Any]) -> str:
    """How a batch record's notebooks ran: one at a time or side by side."""
    if record["jobs"] == 1:
        return "one notebook at a time"
    return f"{record['jobs']} notebooks side by side"


def batch_time_text(profile: str, experiments: dict[str, Experiment | None],
                    results_dir: str | Path | None = None) -> str:
    """How long the profile's batch took: the wall time of its ``batch.json`` where a whole
    batch was recorded, else the sum of its notebooks' stamped times."""
    path = results_root(results_dir) / profile / "executed" / "batch.json"
    if path.is_file():
        record = json.loads(path.read_text())
        return f"{duration(record['wall_time_s'])} of wall time ({_arrangement(record)})"
    seconds = sum(e.stamp.get("seconds", 0) for e in experiments.values() if e is not None)
    return f"{duration(seconds)} (the sum of its notebooks' times)"


def batch_summary(path: Path) -> tuple[str, pd.DataFrame]:
    """A batch record as one sentence and a table of its notebooks' times."""
    record = json.loads(path.read_text())
    env = record.get("environment", {})
    threads = record.get("threads_per_notebook")
    side = _arrangement(record)
    if record["jobs"] > 1 and threads:
        side += f", {threads} thread{'s' if threads > 1 else ''} each"
    text = (f"The whole `{record['profile']}` batch took **{duration(record['wall_time_s'])}** "
            f"of wall time ({side}), from generating the data to the last figure, on "
            f"{env.get('cpu_count', '?')} CPU cores ({env.get('device', '?')}), "
            f"commit `{env.get('git_commit', '?')}`, {record.get('written_at', '?')[:10]}.")
    table = pd.DataFrame([{"Notebook": f"`{n['notebook']}`", "Time": duration(n["seconds"])}
                          for n in record["notebooks"]])
    return text, table


def _row(rows: list[dict[str, Any]], benchmark: str, **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if row.get("benchmark") == benchmark and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def benchmark_targets(path: Path, batch: Path | None = None) -> pd.DataFrame:
    """The performance targets against a benchmark file's figures (and a batch record):
    one row per target the file has figures for, with the measured value, a verdict and,
    where the file has one, the best value this machine allows: the model's
    matrix-multiply FLOPs at the machine's matrix-multiply speed, against the backbone
    time measured in the same turns."""
    rows = json.loads(path.read_text()).get("rows", [])
    targets = []

    def add(target: str, measured: str, met: bool, bound: str = "") -> None:
        targets.append({"Target": target, "Measured": measured, "Met": "yes" if met else "no",
                        "Best possible here": bound})

    for precision in ("fp32", "bf16"):
        row = _row(rows, "training", profile="paper", mode="feature cache", precision=precision)
        if row:
            ratio = row["speedup_vs_backbone_in_the_loop"]
            bound = row.get("speedup_bound")
            add(f"training, paper size, {precision}: feature cache >= 2x backbone in the loop",
                f"{ratio:.2f}x", ratio >= 2, "" if bound is None else (
                    f"{bound:.2f}x: the step's {row['step_gflop']:.0f} GFLOP at "
                    f"{row['matmul_gflop_per_s']:.0f} GFLOP/s take "
                    f"{row['step_s_at_matmul_peak']:.2f} s, the backbone "
                    f"{row['backbone_s_per_batch']:.2f} s per batch"))
    row = _row(rows, "inference", profile="paper", precision="fp32")
    if row:
        share = row["reconstruction_plus_scoring_vs_backbone"]
        bound = row.get("bound_vs_backbone")
        add("inference, paper size, fp32: reconstruction + scoring <= 60 % of the backbone",
            f"{share:.0%}", share <= 0.6, "" if bound is None else (
                f"{bound:.0%}: the reconstruction's {row['reconstruction_gflop']:.0f} GFLOP "
                f"in {row['reconstruction_s_at_matmul_peak']:.2f} s, and the scoring"))
    row = _row(rows, "evaluation")
    if row:
        add(f"evaluation ({row['mode']}): <= 60 s and <= 4 GiB",
            f"{row['seconds_total']:.1f} s, {row['peak_rss_gib']:.2f} GiB",
            row["seconds_total"] <= 60 and row["peak_rss_gib"] <= 4)
    if batch is not None and batch.is_file():
        record = json.loads(batch.read_text())
        add(f"whole `{record['profile']}` notebook batch <= 60 min",
            duration(record["wall_time_s"]), record["wall_time_s"] <= 3600)
    table = pd.DataFrame(targets)
    if not table.empty and not table["Best possible here"].astype(bool).any():
        table = table.drop(columns="Best possible here")  # a file from before the bounds
    return table


#: Short headers for the benchmark tables' long field names (others: "_" shown as " ").
_BENCHMARK_HEADERS = {
    "images_per_s": "images/s",
    "speedup_vs_backbone_in_the_loop": "x backbone in the loop",
    "speedup_vs_one_process": "x one process",
    "reconstruction_plus_scoring_vs_backbone": "(recon. + score) / backbone",
    "share_backbone": "backbone share",
    "share_reconstruction": "recon. share",
    "share_map + score": "map + score share",
    "seconds_total": "total s",
    "seconds_image_auroc": "image AUROC s",
    "seconds_pixel_auroc": "pixel AUROC s",
    "seconds_aupro": "AUPRO s",
    "peak_rss_gib": "peak RSS GiB",
    "step_gflop": "step GFLOP",
    "step_gflop_per_s": "step GFLOP/s",
    "matmul_gflop_per_s": "matmul GFLOP/s",
    "step_s_at_matmul_peak": "step s at matmul peak",
    "backbone_s_per_batch": "backbone s / batch",
    "speedup_bound": "bound (x)",
    "reconstruction_gflop": "recon. GFLOP",
    "reconstruction_s_at_matmul_peak": "recon. s at matmul peak",
    "bound_vs_backbone": "bound / backbone",
    "eager_images_per_s": "eager images/s",
    "speedup_vs_eager": "x eager",
    "first_epoch_s": "first epoch s (compiling)",
    "serial_images_per_s": "serial images/s",
    "speedup_vs_serial": "x serial",
    "adtr_uses_workers": "workers adtr uses",
    "page_faults_per_batch": "page faults / batch",
    "speedup_vs_glibc_as_it_is": "x glibc as it is",
}


#: Columns that name a benchmark row; they stand in every part of a split table.
_BENCHMARK_KEYS = ("profile", "mode", "precision")


def benchmark_sections(table: pd.DataFrame, width: int = 5) -> list[tuple[str, pd.DataFrame]]:
    """A benchmark table split by its ``benchmark`` column (training, inference, ...): each
    part keeps only the columns it fills, with short headers, and at most ``width`` value
    columns beside the naming ones (a wider part continues in another table, with the rows
    that have values there), so that none is wider than the page. A table without that
    column is one part named ""."""
    if table.empty:
        return []
    if "benchmark" not in table.columns:
        return [("", table)]
    parts = []
    for name, part in table.groupby("benchmark", sort=False):
        part = part.drop(columns="benchmark")
        part = part.loc[:, (part != "").any()].reset_index(drop=True)
        keys = [c for c in part.columns if c in _BENCHMARK_KEYS]
        values = [c for c in part.columns if c not in _BENCHMARK_KEYS]
        for start in range(0, max(1, len(values)), width):
            chunk = values[start:start + width]
            piece = part[keys + chunk]
            if start:
                piece = piece[(piece[chunk] != "").any(axis=1)]
            title = str(name) if not start else f"{name}, continued"
            parts.append((title, piece.reset_index(drop=True).rename(
                columns=lambda c: _BENCHMARK_HEADERS.get(c, c.replace("_", " ")))))
    return parts


def _tidy(value: Any) -> str:
    """A benchmark cell: floats to 3 significant digits, missing values blank."""
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


# --- display (the only part that needs IPython) ------------------------------------------------

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


def figure_grid(figures: list[tuple[Path, str]], columns: int = 2) -> str:
    """MyST for figures side by side (sphinx-design grid); the build copies the files."""
    items = []
    for path, caption in figures:
        if not path.is_file():
            items.append(f":::{{grid-item}}\nFigure `{path.name}` is missing.\n:::")
            continue
        relative = os.path.relpath(path, Path.cwd())
        items.append(f":::{{grid-item}}\n```{{figure}} {relative}\n:width: 100%\n\n{caption}\n"
                     f"```\n:::")
    return f"::::{{grid}} 1 1 {columns} {columns}\n:gutter: 2\n\n" + "\n".join(items) + "\n::::"


def show_figure_grid(figures: list[tuple[Path, str]], columns: int = 2) -> None:
    if figures:
        show_markdown(figure_grid(figures, columns))


def glue_text(name: str, text: str) -> None:
    """Glue ``text`` for ``{glue:md}`name``` in a page's prose."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(text), display=False)


def produced_by(exp: Experiment, others: Iterable[Experiment] = ()) -> str:
    """One paragraph: what produced the page's numbers, with the executed notebook."""
    info = provenance(exp, others)
    runs = f"{info['Runs']} runs" if not exp.runs.empty else "the main results' models"
    which = "Classes" if "Classes" in info else "Categories"
    text = (f"**Produced by** `{info['Notebook']}` (profile `{exp.profile}`, {runs}). "
            f"Data: {info['Data']}, {which.lower()} {info[which]}. Backbone and weights: "
            f"{info['Backbone and weights']}. Input: {info['Input size']}; images "
            f"(train / test): {info['Images (train / test)']}. Epochs: "
            f"{info['Epochs trained']}; seeds: "
            f"{info['Seeds']}; device: {info['Device']}; commit `{info['Commit']}`; training "
            f"{info['Training time (sum over runs)']}, notebook {info['Notebook time']}. "
            f"Everything else: {{doc}}`provenance`.")
    if exp.executed_notebook.is_file():
        relative = os.path.relpath(exp.executed_notebook, Path.cwd())
        text += f" The executed notebook: {{download}}`{exp.notebook}.ipynb <{relative}>`."
    return text


def glue_experiment(name: str, exp: Experiment | None, variants: Iterable[str],
                    metric: str = "pixel_auroc") -> None:
    """Glue what an ablation page's prose quotes: ``paper_<v>`` for every variant of the
    paper's table and ``ours_<v>`` for ``variants`` ('not run' when missing), ``verdict``,
    ``data``, ``categories`` and ``seeds``."""
    from adtr import paper as published

    paper = exp.paper if exp is not None else published.TABLE4_PIXEL_AUROC.get(name, {})
    for variant, value in paper.items():
        glue_text(f"paper_{variant}", f"{value:.1f}")
    summary = exp.summary.set_index("variant") if exp is not None and not exp.summary.empty \
        else pd.DataFrame()
    for variant in variants:
        row = summary.loc[variant] if variant in summary.index else None
        glue_text(f"ours_{variant}", "not run" if row is None else mean_std(
            row[f"{metric}_mean"], row[f"{metric}_std"], int(row["seeds"])))
    glue_text("verdict", experiment_agreement(exp, metric).verdict if exp is not None
              and name in CLAIMS else "cannot be compared (not run)")
    glue_text("data", "no data (not run)" if exp is None else (
        "the offline synthetic data" if is_synthetic(exp) else data_label(exp)))
    glue_text("categories", plural(len(exp.record.get("categories", [])) if exp else 0,
                                   "category", "categories"))
    glue_text("seeds", plural(len(exp.record.get("seeds", [])) if exp else 0, "seed"))


def show_note(exp: Experiment | None, experiment: str) -> None:
    """The page's data admonition, or the note that the experiment has not been run."""
    show_markdown(data_note(exp) if exp is not None else missing_note(experiment))


# --- the method page -------------------------------------------------------------------------

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
     f"{c['weight_decay']:g}, {c['epochs']} epochs, lr × 0.1 at {c['lr_step_epoch']}"),
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


def stage_info(backbone: str, stages: Iterable[int]) -> tuple[int, list[int]]:
    """C of the concatenated stages and their strides, asked of timm (no weights loaded)."""
    import timm

    info = timm.create_model(backbone, features_only=True, pretrained=False).feature_info
    stages = list(stages)
    return sum(info.channels()[s] for s in stages), [info.reduction()[s] for s in stages]


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


def show_matplotlib(fig: Any, caption: str) -> None:
    """Display a matplotlib figure as a PNG with a caption (no global pyplot state)."""
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    display(Image(data=buffer.getvalue()))
    show_markdown(f"*{caption}*")


def show_provenance(name: str, experiments: dict[str, Experiment | None]) -> None:
    """An experiment's provenance fields and its data per category."""
    exp = experiments.get(name)
    if exp is None:
        show_markdown(missing_note(name))
        return
    others = [e for e in experiments.values() if e is not None]
    show_table(provenance_detail(exp, others), f"{exp.title}: what produced it.")
    show_table(data_table(exp), f"{exp.title}: the data, per category.")


def show_runs(name: str, experiments: dict[str, Experiment | None]) -> None:
    exp = experiments.get(name)
    if exp is not None and _run_records(exp):
        show_table(run_table(exp), f"{exp.title}: every run, with its own metrics in %.")


def notebook_parameters(notebook: str) -> str:
    """The source of a notebook's ``parameters`` cell (what papermill can set)."""
    path = project_root() / "notebooks" / f"{notebook}.ipynb"
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    return ""


def profiles_table() -> pd.DataFrame:
    """The parameters on which the named profiles differ, one column per profile."""
    from adtr import profiles

    configs = {name: profiles.resolve(name).to_dict() for name in profiles.profile_names()}
    keys = [k for k in next(iter(configs.values())) if k != "profile"
            and len({_show_value(c[k]) for c in configs.values()}) > 1]
    return pd.DataFrame([{"Parameter": f"`{k}`", **{f"`{n}`": _show_value(c[k])
                                                    for n, c in configs.items()}}
                         for k in keys])


def notebooks_table() -> pd.DataFrame:
    """Every experiment notebook with the page that shows it and the folder it writes
    (under ``results/<profile>/``)."""
    return pd.DataFrame([{"Notebook": f"`{notebook}`",
                          "Page": f"{{doc}}`{TITLES[name]} <{PAGES[name]}>`",
                          "Writes": f"`{name}/`"}
                         for name, notebook in NOTEBOOKS.items()])


def notebook_times(experiments: dict[str, Experiment | None]) -> pd.DataFrame:
    """How long each notebook of the rendered profile took (from the batch's stamps)."""
    rows = [{"Notebook": f"`{e.notebook}`", "Experiment": e.title,
             "Notebook time": duration(e.stamp.get("seconds")),
             "Training time (sum over runs)": duration(e.record.get("wall_time_s"))}
            for e in experiments.values() if e is not None]
    return pd.DataFrame(rows)
