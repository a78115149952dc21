"""What the book's pages call: read ``results/``, set the paper's numbers beside ours, say
plainly where they agree, and trace every number back to the runs that produced it.

The book renders one profile, named by the environment variable ``ADTR_BOOK_PROFILE``
(default ``cpu``), from ``results/`` (or the folder ``$ADTR_BOOK_RESULTS``). Nothing here
trains or computes a metric: every number a page shows is read from
``results/<profile>/<experiment>/results.json`` (written by the experiment notebooks through
``adtr.experiments``) and only formatted here. Result files hold fractions in [0, 1]; the
paper's numbers are percentages, and so is everything shown.

Kept light on purpose (no torch import), so that a page executes in a second.

The pages call everything as ``report.X``; it lives in these modules, each importing only
those listed before it:

- ``loading``: names of experiments, metrics and variants; the book's profile; ``load``.
- ``formatting``: percentages, mean ± std, durations, words; MyST tables and figure grids.
- ``data``: what data the numbers come from, and the admonitions that say so.
- ``verdicts``: the paper's claims and the judgement of ours against them, pure functions.
- ``tables``: the paper's numbers beside ours, overall and per category or class.
- ``study``: the identity-shortcut and sensitivity pages' tables and sentences.
- ``convergence``: the convergence page: the long runs, the rule that picks the book's
  schedule, the book's runs against it, the seed check (``report.convergence.X``).
- ``statements``: the sentences the pages say about their claims, main results, Fig. 5 and
  ADTR+.
- ``glance``: the first screens: the at-a-glance table of every claim, the intro's findings,
  and each page's verdict line.
- ``tracing``: provenance of every number; notebooks, profiles and parameters.
- ``benchmarks``: benchmark and batch records, and the performance targets.
- ``method``: the method page's open choices and architecture figure.
- ``peers``: the pages beyond the paper that set ADTR beside anomalib's PaDiM and PatchCore
  and beside one model for all categories (called as ``report.peers.X``).
- ``plots``: figures drawn from the results at build time (paired-difference forest plots).
- ``display``: the only part that needs IPython: showing and glueing in a page.
"""

from adtr.report.benchmarks import (
    batch_files,
    batch_summary,
    batch_time_text,
    benchmark_files,
    benchmark_sections,
    benchmark_tables,
    benchmark_targets,
    paper_estimate,
)
from adtr.report.data import (
    DATASET_DESCRIPTIONS,
    DATASET_NAMES,
    EXTERNAL_DESCRIPTIONS,
    data_info,
    data_label,
    data_note,
    is_stand_in,
    is_synthetic,
    missing_note,
    one_class_data,
    one_class_note,
    profile_sentence,
    stale_note,
    units,
)
from adtr.report.display import (
    glue_experiment,
    glue_text,
    show_figure,
    show_figure_grid,
    show_forest,
    show_markdown,
    show_matplotlib,
    show_note,
    show_provenance,
    show_runs,
    show_schedule,
    show_table,
)
from adtr.report.formatting import (
    duration,
    figure_grid,
    markdown_table,
    mean_std,
    number_word,
    ordinal,
    over_seeds,
    percent,
    plural,
    signed,
)
from adtr.report.glance import PLUS_OVERVIEW_METRIC, finding, findings, overview, regime_sentence
from adtr.report.loading import (
    DEFAULT_PROFILE,
    EXPERIMENTS,
    LABELS,
    METRIC_NAMES,
    METRICS,
    NOTEBOOKS,
    PAGES,
    PLUS_LABELS,
    PROFILE_ENV,
    RESULTS_ENV,
    SHORT_TITLES,
    TITLES,
    Experiment,
    book_profile,
    label,
    load,
    load_all,
    paper_values,
    results_root,
)
from adtr.report.method import (
    OPEN_CHOICES,
    architecture_figure,
    backbone_widths,
    choices_table,
    model_sentence,
    stage_info,
)
from adtr.report.statements import (
    KIND_FOUND,
    defect_kind_statement,
    main_statement,
    plus_difference_caption,
    plus_headline,
    plus_settings,
    plus_statement,
    statement,
    tsne_statement,
)
from adtr.report.study import (
    changed_factors,
    sensitivity_statement,
    sensitivity_table,
    setting_metrics,
    shortcut_statement,
    shortcut_table,
)
from adtr.report.tables import (
    comparison_table,
    defect_kind_table,
    interval_table,
    main_table,
    per_category_metrics,
    per_category_variants,
    plus_per_unit,
    plus_table,
    plus_table_by_method,
    separation_table,
    weakest_category,
)
from adtr.report.tracing import (
    backbones,
    config_table,
    data_table,
    deviations_of_all,
    deviations_table,
    notebook_parameters,
    notebook_times,
    notebooks_table,
    produced_by,
    profiles_table,
    provenance,
    provenance_detail,
    provenance_summary,
    run_table,
    weights_kind,
)
from adtr.report.verdicts import (
    CLAIMS,
    NOISE_FACTOR,
    PAPER_DATA,
    PARTLY_SEPARATED,
    SAME_POINTS,
    SEPARATED,
    Claim,
    ClaimVerdict,
    Comparison,
    PlusDifference,
    comparisons_of,
    experiment_verdict,
    our_values,
    paper_methods,
    plus_differences,
    ranks,
)
from adtr.schema import unit_column

