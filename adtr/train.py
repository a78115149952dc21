"""The training loop and what it needs: model and standardiser, one optimisation step,
resumable checkpoints, and the model's maps and scores on a feature tensor.

Nothing here knows where features come from or what a run records: ``adtr.pipeline``
builds a run (its data, objective and record) on top of this loop. ``train`` saves a
resumable checkpoint every few epochs; started again with the same identity (parameters,
data, and whatever the caller adds), it resumes from the last one, otherwise it says why
and starts over.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from adtr.allocator import keep_freed_memory
from adtr.errors import AdtrError
from adtr.model import ADTR, anomaly_map, fit_pca, reconstruction_loss, upsample_and_score
from adtr.profiles import ADTR_PLUS, RunConfig
from adtr.records import atomic_path

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
    return ADTR(channels, grid, config), Standardizer(channels)


#: The share of a run's epochs after which its learning rate is cut 10x, once: the paper's
#: schedule (500 epochs, cut at 400), for every profile and every number of epochs.
LR_CUT_FRACTION = 0.8

#: (epochs, learning rate, epoch after which it is cut 10x; None: constant) of a training run.
Schedule = tuple[int, float, int | None]


def lr_cut_epoch(epochs: int) -> int:
    """The epoch after which the learning rate is cut 10x: 80 % of ``epochs``, rounded (at
    least 1), so ``epochs`` = 500 cuts after epoch 400 and 40 after epoch 32."""
    return max(1, round(LR_CUT_FRACTION * epochs))


def schedule_of(config: RunConfig) -> Schedule:
    """A reconstruction run's schedule: the config's epochs and lr, one cut at 80 %."""
    return config.epochs, config.lr, lr_cut_epoch(config.epochs)


def make_scheduler(optimizer: torch.optim.Optimizer, cut_epoch: int | None
                   ) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch: the lr times 0.1 from epoch ``cut_epoch`` on, once (never
    again: a ``StepLR`` would cut every ``cut_epoch`` epochs); constant for None."""
    milestones = [] if cut_epoch is None else [cut_epoch]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)


def make_optimizer(model: torch.nn.Module, lr: float, config: RunConfig) -> torch.optim.AdamW:
    """AdamW with the config's weight decay, fused: one kernel updates all parameters (on
    the CPU as on CUDA) instead of a dozen small operations for each of them."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay,
                             betas=(0.9, 0.999), fused=True)


def deciding_values(config: RunConfig) -> dict[str, Any]:
    """The config's values that decide a run's numbers: all but where it runs and how often
    it checkpoints, and ADTR+'s settings only for ADTR+ (they change no other run)."""
    values = config.to_dict()
    for name in ("device", "checkpoint_every"):
        values.pop(name)
    if config.objective != ADTR_PLUS:
        values = {k: v for k, v in values.items() if not k.startswith("plus_")}
    return values


def _comparable(config: RunConfig) -> dict[str, Any]:
    """What a resumable checkpoint's config must match: the deciding values, less those
    that only change the evaluation or the record."""
    values = deciding_values(config)
    for name in _RESUMABLE_FIELDS:
        values.pop(name, None)
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


#: A look at the model during training: (epoch, model in eval mode, standardiser) -> the
#: values to keep for that epoch (see ``pipeline.shortcut_probe``).
Probe = Callable[[int, ADTR, "Standardizer"], dict[str, float]]


class NonFiniteLoss(TrainingError):
    """A step's loss is NaN or infinite (no update was made)."""

    def __init__(self, value: float) -> None:
        super().__init__(f"the loss became {value}")
        self.value = value


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  compute_loss: Callable[[], Tensor], grad_clip: float, device: torch.device,
                  autocast: torch.dtype | None = None,
                  scaler: torch.amp.GradScaler | None = None) -> float:
    """One optimisation step, the same for every run and for the benchmarks: the loss under
    autocast to ``autocast`` (None: none), backward (through ``scaler`` for fp16), gradient-
    norm clip to ``grad_clip``, optimizer step. Returns the loss; raises ``NonFiniteLoss``
    before any update when it is not finite."""
    with torch.autocast(device.type, dtype=autocast or torch.bfloat16,
                        enabled=autocast is not None):
        loss = compute_loss()
    value = loss.item()  # the step's one wait for the device
    if not math.isfinite(value):
        raise NonFiniteLoss(value)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    return value


