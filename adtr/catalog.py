"""The experiments: one entry each, read by the notebooks, ``reproduce``, ``report`` and the
book's pages. Adding a variant or an experiment is an edit here and nowhere else.

Each entry says which notebook runs it and which page shows it, its variants (the name a
result file uses, the label a reader sees, the run parameters it changes), the paper's
values beside them, the metric the paper's claim is about, the claim itself, and the
schedule (``profiles.SCHEDULES``) its runs use. The paper's numbers are never used to
compute anything: they are shown beside ours.

Sources of the paper's numbers: Table 4 (pixel AUROC, MVTec-AD mean, %) from the paper's
text; the main-result means as reported (per-category values not verified); Fig. 5 has no
number, only its 600 sampled vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from adtr.errors import ConfigError
from adtr.schema import METRIC_NAMES, METRICS  # noqa: F401 (read by the notebooks)


@dataclass(frozen=True)
class Variant:
    """One row of an experiment: its name in result files, its label, what it changes."""

    name: str
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    paper: float | None = None  # the paper's value of the experiment's metric, in %
    # a reference row, not one of the paper's variants: shown and compared with
    # ``reference_for`` (default: the variant the claim favours), never part of the claim
    reference: bool = False
    reference_for: str = ""
    reference_kind: str = "without training"  # what kind of reference, as a reader reads it


@dataclass(frozen=True)
class Claim:
    """What one of the paper's experiments claims, in a form the numbers can be checked by.

    ``comparisons`` are the (better, worse) pairs of variants the claim is about, as the
    paper states it; each is decided by the paired confidence interval of its difference
    (``adtr.stats.paired_differences``). Pairs with a variant that was not run are left out.
    """

    text: str
    comparisons: tuple[tuple[str, str], ...] = ()
    reading: str = ""  # how the claim is read into comparisons, where it is not literal
    # pairs of stand-ins for the paper's variants (a substitute test), and what stands in
    # for what and why
    substitutes: tuple[tuple[str, str], ...] = ()
    substitute_reading: str = ""


#: The kinds of experiment (``Experiment.kind``): the main results; a Table 4 ablation
#: (a claim decided by paired intervals); Fig. 5; a method against ADTR (ADTR+, the
#: one-class setting); ADTR against other methods (peers, unified); a study beyond the
#: paper (shortcut, sensitivity, convergence).
KINDS = ("main", "ablation", "figure", "method", "peers", "study")


@dataclass(frozen=True)
class Experiment:
    """One experiment of the book."""

    name: str  # its folder under results/<profile>/
    notebook: str  # notebooks/<notebook>.ipynb
    page: str  # book/<page>.md
    title: str
    short_title: str
    # what kind of result it is, which decides how the book summarises it (``KINDS``)
    kind: str = "ablation"
    schedule: str = "main"  # profiles.SCHEDULES
    metric: str = "pixel_auroc"  # what the paper's claim is about
    variants: tuple[Variant, ...] = ()
    claim: Claim | None = None
    one_class: bool = False  # the one-class data sets, not an MVTec-layout folder
    paper_data: str = "MVTec-AD"  # what the paper's values were measured on
    # (a, b) pairs compared by paired intervals beyond the claim's (experiments beyond the paper)
    pairs: tuple[tuple[str, str], ...] = ()
    # at most this many of the profile's seeds when none are given (0: all), for the batch's time
    max_seeds: int = 0
    # Table 4c: every backbone's width d (and feed-forward 4d) at the profile's d / C
    same_width_ratio: bool = False

    @property
    def compared(self) -> tuple[Variant, ...]:
        """The paper's variants, without the reference rows."""
        return tuple(v for v in self.variants if not v.reference)

    @property
    def paper(self) -> dict[str, float]:
        """The paper's value of ``metric`` for each variant it ran (%)."""
        return {v.name: v.paper for v in self.variants if v.paper is not None}

    @property
    def labels(self) -> dict[str, str]:
        return {v.name: v.label for v in self.variants}

    def variant_overrides(self) -> dict[str, dict[str, Any]]:
        return {v.name: dict(v.overrides) for v in self.variants}


