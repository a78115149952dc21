"""One run of any kind, from images to metrics, and the identity that decides its reuse.

A run trains on normal images and is tested on a test set, both described by a ``RunData``:
- ``category_data(config, category)``: a category of an MVTec-layout folder. Pixel masks,
  so image AUROC, pixel AUROC and AUPRO; the image score is the maximum of the
  average-pooled map (the paper's).
- ``one_class_data(dataset, normal)``: one class of a labelled image set normal, every
  other class anomalous. Image labels only, so image AUROC; the image score is the mean of
  the map (UniAD's protocol for CIFAR-10, which the paper follows).

``fit`` trains with the config's objective: the reconstruction MSE, or ADTR+, which first
trains (or is given) the ADTR model of the same parameters and fine-tunes it with
anomalies. It then evaluates on the test set and writes ``OUT/metrics.json``.
``evaluate`` scores a finished checkpoint on another data root. Both also write the test
set's scores in a form that can be resampled (``OUT/scores.npz``, ``scores.RunScores``), for
the paired confidence intervals of the experiments. A reconstruction run with pixel labels
also looks at its model before training and at every checkpoint (``shortcut_probe``): the
identity-shortcut statistics of the paper's Eq. 4-5 over training.

``run_key`` is a run's identity: its parameters, the digest of its images and the code that
computes it (``adtr`` modules this one imports). A changed image makes another key; a
checkpoint is resumed only when it was trained on the same data.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from torch import Tensor

from adtr import cost, data, metrics, plus, scores, train
from adtr.backbones import PIXELS, build_extractor, resolve_weights
from adtr.errors import AdtrError
from adtr.features import (
    array_digest,
    backbone_precision,
    cached_array_features,
    cached_features,
    default_cache_dir,
)
from adtr.model import anomaly_map
from adtr.oneclass import ImageSet, one_class_split
from adtr.profiles import ADTR_PLUS, CONFETTI, RECONSTRUCTION, RunConfig
from adtr.records import code_digest, environment, file_sha256, run_record
from adtr.schema import RunRecord, RunResult

#: Image scores: the paper's for MVTec-AD, UniAD's for the one-class setting.
MAX_OF_POOLED_MAP = "max of the average-pooled map"
MEAN_OF_MAP = "mean of the anomaly map"


@dataclass
class RunData:
    """The images of a run: normal training images and a labelled test set.

    Images are files (``data.Sample``, with masks) or uint8 RGB arrays (N, h, w, 3) in
    memory (image labels only). ``digest`` identifies them; ``info`` is what the run
    record says about them.
    """

    name: str  # the category, or "<data set> class <name>"
    train: list[data.Sample] | np.ndarray
    test: list[data.Sample] | np.ndarray
    labels: np.ndarray
    info: dict[str, Any]
    digest: str
    external: np.ndarray | None = None  # ADTR+'s anomalies for in-memory images
    external_name: str = ""

    @property
    def pixel_labels(self) -> bool:
        return not isinstance(self.test, np.ndarray)

    @property
    def score(self) -> str:
        return MAX_OF_POOLED_MAP if self.pixel_labels else MEAN_OF_MAP


def category_data(config: RunConfig, category: str) -> RunData:
    """A category of ``config.data_root``, validated (the first ``max_train_images`` of
    ``train/good`` when that is set)."""
    train_samples = data.list_samples(config.data_root, category, "train")
    test = data.list_samples(config.data_root, category, "test")
    info = data.describe_root(config.data_root, category, train_samples, test)
    if config.max_train_images:
        train_samples = train_samples[:config.max_train_images]
        info = {**info, "n_train_used": len(train_samples)}
    digest = data.samples_digest(train_samples + test)
    return RunData(category, train_samples, test, np.array([s.label for s in test]),
                   {**info, "digest": digest}, digest)


def one_class_data(dataset: ImageSet, normal: int, external: np.ndarray | None = None,
                   external_name: str = "") -> RunData:
    """Class ``normal`` of ``dataset`` normal, the rest anomalous; ``external``: ADTR+'s
    anomalies (the paper: CIFAR-100 images for CIFAR-10)."""
    split = one_class_split(dataset, normal)
    digest = _arrays_digest(split.train_images, split.test_images, split.test_labels)
    info = {**dataset.describe(), "normal_class": normal,
            "n_train_used": len(split.train_images), "digest": digest}
    return RunData(f"{dataset.name} class {dataset.classes[normal]}", split.train_images,
                   split.test_images, split.test_labels, info, digest, external, external_name)


def _arrays_digest(*arrays: np.ndarray) -> str:
    return hashlib.sha256("".join(map(array_digest, arrays)).encode()).hexdigest()[:16]


def data_digest(config: RunConfig, run: RunData) -> str:
    """The digest of every image a run reads: its training and test images, and for ADTR+
    its external anomalies (in memory, or the files of ``plus_anomalies``)."""
    if config.objective != ADTR_PLUS:
        return run.digest
    if run.external is not None:
        return f"{run.digest}+{_arrays_digest(run.external)}"
    if config.plus_anomalies != CONFETTI:
        files = plus.external_samples(config.plus_anomalies, _test_folders(config, run))
        return f"{run.digest}+{data.samples_digest(files)}"
    return run.digest


@functools.cache
def _weights_source(backbone: str, weights: str) -> str:
    """Where the backbone's weights come from, with the file's checksum (once a process)."""
    return "none" if backbone == PIXELS else resolve_weights(backbone, weights).source


#: Modules whose code decides nothing a run computes: parameter values (``profiles``; the
#: key holds the values a run resolved to), the result files' layout (``schema``; a file it
#: cannot read is computed again) and bookkeeping (``records``: atomic writes, the record's
#: fields; the key holds the data's digest itself). A change there keeps every run's key.
KEY_LEAVES_OUT = frozenset({"profiles", "schema", "records"})


@functools.cache
def _code() -> str:
    return code_digest(["pipeline"], leave_out=KEY_LEAVES_OUT)


def run_key(config: RunConfig, run: RunData) -> str:
    """A hash of what decides a run's numbers: its parameters (``train.deciding_values``:
    not where it runs or how often it checkpoints; ADTR+'s only for ADTR+), the kind of
    device (CUDA runs in bf16), the backbone's weights (which file, by checksum), its data's
    digest, torch's and timm's versions, and the code of the ``adtr`` modules it runs."""
    payload = json.dumps({
        "config": train.deciding_values(config), "run": run.name,
        "device": train.pick_device(config.device).type,
        "weights": _weights_source(config.backbone, config.weights),
        "data": data_digest(config, run), "code": _code(),
        "torch": torch.__version__, "timm": timm.__version__,
    }, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class Features:
    """The frozen extractor of a run and the features of its training and test images."""

    extractor: torch.nn.Module
    train: Tensor
    test: Tensor
    #: the backbone's seconds for both, as measured when they were computed (None: unknown)
    backbone_s: float | None = None


def extract_features(config: RunConfig, run: RunData, device: torch.device,
                     cache_dir: Path | None = None, progress: bool = True) -> Features:
    """Build the run's extractor and get its features (from the cache where they are)."""
    extractor = build_extractor(config)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir

    timings: list[float | None] = []  # the backbone's seconds for each split

    def features(images: list[data.Sample] | np.ndarray, split: str) -> Tensor:
        desc = f"{run.name} {split} features"
        if isinstance(images, np.ndarray):
            return cached_array_features(extractor, images, config.image_size, device,
                                         cache_dir, progress, desc, timings)
        return cached_features(extractor, images, config.image_size, device, cache_dir,
                               progress, desc, timings)

    train_features, test_features = features(run.train, "train"), features(run.test, "test")
    return Features(extractor, train_features, test_features, _sum_or_none(timings))


