"""What the experiment notebooks call: set-up from parameters, grids of runs, result tables.

A notebook resolves its parameters with ``setup`` (profile values, overridden by any
parameter given), runs a grid of (variant, category, seed) with ``run_grid`` and writes
its tables and figures under ``results/<profile>/<experiment>/`` with ``save_table`` and
``save_figure``. Identical runs are shared between notebooks: a run's folder is keyed by
a hash of its resolved parameters, and a finished run is read back instead of retrained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from adtr import data, profiles, synth, train
from adtr.errors import ConfigError, DataError
from adtr.records import (
    atomic_path,
    environment,
    files_sha256,
    project_root,
    run_record,
    write_csv,
    write_json,
)

#: Seeds each profile runs for the experiments (the paper reports single runs).
EXPERIMENT_SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "paper": [0]}
METRICS = ("image_auroc", "pixel_auroc", "aupro")


def absolute(path: str | Path) -> Path:
    """``path`` relative to the project root unless it is absolute."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


@dataclass
class Setup:
    """A notebook's resolved parameters."""

    base: profiles.RunConfig
    categories: list[str]
    seeds: list[int]
    results_dir: Path
    runs_dir: Path
    data_info: dict[str, dict] = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return self.base.profile

    def describe(self) -> dict[str, Any]:
        return {"profile": self.profile, "config": self.base.to_dict(),
                "categories": self.categories, "seeds": self.seeds, "data": self.data_info}


def setup(profile: str = "cpu", data_root: str | None = None,
          categories: list[str] | None = None, backbone: str | None = None,
          epochs: int | None = None, image_size: int | None = None,
          seeds: list[int] | None = None, device: str | None = None,
          results_dir: str = "results", runs_dir: str = "runs", schedule: str = "main",
          **overrides: Any) -> Setup:
    """Resolve a notebook's parameters; generate the offline data set if it is missing.

    ``None`` means "the profile's value"; ``schedule="ablation"`` applies the profile's
    ablation overrides (``profiles.ABLATION_OVERRIDES``). Only the offline profiles generate
    data: the ``paper`` profile expects MVTec-AD at ``data_root`` and says so if it is absent.
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
    seeds = list(seeds) if seeds else EXPERIMENT_SEEDS[profile]
    if any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be non-negative integers, got {seeds}")
    info = {c: data.describe_root(root, c) for c in chosen}
    return Setup(base, chosen, seeds, absolute(results_dir), absolute(runs_dir), info)


#: The modules whose code decides a run's numbers: a change to them invalidates old runs.
_RESULT_MODULES = ("backbones", "data", "features", "model", "train", "metrics", "plus")


def _code_version() -> str:
    return files_sha256([Path(__file__).parent / f"{m}.py" for m in _RESULT_MODULES])[:12]


def run_key(config: profiles.RunConfig, category: str, code_files: tuple[Path, ...] = ()
            ) -> str:
    """A hash of a run's parameters, its category (or class) and the result-deciding code
    (plus ``code_files``)."""
    values = config.to_dict()
    for name in ("device", "checkpoint_every"):
        values.pop(name)
    if config.variant != "adtr_plus":  # ADTR+'s settings do not change the other runs
        values = {k: v for k, v in values.items() if not k.startswith("plus_")}
    code = _code_version() + (files_sha256(list(code_files))[:12] if code_files else "")
    payload = json.dumps({"config": values, "category": category, "code": code},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_dir(config: profiles.RunConfig, category: str, runs_dir: Path) -> Path:
    return runs_dir / config.profile / category / f"{config.variant}-{run_key(config, category)}"


def run_one(setup: Setup, category: str, seed: int, progress: bool = False,
            wait: bool = True, **overrides: Any) -> dict[str, Any] | None:
    """One fit with the set-up's parameters and ``overrides``; reused when already done.

    ADTR+ fine-tunes the (shared) ADTR run with the same parameters. ``wait=False``: None
    at once when another notebook is training this run (or its ADTR base) now.
    """
    config = profiles.with_overrides(setup.base, seed=seed, **overrides)
    base_checkpoint = None
    if config.variant == "adtr_plus":
        base = run_one(setup, category, seed, progress, wait, **{**overrides, "variant": "adtr"})
        if base is None:
            return None
        base_checkpoint = Path(base["record"]["checkpoint"])
    return shared_run(run_dir(config, category, setup.runs_dir), config, lambda out: train.fit(
        config, category, out, progress=progress, base_checkpoint=base_checkpoint), wait)


def shared_run(out: Path, config: profiles.RunConfig,
               compute: Callable[[Path], dict[str, Any]], wait: bool = True
               ) -> dict[str, Any] | None:
    """The result in ``out/metrics.json`` when it was made with ``config``, else
    ``compute(out)``, which must write that file. Under a file lock: notebooks running side
    by side that need the same run train it once (the others wait, then read it; with
    ``wait=False`` they get None at once and can do other runs first)."""
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / ".lock")
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        return None
    try:
        metrics_file = out / "metrics.json"
        if metrics_file.is_file():
            result = json.loads(metrics_file.read_text())
            if result["record"]["config"] == config.to_dict():
                return result
        return compute(out)
    finally:
        lock.release()


def run_all(jobs: list[Any], run: Callable[[Any, bool], dict[str, Any] | None],
            progress: bool = True) -> list[dict[str, Any]]:
    """``run(job, wait)`` for every job; the results in the jobs' order.

    A run that another notebook is training at the moment is passed over (``wait=False``)
    and taken up after the others, so two notebooks that need the same runs share the work
    instead of one waiting while the other trains.
    """
    results: dict[int, dict[str, Any]] = {}
    with tqdm(total=len(jobs), desc="runs", disable=not progress) as bar:
        for wait in (False, True):
            for index, job in enumerate(jobs):
                if index not in results:
                    result = run(job, wait)
                    if result is not None:
                        results[index] = result
                        bar.update()
    return [results[index] for index in range(len(jobs))]


def run_grid(setup: Setup, variants: dict[str, dict[str, Any]],
             progress: bool = True) -> tuple[pd.DataFrame, list[dict]]:
    """Every (variant, category, seed): a table of metrics and the runs' records."""
    jobs = [(name, category, seed) for name in variants for category in setup.categories
            for seed in setup.seeds]
    results = run_all(jobs, lambda job, wait: run_one(setup, job[1], job[2], wait=wait,
                                                      **variants[job[0]]), progress)
    rows, records = [], []
    for (name, category, seed), result in zip(jobs, results, strict=True):
        record = result["record"]
        rows.append({"variant": name, "category": category, "seed": seed,
                     **{m: result[m] for m in METRICS},
                     "backbone": record["backbone"]["name"],
                     "epochs": record["config"]["epochs"],
                     "wall_time_s": record["wall_time_s"]})
        records.append(record)
    return pd.DataFrame(rows), records