#: The paper's MVTec-AD means as reported (image and pixel AUROC, %); per-category values
#: not verified.
PAPER_MVTEC = {"ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2},
               "ADTR+": {"image_auroc": 96.9, "pixel_auroc": 97.5}}
#: The paper's CIFAR-10 one-class image AUROC means as reported (%).
PAPER_CIFAR10 = {"ADTR": 94.7, "ADTR+": 96.1}
#: Fig. 5 samples this many difference vectors (normal : anomalous = 1 : 1).
FIG5_SAMPLES = 600
#: The image AUROC at which a defect kind counts as found on its own (defect-kind tables).
KIND_FOUND = 0.90

#: The paper's backbones, then those whose ImageNet weights ship in pip packages.
PAPER_BACKBONES = ("resnet18", "resnet34", "efficientnet_b0", "efficientnet_b4")
PACKAGED_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
#: Table 4c's packaged backbones: the two ends of the family (Lite1 is left out of the
#: offline batch for its time; ``adtr fit --backbone efficientnet_lite1`` runs it).
TABLE_4C_PACKAGED = ("efficientnet_lite0", "efficientnet_lite2")

_ADTR = Variant("adtr", "ADTR")
#: What reconstruction with no learning gives: the residual of the projection on the first
#: d principal components of the training features (``adtr.model.fit_pca``).
_PCA = Variant("pca", "PCA residual (no training)", {"variant": "pca"}, reference=True)
_ADTR_PLUS = Variant("adtr_plus", "ADTR+", {"objective": "adtr_plus"})
#: The paper's Table 4a variants.
_TABLE_4A = (Variant("cnn", "CNN", {"variant": "cnn"}, 94.4),
             Variant("no_attention", "w/o Attn", {"variant": "no_attention"}, 94.8),
             Variant("no_query", "w/o Query", {"variant": "no_query"}, 94.2),
             Variant("adtr", "Attn + Query (ADTR)", {}, 97.2))


