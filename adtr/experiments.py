"""What the experiment notebooks call: set-up from parameters, grids of runs, result files.

A notebook takes its experiment from ``adtr.catalog``, resolves its parameters with
``setup`` (an MVTec-layout folder) or ``one_class_setup`` (the one-class data sets), runs
every (variant, category or class, seed) with ``run_grid`` and writes its tables and
figures under ``results/<profile>/<experiment>/`` with ``save_table`` and
``save_figure``. Identical runs are shared between notebooks: a run's folder is keyed by
its identity (``pipeline.run_key``: parameters, data, code), and a finished run is read
back instead of retrained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from adtr import catalog, data, oneclass, pipeline, profiles, stats, synth, train
from adtr.catalog import METRICS
from adtr.errors import AdtrError, ConfigError, DataError, SchemaError
from adtr.features import array_digest
from adtr.records import atomic_path, environment, project_root, run_record, write_csv
from adtr.schema import (
    ExperimentRecord,
    ExperimentResults,
    RunRecord,
    RunResult,
    RunRow,
    SummaryRow,
    unit_column,
)

#: Seeds each profile runs for the experiments (the paper reports single runs).
EXPERIMENT_SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "paper": [0]}


def absolute(path: str | Path) -> Path:
    """``path`` relative to the project root unless it is absolute."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


def _seeds(profile: str, seeds: list[int] | None) -> list[int]:
    seeds = list(seeds) if seeds else EXPERIMENT_SEEDS[profile]
    if any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be non-negative integers, got {seeds}")
    return seeds


@dataclass
class Setup:
    """A notebook's resolved parameters on an MVTec-layout folder."""

    base: profiles.RunConfig
    categories: list[str]
    seeds: list[int]
    results_dir: Path
    runs_dir: Path
    data_info: dict[str, dict] = field(default_factory=dict)
    data_digest: str = ""  # of every image and mask of the chosen categories

    @property
    def profile(self) -> str:
        return self.base.profile

    @property
    def units(self) -> list[str]:
        return self.categories

    def unit_name(self, category: str) -> str:
        return category

    def run_data(self, config: profiles.RunConfig, category: str) -> pipeline.RunData:
        return pipeline.category_data(config, category)

    def describe(self) -> dict[str, Any]:
        return {"profile": self.profile, "config": self.base.to_dict(),
                "categories": self.categories, "seeds": self.seeds, "data": self.data_info}


def setup(profile: str = "cpu", data_root: str | None = None,
          categories: list[str] | None = None, backbone: str | None = None,
          epochs: int | None = None, image_size: int | None = None,
          seeds: list[int] | None = None, device: str | None = None,
          results_dir: str = "results", runs_dir: str = "runs", schedule: str = "main",
          max_seeds: int = 0, **overrides: Any) -> Setup:
    """Resolve a notebook's parameters; generate the offline data set if it is missing.

    ``None`` means "the profile's value"; ``schedule`` ("main", "oneclass": the experiment's
    ``catalog`` entry says which) applies that schedule's overrides
    (``profiles.SCHEDULES``). ``max_seeds`` (the experiment's, 0 = all): at most that many
    of the profile's seeds when ``seeds`` is not given. Only the offline profiles generate
    data: the ``paper`` profile expects MVTec-AD at ``data_root`` and says so if it is
    absent.
    """
    base = profiles.resolve(profile, schedule, data_root=data_root, backbone=backbone,
                            epochs=epochs, image_size=image_size, device=device, **overrides)
    root = absolute(base.data_root)
    base = profiles.with_overrides(base, data_root=str(root))
    if not root.exists() and profile != "paper" and data_root is None:
        synth.generate(root, seed=0, **profiles.SYNTH_SIZES[profile])
    available = data.available_categories(root)
    chosen = list(categories) if categories else available
    if not chosen:
        raise DataError(f"no categories found in {root}; {data.EXPECTED_TREE}")
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise DataError(f"categories {unknown} not found in {root}; available: {available}")
    info, samples = {}, []
    for category in chosen:
        train_samples = data.list_samples(root, category, "train")
        test_samples = data.list_samples(root, category, "test")
        info[category] = data.describe_root(root, category, train_samples, test_samples)
        samples += train_samples + test_samples
    chosen_seeds = _seeds(profile, seeds)
    if max_seeds and not seeds:
        chosen_seeds = chosen_seeds[:max_seeds]
    return Setup(base, chosen, chosen_seeds, absolute(results_dir),
                 absolute(runs_dir), info, data.samples_digest(samples))