# --- ADTR+ ---------------------------------------------------------------------------------

#: Builds a fine-tuning objective from the base model's standardiser: the step loss and
#: what the run record says about the anomalies it uses.
Objective = Callable[[torch.nn.Module], tuple[train.StepLoss, dict[str, Any]]]


def _check_anomalies(config: RunConfig, run: RunData) -> None:
    """Refuse a bad external-anomaly folder before any training."""
    if run.external is None and config.plus_anomalies != CONFETTI:
        plus.external_samples(config.plus_anomalies, _test_folders(config, run))


def _test_folders(config: RunConfig, run: RunData) -> list[Path]:
    root = data.category_dir(config.data_root, run.name)
    return [root / "test", root / "ground_truth", root / data.TWINS_DIR]


def plus_objective(config: RunConfig, run: RunData, features: Features, device: torch.device,
                   cache_dir: Path | None = None, progress: bool = True) -> Objective:
    """Where ADTR+'s anomalies come from: the run's external images, confetti noise on its
    training images, or a folder of external images."""
    extractor = features.extractor
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir

    def objective(standardizer: torch.nn.Module) -> tuple[train.StepLoss, dict[str, Any]]:
        if run.external is not None:
            external = cached_array_features(extractor, run.external, config.image_size,
                                             device, cache_dir, progress,
                                             desc="external anomaly features")
            return (plus.ExternalLoss(standardizer(external), config, device),
                    {"kind": "external", "labels": "image", "loss": "L_img",
                     "name": run.external_name, "n_images": len(run.external)})
        if config.plus_anomalies == CONFETTI:
            images = plus.normalised_images(run.train, config.image_size)
            return (plus.ConfettiLoss(images, extractor, standardizer, config, device),
                    {"kind": "confetti", "labels": "pixel", "loss": "L_px"})
        samples = plus.external_samples(config.plus_anomalies, _test_folders(config, run))
        external = cached_features(extractor, samples, config.image_size, device, cache_dir,
                                   progress, desc="external anomaly features")
        return (plus.ExternalLoss(standardizer(external), config, device),
                {"kind": "external", "labels": "image", "loss": "L_img",
                 "folder": str(Path(config.plus_anomalies).resolve()),
                 "n_images": len(samples)})

    return objective


