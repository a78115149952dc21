"""Looking inside a trained model: maps for a gallery, difference vectors for Fig. 5, and
which defect kinds a run finds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.manifold import TSNE
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from adtr import data, objects, pipeline, profiles, scores, synth, train
from adtr.errors import AdtrError
from adtr.schema import RunRecord


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


# --- which defect kinds a run finds ----------------------------------------------------------

#: ``defect_kinds``' type of a generated defect: painted on the surface (every texture defect,
#: and the objects' ``objects.LOCAL_KINDS``), or a change of the object's parts or layout.
LOCAL, STRUCTURAL = "local", "structural / logical"


def kind_aurocs(labels: np.ndarray, image_scores: np.ndarray, kinds: list[str]
                ) -> dict[str, float]:
    """Image AUROC of the normal test images (label 0) against each defect kind alone."""
    labels, image_scores = np.asarray(labels), np.asarray(image_scores)
    normal = labels == 0
    found = {}
    for kind in dict.fromkeys(k for k, label in zip(kinds, labels, strict=True) if label):
        chosen = normal | (np.asarray(kinds) == kind)
        found[kind] = float(roc_auc_score(labels[chosen], image_scores[chosen]))
    return found


def defect_type(category: str, kind: str, synthetic: bool) -> str | None:
    """LOCAL or STRUCTURAL for the generated data's kinds; None for other data."""
    if not synthetic or category not in synth.CATEGORIES:
        return None
    return LOCAL if objects.is_local(category, kind) else STRUCTURAL


def defect_kinds(config: profiles.RunConfig, runs: pd.DataFrame, records: list[RunRecord]
                 ) -> pd.DataFrame:
    """Per run (a row of ``runs``, a ``run_grid`` table, with its record in ``records``) and
    defect kind: the image AUROC of the normal test images against that kind alone, with the
    kind's type, its number of test images and the share of the image its defects cover
    (mean over those images, in %). Read from each run's saved test scores
    (``pipeline.scores_path``), in the order of its category's test images in
    ``config.data_root``, which must be the images the run was tested on (AdtrError
    otherwise)."""
    listings: dict[str, tuple[pipeline.RunData, np.ndarray]] = {}  # category -> test, areas
    rows = []
    for run_row, record in zip(runs.to_dict(orient="records"), records, strict=True):
        if (run_row["category"], run_row["seed"]) != (record.category, record.seed):
            raise AdtrError(f"run table row {run_row['category']} seed {run_row['seed']} "
                            f"was given the record of {record.category} seed {record.seed}")
        if record.category not in listings:
            run = pipeline.category_data(config, record.category)
            area = data.load_masks(run.test, config.image_size).mean(axis=(1, 2))
            listings[record.category] = run, area
        run, area = listings[record.category]
        test = scores.RunScores.load(pipeline.scores_path(record))
        if (record.data.get("digest", run.digest) != run.digest
                or not np.array_equal(test.labels, run.labels)):
            raise AdtrError(f"the saved scores of the {record.category} run (seed "
                            f"{record.seed}) are not of its test images in {config.data_root} "
                            "as listed now")
        kinds = np.array([sample.defect for sample in run.test])
        synthetic = bool(record.data.get("synthetic"))
        for kind, auroc in kind_aurocs(test.labels, test.image_scores, list(kinds)).items():
            rows.append({"variant": run_row["variant"], "category": record.category,
                         "kind": kind, "seed": record.seed,
                         "type": defect_type(record.category, kind, synthetic),
                         "images": int((kinds == kind).sum()),
                         "area_percent": float(100 * area[kinds == kind].mean()),
                         "image_auroc": auroc})
    return pd.DataFrame(rows)