@dataclass
class OneClassSetup:
    """A one-class notebook's resolved parameters and data."""

    base: profiles.RunConfig
    dataset: oneclass.ImageSet
    external: np.ndarray
    external_name: str
    classes: list[int]
    seeds: list[int]
    results_dir: Path
    runs_dir: Path
    _runs: dict[int, pipeline.RunData] = field(default_factory=dict, repr=False)

    @property
    def profile(self) -> str:
        return self.base.profile

    @property
    def units(self) -> list[int]:
        return self.classes

    @property
    def data_digest(self) -> str:
        parts = (self.dataset.train_images, self.dataset.train_labels,
                 self.dataset.test_images, self.dataset.test_labels, self.external)
        return hashlib.sha256("".join(map(array_digest, parts)).encode()).hexdigest()[:16]

    def unit_name(self, normal: int) -> str:
        return self.dataset.classes[normal]

    def run_data(self, config: profiles.RunConfig, normal: int) -> pipeline.RunData:
        if normal not in self._runs:  # the same for every variant and seed of a class
            self._runs[normal] = pipeline.one_class_data(self.dataset, normal, self.external,
                                                         self.external_name)
        return self._runs[normal]

    def describe(self) -> dict[str, Any]:
        return {"profile": self.profile, "config": self.base.to_dict(),
                "dataset": self.dataset.describe(), "classes": self.classes,
                "seeds": self.seeds, "external_anomalies": {
                    "name": self.external_name, "n_images": len(self.external)}}


def one_class_setup(profile: str = "cpu", dataset: str | None = None,
                    cifar_root: str | None = None, cifar100_root: str | None = None,
                    classes: list[int] | None = None, backbone: str | None = None,
                    epochs: int | None = None, image_size: int | None = None,
                    seeds: list[int] | None = None, device: str | None = None,
                    results_dir: str = "results", runs_dir: str = "runs",
                    **overrides: Any) -> OneClassSetup:
    """Resolve the one-class notebook's parameters (``None`` = the profile's value).

    The ``paper`` profile runs CIFAR-10 from ``cifar_root`` (CIFAR-100 from ``cifar100_root``
    as external anomalies); the offline profiles run the digits stand-in.
    """
    name = dataset or (oneclass.CIFAR10 if profile == "paper" else oneclass.DIGITS)
    if name not in oneclass.DATASETS:
        raise AdtrError(f"unknown one-class dataset {name!r}; choose one of "
                        f"{list(oneclass.DATASETS)}")
    base = profiles.resolve(profile, catalog.get("oneclass").schedule, backbone=backbone,
                            epochs=epochs, image_size=image_size, device=device, **overrides)
    images = oneclass.load_dataset(name, cifar_root)
    external = oneclass.load_external(name, cifar100_root)
    base = profiles.with_overrides(base, data_root=images.source,
                                   plus_anomalies=oneclass.EXTERNAL[name])
    chosen = list(range(len(images.classes))) if classes is None else [int(c) for c in classes]
    for normal in chosen:
        oneclass.one_class_split(images, normal)  # refuses a class out of range before any work
    return OneClassSetup(base, images, external, oneclass.EXTERNAL[name], chosen,
                         _seeds(profile, seeds), absolute(results_dir), absolute(runs_dir))


AnySetup = Setup | OneClassSetup


