"""Reading ``results/``: the names of the experiments, metrics and variants, the profile the
book renders, and each experiment's ``results.json`` (with its notebook's stamp) as an
``Experiment``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from adtr import catalog
from adtr.records import project_root
from adtr.schema import ExperimentRecord, ExperimentResults

PROFILE_ENV = "ADTR_BOOK_PROFILE"
RESULTS_ENV = "ADTR_BOOK_RESULTS"
DEFAULT_PROFILE = "cpu"
METRICS, METRIC_NAMES = catalog.METRICS, catalog.METRIC_NAMES
# The experiments' names, notebooks, pages, titles and variant labels, from the catalog.
EXPERIMENTS = tuple(catalog.EXPERIMENTS)
NOTEBOOKS = {e.name: e.notebook for e in catalog.EXPERIMENTS.values()}
TITLES = {e.name: e.title for e in catalog.EXPERIMENTS.values()}
SHORT_TITLES = {e.name: e.short_title for e in catalog.EXPERIMENTS.values()}
#: The book page (under ``book/``) that shows each experiment.
PAGES = {e.name: e.page for e in catalog.EXPERIMENTS.values()}
#: Labels of the ablation variants (Table 4).
LABELS = {name: text for e in catalog.EXPERIMENTS.values() if e.claim is not None
          for name, text in e.labels.items()}
#: The ADTR+ pages compare two methods, not ablation variants.
PLUS_LABELS = catalog.get("adtr_plus").labels


def label(variant: str) -> str:
    """The display name of a variant (its key when it has none)."""
    return LABELS.get(variant, variant)


def paper_values(experiment: str) -> dict[str, Any]:
    """The paper's values that the catalog sets beside an experiment: per variant (Table 4)
    or per method ({"ADTR": {metric: value}}, the main results)."""
    entry = catalog.EXPERIMENTS.get(experiment)
    if entry is None:
        return {}
    return entry.paper or catalog.PAPER_MEANS.get(experiment, {})


def book_profile() -> str:
    """The profile the book renders: ``$ADTR_BOOK_PROFILE``, else ``cpu``."""
    return os.environ.get(PROFILE_ENV, "").strip() or DEFAULT_PROFILE


def results_root(results_dir: str | Path | None = None) -> Path:
    """``results_dir``, else ``$ADTR_BOOK_RESULTS`` (e.g. an unpacked CI artifact), else
    ``results/`` of the project."""
    chosen = results_dir or os.environ.get(RESULTS_ENV, "").strip()
    return Path(chosen).resolve() if chosen else project_root() / "results"


@dataclass(frozen=True)
class Experiment:
    """One experiment's ``results.json`` (read through ``adtr.schema``), the folder it lies
    in, and the notebook's stamp."""

    name: str
    profile: str
    folder: Path
    results: ExperimentResults
    stamp: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> ExperimentRecord:
        return self.results.record

    @property
    def paper(self) -> dict[str, Any]:
        return paper_values(self.name)

    @property
    def summary(self) -> pd.DataFrame:
        frame = pd.DataFrame([row.to_dict() for row in self.results.summary])
        # a standard deviation over one seed is NaN, written as null: read it back as NaN
        numeric = [c for c in frame.columns if c.endswith(("_mean", "_std"))]
        frame[numeric] = frame[numeric].apply(pd.to_numeric)
        return frame

    @property
    def runs(self) -> pd.DataFrame:
        return pd.DataFrame([row.to_dict() for row in self.results.runs])

    def table(self, name: str) -> Any:
        """One of the experiment's own tables (``schema.TABLES``); empty when it has none."""
        return self.results.tables.get(name, [])

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
    return Experiment(experiment, profile, folder, ExperimentResults.read(path), stamp)


def load_all(profile: str | None = None,
             results_dir: str | Path | None = None) -> dict[str, Experiment | None]:
    return {name: load(name, profile, results_dir) for name in EXPERIMENTS}
