"""The notebooks' figures that need a run or a data set (``adtr.viz`` draws them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from adtr import data, experiments, oneclass, plus, train, viz
from adtr.analysis import display_image
from adtr.features import to_unit


def gallery_figure(setup: experiments.Setup, category: str, seed: int, n_anomalous: int = 5,
                   **overrides: Any):
    """Test images of one category with ground truth and predicted maps: one good image
    and one of each defect kind, then more anomalous ones up to ``n_anomalous`` in all."""
    trained = experiments.trained_run(setup, category, seed, **overrides)
    samples = trained.run.test
    good = [i for i, s in enumerate(samples) if s.label == 0][:1]
    anomalous = [i for i, s in enumerate(samples) if s.label == 1]
    by_defect: dict[str, int] = {}
    for i in anomalous:  # one image per defect kind first, then the rest
        by_defect.setdefault(samples[i].defect, i)
    rest = [i for i in anomalous if i not in by_defect.values()]
    chosen = good + (list(by_defect.values()) + rest)[:max(n_anomalous, len(by_defect))]
    maps, scores = train.predict(trained.model, trained.standardizer,
                                 trained.features.test[chosen], trained.config, trained.device)
    images = [display_image(samples[i].image, trained.config.image_size) for i in chosen]
    titles = [f"{samples[i].defect}/{samples[i].image.stem}" for i in chosen]
    return viz.gallery(images, trained.masks[chosen], maps, scores, titles)


def confetti_figure(setup: experiments.Setup, category: str, count: int = 8, seed: int = 0):
    """Training images of a category and the same images with confetti noise (masks in red)."""
    samples = data.list_samples(setup.base.data_root, category, "train")[:count]
    unit = to_unit(plus.normalised_images(samples, setup.base.image_size)).clamp(0, 1)
    noisy, masks = plus.confetti(unit, np.random.default_rng(seed))
    rows = {"training image": unit, "with confetti": noisy}
    return viz.image_grid({k: v.permute(0, 2, 3, 1).numpy() for k, v in rows.items()},
                          masks.numpy(), columns=count)


def one_class_examples(setup: experiments.OneClassSetup, normal: int = 0, count: int = 8):
    """Training images of one class, anomalies of its test split, external anomalies."""
    split = oneclass.one_class_split(setup.dataset, normal)
    anomalies = split.test_images[split.test_labels == 1]
    rows = {f"normal: class {setup.dataset.classes[normal]}": split.train_images[:count],
            "test anomalies": anomalies[:count],
            f"external ({setup.external_name})": setup.external[:count]}
    return viz.image_grid(rows, columns=count)
