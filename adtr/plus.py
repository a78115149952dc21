"""ADTR+: the ADTR model fine-tuned with anomalies (the paper's anomaly-available case).

The normal-only model is trained first; ADTR+ starts from it and fine-tunes with a loss
that keeps reconstructing normal positions and pushes the reconstruction of anomalous
positions away (FCDD's semi-supervised loss, applied to the difference vectors d = f - f_hat):

    phi(u) = sqrt((1/C sum_i |d(i, u)|)^2 + 1) - 1
    L_px   = 1/HW sum_u (1 - y(u)) phi(u) - alpha log(1 - exp(-1/HW sum_u y(u) phi(u)))
    L_img  = (1 - y) q - alpha y log(1 - exp(-q)),    q = mean of the k largest phi(u)

Where the anomalies come from (``RunConfig.plus_anomalies``; ``adtr.pipeline`` builds the
objective of a run from them and fine-tunes):
- ``"confetti"``: confetti noise as in FCDD -- random coloured rectangles blended into the
  normal *training* images on the fly, reproducible from (seed, epoch, step), with pixel
  labels, so ``L_px``;
- a folder of external images (e.g. CIFAR-100 for CIFAR-10): image labels, so ``L_img``.
Never from the test split: confetti is drawn on training images, and a folder inside the
category's test or ground-truth folders is refused.

Choices the paper does not state (recorded with every run):
- The log term of ``L_px`` is only taken for images with at least one anomalous position
  (for a normal image it would be -log 0); FCDD's code does the same.
- ``y(u)`` on the feature grid is the fraction of the cell covered by the pixel mask.
- Each step uses the normal batch and as many anomalous images.
- The anomaly score stays ``s(u) = ||d(:, u)||_2``, as for ADTR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from adtr import data
from adtr.errors import DataError
from adtr.features import from_unit, to_unit
from adtr.profiles import RunConfig


def phi(diff: Tensor) -> Tensor:
    """Pseudo-Huber of the mean absolute difference over channels: (B, C, H, W) -> (B, H, W)."""
    return torch.sqrt(diff.abs().mean(dim=1) ** 2 + 1) - 1


def _anomaly_term(q: Tensor) -> Tensor:
    """-log(1 - exp(-q)), computed stably (``expm1``); q is clamped away from 0."""
    return -torch.log(-torch.expm1(-q.clamp_min(1e-12)))


def pixel_loss(phi_map: Tensor, labels: Tensor, alpha: float) -> Tensor:
    """``L_px`` averaged over the batch; ``labels`` (B, H, W) in [0, 1], 0 = normal."""
    normal = ((1 - labels) * phi_map).flatten(1).mean(dim=1)
    anomalous = (labels * phi_map).flatten(1).mean(dim=1)
    has_anomaly = labels.flatten(1).amax(dim=1) > 0
    term = torch.where(has_anomaly, _anomaly_term(anomalous), torch.zeros_like(anomalous))
    return (normal + alpha * term).mean()


def image_loss(phi_map: Tensor, labels: Tensor, alpha: float, top_k: int) -> Tensor:
    """``L_img`` averaged over the batch; ``labels`` (B,) with 1 = anomalous image."""
    flat = phi_map.flatten(1)
    q = flat.topk(min(top_k, flat.shape[1]), dim=1).values.mean(dim=1)
    return ((1 - labels) * q + alpha * labels * _anomaly_term(q)).mean()


def confetti(images: Tensor, rng: np.random.Generator, max_blobs: int = 4,
             min_size: float = 0.05, max_size: float = 0.25) -> tuple[Tensor, Tensor]:
    """Confetti noise: 1..``max_blobs`` coloured rectangles blended into each image.

    ``images`` (B, 3, H, W) in [0, 1]. Each rectangle has sides of ``min_size`` to
    ``max_size`` of the image side, a random colour and an opacity in [0.5, 1]. Returns the
    new images and boolean masks (B, H, W) of the pixels the rectangles cover.
    """
    out = images.clone()
    batch, _, height, width = images.shape
    masks = torch.zeros(batch, height, width, dtype=torch.bool)
    for b in range(batch):
        for _ in range(rng.integers(1, max_blobs + 1)):
            h = int(rng.integers(max(1, round(min_size * height)), round(max_size * height) + 1))
            w = int(rng.integers(max(1, round(min_size * width)), round(max_size * width) + 1))
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            colour = torch.from_numpy(rng.random(3).astype(np.float32)).view(3, 1, 1)
            opacity = float(rng.uniform(0.5, 1.0))
            region = out[b, :, top:top + h, left:left + w]
            region.mul_(1 - opacity).add_(opacity * colour)
            masks[b, top:top + h, left:left + w] = True
    return out, masks


class ConfettiLoss:
    """``L_px`` on the normal batch plus the same images with confetti noise.

    The noisy images go through the frozen backbone in the loop (they are new each step).
    """

    def __init__(self, images: Tensor, extractor: torch.nn.Module, standardizer: torch.nn.Module,
                 config: RunConfig, device: torch.device) -> None:
        self.images = images  # (N, 3, S, S), ImageNet-normalised, on the CPU
        self.extractor = extractor.to(device)
        self.standardizer = standardizer.to(device)
        self.config = config
        self.device = device

    def __call__(self, model: torch.nn.Module, batch: Tensor, index: Tensor, epoch: int,
                 step: int) -> Tensor:
        rng = np.random.default_rng([self.config.seed, epoch, step])
        noisy, masks = confetti(to_unit(self.images[index]), rng)
        features = self.extractor(from_unit(noisy).to(self.device)).float()
        anomalous = self.standardizer(features)
        stride = self.config.feature_stride
        labels = F.avg_pool2d(masks[:, None].float(), stride)[:, 0].to(self.device)
        inputs = torch.cat([batch, anomalous])
        labels = torch.cat([torch.zeros_like(labels), labels])
        return pixel_loss(phi(inputs - model(inputs).float()), labels, self.config.plus_alpha)


class ExternalLoss:
    """``L_img`` on the normal batch plus as many images drawn from an external set."""

    def __init__(self, features: Tensor, config: RunConfig, device: torch.device) -> None:
        self.features = features  # standardised (M, C, H, W) features of the external images
        self.config = config
        self.device = device

    def __call__(self, model: torch.nn.Module, batch: Tensor, index: Tensor, epoch: int,
                 step: int) -> Tensor:
        rng = np.random.default_rng([self.config.seed, epoch, step])
        count = len(self.features)
        pick = torch.from_numpy(rng.choice(count, size=len(batch), replace=count < len(batch)))
        inputs = torch.cat([batch, self.features[pick].to(self.device)])
        labels = torch.cat([torch.zeros(len(batch)), torch.ones(len(batch))]).to(self.device)
        return image_loss(phi(inputs - model(inputs).float()), labels, self.config.plus_alpha,
                          self.config.plus_top_k)


def external_samples(folder: str | Path, forbidden: list[Path] = ()) -> list[data.Sample]:
    """The images of an external-anomaly folder (searched recursively), as samples.

    ``forbidden``: folders the anomalies must not come from (a category's test split).
    """
    folder = Path(folder)
    expected = ("expected a folder of images (" + ", ".join(data.IMAGE_SUFFIXES) + ") to use "
                "as anomalies for ADTR+, or plus_anomalies='confetti'")
    if not folder.is_dir():
        raise DataError(f"external anomaly folder {folder} does not exist; {expected}")
    resolved = folder.resolve()
    for bad in forbidden:
        bad = bad.resolve()
        if resolved == bad or bad in resolved.parents or resolved in bad.parents:
            raise DataError(f"external anomaly folder {folder} overlaps {bad}: anomalies for "
                            "training must never come from the test split")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in data.IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"external anomaly folder {folder} has no images; {expected}")
    return [data.Sample(path, 1, "external", None) for path in files]


def normalised_images(samples: list[data.Sample], size: int) -> Tensor:
    """The samples' images, ImageNet-normalised: (N, 3, size, size) on the CPU."""
    return torch.from_numpy(np.stack([data.load_image(s.image, size)[0] for s in samples]))