def fine_tune(config: RunConfig, run: RunData, train_features: Tensor, base_checkpoint: Path,
              out_dir: Path, device: torch.device, objective: Objective,
              progress: bool = True) -> tuple[Any, Any, dict, dict[str, Any]]:
    """ADTR+: fine-tune the model of ``base_checkpoint`` with ``objective``'s anomalies.

    Returns the model, its standardiser, the loss history and what the run record adds.
    """
    state = train.load_checkpoint(base_checkpoint, then="cannot fine-tune from it")
    if state is None or "full_config" not in state:
        raise AdtrError(f"{base_checkpoint} is not a readable adtr checkpoint to fine-tune")
    base = state["full_config"]
    if (base["variant"] != "adtr" or base.get("objective", RECONSTRUCTION) != RECONSTRUCTION
            or state["channels"] != train_features.shape[1]):
        raise AdtrError(f"{base_checkpoint} holds a {base['variant']!r} model on "
                        f"{state['channels']} channels; ADTR+ fine-tunes an 'adtr' model on "
                        f"these {train_features.shape[1]}-channel features")
    _, _, standardizer = train.restore(state)
    step_loss, source = objective(standardizer)
    model, standardizer, history = train.train(
        config, run.name, train_features, out_dir, device, progress,
        schedule=(config.plus_epochs, config.plus_lr, None),
        start_from=state, step_loss=step_loss,
        identity={"data": data_digest(config, run), "base": file_sha256(base_checkpoint)})
    extra = {"base_checkpoint": str(base_checkpoint), "base_epochs": state["epoch"],
             "anomalies": source}
    return model, standardizer, history, extra


# --- fit and evaluate ----------------------------------------------------------------------

#: A token is anomalous when at least this fraction of its pixels is (normal: none is).
ANOMALOUS_TOKEN = 0.5


