"""ADTR+: the losses against hand-computed values, confetti noise, fine-tuning end to end."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adtr import pipeline, plus, profiles
from adtr.errors import DataError


def test_phi_is_the_pseudo_huber_of_the_mean_absolute_difference() -> None:
    diff = torch.tensor([[[[3.0, 0.0]], [[-1.0, 0.0]]]])  # (B=1, C=2, H=1, W=2)
    # position 0: mean |d| = (3 + 1) / 2 = 2 -> sqrt(4 + 1) - 1; position 1: 0
    expected = torch.tensor([[[math.sqrt(5) - 1, 0.0]]])
    assert torch.allclose(plus.phi(diff), expected)


def test_pixel_loss_by_hand() -> None:
    phi_map = torch.tensor([[[1.0, 2.0]], [[1.0, 2.0]]])  # two images, H=1, W=2
    labels = torch.tensor([[[0.0, 1.0]], [[0.0, 0.0]]])  # the first has one anomalous cell
    alpha = 0.5
    # image 1: normal part (1*1 + 0*2)/2 = 0.5; anomalous mean (0*1 + 1*2)/2 = 1
    #          -> 0.5 - alpha * log(1 - e^-1)
    # image 2: no anomalous cell, only the normal part (1 + 2)/2 = 1.5
    first = 0.5 - alpha * math.log(1 - math.exp(-1.0))
    expected = (first + 1.5) / 2
    assert plus.pixel_loss(phi_map, labels, alpha).item() == pytest.approx(expected, rel=1e-6)


def test_pixel_loss_pushes_anomalous_differences_up_and_normal_ones_down() -> None:
    phi_map = torch.tensor([[[1.0, 2.0]]], requires_grad=True)
    plus.pixel_loss(phi_map, torch.tensor([[[0.0, 1.0]]]), alpha=0.003).backward()
    normal_grad, anomalous_grad = phi_map.grad.flatten().tolist()
    assert normal_grad > 0 > anomalous_grad


def test_image_loss_by_hand() -> None:
    phi_map = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]])
    labels = torch.tensor([0.0, 1.0])
    alpha = 0.003
    q = (4.0 + 3.0) / 2  # top-2 mean
    expected = (q + alpha * -math.log(1 - math.exp(-q))) / 2
    assert plus.image_loss(phi_map, labels, alpha, top_k=2).item() == pytest.approx(expected)
    # k larger than the grid: the mean of all positions
    assert plus.image_loss(phi_map[:1], labels[:1], alpha, top_k=20).item() == pytest.approx(2.5)


def test_confetti_masks_are_exactly_the_pixels_changed() -> None:
    images = torch.rand(6, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    noisy, masks = plus.confetti(images, np.random.default_rng(7))
    changed = (noisy != images).any(dim=1)
    assert torch.equal(changed, masks)
    assert masks.flatten(1).any(dim=1).all()  # every image got at least one blob
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0
    covered = masks.float().mean().item()
    assert 0.002 < covered < 0.6
    again, again_masks = plus.confetti(images, np.random.default_rng(7))
    assert torch.equal(again, noisy) and torch.equal(again_masks, masks)  # by seed
    other, _ = plus.confetti(images, np.random.default_rng(8))
    assert not torch.equal(other, noisy)


def test_external_folder_errors_name_the_folder(tmp_path: Path, tiny_root: Path) -> None:
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        plus.external_samples(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty.*has no images"):
        plus.external_samples(tmp_path / "empty")
    test_split = tiny_root / "brick" / "test"
    with pytest.raises(DataError, match="never come from the test split"):
        plus.external_samples(test_split / "hole", [test_split])


def _external_folder(path: Path, count: int = 3) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


@pytest.mark.parametrize("anomalies", ["confetti", "external"])
def test_fine_tuning_starts_from_the_base_model_and_resumes(tiny_root, tmp_path, anomalies):
    source = "confetti" if anomalies == "confetti" else str(_external_folder(tmp_path / "ext"))
    config = profiles.resolve("smoke", data_root=str(tiny_root), objective="adtr_plus",
                              plus_epochs=2, plus_anomalies=source)
    run = pipeline.category_data(config, "brick")
    result = pipeline.fit(config, run, tmp_path / "plus", progress=False)
    record = result.record
    assert record.anomalies["loss"] == ("L_px" if anomalies == "confetti" else "L_img")
    assert record.base_epochs == config.epochs and record.epochs_trained == 2
    assert all(math.isfinite(x) for x in record.loss_history)
    base = torch.load(tmp_path / "plus" / "base" / "checkpoint.pt", weights_only=False)
    tuned = torch.load(tmp_path / "plus" / "checkpoint.pt", weights_only=False)
    assert torch.equal(base["standardizer"]["mean"], tuned["standardizer"]["mean"])
    weight = "output_proj.weight"
    assert not torch.equal(base["model"][weight], tuned["model"][weight])  # it was trained
    again = pipeline.fit(config, run, tmp_path / "plus", progress=False)  # finished: reused
    assert again.record.loss_history == record.loss_history
    assert again.pixel_auroc == result.pixel_auroc


def test_a_missing_external_folder_fails_before_any_training(tiny_root, tmp_path) -> None:
    config = profiles.resolve("smoke", data_root=str(tiny_root), objective="adtr_plus",
                              plus_anomalies=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="missing does not exist"):
        pipeline.fit(config, pipeline.category_data(config, "brick"), tmp_path / "plus",
                     progress=False)
    assert not (tmp_path / "plus" / "base").exists()
