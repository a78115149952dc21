"""adtr.report.peers on small result files: the peers and unified pages' tables and words."""

from __future__ import annotations

from pathlib import Path

import pytest

from adtr import catalog, report, stats
from adtr.report import peers
from tests.test_report import _interval, _results, _write


def _peers_results(installed: bool = True) -> dict:
    values = {"adtr": 0.90, "adtr_plus": 0.91, "padim": 0.95, "patchcore": 0.96}
    variants = values if installed else {"adtr": 0.90, "adtr_plus": 0.91}
    pixels = {(v, c, 0): p for v, p in variants.items() for c in ("a", "b")}
    results = _results("peers", pixels, catalog.PUBLISHED)
    intervals = [
        _interval("adtr", "padim", -5.0, -7.0, -3.0, stats.WORSE, claim=False),
        _interval("adtr", "padim", -8.0, -11.0, -5.0, stats.WORSE, False, "a"),
        _interval("adtr", "padim", -2.0, -5.0, 1.0, stats.NOT_SEPARATED, False, "b"),
        _interval("adtr", "patchcore", 1.0, 0.2, 1.8, stats.BETTER, claim=False),
        _interval("adtr", "patchcore", 1.0, 0.2, 1.8, stats.BETTER, False, "a"),
    ] if installed else []
    cost = [{"variant": v, "category": c, "backbone_s": 2.0 + (c == "b"),
             "train_s": 10.0 * (i + 1), "train_peak_mb": 100.0, "test_s": 1.0,
             "test_peak_mb": float("nan")}
            for i, v in enumerate(variants) for c in ("a", "b")]
    settings = {"padim": {"backbone": "efficientnet_lite0", "layers": ["blocks.1", "blocks.2"],
                          "options": {"n_features": 100}}} if installed else {}
    return {**results, "intervals": intervals, "cost": cost,
            "peers": {"installed": installed, "settings": settings,
                      "missing": "" if installed else "install anomalib"}}


@pytest.fixture
def peer_results(tmp_path: Path) -> Path:
    _write(tmp_path, "peers", _peers_results())
    return tmp_path


def test_means_pairs_and_wins_come_from_the_results(peer_results: Path) -> None:
    exp = report.load("peers", "cpu", peer_results)
    assert peers.peers_ran(exp)
    means = peers.means_table(exp).set_index("Method")
    assert means.loc["PaDiM (anomalib)", "pixel AUROC"] == "95.0"
    pairs = peers.pair_table(exp, "pixel_auroc").set_index("Pair (a − b)")
    assert pairs.loc["ADTR − PaDiM (anomalib)", "All categories"] == "-5.0 [-7.0, -3.0]"
    assert pairs.loc["ADTR − PaDiM (anomalib)", "Over all categories"] == "PaDiM (anomalib) ahead"
    assert pairs.loc["ADTR − PatchCore (anomalib)", "Over all categories"] == "ADTR ahead"
    said = peers.wins_and_losses(exp, "adtr", "padim", "pixel_auroc")
    assert "ADTR ahead: none" in said and "PaDiM (anomalib) ahead: a" in said
    assert "not separated: b" in said
    assert peers.wins_and_losses(exp, "adtr", "padim", "image_auroc") == ""  # none computed
    cost = peers.cost_table(exp).set_index("Method")
    assert cost.loc["PatchCore (anomalib)", "Training (s)"] == "40.0"
    assert cost.loc["PatchCore (anomalib)", "Backbone passes (s)"] == "2.5"  # (2 + 3) / 2
    assert cost.loc["ADTR", "Peak memory, testing (MiB)"] == "—"  # not recorded
    assert peers.settings_table(exp).loc[0, "Layers"] == "blocks.1, blocks.2"
    published = peers.published_table(exp).set_index("Method (as published)")
    assert published.loc["PatchCore (WideResNet-50)", "AUPRO"] == "94.4"


def test_peers_not_run_are_said_so(tmp_path: Path) -> None:
    _write(tmp_path, "peers", _peers_results(installed=False))
    exp = report.load("peers", "cpu", tmp_path)
    assert not peers.peers_ran(exp)
    assert "were not run" in peers.missing_peers(exp) and "install anomalib" in \
        peers.missing_peers(exp)
    assert list(peers.means_table(exp)["Method"]) == ["ADTR", "ADTR+"]
    assert "not been run" in peers.missing_peers(None)


def test_cost_of_records_without_backbone_seconds_reads_as_not_recorded(tmp_path: Path) -> None:
    results = _peers_results()
    for row in results["cost"]:
        del row["backbone_s"]
    _write(tmp_path, "peers", results)
    cost = peers.cost_table(report.load("peers", "cpu", tmp_path)).set_index("Method")
    assert cost.loc["ADTR", "Backbone passes (s)"] == "—"
    assert cost.loc["ADTR", "Training (s)"] == "10.0"


