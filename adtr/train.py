"""Fit and evaluate one category: features -> reconstruction model -> maps -> metrics.

``fit`` trains on the normal training images only (features from the cache), saves a
resumable checkpoint every few epochs, evaluates on the test split and writes
``metrics.json`` with the run record. Run again with the same arguments, it resumes
from the last checkpoint (or only re-evaluates a finished run); with other arguments it
starts over. ``evaluate`` scores a finished checkpoint on a (possibly other) data root.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from adtr import data, metrics
from adtr.allocator import keep_freed_memory
from adtr.backbones import build_extractor
from adtr.errors import AdtrError
from adtr.features import cached_features, default_cache_dir, extractor_id
from adtr.model import ADTR, anomaly_map, reconstruction_loss, upsample_and_score
from adtr.profiles import CONFETTI, RunConfig
from adtr.records import atomic_path, environment, run_record, write_json

#: Config fields that do not change what is trained, so a checkpoint made with other
#: values of them can still be resumed.
_RESUMABLE_FIELDS = ("device", "checkpoint_every", "profile", "data_root", "smoothing_sigma",
                     "score_pool")


class TrainingError(AdtrError):
    """Training cannot go on (e.g. a non-finite loss)."""


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AdtrError(f"device {name!r} asked for, but CUDA is not available here; use cpu")
    return torch.device(name)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether the reconstruction model runs under bf16 autocast (``RunConfig.precision``)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class CategoryData:
    """Everything a category's run needs, with features already extracted."""

    train_features: Tensor
    test_features: Tensor
    train_samples: list[data.Sample]
    test_samples: list[data.Sample]
    labels: np.ndarray
    masks: np.ndarray
    info: dict[str, Any]
    extractor: torch.nn.Module  # what made the features (ADTR+ reuses it for new images)


def load_category(config: RunConfig, category: str, device: torch.device,
                  cache_dir: Path | None = None, progress: bool = True) -> CategoryData:
    """Validate the data, build the frozen extractor and get (cached) features."""
    train = data.list_samples(config.data_root, category, "train")
    test = data.list_samples(config.data_root, category, "test")
    info = data.describe_root(config.data_root, category, train, test)
    if config.max_train_images:
        train = train[:config.max_train_images]
        info = {**info, "n_train_used": len(train)}
    extractor = build_extractor(config.backbone, config.stages, config.image_size,
                                config.feature_stride, config.weights)
    ident = extractor_id(extractor, config.backbone, config.stages, config.image_size,
                         config.feature_stride)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    features = [
        cached_features(extractor, ident, samples, config.image_size, device, cache_dir,
                        progress, desc=f"{category} {split} features")
        for split, samples in (("train", train), ("test", test))
    ]
    return CategoryData(
        train_features=features[0], test_features=features[1], train_samples=train,
        test_samples=test,
        labels=np.array([s.label for s in test]), masks=data.load_masks(test, config.image_size),
        info=info, extractor=extractor,
    )


class Standardizer(torch.nn.Module):
    """Per-channel standardisation with training-set statistics (identity when off)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    def fit(self, features: Tensor) -> Standardizer:
        self.mean.copy_(features.mean(dim=(0, 2, 3), keepdim=True))
        self.std.copy_(features.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6))
        return self

    def forward(self, features: Tensor) -> Tensor:
        return (features - self.mean) / self.std


def build_model(config: RunConfig, channels: int) -> tuple[ADTR, Standardizer]:
    grid = config.image_size // config.feature_stride
    if config.variant == "adtr_plus":  # ADTR+ is the ADTR model with another objective
        config = replace(config, variant="adtr")
    return ADTR(channels, grid, config), Standardizer(channels)


def schedule(config: RunConfig) -> tuple[int, float, int]:
    """(epochs, lr, lr step epoch) of a run: ADTR+ fine-tunes with its own schedule."""
    if config.variant == "adtr_plus":
        return config.plus_epochs, config.plus_lr, config.plus_epochs
    return config.epochs, config.lr, config.lr_step_epoch


def make_optimizer(model: torch.nn.Module, lr: float, config: RunConfig) -> torch.optim.AdamW:
    """AdamW with the config's weight decay, fused: one kernel updates all parameters (on
    the CPU as on CUDA) instead of a dozen small operations for each of them."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay,
                             betas=(0.9, 0.999), fused=True)


def _comparable(config: RunConfig) -> dict[str, Any]:
    values = config.to_dict()
    for name in _RESUMABLE_FIELDS:
        values.pop(name)
    return values