def variants(setup: AnySetup, experiment: catalog.Experiment) -> dict[str, dict[str, Any]]:
    """The experiment's variants as run parameters for this set-up.

    Table 4c keeps the backbones whose ImageNet weights can be had here (never a backbone
    on random weights in place of pretrained ones); Table 4d's last layer is the deepest
    of the set-up's stages; a PCA reference is left out where its width is not below the
    feature channels (the projection would copy every feature).
    """
    from adtr.backbones import resolve_weights
    from adtr.errors import WeightsError

    chosen = {}
    for name, overrides in experiment.variant_overrides().items():
        if overrides.get("stages") == "deepest":
            overrides["stages"] = (max(setup.base.stages),)
        if overrides.get("variant") == "pca":
            config = profiles.with_overrides(setup.base, **overrides)
            channels = _feature_channels(config)
            if config.hidden_dim >= channels:
                print(f"skipped {name}: d = {config.hidden_dim} is not below the {channels} "
                      f"feature channels, so the projection on d principal components "
                      f"copies every feature")
                continue
        if experiment.name == "backbone":
            try:
                resolve_weights(overrides["backbone"], setup.base.weights)
            except WeightsError:
                print(f"skipped {name}: no ImageNet weights available offline")
                continue
        chosen[name] = overrides
    return chosen


def _feature_channels(config: profiles.RunConfig) -> int:
    """The channels of the config's feature map (timm's feature info; no weights loaded)."""
    import timm

    from adtr.backbones import PIXELS

    if config.backbone == PIXELS:
        return 3 * config.feature_stride ** 2
    model = timm.create_model(config.backbone, pretrained=False, features_only=True,
                              out_indices=config.stages)
    return sum(model.feature_info.channels())


@dataclass(frozen=True)
class PlannedRun:
    """A run of a set-up before it is trained: its parameters, data, key and folder."""

    config: profiles.RunConfig
    data: pipeline.RunData
    key: str
    folder: Path


def plan(setup: AnySetup, unit: Any, seed: int, **overrides: Any) -> PlannedRun:
    """The run of a category (or class) and seed with the set-up's parameters and
    ``overrides``: ``runs/<profile>/<unit>/<variant>-<run key>``."""
    config = profiles.with_overrides(setup.base, seed=seed, **overrides)
    run = setup.run_data(config, unit)
    key = pipeline.run_key(config, run)
    folder = setup.runs_dir / config.profile
    if isinstance(setup, OneClassSetup):
        folder = folder / f"oneclass-{setup.dataset.name}" / f"class-{unit}"
    else:
        folder = folder / str(unit)
    variant = config.objective if config.objective == profiles.ADTR_PLUS else config.variant
    return PlannedRun(config, run, key, folder / f"{variant}-{key}")


def run_one(setup: AnySetup, unit: Any, seed: int, progress: bool = False, wait: bool = True,
            **overrides: Any) -> RunResult | None:
    """One fit of a category (or class) with the set-up's parameters and ``overrides``;
    read back when it is done already.

    ADTR+ fine-tunes the (shared) ADTR run with the same parameters. ``wait=False``: None
    at once when another notebook is training this run (or its ADTR base) now.
    """
    planned = plan(setup, unit, seed, **overrides)
    base_checkpoint = None
    if planned.config.objective == profiles.ADTR_PLUS:
        base = {**overrides, "objective": profiles.RECONSTRUCTION}
        if run_one(setup, unit, seed, progress, wait, **base) is None:
            return None
        base_checkpoint = plan(setup, unit, seed, **base).folder / "checkpoint.pt"
    return shared_run(planned.folder, planned.key, lambda out: pipeline.fit(
        planned.config, planned.data, out, progress=progress,
        base_checkpoint=base_checkpoint), wait)


def shared_run(out: Path, key: str, compute: Callable[[Path], Any], wait: bool = True,
               parts: list[str] | None = None) -> Any | None:
    """The result in ``out/metrics.json`` when it is the run with ``key``, else
    ``compute(out)``, which must write that file. With ``parts`` (a unified run's
    categories), the results in ``out/<part>/metrics.json``, a list. Under a file lock:
    notebooks running side by side that need the same run train it once (the others wait,
    then read it; with ``wait=False`` they get None at once and can do other runs first)."""
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / ".lock")
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        return None
    try:
        files = [out / part / "metrics.json" for part in parts] if parts else [out / "metrics.json"]
        finished = _finished(files, key)
        if finished is not None:
            return finished if parts else finished[0]
        return compute(out)
    finally:
        lock.release()