def shortcut_probe(config: RunConfig, run: RunData, features: Features, device: torch.device,
                   cache_dir: Path | None = None, progress: bool = True) -> train.Probe:
    """The identity-shortcut statistics of the model on the test set (``adtr.scores``): the
    pass-through (slope of f_hat on f) and the reconstruction error at anomalous and at
    normal tokens, the normal-error tail, and pixel and image AUROC (``scores.RunScores``;
    pixel AUROC binned).
    Where the data has each defective image's defect-free twin (``adtr synth`` writes them),
    also the twin pass-through: the slope of (f_hat - f_hat_twin) on (f - f_twin) at
    anomalous tokens, how much of the defect's own deviation the reconstruction keeps."""
    masks = data.load_masks(run.test, config.image_size)
    grid = features.test.shape[-1]
    fraction = scores.token_fraction(masks, grid)
    anomalous, normal = fraction >= ANOMALOUS_TOKEN, fraction == 0
    twins, defective = None, np.flatnonzero(run.labels == 1)
    if data.has_twins(config.data_root, run.name) and defective.size:
        # A good image is its own twin (its deviation is 0): only defective ones count.
        twins = cached_features(features.extractor,
                                data.twin_samples(config.data_root, run.name,
                                                  [run.test[i] for i in defective]),
                                config.image_size, device,
                                default_cache_dir() if cache_dir is None else cache_dir,
                                progress, f"{run.name} twin features")

    def probe(epoch: int, model: torch.nn.Module, standardizer: train.Standardizer
              ) -> dict[str, float]:
        inputs, outputs = train.reconstructions(model, standardizer, features.test, device,
                                                precision=config.precision)
        values = scores.shortcut_stats(inputs.numpy(), outputs.numpy(), anomalous, normal)
        if twins is not None:
            twin_in, twin_out = train.reconstructions(model, standardizer, twins, device,
                                                      precision=config.precision)
            values["twin_pass_through"] = scores.twin_pass_through(
                inputs[defective].numpy(), outputs[defective].numpy(), twin_in.numpy(),
                twin_out.numpy(), anomalous[defective])
        maps, image_scores = train.maps_and_scores(inputs - outputs, config)
        binned = scores.run_scores(run.labels, image_scores, masks, maps)
        for metric in ("pixel_auroc", "image_auroc"):
            values[metric] = float(scores.metric_values(
                binned, metric, np.ones((1, len(image_scores))))[0])
        values["loss"] = float(((inputs - outputs) ** 2).mean())
        return values

    return probe