@dataclass(frozen=True)
class Setting:
    """One point of the sensitivity study: what it changes in the profile's regime."""

    name: str
    label: str
    overrides: dict[str, Any]
    claims: tuple[str, ...] = ()  # () = every experiment of SENSITIVITY_CLAIMS


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment("main", "01_main_results", "main_results", "Main results", "Main results",
               kind="main", variants=(_ADTR,)),
    Experiment(
        "attention_query", "02_attention_query", "attention_query",
        "Table 4a: attention and query", "Table 4a",
        variants=(*_TABLE_4A, _PCA),
        claim=Claim("attention plus the auxiliary query reconstructs better anomaly maps than "
                    "a CNN, a transformer without attention and one without the query",
                    comparisons=(("adtr", "cnn"), ("adtr", "no_attention"),
                                 ("adtr", "no_query")))),
    Experiment(
        "target", "03_target", "target", "Table 4b: reconstruction target", "Table 4b",
        # both targets at their own scale, as the book's regime keeps features; the pixels
        # standardised per channel are the other scale, a labelled row beside the claim
        variants=(Variant("pixels", "Pixels", {"variant": "pixels", "backbone": "pixels"},
                          91.3),
                  Variant("features", "Features", {}, 97.2),
                  Variant("pixels_standardised", "Pixels (standardised)",
                          {"variant": "pixels", "backbone": "pixels", "standardize": True},
                          reference=True, reference_kind="the other scale"),
                  Variant("pca_pixels", "PCA residual of pixels (no training)",
                          {"variant": "pca", "backbone": "pixels"},
                          reference=True, reference_for="pixels"),
                  _PCA),
        claim=Claim("reconstructing backbone features beats reconstructing raw pixels",
                    comparisons=(("features", "pixels"),),
                    reading="both at their own scale (features and pixels unstandardised); "
                            "the standardised pixels are shown beside them")),
    Experiment(
        "backbone", "04_backbone", "backbone", "Table 4c: backbone", "Table 4c",
        variants=tuple(
            Variant(name, label, {"backbone": name}, paper) for name, label, paper in zip(
                PAPER_BACKBONES + TABLE_4C_PACKAGED,
                ("ResNet-18", "ResNet-34", "EfficientNet-B0", "EfficientNet-B4",
                 "EfficientNet-Lite0", "EfficientNet-Lite2"),
                (95.3, 95.7, 96.4, 97.2, None, None), strict=True)),
        claim=Claim("every backbone does well, and a deeper one does somewhat better",
                    comparisons=(("efficientnet_b4", "resnet18"),
                                 ("efficientnet_lite2", "efficientnet_lite0")),
                    reading="the paper states no strict order; we test its two ends, the "
                            "deepest against the shallowest backbone of a family, and show "
                            "every backbone's value",
                    substitutes=(("efficientnet_lite2", "efficientnet_lite0"),),
                    substitute_reading=(
                        "the paper's backbones (ResNet-18 and -34, EfficientNet-B0 and -B4) "
                        "have no ImageNet weights that ship offline; EfficientNet-Lite0 and "
                        "Lite2, whose weights ship in pip packages, stand in for the "
                        "shallow and the deep end of one family, each with its "
                        "reconstruction width d at the same share of its channels")),
        same_width_ratio=True),
    Experiment(
        "scales", "05_scales", "scales", "Table 4d: feature scales", "Table 4d",
        # the last layer is the deepest of the set-up's stages (experiments.variants resolves it)
        variants=(Variant("last_layer", "Last layer", {"stages": "deepest"}, 96.0),
                  Variant("multi_scale", "Multi-scale", {}, 97.2)),
        claim=Claim("multi-scale features beat the deepest stage alone",
                    comparisons=(("multi_scale", "last_layer"),))),
    Experiment("tsne", "06_tsne", "tsne", "Fig. 5: t-SNE of d(:, u)", "Fig. 5",
               kind="figure", variants=(_ADTR,)),
    Experiment("adtr_plus", "07_adtr_plus", "adtr_plus", "ADTR+: fine-tuning with anomalies",
               "ADTR+", kind="method", variants=(_ADTR, _ADTR_PLUS),
               pairs=(("adtr_plus", "adtr"),)),
    Experiment("oneclass", "08_one_class", "one_class", "One-class setting (CIFAR-10 table)",
               "One-class", kind="method", schedule="oneclass", metric="image_auroc",
               variants=(_ADTR, _ADTR_PLUS), one_class=True, paper_data="CIFAR-10"),
    # Beyond the paper: its Eq. 4-5 argument measured, and where each claim holds.
    Experiment("shortcut", "09_shortcut", "shortcut", "The identity shortcut", "Shortcut",
               kind="study", variants=_TABLE_4A, paper_data="(not measured in the paper)"),
    Experiment("convergence", "13_convergence", "convergence",
               "Convergence: how long each model needs to learn", "Convergence",
               kind="study", paper_data="(not measured in the paper)"),
    Experiment("sensitivity", "10_sensitivity", "sensitivity", "Where each claim holds",
               "Sensitivity", kind="study", variants=_TABLE_4A,
               paper_data="(not measured in the paper)"),
    # Beyond the paper: what a reader would use instead, and one model for all categories.
    Experiment("peers", "11_peers", "peers", "ADTR among its peers", "Peers",
               kind="peers", metric="image_auroc",
               variants=(_ADTR, _ADTR_PLUS, Variant("padim", "PaDiM (anomalib)"),
                         Variant("patchcore", "PatchCore (anomalib)")),
               pairs=(("adtr", "padim"), ("adtr", "patchcore"), ("adtr_plus", "padim"),
                      ("adtr_plus", "patchcore")),
               paper_data="MVTec-AD, as published", max_seeds=1),
    Experiment("unified", "12_unified", "unified", "One model for all categories", "Unified",
               kind="peers", metric="image_auroc",
               variants=(replace(_ADTR, label="ADTR per category"),
                         Variant("unified", "ADTR unified (one model)")),
               pairs=(("adtr", "unified"),), paper_data="MVTec-AD, as published",
               max_seeds=1),
)}

