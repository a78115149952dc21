"""The unified setting: one model trained on several categories, tested on each."""

import json
from pathlib import Path

import pytest
import torch

from adtr import cli, experiments, pipeline, profiles, schema, train
from adtr.errors import AdtrError, ConfigError
from adtr.scores import RunScores


def _config(root: Path, **overrides) -> profiles.RunConfig:
    return profiles.resolve("smoke", data_root=str(root), image_size=64, **overrides)


def test_one_model_is_trained_on_both_categories_and_tested_on_each(tiny_root, tmp_path):
    config = _config(tiny_root)
    runs = [pipeline.category_data(config, c) for c in ("brick", "grass")]
    results = pipeline.fit_unified(config, runs, tmp_path / "unified", progress=False)
    assert [r.category for r in results] == ["brick", "grass"]
    state = train.load_checkpoint(tmp_path / "unified" / "checkpoint.pt")
    # The standardiser saw the training features of both categories, not of one.
    device = torch.device("cpu")
    both = torch.cat([pipeline.extract_features(config, run, device, progress=False).train
                      for run in runs])
    assert torch.allclose(state["standardizer"]["mean"],
                          both.mean(dim=(0, 2, 3), keepdim=True), atol=1e-5)
    for result, run in zip(results, runs, strict=True):
        assert result.record.units == ["brick", "grass"]
        assert result.record.run_key == pipeline.unified_key(config, runs)
        assert set(result.record.cost) == {"backbone_s", "train_s", "train_peak_mb", "test_s",
                                           "test_peak_mb"}
        assert result.record.cost["backbone_s"] > 0  # both categories' passes, as measured
        # Its scores are where the intervals look for them, and they are this category's.
        scores = pipeline.scores_path(result.record)
        assert scores == tmp_path / "unified" / run.name / pipeline.SCORES_FILE
        assert (RunScores.load(scores).labels == run.labels).all() and run.labels.sum() > 0
        # The shared checkpoint, evaluated on the category alone, gives the same numbers.
        again = pipeline.evaluate(tmp_path / "unified" / "checkpoint.pt", tiny_root, run.name,
                                  tmp_path / "eval" / run.name, progress=False)
        assert again.pixel_auroc == pytest.approx(result.pixel_auroc, abs=1e-6)
    # A per-category model of the same parameters is another model.
    alone = pipeline.fit(config, runs[0], tmp_path / "alone", progress=False)
    assert alone.record.loss_history != results[0].record.loss_history
    # The categories in another order are the same run: same key, same model.
    reordered = pipeline.fit_unified(config, runs[::-1], tmp_path / "reordered", progress=False)
    assert [r.category for r in reordered] == ["grass", "brick"]
    assert reordered[0].record.run_key == results[0].record.run_key
    assert reordered[1].record.loss_history == results[0].record.loss_history
    assert reordered[1].pixel_auroc == pytest.approx(results[0].pixel_auroc, abs=1e-9)


def test_unified_runs_are_shared_and_tabled_per_category(tiny_root, tmp_path):
    setup = experiments.setup("smoke", str(tiny_root), image_size=64, seeds=[0],
                              runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path))
    table, records = experiments.run_unified_grid(setup, progress=False)
    assert list(table["category"]) == ["brick", "grass"] and set(table["variant"]) == {"unified"}
    again, _ = experiments.run_unified_grid(setup, progress=False)  # read back, not retrained
    assert again["wall_time_s"].tolist() == table["wall_time_s"].tolist()
    assert len({r.checkpoint for r in records}) == 1
    # one model scored on two categories: its training counts once, not once per category
    assert schema.training_seconds(records) == max(r.wall_time_s for r in records)
    assert schema.training_seconds(records) < table["wall_time_s"].sum()


def test_the_cli_fits_a_unified_model(tiny_root, tmp_path, capsys):
    code = cli.main(["fit", "--unified", "--data-root", str(tiny_root), "--profile", "smoke",
                     "--image-size", "64", "--out", str(tmp_path / "u"), "--quiet"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    assert [line["category"] for line in lines] == ["brick", "grass"]
    assert (tmp_path / "u" / "grass" / "metrics.json").is_file()


def test_bad_unified_requests_are_refused(tiny_root, tmp_path):
    config = _config(tiny_root)
    with pytest.raises(AdtrError, match="at least two categories"):
        pipeline.fit_unified(config, [pipeline.category_data(config, "brick")], tmp_path)
    with pytest.raises(AdtrError, match="reconstruction objective"):
        pipeline.fit_unified(profiles.with_overrides(config, objective="adtr_plus"),
                             [pipeline.category_data(config, c) for c in ("brick", "grass")],
                             tmp_path)
    with pytest.raises(ConfigError, match="--categories"):
        cli._fit(cli._parser().parse_args(["fit", "--unified", "--category", "brick",
                                           "--data-root", str(tiny_root)]))