def _mismatch(state: dict[str, Any], identity: dict[str, Any]) -> str | None:
    """Why a checkpoint's ``state`` cannot be resumed under ``identity`` (None: it can)."""
    reasons = {"config": "was made with other parameters",
               "category": "was trained on another category",
               "data": "was trained on other data (the images changed since)",
               "base": "was fine-tuned from another base model",
               "schedule": "was trained under another learning-rate schedule"}
    for key, value in identity.items():
        if key not in state:
            return f"was written before checkpoints recorded their {key!r}"
        if state[key] != value:
            return reasons.get(key, f"differs in {key!r}")
    return None


def train(config: RunConfig, category: str, features: Tensor, out_dir: Path,
          device: torch.device, progress: bool = True, *, schedule: Schedule | None = None,
          start_from: dict[str, Any] | None = None, step_loss: StepLoss = _reconstruction_step,
          identity: dict[str, Any] | None = None, probe: Probe | None = None
          ) -> tuple[ADTR, Standardizer, dict]:
    """Train (or resume training) on normal features; returns the model and its history.

    ``schedule``: (epochs, lr, cut epoch), by default the config's (``schedule_of``).
    Fine-tuning (ADTR+) passes ``start_from`` (a checkpoint's state to start from) and
    ``step_loss`` (its objective). ``identity``: what else a resumable checkpoint must
    match (the data's digest, the base model's checksum); the schedule always is. ``probe``
    is called before the first epoch and at every checkpoint; its values are kept in
    ``history["probes"]`` (with the checkpoint, so a resumed run keeps them), each epoch's
    learning rate in ``history["lr"]``. A ``pca`` model is fitted in closed form, with no
    epochs.
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
    # On the device before the optimizer exists: a resumed optimizer's state is then loaded
    # onto the parameters' device (the fused step needs both on one device).
    model.to(device)
    standardizer.to(device)
    epochs, lr, cut_epoch = schedule or schedule_of(config)
    # the schedule itself, not only the config it came from: a checkpoint of the old
    # schedule (a cut every lr_step_epoch epochs) is never resumed under this one
    identity = {"config": _comparable(config), "category": category,
                "schedule": [epochs, lr, cut_epoch], **(identity or {})}
    if config.variant == "pca":  # closed form: nothing to resume
        fit_pca(model, standardizer(features.to(device)))
        history: dict[str, list] = {"epoch_loss": [], "probes": []}
        _save_checkpoint(checkpoint_path, {
            **identity, "full_config": config.to_dict(), "epoch": 0,
            "channels": features.shape[1], "model": model.state_dict(),
            "standardizer": standardizer.state_dict(), "history": history})
        return model, standardizer, history
    optimizer = make_optimizer(model, lr, config)
    scheduler = make_scheduler(optimizer, cut_epoch)
    history = {"epoch_loss": [], "lr": [], "probes": []}
    start_epoch = 0
    state = load_checkpoint(checkpoint_path)
    if state is not None:
        mismatch = _mismatch(state, identity)
        if mismatch is None:
            model.load_state_dict(state["model"])
            standardizer.load_state_dict(state["standardizer"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and "cuda_rng" in state:  # CUDA's dropout masks
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            history, start_epoch = state["history"], state["epoch"]
            if start_epoch < epochs:
                print(f"resuming {checkpoint_path} from epoch {start_epoch}", file=sys.stderr)
        else:
            print(f"checkpoint {checkpoint_path} {mismatch}; training from scratch",
                  file=sys.stderr)
    inputs = standardizer(features.to(device))

    def look(epoch: int) -> None:
        if probe is not None:
            model.eval()
            history.setdefault("probes", []).append({"epoch": epoch,
                                                     **probe(epoch, model, standardizer)})

    if start_epoch == 0 and not history.get("probes"):
        look(0)
    count = len(inputs)
    use_amp = uses_bf16(config.precision, device)
    bar = tqdm(range(start_epoch, epochs), desc=f"{category} {config.variant}",
               disable=not progress, initial=start_epoch, total=epochs)
    for epoch in bar:
        model.train()
        # The order depends only on (seed, epoch), so a resumed run sees the same batches.
        order = torch.randperm(count, generator=torch.Generator().manual_seed(config.seed + epoch))
        losses = []
        history.setdefault("lr", []).append(optimizer.param_groups[0]["lr"])
        for step, start in enumerate(range(0, count, config.batch_size)):
            index = order[start:start + config.batch_size]
            batch = inputs[index.to(device)]
            try:
                loss = training_step(
                    model, optimizer, partial(step_loss, model, batch, index, epoch, step),
                    config.grad_clip, device, torch.bfloat16 if use_amp else None)
            except NonFiniteLoss as error:
                raise TrainingError(
                    f"loss became {error.value} at epoch {epoch + 1}, step {step + 1}; the last "
                    f"good checkpoint is kept at {checkpoint_path} (try a lower --lr)"
                ) from None
            losses.append(loss)
        scheduler.step()
        history["epoch_loss"].append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history['epoch_loss'][-1]:.4f}")
        done = epoch + 1
        if done % config.checkpoint_every == 0 or done == epochs:
            look(done)
            _save_checkpoint(checkpoint_path, {
                **identity, "full_config": config.to_dict(),
                "epoch": done, "channels": features.shape[1],
                "model": model.state_dict(), "standardizer": standardizer.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "history": history,
                **({"cuda_rng": torch.cuda.get_rng_state(device)}
                   if device.type == "cuda" else {}),
            })
    return model, standardizer, history


@torch.inference_mode()
def reconstructions(model: ADTR, standardizer: Standardizer, features: Tensor,
                    device: torch.device, batch_size: int = 32, precision: str = "auto"
                    ) -> tuple[Tensor, Tensor]:
    """The standardised features f and their reconstructions f_hat, (N, C, H, W) each on
    the CPU."""
    model.eval().to(device)
    standardizer.to(device)
    inputs, outputs = [], []
    for start in range(0, len(features), batch_size):
        batch = standardizer(features[start:start + batch_size].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=uses_bf16(precision, device)):
            reconstruction = model(batch).float()
        inputs.append(batch.cpu())
        outputs.append(reconstruction.cpu())
    return torch.cat(inputs), torch.cat(outputs)


def differences(model: ADTR, standardizer: Standardizer, features: Tensor,
                device: torch.device, batch_size: int = 32, precision: str = "auto") -> Tensor:
    """Difference vectors d = f - f_hat (in the standardised space), (N, C, H, W) on the CPU."""
    inputs, outputs = reconstructions(model, standardizer, features, device, batch_size,
                                      precision)
    return inputs - outputs


def maps_and_scores(diff: Tensor, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pixel anomaly maps (N, size, size) and image scores (N,) from difference vectors."""
    maps = anomaly_map(diff, torch.zeros_like(diff))
    pool = max(1, round(config.score_pool * config.image_size / 224))
    pixel_maps, scores = upsample_and_score(maps, config.image_size, pool, config.smoothing_sigma)
    return pixel_maps.numpy().astype(np.float32), scores.numpy()


def predict(model: ADTR, standardizer: Standardizer, features: Tensor, config: RunConfig,
            device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Pixel anomaly maps (N, size, size) and image scores (N,) for a feature tensor."""
    return maps_and_scores(differences(model, standardizer, features, device,
                                       precision=config.precision), config)


def restore(state: dict[str, Any], **config_overrides: Any
            ) -> tuple[RunConfig, ADTR, Standardizer]:
    """The config, model and standardiser saved in a checkpoint's ``state``."""
    values = {**state["full_config"], **config_overrides}
    values["stages"] = tuple(values["stages"])
    values.pop("lr_step_epoch", None)  # written before every schedule cut once at 80 %
    if values["variant"] == ADTR_PLUS:  # written when ADTR+ was a variant
        values.update(variant="adtr", objective=ADTR_PLUS)
    config = RunConfig(**values)
    model, standardizer = build_model(config, state["channels"])
    model.load_state_dict(state["model"])
    standardizer.load_state_dict(state["standardizer"])
    return config, model, standardizer