#: Published MVTec-AD means (%) set beside the peers and the unified setting: as each
#: paper reports them, on the real data set with its own backbone, never computed here.
PUBLISHED: dict[str, dict[str, float]] = {
    "ADTR (EfficientNet-B4, one model per category)": PAPER_MVTEC["ADTR"],
    "PatchCore (WideResNet-50)": {"image_auroc": 99.2, "pixel_auroc": 98.1, "aupro": 94.4},
    "UniAD (unified)": {"image_auroc": 96.7, "pixel_auroc": 96.8},
    "Dinomaly (unified)": {"image_auroc": 99.6, "pixel_auroc": 98.4},
}

#: The settings of the sensitivity study: each changes one factor of the profile's regime
#: that changed which Table 4 variant came first in earlier, smaller set-ups of this book.
#: Every setting decides every claim of ``SENSITIVITY_CLAIMS``. Left out, for the batch's
#: time: a width below the channels (``Setting("narrow", "d = 128, a bottleneck below the
#: channels", {"hidden_dim": 128, "feedforward_dim": 512})``) and no dropout
#: (``Setting("no_dropout", "dropout 0", {"dropout": 0.0})``): the book's regime differs
#: from those set-ups in both, and either line added below takes it back in. Training
#: length is not a setting: the convergence study (``CONVERGENCE``) trains every variant
#: to its plateau.
SENSITIVITY_SETTINGS: tuple[Setting, ...] = (
    Setting("base", "the book's regime", {}),
    Setting("standardised", "per-channel standardised features", {"standardize": True}),
)
SENSITIVITY_CLAIMS = ("attention_query", "target", "scales")
#: The sensitivity study's categories: the first texture and this many objects of the set-up
#: (on the generated data: brick, then coins and horse, an object with layout defects).
SENSITIVITY_OBJECTS = 2

@dataclass(frozen=True)
class ConvergenceStudy:
    """What the convergence study (``adtr.convergence``) runs and how it reads its curves.

    Long runs: every trained variant of ``claims`` (one run per distinct set of
    parameters, the training-free references left out) on ``categories`` where the data has
    them (else its first texture and first object), one seed,
    ``profiles.LONG_EPOCHS`` epochs with the usual single cut at 80 %. The rule: the book's
    schedule is the fewest epochs (a multiple of the probes' spacing) whose lr cut (at 80 %) comes
    no earlier than the epoch from which no variant's category-mean pixel AUROC rises by
    more than ``tolerance`` before the long runs' own cut. The seed check trains
    ``seed_variants`` with ``seeds`` on ``seed_categories`` (the same fallback) at the book's
    schedule.
    """

    claims: tuple[str, ...] = ("attention_query", "target", "scales")
    # every category of the generated set, so that each Table 4 claim can be read on all of
    # them at a schedule the rule accepts (on other data: those of them it has, else its
    # first texture and first object)
    categories: tuple[str, ...] = ("brick", "coins", "grass", "gravel", "horse", "logo")
    # the seed check's: the texture and the object with the lowest pixel AUROC of ADTR in the
    # book's earlier 40-epoch batch, the two with the most left to learn, and horse, the object
    # with layout defects on which Table 4a's pairs differ most at the book's schedule
    seed_categories: tuple[str, ...] = ("grass", "coins", "horse")
    tolerance: float = 0.002  # AUROC, i.e. 0.2 points
    seed_variants: tuple[str, ...] = ("adtr", "cnn")
    seeds: tuple[int, ...] = (0, 1, 2)


CONVERGENCE = ConvergenceStudy()

#: The paper's main-result means set beside each experiment that has them.
PAPER_MEANS: dict[str, dict[str, Any]] = {
    "main": PAPER_MVTEC, "adtr_plus": PAPER_MVTEC,
    "oneclass": {"cifar10_image_auroc": PAPER_CIFAR10},
    "peers": PUBLISHED, "unified": PUBLISHED,
}

def get(name: str) -> Experiment:
    """The experiment called ``name``; ConfigError naming the known ones otherwise."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; choose one of {list(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def by_notebook(notebook: str) -> Experiment | None:
    """The experiment a notebook runs (None for a notebook outside the catalog)."""
    return next((e for e in EXPERIMENTS.values() if e.notebook == notebook), None)