def _finished(files: list[Path], key: str) -> list[RunResult] | None:
    """The results in ``files`` when each is there and is the run with ``key``."""
    results = []
    for path in files:
        if not path.is_file():
            return None
        try:
            result = RunResult.read(path)
        except SchemaError as error:
            print(f"{error}; computing the run again")
            return None
        if result.record.run_key != key:
            return None
        results.append(result)
    return results


def run_all(jobs: list[Any], run: Callable[[Any, bool], Any | None],
            progress: bool = True) -> list[Any]:
    """``run(job, wait)`` for every job; the results in the jobs' order.

    A run that another notebook is training at the moment is passed over (``wait=False``)
    and taken up after the others, so two notebooks that need the same runs share the work
    instead of one waiting while the other trains.
    """
    results: dict[int, Any] = {}
    with tqdm(total=len(jobs), desc="runs", disable=not progress) as bar:
        for wait in (False, True):
            for index, job in enumerate(jobs):
                if index not in results:
                    result = run(job, wait)
                    if result is not None:
                        results[index] = result
                        bar.update()
    return [results[index] for index in range(len(jobs))]


def run_grid(setup: AnySetup, grid: dict[str, dict[str, Any]], progress: bool = True
             ) -> tuple[pd.DataFrame, list[RunRecord]]:
    """Every (variant, category or class, seed) of ``grid`` (variant name -> run
    parameters, see ``variants``): a table of metrics and the runs' records."""
    jobs = [(name, unit, seed) for name in grid for unit in setup.units for seed in setup.seeds]
    results = run_all(jobs, lambda job, wait: run_one(setup, job[1], job[2], wait=wait,
                                                      **grid[job[0]]), progress)
    return results_table(setup, [(*job, result)
                                 for job, result in zip(jobs, results, strict=True)])


def results_table(setup: AnySetup, runs: list[tuple[str, Any, int, RunResult]]
           ) -> tuple[pd.DataFrame, list[RunRecord]]:
    """(variant, category or class, seed, result) of each run as a table of metrics, and
    the runs' records."""
    unit_field = "category" if isinstance(setup, Setup) else "class_name"
    rows = []
    for name, unit, seed, result in runs:
        record = result.record
        rows.append(RunRow(variant=name, seed=seed, **{unit_field: setup.unit_name(unit)},
                           **result.metrics(),
                           backbone=record.backbone["name"],
                           epochs=None if record.experiment == "peer"
                           else record.config["epochs"],
                           wall_time_s=record.wall_time_s).to_dict())
    return pd.DataFrame(rows), [result.record for *_, result in runs]


def run_unified(setup: Setup, seed: int, progress: bool = False, wait: bool = True,
                **overrides: Any) -> list[RunResult] | None:
    """The unified run of a seed: one model trained on every category of the set-up,
    tested on each (``pipeline.fit_unified``), in ``runs/<profile>/unified/``; read back
    when it is done already. One result per category, in the set-up's order."""
    config = profiles.with_overrides(setup.base, seed=seed, **overrides)
    runs = [setup.run_data(config, category) for category in setup.categories]
    key = pipeline.unified_key(config, runs)
    folder = setup.runs_dir / config.profile / "unified" / f"{config.variant}-{key}"
    return shared_run(folder, key, lambda out: pipeline.fit_unified(
        config, runs, out, progress=progress), wait, parts=setup.categories)


def run_unified_grid(setup: Setup, name: str = "unified", progress: bool = True,
                     **overrides: Any) -> tuple[pd.DataFrame, list[RunRecord]]:
    """The unified run of every seed, as ``run_grid``'s table (variant ``name``)."""
    results = run_all(setup.seeds, lambda seed, wait: run_unified(
        setup, seed, wait=wait, **overrides), progress)
    return results_table(setup, [(name, category, seed, result)
                          for seed, per_category in zip(setup.seeds, results, strict=True)
                          for category, result in zip(setup.categories, per_category,
                                                      strict=True)])