def summarize(runs: pd.DataFrame, by: str = "variant",
              metrics: tuple[str, ...] = METRICS) -> pd.DataFrame:
    """Per ``by``: the mean over categories for each seed, then mean and std over seeds."""
    per_seed = runs.groupby([by, "seed"], sort=False)[list(metrics)].mean()
    grouped = per_seed.groupby(level=0, sort=False)
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=0).add_suffix("_std"))
    summary["seeds"] = grouped.size()
    return summary.reset_index()


def per_category(runs: pd.DataFrame, metric: str, by: str = "variant") -> pd.DataFrame:
    """A category x ``by`` table of ``metric`` (mean over seeds), with a mean row."""
    table = runs.pivot_table(index="category", columns=by, values=metric, aggfunc="mean",
                             sort=False)
    table.loc["mean"] = table.mean()
    return table


def experiment_dir(setup: Any, experiment: str) -> Path:
    return setup.results_dir / setup.profile / experiment


def save_table(setup: Any, experiment: str, runs: pd.DataFrame, summary: pd.DataFrame,
               records: list[dict], paper: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Write ``runs.csv``, ``summary.csv`` and ``results.json`` (with the run record)."""
    folder = experiment_dir(setup, experiment)
    write_csv(folder / "runs.csv", runs)
    write_csv(folder / "summary.csv", summary)
    record = run_record(
        experiment=experiment, **setup.describe(),
        environment=environment(records[0]["environment"]["device"] if records else "cpu"),
        wall_time_s=float(runs["wall_time_s"].sum()) if len(runs) else 0.0,
        runs=records,
    )
    write_json(folder / "results.json", {
        "experiment": experiment, "summary": summary.to_dict(orient="records"),
        "runs": runs.to_dict(orient="records"), "paper": paper or {}, **(extra or {}),
        "record": record,
    })
    return folder


def save_figure(figure: Any, setup: Any, experiment: str, name: str) -> Path:
    """Save a matplotlib figure as PNG under the experiment's folder, atomically."""
    path = experiment_dir(setup, experiment) / f"{name}.png"
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    return path




def trained_run(setup: Setup, category: str, seed: int, **overrides: Any):
    """The finished run of (category, seed, overrides), loaded back with its features."""
    from adtr.analysis import load_trained

    run_one(setup, category, seed, **overrides)
    config = profiles.with_overrides(setup.base, seed=seed, **overrides)
    return load_trained(run_dir(config, category, setup.runs_dir), category)


def gallery_figure(setup: Setup, category: str, seed: int, n_anomalous: int = 5,
                   **overrides: Any):
    """Test images of one category with ground truth and predicted maps (one good image)."""
    from adtr import viz
    from adtr.analysis import display_image

    trained = trained_run(setup, category, seed, **overrides)
    samples = trained.data.test_samples
    good = [i for i, s in enumerate(samples) if s.label == 0][:1]
    anomalous = [i for i, s in enumerate(samples) if s.label == 1]
    by_defect: dict[str, int] = {}
    for i in anomalous:  # one image per defect kind first, then the rest
        by_defect.setdefault(samples[i].defect, i)
    rest = [i for i in anomalous if i not in by_defect.values()]
    chosen = good + (list(by_defect.values()) + rest)[:n_anomalous]
    maps, scores = train.predict(trained.model, trained.standardizer,
                                 trained.data.test_features[chosen], trained.config,
                                 trained.device)
    images = [display_image(samples[i].image, trained.config.image_size) for i in chosen]
    titles = [f"{samples[i].defect}/{samples[i].image.stem}" for i in chosen]
    return viz.gallery(images, trained.data.masks[chosen], maps, scores, titles)


#: ADTR and ADTR+ (which fine-tunes the ADTR run of the same parameters).
PLUS_VARIANTS = {"adtr": {}, "adtr_plus": {"variant": "adtr_plus"}}


def confetti_figure(setup: Setup, category: str, count: int = 8, seed: int = 0):
    """Training images of a category and the same images with confetti noise (masks in red)."""
    import numpy as np

    from adtr import plus, viz
    from adtr.features import to_unit

    samples = data.list_samples(setup.base.data_root, category, "train")[:count]
    unit = to_unit(plus.normalised_images(samples, setup.base.image_size)).clamp(0, 1)
    noisy, masks = plus.confetti(unit, np.random.default_rng(seed))
    rows = {"training image": unit, "with confetti": noisy}
    return viz.image_grid({k: v.permute(0, 2, 3, 1).numpy() for k, v in rows.items()},
                          masks.numpy(), columns=count)


def comparison_table(summary: pd.DataFrame, paper_values: dict[str, float],
                     labels: dict[str, str]) -> pd.DataFrame:
    """Paper's pixel AUROC beside ours (mean ± std over seeds), in %, one row per variant."""
    rows = []
    for _, row in summary.iterrows():
        rows.append({
            "variant": labels.get(row["variant"], row["variant"]),
            "paper pixel AUROC (MVTec-AD)": paper_values.get(row["variant"], np.nan),
            "ours pixel AUROC": 100 * row["pixel_auroc_mean"],
            "± std": 100 * row["pixel_auroc_std"],
            "ours image AUROC": 100 * row["image_auroc_mean"],
            "ours AUPRO": 100 * row["aupro_mean"],
            "seeds": int(row["seeds"]),
        })
    return pd.DataFrame(rows).round(2)


def per_category_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Category x metric (mean over seeds, in %), with a mean row."""
    table = 100 * runs.groupby("category", sort=False)[list(METRICS)].mean()
    table.loc["mean"] = table.mean()
    return table.round(2)


PAPER_BACKBONES = ("resnet18", "resnet34", "efficientnet_b0", "efficientnet_b4")
PACKAGED_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def available_backbone_variants(setup: Setup) -> dict[str, dict[str, Any]]:
    """The Table 4c backbones whose ImageNet weights can be had here; the rest are skipped.

    Never runs a backbone on random weights in place of pretrained ones.
    """
    from adtr.backbones import resolve_weights
    from adtr.errors import WeightsError

    variants = {}
    for name in PAPER_BACKBONES + PACKAGED_BACKBONES:
        try:
            resolve_weights(name, setup.base.weights)
        except WeightsError:
            print(f"skipped {name}: no ImageNet weights available offline")
            continue
        variants[name] = {"backbone": name}
    return variants


def scale_variants(setup: Setup) -> dict[str, dict[str, Any]]:
    """Table 4d: the deepest selected stage alone vs all selected stages."""
    return {"last_layer": {"stages": (max(setup.base.stages),)}, "multi_scale": {}}


def save_separation(setup: Setup, separation: pd.DataFrame) -> Path:
    """Write the Fig. 5 separation numbers with the run record."""
    folder = experiment_dir(setup, "tsne")
    write_csv(folder / "separation.csv", separation)
    write_json(folder / "results.json", {
        "experiment": "tsne", "separation": separation.to_dict(orient="records"),
        "record": run_record(experiment="tsne", **setup.describe(),
                             environment=environment(str(train.pick_device(setup.base.device)))),
    })
    return folder