@pytest.mark.parametrize("categories", [("a", "b"), ("a",)])
def test_unified_page_says_when_no_unified_model_was_trained(tmp_path: Path,
                                                              categories: tuple) -> None:
    variants = ("adtr", "unified") if len(categories) > 1 else ("adtr",)
    pixels = {(v, c, 0): 0.9 for v in variants for c in categories}
    _write(tmp_path, "unified", _results("unified", pixels, catalog.PUBLISHED))
    exp = report.load("unified", "cpu", tmp_path)
    assert peers.unified_ran(exp) == (len(categories) > 1)
    if len(categories) == 1:
        said = peers.missing_unified(exp)
        assert "No unified model was trained" in said and "hold a alone" in said
    assert not peers.unified_ran(None)
    assert "not been run" in peers.missing_unified(None)


def test_the_claims_table_compares_adtr_with_the_peers_not_adtr_plus(tmp_path: Path) -> None:
    results = _peers_results()
    results["intervals"] = [
        {**row, "metric": "image_auroc"} for row in results["intervals"]] + [
        {**_interval("adtr_plus", "adtr", 1.3, 0.5, 2.1, stats.BETTER, claim=False),
         "metric": "image_auroc"}]
    _write(tmp_path, "peers", results)
    rows = report.overview(report.load_all("cpu", tmp_path), 600).set_index("Claim")
    row = rows.loc["{doc}`ADTR among its peers <peers>`"]
    assert row["Ours"] == ("image AUROC: ADTR − PaDiM -5.00 [-7.00, -3.00]; ADTR − PatchCore "
                           "+1.00 [+0.20, +1.80] (synthetic)")
    assert row["Verdict"] == "ADTR behind PaDiM; ADTR ahead of PatchCore"
    assert row["Paper"].startswith("image AUROC as published (MVTec-AD): ADTR 96.4, PatchCore "
                                   "99.2")
    assert "ADTR+" not in row["Ours"] + row["Verdict"]
    missing = rows.loc["{doc}`One model for all categories <unified>`"]
    assert missing["Ours"] == "not run" and missing["Paper"].startswith("image AUROC as")


def test_a_category_where_both_methods_are_at_the_ceiling_reads_saturated(tmp_path: Path) -> None:
    pixels = {("adtr", "a", 0): 0.90, ("padim", "a", 0): 0.95,
              ("adtr", "b", 0): 1.0, ("padim", "b", 0): 0.996}
    results = _results("peers", pixels, catalog.PUBLISHED)
    results["intervals"] = [
        _interval("adtr", "padim", -2.5, -4.0, -1.0, stats.WORSE, claim=False),
        _interval("adtr", "padim", -5.0, -7.0, -3.0, stats.WORSE, False, "a"),
        _interval("adtr", "padim", 0.4, -0.1, 0.9, stats.NOT_SEPARATED, False, "b")]
    _write(tmp_path, "peers", results)
    exp = report.load("peers", "cpu", tmp_path)
    said = peers.wins_and_losses(exp, "adtr", "padim", "pixel_auroc")
    assert "PaDiM (anomalib) ahead: a" in said and "not separated: none" in said
    assert "saturated (both at or above 99.5 %): b" in said
    # over all categories the means (95.0, 97.3) are below the ceiling: read by the interval
    pairs = peers.pair_table(exp, "pixel_auroc").set_index("Pair (a − b)")
    assert pairs.loc["ADTR − PaDiM (anomalib)", "Over all categories"] == "PaDiM (anomalib) ahead"


def test_the_peers_page_opens_with_its_verdict_per_metric(peer_results: Path) -> None:
    exp = report.load("peers", "cpu", peer_results)
    assert report.finding(exp) == (
        "**In pixel AUROC, ADTR behind PaDiM; ADTR ahead of PatchCore.** ADTR − PaDiM "
        "-5.00 [-7.00, -3.00]; ADTR − PatchCore +1.00 [+0.20, +1.80] points.")  # no image rows
    assert report.finding(None) == ""


def test_the_first_line_says_saturated_where_both_methods_are_at_the_ceiling(
        tmp_path: Path) -> None:
    pixels = {("adtr", c, 0): 1.0 for c in ("a", "b")} | {("padim", c, 0): 0.997 for c in "ab"}
    results = _results("peers", pixels, catalog.PUBLISHED)
    results["intervals"] = [_interval("adtr", "padim", 0.3, 0.1, 0.5, stats.BETTER, claim=False)]
    _write(tmp_path, "peers", results)
    exp = report.load("peers", "cpu", tmp_path)
    # the interval alone would read 'ahead of'; at the ceiling it is no difference
    assert report.finding(exp).startswith("**In pixel AUROC, ADTR saturated with PaDiM.**")
    pairs = peers.pair_table(exp, "pixel_auroc").set_index("Pair (a − b)")
    assert pairs.loc["ADTR − PaDiM (anomalib)", "Over all categories"] == "saturated"