def summarize(runs: pd.DataFrame, by: str = "variant") -> pd.DataFrame:
    """Per ``by``: the mean over categories (or classes) for each seed, then mean and std
    over seeds, for each metric the runs have."""
    metrics = [m for m in METRICS if m in runs]
    per_seed = runs.groupby([by, "seed"], sort=False)[metrics].mean()
    grouped = per_seed.groupby(level=0, sort=False)
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=0).add_suffix("_std"))
    summary["seeds"] = grouped.size()
    return summary.reset_index()


def per_category(runs: pd.DataFrame, metric: str, by: str = "variant") -> pd.DataFrame:
    """A category (or class) x ``by`` table of ``metric`` (mean over seeds), with a mean
    row."""
    table = runs.pivot_table(index=unit_column(runs.columns), columns=by, values=metric,
                             aggfunc="mean", sort=False)
    table.loc["mean"] = table.mean()
    return table


def per_category_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Category x metric (mean over seeds, in %), with a mean row."""
    table = 100 * runs.groupby("category", sort=False)[list(METRICS)].mean()
    table.loc["mean"] = table.mean()
    return table.round(2)


def comparison_table(summary: pd.DataFrame, experiment: catalog.Experiment) -> pd.DataFrame:
    """Paper's value of the experiment's metric beside ours (mean ± std over seeds), in %,
    one row per variant."""
    metric, name = experiment.metric, catalog.METRIC_NAMES[experiment.metric]
    rows = []
    for _, row in summary.iterrows():
        rows.append({
            "variant": experiment.labels.get(row["variant"], row["variant"]),
            f"paper {name} (MVTec-AD)": experiment.paper.get(row["variant"], np.nan),
            f"ours {name}": 100 * row[f"{metric}_mean"],
            "± std": 100 * row[f"{metric}_std"],
            **{f"ours {catalog.METRIC_NAMES[m]}": 100 * row[f"{m}_mean"]
               for m in METRICS if m != metric and f"{m}_mean" in row},
            "seeds": int(row["seeds"]),
        })
    return pd.DataFrame(rows).round(2)


def comparisons(experiment: catalog.Experiment, ran: set[str]) -> list[tuple[str, str, bool]]:
    """(a, b, part of the claim) for the claim's pairs that ran (or, for an experiment
    beyond the paper, its ``pairs``), then each training-free reference row against the
    variant the claim favours first."""
    claim = experiment.claim
    pairs = [(a, b, True) for a, b in (claim.comparisons if claim else ())
             if a in ran and b in ran]
    pairs += [(a, b, False) for a, b in experiment.pairs if a in ran and b in ran]
    if pairs:
        pairs += [(v.reference_for or pairs[0][0], v.name, False) for v in experiment.variants
                  if v.reference and v.name in ran and (v.reference_for or pairs[0][0]) in ran]
    return pairs


def intervals(experiment: catalog.Experiment, runs: pd.DataFrame, records: list[RunRecord],
              metric: str | None = None, n_resamples: int = 2000) -> pd.DataFrame:
    """The paired 95 % interval of a - b (in points of ``metric``, by default the
    experiment's) for every comparison: test images resampled per category, the same
    resample for both variants and every seed (``stats.paired_differences``). One row per
    comparison over all categories ("all"), then one per category."""
    metric = metric or experiment.metric
    unit = unit_column(runs.columns)
    scores: dict[tuple[str, str, int], Path] = {}
    for row, record in zip(runs.to_dict(orient="records"), records, strict=True):
        scores[row["variant"], str(row[unit]), row["seed"]] = pipeline.scores_path(record)
    rows = []
    for a, b, claimed in comparisons(experiment, set(runs["variant"])):
        groups = {}
        for (variant, category, seed), path in scores.items():
            if variant == a and (b, category, seed) in scores:
                groups.setdefault(category, []).append(
                    (stats.RunScores.load(path), stats.RunScores.load(scores[b, category, seed])))
        combined, per_group = stats.paired_differences(groups, metric, n_resamples)
        for category, interval in {"all": combined, **per_group}.items():
            rows.append({"a": a, "b": b, "claim": claimed, "metric": metric,
                         "category": category, "difference": 100 * interval.mean,
                         "low": 100 * interval.low, "high": 100 * interval.high,
                         "verdict": interval.verdict, "seeds": len(groups.get(category, ()))
                         if category != "all" else max(map(len, groups.values()))})
    return pd.DataFrame(rows)


#: What a run's record says it cost (``adtr.cost``): seconds and peak MiB above the start.
COST_FIELDS = ("train_s", "train_peak_mb", "test_s", "test_peak_mb")


def cost_table(runs: pd.DataFrame, records: list[RunRecord]) -> pd.DataFrame:
    """Per variant and category, the mean over seeds of each run's training and testing
    time and peak memory (NaN where a record has none: runs written before costs were
    recorded). A unified model's training is the same one for all its categories."""
    rows = [{"variant": row["variant"], "category": row["category"],
             **{name: (record.cost or {}).get(name, np.nan) for name in COST_FIELDS}}
            for row, record in zip(runs.to_dict(orient="records"), records, strict=True)]
    frame = pd.DataFrame(rows)
    return frame.groupby(["variant", "category"], sort=False)[list(COST_FIELDS)].mean(
        ).reset_index()


def experiment_dir(setup: AnySetup, experiment: str) -> Path:
    return setup.results_dir / setup.profile / experiment


def _experiment_record(setup: AnySetup, experiment: str, records: list[RunRecord],
                       wall_time_s: float | None) -> ExperimentRecord:
    device = (records[0].environment["device"] if records
              else str(train.pick_device(setup.base.device)))
    return ExperimentRecord(runs=records, **run_record(
        experiment=experiment, **setup.describe(), environment=environment(device),
        wall_time_s=wall_time_s))


def save_table(setup: AnySetup, experiment: catalog.Experiment, runs: pd.DataFrame,
               summary: pd.DataFrame, records: list[RunRecord],
               tables: dict[str, Any] | None = None) -> Path:
    """Write ``runs.csv``, ``summary.csv`` and ``results.json`` (with the run record)."""
    folder = experiment_dir(setup, experiment.name)
    write_csv(folder / "runs.csv", runs)
    write_csv(folder / "summary.csv", summary)
    wall = float(runs["wall_time_s"].sum()) if len(runs) else 0.0
    ExperimentResults(
        experiment=experiment.name,
        record=_experiment_record(setup, experiment.name, records, wall),
        runs=[RunRow.from_dict(row) for row in runs.to_dict(orient="records")],
        summary=[SummaryRow.from_dict(row) for row in summary.to_dict(orient="records")],
        paper=experiment.paper or catalog.PAPER_MEANS.get(experiment.name, {}),
        tables=tables or {},
    ).write(folder / "results.json")
    return folder


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table with an index (e.g. ``per_category``) as rows for a result file."""
    return table.reset_index().to_dict(orient="records")


def save_separation(setup: Setup, separation: pd.DataFrame) -> Path:
    """Write the Fig. 5 separation numbers with the run record."""
    folder = experiment_dir(setup, "tsne")
    write_csv(folder / "separation.csv", separation)
    ExperimentResults(
        experiment="tsne", record=_experiment_record(setup, "tsne", [], None),
        tables={"separation": separation.to_dict(orient="records")},
    ).write(folder / "results.json")
    return folder


def save_figure(figure: Any, setup: AnySetup, experiment: str, name: str) -> Path:
    """Save a matplotlib figure as PNG under the experiment's folder, atomically."""
    path = experiment_dir(setup, experiment) / f"{name}.png"
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    return path


def trained_run(setup: Setup, category: str, seed: int, **overrides: Any):
    """The finished run of (category, seed, overrides), loaded back with its features."""
    from adtr.analysis import load_trained

    run_one(setup, category, seed, **overrides)
    return load_trained(plan(setup, category, seed, **overrides).folder, category)