def fit(config: RunConfig, run: RunData, out_dir: str | Path, cache_dir: Path | None = None,
        progress: bool = True, base_checkpoint: Path | None = None) -> RunResult:
    """Train on ``run``'s normal images, evaluate on its test set, write
    ``OUT/metrics.json``; return it.

    ADTR+ (``objective="adtr_plus"``) fine-tunes the ADTR model of ``base_checkpoint``;
    without one, it first trains that model into ``OUT/base``.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    plus_run = config.objective == ADTR_PLUS
    if plus_run:
        _check_anomalies(config, run)
    device = train.pick_device(config.device)
    features = extract_features(config, run, device, cache_dir, progress)
    extra: dict[str, Any] = {}
    # the phases' time and peak memory (adtr.cost); the shortcut probes are timed apart
    spent: dict[str, float] = {"backbone_s": features.backbone_s}
    probes = cost.Stopwatch()
    if plus_run:
        if base_checkpoint is None:
            base = fit(replace(config, objective=RECONSTRUCTION), run, out_dir / "base",
                       cache_dir, progress)
            base_checkpoint = Path(base.record.checkpoint)
        objective = plus_objective(config, run, features, device, cache_dir, progress)
        with cost.measure(spent, "train", device):
            model, standardizer, history, extra = fine_tune(
                config, run, features.train, Path(base_checkpoint), out_dir, device,
                objective, progress)
    else:
        probe = (shortcut_probe(config, run, features, device, cache_dir, progress)
                 if run.pixel_labels and config.variant != "pca" else None)

        def timed_probe(*args: Any) -> dict[str, float]:
            with probes.running():
                return probe(*args)

        with cost.measure(spent, "train", device, excluded=probes):
            model, standardizer, history = train.train(
                config, run.name, features.train, out_dir, device, progress,
                identity={"data": run.digest}, probe=timed_probe if probe else None)
        extra["probes"] = history.get("probes") or None
        spent["probes_s"] = round(probes.seconds, 3)
    result, test_scores = _evaluate(model, standardizer, config, run, features, device, spent)
    return _finish(result, test_scores, out_dir, out_dir / "metrics.json", history, started,
                   run_key=run_key(config, run), cost=spent, **extra)


def _finish(result: RunResult, test_scores: scores.RunScores, out_dir: Path, metrics_file: Path,
            history: dict, started: float, **fields: Any) -> RunResult:
    """Complete a trained run's record (its training history, wall time, checkpoint in
    ``out_dir``, scores beside ``metrics_file``, and ``fields``), write its scores, then
    its metrics (last: a run is finished when they exist); return it."""
    scores_file = metrics_file.parent / SCORES_FILE
    record = replace(
        result.record, epochs_trained=len(history["epoch_loss"]),
        loss_history=history["epoch_loss"], lr_history=history.get("lr"),
        wall_time_s=round(time.perf_counter() - started, 2),
        checkpoint=str(out_dir / "checkpoint.pt"), scores=str(scores_file), **fields)
    result = replace(result, record=record)
    test_scores.save(scores_file)
    result.write(metrics_file)
    return result


def unified_key(config: RunConfig, runs: list[RunData]) -> str:
    """``run_key`` of one model trained on the training images of every run in ``runs``."""
    keys = sorted(f"{run.name}:{run_key(config, run)}" for run in runs)
    return hashlib.sha256(json.dumps(["unified", *keys]).encode()).hexdigest()[:12]


def fit_unified(config: RunConfig, runs: list[RunData], out_dir: str | Path,
                cache_dir: Path | None = None, progress: bool = True) -> list[RunResult]:
    """The unified setting (UniAD's protocol): one model trained on the normal training
    images of all ``runs`` (categories) together, then tested on each category's test set.

    Writes ``OUT/checkpoint.pt`` and, per category, ``OUT/<category>/metrics.json`` and
    its scores; returns one result per category, in the order of ``runs``. The paper
    trains one model per category (``fit``); this is its method under the other protocol,
    with the same parameters and epochs (so a unified model takes as many optimiser steps
    as all per-category models together).
    """
    if len(runs) < 2 or not all(run.pixel_labels for run in runs):
        raise AdtrError("the unified setting needs at least two categories with pixel masks, "
                        f"got {[run.name for run in runs]}")
    if config.objective != RECONSTRUCTION or config.variant == "pca":
        raise AdtrError("the unified setting trains ADTR's reconstruction objective; got "
                        f"objective {config.objective!r}, variant {config.variant!r}")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    device = train.pick_device(config.device)
    # Trained in the order of the categories' names, as ``unified_key`` identifies it.
    ordered = sorted(runs, key=lambda run: run.name)
    features = {run.name: extract_features(config, run, device, cache_dir, progress)
                for run in ordered}
    names = [run.name for run in ordered]
    spent: dict[str, float | None] = {"backbone_s": _sum_or_none(
        [f.backbone_s for f in features.values()])}
    with cost.measure(spent, "train", device):
        model, standardizer, history = train.train(
            config, "unified: " + ", ".join(names),
            torch.cat([features[name].train for name in names]), out_dir, device, progress,
            identity={"data": [run.digest for run in ordered]})
    key = unified_key(config, runs)
    results = []
    for run in runs:
        tested: dict[str, float] = {}
        result, test_scores = _evaluate(model, standardizer, config, run, features[run.name],
                                        device, tested)
        result = replace(result, record=replace(result.record, experiment="unified",
                                                trained_on="unified"))
        results.append(_finish(result, test_scores, out_dir,
                               out_dir / run.name / "metrics.json", history, started,
                               units=names, run_key=key, cost=spent | tested))
    return results


def _sum_or_none(values: list[float | None]) -> float | None:
    return None if None in values else round(sum(values), 3)


def scores_path(record: RunRecord) -> Path:
    """Where a run's test-set scores are (``SCORES_FILE``, beside its metrics): as its
    record says, or for a record written before records said so, beside its checkpoint."""
    if record.scores:
        return Path(record.scores)
    if not record.checkpoint:
        raise AdtrError(f"the {record.variant} run of {record.category} records neither its "
                        "scores nor a checkpoint")
    return Path(record.checkpoint).parent / SCORES_FILE


def score_test_set(model: torch.nn.Module, standardizer: train.Standardizer, config: RunConfig,
                run: RunData, test_features: Tensor, device: torch.device
                ) -> tuple[np.ndarray | None, np.ndarray]:
    """Pixel maps (None without pixel labels) and image scores of the test set."""
    if run.pixel_labels:
        return train.predict(model, standardizer, test_features, config, device)
    diff = train.differences(model, standardizer, test_features, device,
                             precision=config.precision)
    return None, anomaly_map(diff, torch.zeros_like(diff)).mean(dim=(1, 2)).numpy()


#: The test set's resamplable scores beside a run's metrics.json (``scores.RunScores``).
SCORES_FILE = "scores.npz"


def _evaluate(model: torch.nn.Module, standardizer: train.Standardizer, config: RunConfig,
              run: RunData, features: Features, device: torch.device,
              spent: dict[str, float] | None = None) -> tuple[RunResult, scores.RunScores]:
    """The test set's metrics and scores; scoring it is the ``test`` phase of ``spent``
    (``adtr.cost``), the metrics are not."""
    with cost.measure({} if spent is None else spent, "test", device):
        maps, image_scores = score_test_set(model, standardizer, config, run, features.test,
                                            device)
    values = {"image_auroc": metrics.image_auroc(run.labels, image_scores)}
    masks = None
    if maps is not None:
        masks = data.load_masks(run.test, config.image_size)
        values.update(pixel_auroc=metrics.pixel_auroc(masks, maps),
                      aupro=metrics.aupro(masks, maps))
    record = RunRecord(**run_record(
        experiment="fit", variant=config.variant, objective=config.objective,
        category=run.name, metrics=values, config=config.to_dict(), data=run.info,
        backbone={"name": config.backbone, "weights": features.extractor.weights_source,
                  "stages": list(config.stages), "channels": int(features.train.shape[1]),
                  "precision": backbone_precision(device)},
        seed=config.seed, environment=environment(str(device)), score=run.score))
    return (RunResult(category=run.name, record=record, **values),
            scores.run_scores(run.labels, image_scores, masks, maps))


def evaluate(checkpoint: str | Path, data_root: str | Path, category: str,
             out_dir: str | Path | None = None, cache_dir: Path | None = None,
             device: str = "auto", progress: bool = True) -> RunResult:
    """Score a checkpoint written by ``fit`` on ``data_root/category``'s test split."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise AdtrError(f"checkpoint {checkpoint} does not exist; `adtr fit` writes one")
    state = train.load_checkpoint(checkpoint, then="cannot evaluate it")
    if state is None or "full_config" not in state:
        raise AdtrError(f"{checkpoint} is not a readable adtr checkpoint")
    started = time.perf_counter()
    config, model, standardizer = train.restore(state, data_root=str(data_root), device=device)
    torch_device = train.pick_device(device)
    run = category_data(config, category)
    features = extract_features(config, run, torch_device, cache_dir, progress)
    result, test_scores = _evaluate(model, standardizer, config, run, features, torch_device)
    out = checkpoint.parent if out_dir is None else Path(out_dir)
    record = replace(result.record, experiment="evaluate", checkpoint=str(checkpoint),
                     trained_on=state["category"], epochs_trained=state["epoch"],
                     wall_time_s=round(time.perf_counter() - started, 2),
                     scores=str(out / SCORES_FILE))
    result = replace(result, record=record)
    test_scores.save(out / SCORES_FILE)
    result.write(out / "metrics.json")
    return result
