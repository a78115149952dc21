"""A run's identity: what makes two runs the same run, and what makes them different."""

from __future__ import annotations

import pytest

from adtr import backbones, experiments, pipeline, profiles, train
from adtr.backbones import Weights


@pytest.fixture()
def run(tiny_root):
    config = profiles.resolve("smoke", data_root=str(tiny_root))
    return config, pipeline.category_data(config, "brick")


def test_the_key_follows_the_weights_file_not_only_its_name(run, monkeypatch) -> None:
    """Weights found elsewhere (timm's cache instead of the pip package, a replaced file)
    train another model: another key."""
    config, data = run
    keys = []
    for source in ("pip package (w.pth, sha256 1111)", "timm cache (w.pth, sha256 2222)"):
        monkeypatch.setattr(backbones, "resolve_weights", lambda *_, s=source: Weights(None, s))
        monkeypatch.setattr(pipeline, "resolve_weights", backbones.resolve_weights)
        pipeline._weights_source.cache_clear()
        keys.append(pipeline.run_key(config, data))
    pipeline._weights_source.cache_clear()
    assert keys[0] != keys[1]


def test_the_key_ignores_what_does_not_decide_the_numbers(run) -> None:
    config, data = run
    key = pipeline.run_key(config, data)
    assert pipeline.run_key(profiles.with_overrides(config, checkpoint_every=7), data) == key
    assert pipeline.run_key(profiles.with_overrides(config, plus_epochs=9), data) == key
    plus = profiles.with_overrides(config, objective="adtr_plus")
    assert pipeline.run_key(profiles.with_overrides(plus, plus_epochs=9), data) != \
        pipeline.run_key(plus, data)
    assert pipeline.run_key(profiles.with_overrides(config, smoothing_sigma=2.0), data) != key


def test_notebooks_with_other_adtr_plus_settings_share_the_adtr_run(tiny_root, tmp_path,
                                                                    monkeypatch) -> None:
    """The ADTR+ notebook's base run is the main notebook's ADTR run even when only the
    ADTR+ notebook was given --plus-epochs: read back, not trained again."""
    fits = []
    real_fit = pipeline.fit
    monkeypatch.setattr(pipeline, "fit", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    common = dict(data_root=str(tiny_root), categories=["brick"], seeds=[0], epochs=1,
                  runs_dir=str(tmp_path / "runs"))
    main = experiments.run_one(experiments.setup("smoke", **common), "brick", 0)
    plus_setup = experiments.setup("smoke", plus_epochs=3, **common)
    again = experiments.run_one(plus_setup, "brick", 0)
    assert len(fits) == 1 and again.record == main.record


def test_a_checkpoint_from_when_adtr_plus_was_a_variant_still_loads(run) -> None:
    config, _ = run
    model, standardizer = train.build_model(config, 8)
    old = {**config.to_dict(), "variant": "adtr_plus"}
    old.pop("objective")
    state = {"full_config": old, "channels": 8, "model": model.state_dict(),
             "standardizer": standardizer.state_dict()}
    restored, _, _ = train.restore(state)
    assert (restored.variant, restored.objective) == ("adtr", "adtr_plus")


def test_an_offline_folder_from_an_older_generator_is_generated_again(tmp_path, capsys) -> None:
    from adtr import synth

    assert experiments._needs_generating(tmp_path / "missing")
    (tmp_path / "synth.json").write_text('{"generator": "adtr.synth", "version": "2"}')
    assert experiments._needs_generating(tmp_path)
    assert "version 2 of the generator" in capsys.readouterr().err
    (tmp_path / "synth.json").write_text(
        f'{{"generator": "adtr.synth", "version": "{synth.GENERATOR_VERSION}"}}')
    assert not experiments._needs_generating(tmp_path)
    (tmp_path / "synth.json").unlink()  # someone's own folder: left alone
    assert not experiments._needs_generating(tmp_path)
