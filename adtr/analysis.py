"""Looking inside a trained model: maps for a gallery, difference vectors for Fig. 5."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.manifold import TSNE
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from adtr import data, pipeline, profiles, train
from adtr.errors import AdtrError


@dataclass
class Trained:
    """A finished run, loaded back: its config, model, the category's data and features."""

    config: profiles.RunConfig
    model: torch.nn.Module
    standardizer: train.Standardizer
    run: pipeline.RunData
    features: pipeline.Features
    masks: np.ndarray  # of the test images, at the input size
    device: torch.device


def load_trained(run_dir: str | Path, category: str) -> Trained:
    """Load ``run_dir/checkpoint.pt`` and the (cached) features of its category."""
    state = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    config, model, standardizer = train.restore(state)
    device = train.pick_device(config.device)
    run = pipeline.category_data(config, category)
    features = pipeline.extract_features(config, run, device, progress=False)
    masks = data.load_masks(run.test, config.image_size)
    return Trained(config, model, standardizer, run, features, masks, device)


def display_image(path: Path, size: int) -> np.ndarray:
    """The image as uint8 RGB at the model's input size, for plotting."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))


@dataclass
class DifferenceSample:
    """Difference vectors d(:, u) at sampled positions, with labels and scores s(u)."""

    vectors: np.ndarray  # (n, C)
    anomalous: np.ndarray  # (n,) bool
    scores: np.ndarray  # (n,) ||d||_2


def sample_difference_vectors(trained: Trained, n: int = 600, seed: int = 0) -> DifferenceSample:
    """``n`` random test positions, half normal and half anomalous (from the masks).

    Fewer when the test set has fewer than ``n / 2`` anomalous positions (tiny data).

    A position of the feature grid is anomalous when at least half of its pixels are in
    the ground-truth mask and normal when none are; positions in between are not used.
    """
    diff = train.differences(trained.model, trained.standardizer, trained.features.test,
                             trained.device, precision=trained.config.precision)
    grid = diff.shape[-1]
    masks = torch.from_numpy(trained.masks).float()[:, None]
    coverage = F.adaptive_avg_pool2d(masks, grid)[:, 0].flatten()
    vectors = diff.permute(0, 2, 3, 1).reshape(-1, diff.shape[1]).numpy()
    rng = np.random.default_rng(seed)
    anomalous_idx = np.flatnonzero(coverage.numpy() >= 0.5)
    normal_idx = np.flatnonzero(coverage.numpy() == 0)
    half = min(n // 2, len(anomalous_idx), len(normal_idx))
    if half < 3:
        raise AdtrError(f"only {len(anomalous_idx)} anomalous positions (mask covering at least "
                        "half of a feature cell) in the test set; too few for a t-SNE")
    chosen = np.concatenate([rng.choice(normal_idx, half, replace=False),
                             rng.choice(anomalous_idx, half, replace=False)])
    picked = vectors[chosen]
    return DifferenceSample(picked, np.arange(len(chosen)) >= half,
                            np.linalg.norm(picked, axis=1))


def embed(sample: DifferenceSample, seed: int = 0) -> np.ndarray:
    """2-D t-SNE embedding of the difference vectors."""
    perplexity = min(30.0, (len(sample.vectors) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca",
                random_state=seed).fit_transform(sample.vectors)


def separation(embedding: np.ndarray, sample: DifferenceSample) -> dict[str, float]:
    """How well normal and anomalous vectors separate (numbers the paper does not give)."""
    labels = sample.anomalous.astype(int)
    smallest = int(np.bincount(labels).min())  # 300 in the paper's setting, fewer on tiny data
    folds, neighbours = min(5, smallest), min(5, smallest)
    knn = cross_val_score(KNeighborsClassifier(n_neighbors=neighbours), embedding, labels,
                          cv=folds)
    return {
        "n_normal": int((labels == 0).sum()),
        "n_anomalous": int(labels.sum()),
        "knn_accuracy_tsne": float(knn.mean()),
        "silhouette_tsne": float(silhouette_score(embedding, labels)),
        "score_auroc": float(roc_auc_score(labels, sample.scores)),
    }