def load_checkpoint(path: Path, then: str = "training from scratch") -> dict[str, Any] | None:
    """The checkpoint's contents, or None (saying so, and ``then``) when it is damaged."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        print(f"checkpoint {path} is damaged ({error}); {then}", file=sys.stderr)
        return None


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


#: The loss of one training step: (model, standardised normal batch, the batch's indices
#: into the training set, epoch, step) -> scalar. The default is the reconstruction MSE.
StepLoss = Callable[[ADTR, Tensor, Tensor, int, int], Tensor]


def _reconstruction_step(model: ADTR, batch: Tensor, index: Tensor, epoch: int,
                         step: int) -> Tensor:
    return reconstruction_loss(batch, model(batch).float())


def train(config: RunConfig, category: str, features: Tensor, out_dir: Path,
          device: torch.device, progress: bool = True, *,
          start_from: dict[str, Any] | None = None, step_loss: StepLoss = _reconstruction_step,
          identity: dict[str, Any] | None = None) -> tuple[ADTR, Standardizer, dict]:
    """Train (or resume training) on normal features; returns the model and its history.

    Fine-tuning (ADTR+) passes ``start_from`` (a checkpoint's state to start from),
    ``step_loss`` (its objective) and ``identity`` (what else a resumable checkpoint must
    match, e.g. the base model's checksum).
    """
    keep_freed_memory()
    checkpoint_path = out_dir / "checkpoint.pt"
    seed_everything(config.seed)
    model, standardizer = build_model(config, features.shape[1])
    if start_from is not None:
        model.load_state_dict(start_from["model"])
        standardizer.load_state_dict(start_from["standardizer"])
    elif config.standardize:
        standardizer.fit(features)
    epochs, lr, lr_step_epoch = schedule(config)
    optimizer = make_optimizer(model, lr, config)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step_epoch, gamma=0.1)
    history: dict[str, list] = {"epoch_loss": []}
    start_epoch = 0
    identity = {"config": _comparable(config), "category": category, **(identity or {})}
    state = load_checkpoint(checkpoint_path)
    if state is not None:
        same = all(state.get(key) == value for key, value in identity.items())
        if same:
            model.load_state_dict(state["model"])
            standardizer.load_state_dict(state["standardizer"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            history, start_epoch = state["history"], state["epoch"]
            if start_epoch < epochs:
                print(f"resuming {checkpoint_path} from epoch {start_epoch}", file=sys.stderr)
        else:
            print(f"checkpoint {checkpoint_path} was made with other parameters; "
                  "training from scratch", file=sys.stderr)
    model.to(device)
    standardizer.to(device)
    inputs = standardizer(features.to(device))
    count = len(inputs)
    use_amp = uses_bf16(config.precision, device)
    bar = tqdm(range(start_epoch, epochs), desc=f"{category} {config.variant}",
               disable=not progress, initial=start_epoch, total=epochs)
    for epoch in bar:
        model.train()
        # The order depends only on (seed, epoch), so a resumed run sees the same batches.
        order = torch.randperm(count, generator=torch.Generator().manual_seed(config.seed + epoch))
        losses = []
        for step, start in enumerate(range(0, count, config.batch_size)):
            index = order[start:start + config.batch_size]
            batch = inputs[index.to(device)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = step_loss(model, batch, index, epoch, step)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; the last "
                    f"good checkpoint is kept at {checkpoint_path} (try a lower --lr)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        history["epoch_loss"].append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history['epoch_loss'][-1]:.4f}")
        done = epoch + 1
        if done % config.checkpoint_every == 0 or done == epochs:
            _save_checkpoint(checkpoint_path, {
                **identity, "full_config": config.to_dict(),
                "epoch": done, "channels": features.shape[1],
                "model": model.state_dict(), "standardizer": standardizer.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "history": history,
            })
    return model, standardizer, history


@torch.inference_mode()
def differences(model: ADTR, standardizer: Standardizer, features: Tensor,
                device: torch.device, batch_size: int = 32, precision: str = "auto") -> Tensor:
    """Difference vectors d = f - f_hat (in the standardised space), (N, C, H, W) on the CPU."""
    model.eval().to(device)
    standardizer.to(device)
    out = []
    for start in range(0, len(features), batch_size):
        batch = standardizer(features[start:start + batch_size].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=uses_bf16(precision, device)):
            reconstruction = model(batch).float()
        out.append((batch - reconstruction).cpu())
    return torch.cat(out)


def predict(model: ADTR, standardizer: Standardizer, features: Tensor, config: RunConfig,
            device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Pixel anomaly maps (N, size, size) and image scores (N,) for a feature tensor."""
    diff = differences(model, standardizer, features, device, precision=config.precision)
    maps = anomaly_map(diff, torch.zeros_like(diff))
    pool = max(1, round(config.score_pool * config.image_size / 224))
    pixel_maps, scores = upsample_and_score(maps, config.image_size, pool, config.smoothing_sigma)
    return pixel_maps.numpy().astype(np.float32), scores.numpy()


def score(labels: np.ndarray, masks: np.ndarray, maps: np.ndarray,
          scores: np.ndarray) -> dict[str, float]:
    """The three metrics of a category's test set."""
    return {
        "image_auroc": metrics.image_auroc(labels, scores),
        "pixel_auroc": metrics.pixel_auroc(masks, maps),
        "aupro": metrics.aupro(masks, maps),
    }


def fit(config: RunConfig, category: str, out_dir: str | Path, cache_dir: Path | None = None,
        progress: bool = True, base_checkpoint: Path | None = None) -> dict[str, Any]:
    """Train on ``train/good``, evaluate on ``test``, write ``OUT/metrics.json``; return it.

    ADTR+ (``variant="adtr_plus"``) fine-tunes the ADTR model of ``base_checkpoint``;
    without one, it first trains that model into ``OUT/base``.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    if config.variant == "adtr_plus" and config.plus_anomalies != CONFETTI:
        from adtr.plus import external_samples

        external_samples(config.plus_anomalies)  # a bad folder fails before any training
    device = pick_device(config.device)
    category_data = load_category(config, category, device, cache_dir, progress)
    extra: dict[str, Any] = {}
    if config.variant == "adtr_plus":
        from adtr import plus

        if base_checkpoint is None:
            base = fit(replace(config, variant="adtr"), category, out_dir / "base", cache_dir,
                       progress)
            base_checkpoint = Path(base["record"]["checkpoint"])
        objective = plus.category_objective(config, category, category_data, device, cache_dir,
                                            progress)
        model, standardizer, history, extra = plus.fine_tune(
            config, category, category_data.train_features, Path(base_checkpoint), out_dir,
            device, objective, progress)
    else:
        model, standardizer, history = train(config, category, category_data.train_features,
                                             out_dir, device, progress)
    result = _evaluate(model, standardizer, config, category, category_data, device)
    result["record"].update(extra)
    result["record"]["epochs_trained"] = len(history["epoch_loss"])
    result["record"]["loss_history"] = history["epoch_loss"]
    result["record"]["wall_time_s"] = round(time.perf_counter() - started, 2)
    result["record"]["checkpoint"] = str(out_dir / "checkpoint.pt")
    write_json(out_dir / "metrics.json", result)
    return result


def _evaluate(model: ADTR, standardizer: Standardizer, config: RunConfig, category: str,
              category_data: CategoryData, device: torch.device) -> dict[str, Any]:
    maps, scores = predict(model, standardizer, category_data.test_features, config, device)
    values = score(category_data.labels, category_data.masks, maps, scores)
    record = run_record(
        experiment="fit", variant=config.variant, category=category, metrics=values,
        config=config.to_dict(), data=category_data.info,
        backbone={"name": config.backbone, "weights": category_data.extractor.weights_source,
                  "stages": list(config.stages),
                  "channels": int(category_data.train_features.shape[1])},
        seed=config.seed, environment=environment(str(device)),
    )
    return {**values, "category": category, "record": record}


def restore(state: dict[str, Any], **config_overrides: Any
            ) -> tuple[RunConfig, ADTR, Standardizer]:
    """The config, model and standardiser saved in a checkpoint's ``state``."""
    values = {**state["full_config"], **config_overrides}
    values["stages"] = tuple(values["stages"])
    config = RunConfig(**values)
    model, standardizer = build_model(config, state["channels"])
    model.load_state_dict(state["model"])
    standardizer.load_state_dict(state["standardizer"])
    return config, model, standardizer


def evaluate(checkpoint: str | Path, data_root: str | Path, category: str,
             out_dir: str | Path | None = None, cache_dir: Path | None = None,
             device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Score a checkpoint written by ``fit`` on ``data_root/category``'s test split."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise AdtrError(f"checkpoint {checkpoint} does not exist; `adtr fit` writes one")
    state = load_checkpoint(checkpoint, then="cannot evaluate it")
    if state is None or "full_config" not in state:
        raise AdtrError(f"{checkpoint} is not a readable adtr checkpoint")
    started = time.perf_counter()
    config, model, standardizer = restore(state, data_root=str(data_root), device=device)
    torch_device = pick_device(device)
    category_data = load_category(config, category, torch_device, cache_dir, progress)
    result = _evaluate(model, standardizer, config, category, category_data, torch_device)
    result["record"].update(experiment="evaluate", checkpoint=str(checkpoint),
                            trained_on=state["category"], epochs_trained=state["epoch"],
                            wall_time_s=round(time.perf_counter() - started, 2))
    out_dir = checkpoint.parent if out_dir is None else Path(out_dir)
    write_json(out_dir / "metrics.json", result)
    return result

