"""The study beyond the paper on constructed runs: intervals per setting and claim, the
verdict matrix, the shortcut rows, and what the book's pages say of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adtr import catalog, experiments, report, stats, study
from adtr.report import glance
from adtr.schema import ExperimentRecord, ExperimentResults, RunRecord
from tests.test_report import _results, _write

VARIANTS_4A = ("adtr", "cnn", "no_attention", "no_query")


def _scores(rng: np.random.Generator, quality: float) -> stats.RunScores:
    """40 normal and 40 anomalous images whose anomalous maps sit ``quality`` above."""
    labels = np.repeat([0, 1], 40)
    masks = np.zeros((80, 8, 8), dtype=bool)
    masks[40:, 2:5, 2:5] = True
    maps = rng.normal(size=(80, 8, 8)) + quality * masks
    return stats.run_scores(labels, maps.max(axis=(1, 2)), masks, maps)


def _record(folder: Path, variant: str, category: str, probes: list | None = None) -> RunRecord:
    return RunRecord(written_at="2026-01-01T00:00:00+00:00", experiment="fit", variant=variant,
                     category=category, metrics={}, config={}, data={}, backbone={}, seed=0,
                     environment={}, checkpoint=str(folder / "checkpoint.pt"), probes=probes)


def _grid(tmp_path: Path, quality: dict[tuple[str, str], float]):
    """Runs of (setting, variant) on a texture and an object, with scores.npz files; runs of
    one quality on one category have the same maps."""
    rows, records = [], []
    for (setting, variant), q in quality.items():
        for index, category in enumerate(("brick", "coins")):
            folder = tmp_path / setting / variant / category
            folder.mkdir(parents=True)
            _scores(np.random.default_rng([index, int(10 * q)]), q).save(folder / "scores.npz")
            rows.append({"variant": f"{setting}/attention_query/{variant}", "category": category,
                         "seed": 0})
            records.append(_record(folder, variant, category))
    return pd.DataFrame(rows), records


def test_each_setting_decides_the_claim_by_its_own_intervals(tmp_path: Path) -> None:
    quality = {("base", "adtr"): 3.0, **{("base", v): 0.5 for v in VARIANTS_4A[1:]},
               **{("standardised", v): 1.5 for v in VARIANTS_4A}}
    runs, records = _grid(tmp_path, quality)
    verdicts = study.sensitivity_verdicts(runs, records)
    assert set(verdicts["setting"]) == {"base", "standardised"}
    overall = verdicts[(verdicts["category"] == "all") & verdicts["claim"]]
    assert len(overall) == 6  # three pairs in each setting
    base = overall[overall["setting"] == "base"]
    assert (base["verdict"] == stats.BETTER).all() and (base["low"] > 0).all()
    matrix = study.sensitivity_matrix(verdicts).set_index("setting")
    labels = {s.name: s.label for s in catalog.SENSITIVITY_SETTINGS}
    assert matrix.loc[labels["base"], "all"] == "agrees"
    assert matrix.loc[labels["standardised"], "all"] == "not separated"  # identical variants
    assert set(matrix.columns) == {"claim", "all", "brick", "coins"}


def test_the_grid_changes_one_factor_per_setting_and_shares_the_base_runs(tiny_root) -> None:
    setup = experiments.setup("smoke", data_root=str(tiny_root), seeds=[0])
    grid = study.sensitivity_grid(setup)
    assert grid["base/attention_query/adtr"] == {}  # the main run itself
    assert grid["standardised/attention_query/cnn"] == {"variant": "cnn", "standardize": True}
    assert grid["standardised/target/pixels"] == {"variant": "pixels", "backbone": "pixels",
                                                  "standardize": True}
    assert {key.split("/")[0] for key in grid} == {"base", "standardised"}  # no longer one
    assert not any(key.endswith("/pca") for key in grid)  # references are left out
    assert study.sensitivity_categories(setup) == ["brick"]  # the tiny set has no object


def test_shortcut_rows_and_what_the_page_says(tmp_path: Path) -> None:
    probes = {"adtr": 0.2, "no_query": 0.9}
    shown = {"adtr": 1.0, "no_query": 0.1}  # how far the anomalous error grows
    runs = pd.DataFrame([{"variant": v, "category": c, "seed": 0}
                         for v in probes for c in ("brick", "coins")])
    records = [_record(tmp_path, v, c, [
        {"epoch": e, "pass_through_anomalous": probes[v] * e / 10, "pass_through_normal": 0.9,
         "error_anomalous": 1.0 + shown[v] * e / 10, "error_normal": 1.0,
         "error_normal_p99": 1.5, "anomalous_above_normal_p99": shown[v] * e / 10,
         "pixel_auroc": 0.9, "loss": 0.1} for e in (0, 10)]) for v, c in zip(
        runs["variant"], runs["category"], strict=True)]
    table = study.shortcut_table(runs, records)
    assert len(table) == 8 and set(table["kind"]) == {"texture", "object"}
    curves = study.shortcut_summary(table)
    last = curves[curves["epoch"] == 10].set_index("variant")
    assert last.loc["no_query", "pass_through_anomalous"] == 0.9

    folder = tmp_path / "results" / "cpu" / "shortcut"
    folder.mkdir(parents=True)
    record = ExperimentRecord(written_at="2026-01-01T00:00:00+00:00", experiment="shortcut",
                              profile="cpu", config={}, categories=["brick", "coins"],
                              seeds=[0], data={}, environment={}, runs=[])
    ExperimentResults("shortcut", record,
                      tables={"shortcut": table.to_dict(orient="records")}).write(
        folder / "results.json")
    exp = report.load("shortcut", "cpu", tmp_path / "results")
    text = report.shortcut_statement(exp)
    assert "highest first: Attn + Query (ADTR) 2.00, w/o Query 1.10" in text
    assert "Here ADTR is first of 2." in text
    assert "99th percentile: Attn + Query (ADTR) 1.00, w/o Query 0.10." in text
    table = report.shortcut_table(exp).set_index("Statistic")
    assert table.loc["Slope of f̂ on f, anomalous", "w/o Query, last"] == "0.90"
    assert table.loc["Slope of f̂ on f, anomalous", "w/o Query, before"] == "0.00"
    assert table.loc["Error ratio, anomalous / normal", "Attn + Query (ADTR), last"] == "2.00"
    assert table.loc["Pixel AUROC (%)", "w/o Query, last"] == "90.0"  # in %, as elsewhere
    assert not table.map(lambda cell: cell.startswith("-0.0")).to_numpy().any()


def test_the_pca_reference_is_left_out_where_it_would_copy_every_feature(tiny_root) -> None:
    experiment = catalog.get("attention_query")
    narrow = experiments.setup("smoke", data_root=str(tiny_root), seeds=[0])
    assert "pca" in experiments.variants(narrow, experiment)  # d = 32 on 192 channels
    wide = experiments.setup("smoke", data_root=str(tiny_root), seeds=[0], hidden_dim=192)
    assert set(experiments.variants(wide, experiment)) == set(VARIANTS_4A)
    pixels = experiments.variants(wide, catalog.get("target"))
    assert "pca_pixels" in pixels and "pca" not in pixels  # 768 pixel channels, 192 features


def test_the_statement_says_when_the_least_copying_variant_is_not_the_one_that_shows_most(
        tmp_path) -> None:
    """CNN copies more of the defect (twin pass-through) but makes a smaller error at normal
    tokens, so its error ratio is higher: the statement says both, from the numbers."""
    rows = [{"variant": v, "category": "brick", "kind": "texture", "seed": 0, "epoch": e,
             "twin_pass_through": twin * e / 10, "error_anomalous": 2 * normal + shown * e,
             "error_normal": normal, "error_ratio": (2 * normal + shown * e) / normal}
            for v, twin, normal, shown in (("cnn", 0.8, 10.0, 3.0), ("adtr", 0.05, 40.0, 1.0))
            for e in (0, 10)]
    folder = tmp_path / "results" / "cpu" / "shortcut"
    folder.mkdir(parents=True)
    record = ExperimentRecord(written_at="2026-01-01T00:00:00+00:00", experiment="shortcut",
                              profile="cpu", config={}, categories=["brick"], seeds=[0],
                              data={}, environment={}, runs=[])
    ExperimentResults("shortcut", record, tables={"shortcut": rows}).write(
        folder / "results.json")
    text = report.shortcut_statement(report.load("shortcut", "cpu", tmp_path / "results"))
    assert "lowest first: Attn + Query (ADTR) 0.05, CNN 0.80." in text
    assert "CNN keeps 0.80 of it and still has the highest error ratio" in text
    assert "(mean normal error 10.00 against 40.00 for Attn + Query (ADTR))" in text
    # the intro's line says both too: ADTR copies less, yet is not first by the error ratio
    from adtr.report import study
    shortcut = report.load("shortcut", "cpu", tmp_path / "results")
    assert list(study.error_ratios(shortcut)) == ["cnn", "adtr"]  # 2.3 against 2.025
    assert glance.shortcut_finding(shortcut) == (
        "ADTR's reconstruction keeps 0.05 of a defect's own deviation, the CNN's 0.80 (0 = none, "
        "1 = a copy); yet by the error at anomalous over normal tokens ADTR is second of 2 "
        "variants (CNN highest), where the paper's argument puts it first.")


def test_setting_metrics_set_adtr_beside_itself_in_every_setting(tmp_path: Path) -> None:
    values = {("base/attention_query/adtr", "brick", 0): 0.97,
              ("base/attention_query/cnn", "brick", 0): 0.50,
              ("base/attention_query/adtr", "coins", 0): 0.92,
              ("standardised/attention_query/adtr", "brick", 0): 0.98,
              ("standardised/attention_query/adtr", "coins", 0): 0.95,
              ("standardised/scales/last_layer", "coins", 0): 0.10}
    results = _results("sensitivity", values, {})
    for row in results["runs"]:  # _results sets every image AUROC to 0.9: make it differ
        row["image_auroc"] = values[(row["variant"], row["category"], row["seed"])] - 0.1
    _write(tmp_path, "sensitivity", results)
    table = report.setting_metrics(report.load("sensitivity", "cpu", tmp_path))
    assert list(table["Setting"]) == ["the book's regime", "per-channel standardised features"]
    assert list(table["brick"]) == [87.0, 88.0] and list(table["coins"]) == [82.0, 85.0]
    pixels = report.setting_metrics(report.load("sensitivity", "cpu", tmp_path),
                                    metric="pixel_auroc")
    assert list(pixels["coins"]) == [92.0, 95.0]


def test_the_sensitivity_statement_says_once_what_holds_in_every_setting(tmp_path: Path) -> None:
    def pair(setting, claim, a, b, category, verdict):
        return {"setting": setting, "claim_of": claim, "claim": True, "a": a, "b": b,
                "category": category, "verdict": verdict, "difference": 0.01, "low": 0.0,
                "high": 0.02}
    rows = [pair(s, "scales", "adtr", "last_layer", "all", stats.BETTER)
            for s in ("base", "standardised")]
    rows += [pair("base", "target", "adtr", "pixels", "all", stats.NOT_SEPARATED),
             pair("standardised", "target", "adtr", "pixels", "all", stats.WORSE)]
    results = _results("sensitivity", {("base/attention_query/adtr", "brick", 0): 0.9}, {})
    _write(tmp_path, "sensitivity", {**results, "sensitivity": rows})
    text = report.sensitivity_statement(report.load("sensitivity", "cpu", tmp_path))
    assert text == ("**Table 4d**: in both settings, agrees. **Table 4b**: the book's regime: "
                    "not separated; per-channel standardised features: does not agree.")