__all__ = [
    "architecture_figure", "backbone_widths", "backbones", "batch_files", "batch_summary",
    "batch_time_text",
    "benchmark_files", "benchmark_sections", "benchmark_tables", "benchmark_targets",
    "book_profile", "choices_table", "Claim", "CLAIMS", "ClaimVerdict", "Comparison",
    "comparison_table", "comparisons_of", "config_table", "data_info", "data_label",
    "data_note", "data_table", "DATASET_DESCRIPTIONS", "DATASET_NAMES", "DEFAULT_PROFILE",
    "defect_kind_statement", "defect_kind_table", "deviations_of_all", "deviations_table",
    "duration", "Experiment", "experiment_verdict", "EXPERIMENTS", "EXTERNAL_DESCRIPTIONS",
    "figure_grid", "finding", "findings", "glue_experiment", "glue_text", "interval_table",
    "is_stand_in",
    "is_synthetic", "KIND_FOUND", "label", "LABELS", "load", "load_all", "main_statement",
    "main_table", "markdown_table", "mean_std", "METRIC_NAMES", "METRICS", "missing_note",
    "model_sentence",
    "NOISE_FACTOR", "notebook_parameters", "notebook_times", "NOTEBOOKS", "notebooks_table",
    "number_word", "one_class_data", "one_class_note", "OPEN_CHOICES", "ordinal", "our_values",
    "over_seeds", "overview", "PAGES", "PAPER_DATA", "paper_estimate", "paper_methods",
    "paper_values", "PARTLY_SEPARATED", "per_category_metrics", "per_category_variants",
    "percent", "plural", "plus_difference_caption", "plus_differences", "plus_headline",
    "PLUS_LABELS", "PLUS_OVERVIEW_METRIC", "plus_per_unit", "plus_settings", "plus_statement",
    "plus_table", "plus_table_by_method", "PlusDifference", "produced_by", "PROFILE_ENV",
    "profile_sentence", "profiles_table",
    "provenance", "provenance_detail", "provenance_summary", "ranks", "regime_sentence",
    "RESULTS_ENV", "results_root", "run_table", "SAME_POINTS", "changed_factors",
    "sensitivity_statement",
    "sensitivity_table", "SEPARATED", "separation_table", "setting_metrics", "SHORT_TITLES",
    "shortcut_statement", "shortcut_table", "show_figure", "show_figure_grid", "show_forest",
    "show_markdown", "show_matplotlib", "show_note", "show_provenance", "show_runs",
    "show_schedule", "show_table", "signed", "stage_info", "stale_note", "statement", "TITLES",
    "tsne_statement", "unit_column", "units", "weakest_category", "weights_kind",
]
