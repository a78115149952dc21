"""Faults users meet, caused on purpose: killed runs, damaged files, NaN losses, bad trees."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adtr import cli, data, features, records, train
from adtr.errors import DataError


def _fit_command(root: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "adtr", "fit", "--data-root", str(root), "--category",
            "brick", "--profile", "smoke", "--epochs", str(epochs), "--out", str(out),
            "--quiet"]


def test_fit_killed_mid_run_resumes_to_the_same_metrics(tiny_root, tmp_path) -> None:
    epochs = 120
    whole = subprocess.run(_fit_command(tiny_root, tmp_path / "whole", epochs),
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    victim = subprocess.Popen(_fit_command(tiny_root, tmp_path / "killed", epochs),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.005)
    time.sleep(0.3)  # let it train a few more epochs past the first checkpoint
    assert victim.poll() is None, "the run ended before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = torch.load(checkpoint, weights_only=False)["epoch"]
    assert 0 < killed_at < epochs
    again = subprocess.run(_fit_command(tiny_root, tmp_path / "killed", epochs),
                           capture_output=True, text=True)
    assert again.returncode == 0 and f"from epoch {killed_at}" in again.stderr
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert b["record"]["loss_history"] == a["record"]["loss_history"]  # bit-identical on CPU
    assert [b[m] for m in ("image_auroc", "pixel_auroc", "aupro")] == [
        a[m] for m in ("image_auroc", "pixel_auroc", "aupro")]


def _cli_fit(root: Path, out: Path, *extra: str) -> int:
    return cli.main(["fit", "--data-root", str(root), "--category", "brick", "--profile",
                     "smoke", "--out", str(out), "--quiet", *extra])


def test_truncated_feature_cache_is_reported_and_rebuilt(tiny_root, tmp_path, capsys) -> None:
    assert _cli_fit(tiny_root, tmp_path / "a") == 0
    first = json.loads((tmp_path / "a" / "metrics.json").read_text())
    cached = sorted((features.default_cache_dir() / "features").glob("*.pt"))
    assert len(cached) == 3  # train, test and the defective test images' twins
    cached[0].write_bytes(cached[0].read_bytes()[:200])
    features.clear_memory_cache()
    capsys.readouterr()
    assert _cli_fit(tiny_root, tmp_path / "b") == 0
    assert f"feature cache {cached[0]} is damaged" in capsys.readouterr().err
    second = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert second["pixel_auroc"] == first["pixel_auroc"]
    assert torch.load(cached[0], weights_only=True).ndim == 4  # rebuilt whole


def test_cache_keys_change_with_everything_that_changes_features(tiny_root, tmp_path) -> None:
    samples = data.list_samples(tiny_root, "brick", "train")
    ident = {"backbone": "efficientnet_lite0", "weights": "w", "stages": [0, 1],
             "image_size": 64, "feature_stride": 16}
    key = features.cache_key(ident, samples)
    for change in ({"backbone": "resnet18"}, {"weights": "random"}, {"stages": [1]},
                   {"image_size": 128}, {"feature_stride": 8}):
        assert features.cache_key({**ident, **change}, samples) != key
    root = tmp_path / "copy"
    shutil.copytree(tiny_root / "brick", root / "brick")
    copied = data.list_samples(root, "brick", "train")
    before = features.cache_key(ident, copied)
    assert before != key  # other files
    Image.new("RGB", (64, 64)).save(copied[0].image)  # the same file, changed
    os.utime(copied[0].image, ns=(1, 1))
    assert features.cache_key(ident, copied) != before


def test_corrupted_checkpoint_is_reported_and_training_restarts(tiny_root, tmp_path,
                                                               capsys) -> None:
    assert _cli_fit(tiny_root, tmp_path / "a") == 0
    expected = json.loads((tmp_path / "a" / "metrics.json").read_text())
    checkpoint = tmp_path / "a" / "checkpoint.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert _cli_fit(tiny_root, tmp_path / "a") == 0
    assert f"checkpoint {checkpoint} is damaged" in capsys.readouterr().err
    again = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert again["record"]["loss_history"] == expected["record"]["loss_history"]


def test_nan_loss_stops_with_epoch_step_and_kept_checkpoint(tiny_root, tmp_path, capsys,
                                                            monkeypatch) -> None:
    calls = {"n": 0}
    real = train.reconstruction_loss

    def poisoned(features_, reconstruction):
        calls["n"] += 1
        loss = real(features_, reconstruction)
        return loss * float("nan") if calls["n"] > 2 else loss  # smoke: one step per epoch

    monkeypatch.setattr(train, "reconstruction_loss", poisoned)
    assert _cli_fit(tiny_root, tmp_path / "run", "--epochs", "5") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: loss became nan at epoch 3, step 1")
    assert "checkpoint.pt" in err and "\n" not in err
    kept = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert kept["epoch"] == 2 and not (tmp_path / "run" / "metrics.json").exists()


# --- broken data trees: a correct load or a DataError naming the file, nothing else ---

def _load_everything(root: Path) -> np.ndarray:
    train_samples = data.list_samples(root, "brick", "train")
    test_samples = data.list_samples(root, "brick", "test")
    for sample in train_samples + test_samples:
        data.load_image(sample.image, 32)
    return data.load_masks(test_samples, 32)


def _png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


FAULTS = {
    "missing train folder": (lambda b: shutil.rmtree(b / "train"), "train does not exist"),
    "empty train/good": (lambda b: [p.unlink() for p in (b / "train" / "good").iterdir()],
                         "train/good has no images"),
    "non-image file": (lambda b: (b / "test" / "good" / "readme.md").write_text("x"),
                       "readme.md"),
    "zero-byte png": (lambda b: (b / "train" / "good" / "000.png").write_bytes(b""),
                      "cannot read image .*000.png"),
    "truncated png": (lambda b: (b / "test" / "hole" / "000.png").write_bytes(
        (b / "test" / "hole" / "000.png").read_bytes()[:300]), "cannot read image .*000.png"),
    "mask of the wrong size": (lambda b: _png(b / "ground_truth" / "stain" / "000_mask.png",
                                              np.zeros((10, 10), np.uint8)),
                               "000_mask.png is 10x10 but its image"),
    "image without mask": (lambda b: (b / "ground_truth" / "scratch" / "000_mask.png").unlink(),
                           "scratch/000.png has no mask"),
    "mask without image": (lambda b: (b / "test" / "perlin" / "000.png").unlink(),
                           "perlin/000_mask.png has no test image"),
    "only good test images": (lambda b: [shutil.rmtree(p) for p in [*(b / "test").iterdir(),
                                                                    b / "ground_truth"]
                                         if p.name != "good"], "only one kind"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_broken_trees_give_an_error_naming_the_file(fault, tiny_root, tmp_path) -> None:
    root = tmp_path / "data tree ünïcode"
    shutil.copytree(tiny_root / "brick", root / "brick")
    damage, message = FAULTS[fault]
    damage(root / "brick")
    with pytest.raises(DataError, match=message):
        _load_everything(root)


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "16-bit", "mask 0/128", "unicode path"])
def test_unusual_but_valid_files_load_as_a_user_expects(kind, tiny_root, tmp_path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_root / "brick", root / "brick")
    brick = root / "brick"
    image = brick / "train" / "good" / "000.png"
    rgb = np.asarray(Image.open(image))
    if kind == "grayscale":
        Image.open(image).convert("L").save(image)
    elif kind == "rgba":
        Image.open(image).convert("RGBA").save(image)
    elif kind == "16-bit":
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(image)
    elif kind == "unicode path":
        image.rename(brick / "train" / "good" / "bild nr ü.png")
    reference = _load_everything(tiny_root)
    if kind == "mask 0/128":
        mask = brick / "ground_truth" / "hole" / "000_mask.png"
        _png(mask, (np.asarray(Image.open(mask)) > 0).astype(np.uint8) * 128)
    np.testing.assert_array_equal(_load_everything(root), reference)
    for sample in data.list_samples(root, "brick", "train"):
        assert data.load_image(sample.image, 32)[0].shape == (3, 32, 32)


def test_a_write_deletes_temporary_files_of_killed_writers_only(tmp_path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    target = tmp_path / "results.json"
    abandoned = tmp_path / f".results.json.{finished.pid}.x1y2.tmp"  # its writer is gone
    in_progress = tmp_path / f".results.json.{os.getpid()}.a3b4.tmp"  # a live writer's
    other = tmp_path / f".other.json.{finished.pid}.c5d6.tmp"  # another file's
    for path in (abandoned, in_progress, other):
        path.write_text("{")
    records.write_json(target, {"ok": True})
    assert json.loads(target.read_text()) == {"ok": True}
    assert not abandoned.exists() and in_progress.exists() and other.exists()
