"""Which defect kinds a run finds: per-kind image AUROC from a run's saved test scores, its
table and statement in the book, and its figure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from adtr import analysis, pipeline, profiles, report, synth, viz
from adtr.errors import AdtrError
from adtr.report import peers
from adtr.schema import ExperimentResults
from adtr.scores import RunScores
from tests.test_report import _results, _write

# Six normal images (scores 0-5), two of each defect kind in the order of the test listing.
LABELS = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
KINDS = ["good"] * 6 + ["missing", "missing", "scratch", "scratch", "stain", "stain"]
SCORES = np.array([0, 1, 2, 3, 4, 5, 9, 8, -1, -2, 2.5, 2.5], dtype=float)


def test_each_kind_is_scored_alone_against_the_normal_images():
    found = analysis.kind_aurocs(LABELS, SCORES, KINDS)
    assert list(found) == ["missing", "scratch", "stain"]
    assert found["missing"] == 1.0  # above every normal image
    assert found["scratch"] == 0.0  # below every one
    # 2.5 beats 0, 1, 2 and loses to 3, 4, 5: half the pairs
    assert found["stain"] == 0.5


def test_defect_types_of_the_generated_data():
    assert analysis.defect_type("coins", "missing", True) == analysis.STRUCTURAL
    assert analysis.defect_type("coins", "scratch", True) == analysis.LOCAL
    assert analysis.defect_type("brick", "foreign", True) == analysis.LOCAL
    # MVTec-AD's kinds are not typed: nothing here says what a "broken_large" is
    assert analysis.defect_type("bottle", "broken_large", False) is None
    assert analysis.defect_type("coins", "missing", False) is None


@pytest.fixture(scope="module")
def coins_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated object category at 64 px: 4 train, 3 good + 2 per defect kind in test."""
    root = tmp_path_factory.mktemp("coins")
    synth.generate(root, seed=0, categories=["coins"], n_train=4, n_test_good=3,
                   n_test_defective=10, image_size=64, progress=False)
    return root


def _masks_at(run: pipeline.RunData, indices: list[int], size: int) -> list[np.ndarray]:
    """The masks of ``indices``, resized here with PIL (not through adtr.data)."""
    return [np.asarray(Image.open(run.test[i].mask).convert("L").resize(
        (size, size), Image.BILINEAR), dtype=float) / 255 >= 0.5 for i in indices]


def test_a_real_run_is_scored_per_kind_from_its_saved_scores(coins_root: Path, tmp_path: Path):
    config = profiles.resolve("smoke", data_root=str(coins_root), variant="pca")
    run = pipeline.category_data(config, "coins")
    result = pipeline.fit(config, run, tmp_path / "run", progress=False)
    runs = pd.DataFrame([{"variant": "pca", "category": "coins", "seed": 0}])
    kinds = analysis.defect_kinds(config, runs, [result.record])
    assert list(kinds["kind"]) == list(dict.fromkeys(s.defect for s in run.test if s.label))
    types = dict(zip(kinds["kind"], kinds["type"], strict=True))
    assert types == {"colour": analysis.STRUCTURAL, "extra": analysis.STRUCTURAL,
                     "missing": analysis.STRUCTURAL, "scratch": analysis.LOCAL,
                     "stain": analysis.LOCAL}
    saved = RunScores.load(tmp_path / "run" / pipeline.SCORES_FILE).image_scores
    normal = [i for i, s in enumerate(run.test) if not s.label]
    for row in kinds.itertuples():
        mine = [i for i, s in enumerate(run.test) if s.defect == row.kind]
        assert row.images == len(mine) == 2 and row.variant == "pca"
        expected = roc_auc_score([0] * len(normal) + [1] * len(mine), saved[normal + mine])
        assert row.image_auroc == pytest.approx(expected)
        area = 100 * np.mean(_masks_at(run, mine, config.image_size))
        assert row.area_percent == pytest.approx(area, rel=0.1)


def test_scores_or_rows_of_another_run_are_refused(coins_root: Path, tmp_path: Path):
    config = profiles.resolve("smoke", data_root=str(coins_root), variant="pca")
    run = pipeline.category_data(config, "coins")
    record = pipeline.fit(config, run, tmp_path / "run", progress=False).record
    runs = pd.DataFrame([{"variant": "pca", "category": "coins", "seed": 0}])
    saved = RunScores.load(tmp_path / "run" / pipeline.SCORES_FILE)
    # the same images in another order: the labels still match, the digest does not
    RunScores(saved.labels, saved.image_scores[::-1].copy()).save(tmp_path / "other.npz")
    moved = dataclasses.replace(record, scores=str(tmp_path / "other.npz"),
                                data={**record.data, "digest": "another listing"})
    with pytest.raises(AdtrError, match="not of its test images"):
        analysis.defect_kinds(config, runs, [moved])
    RunScores(1 - saved.labels, saved.image_scores).save(tmp_path / "flipped.npz")
    flipped = dataclasses.replace(record, scores=str(tmp_path / "flipped.npz"))
    with pytest.raises(AdtrError, match="not of its test images"):
        analysis.defect_kinds(config, runs, [flipped])
    with pytest.raises(AdtrError, match="was given the record of coins seed 0"):
        analysis.defect_kinds(config, runs.assign(seed=1), [record])


def _kind_rows(methods: dict[str, float] | None = None, kinds: tuple = (
        ("missing", analysis.STRUCTURAL, 4.0, 0.97), ("scratch", analysis.LOCAL, 0.4, 0.60),
        ("stain", analysis.LOCAL, 1.0, 0.93))) -> list[dict]:
    rows = []
    for variant, offset in (methods or {"adtr": 0.0}).items():
        for seed, shift in ((0, -0.02), (1, 0.02)):
            for kind, kind_type, area, auroc in kinds:
                rows.append({"variant": variant, "category": "coins", "kind": kind,
                             "seed": seed, "type": kind_type, "images": 8,
                             "area_percent": area,
                             "image_auroc": min(1.0, auroc + shift + offset)})
    return rows


def _main(tmp_path: Path, rows: list[dict]) -> report.Experiment:
    main = {("adtr", "coins", s): 0.9 for s in (0, 1)}
    paper = {"ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2}}
    _write(tmp_path, "main", {**_results("main", main, paper), "defect_kinds": rows})
    return report.load("main", "cpu", tmp_path)


def test_book_table_and_statement(tmp_path: Path):
    exp = _main(tmp_path, _kind_rows())
    table = report.defect_kind_table(exp)
    assert list(table["Defect kind"]) == ["missing", "scratch", "stain"]
    # two seeds 2 points from their mean: a sample SD (ddof = 1) of 2.8
    assert list(table["Image AUROC (%)"]) == ["97.0 ± 2.8", "60.0 ± 2.8", "93.0 ± 2.8"]
    assert list(table["Share of the image (%)"]) == ["4.00", "0.40", "1.00"]
    text = report.defect_kind_statement(exp)
    assert text.startswith("2 of 3 defect kinds reach 90% image AUROC")
    assert "Structural / logical: 1 of 1." in text and "Local: 1 of 2." in text
    assert text.endswith("Below 90%: coins scratch (60.0%, 0.40% of the image).")


def test_the_statement_names_the_lowest_kinds_and_compares_their_sizes(tmp_path: Path):
    missed = tuple((f"k{i:02d}", analysis.LOCAL, 0.1 * (i + 1), 0.50 + 0.01 * i)
                   for i in range(12))
    found = (("big", analysis.STRUCTURAL, 20.0, 0.97), ("bigger", analysis.STRUCTURAL, 30.0, 0.97))
    text = report.defect_kind_statement(_main(tmp_path, _kind_rows(kinds=missed + found)))
    assert text.startswith("2 of 14 defect kinds")
    assert "Below 90%: the 10 lowest: coins k00 (50.0%, 0.10% of the image)," in text
    assert "coins k09" in text and "coins k10" not in text
    assert "median 0.65% of the image, those at or above it 25.00%." in text


def test_statement_when_every_kind_is_found_and_on_untyped_data(tmp_path: Path):
    rows = _kind_rows(kinds=(("broken_large", None, 3.0, 0.95), ("crack", None, 1.0, 0.96)))
    exp = _main(tmp_path, rows)
    assert report.defect_kind_statement(exp) == (
        "2 of 2 defect kinds reach 90% image AUROC on their own (mean over 2 seeds).")
    assert list(report.defect_kind_table(exp)["Type"]) == ["—", "—"]
    fig = viz.defect_kind_bars(pd.DataFrame(rows))
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    assert labels == ["defect"]


def test_results_without_defect_kinds_say_so(tmp_path: Path):
    main = {("adtr", "coins", 0): 0.9}
    _write(tmp_path, "main", _results("main", main, {}))
    exp = report.load("main", "cpu", tmp_path)
    assert report.defect_kind_table(exp).empty
    assert report.defect_kind_statement(exp) == "No defect kinds were written."


def test_the_table_round_trips_through_the_results_file(tmp_path: Path):
    data = {**_results("main", {("adtr", "coins", 0): 0.9}, {}), "defect_kinds": _kind_rows()}
    path = ExperimentResults.from_dict(data).write(tmp_path / "results.json")
    assert ExperimentResults.read(path).tables["defect_kinds"] == _kind_rows()


def test_figure_has_a_bar_per_kind_and_a_legend_per_type():
    fig = viz.defect_kind_bars(pd.DataFrame(_kind_rows()))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "missing (4.0 %)", "scratch (0.4 %)", "stain (1.0 %)"]
    widths = [patch.get_width() + patch.get_x() for patch in ax.patches]
    assert np.allclose(widths, [97.0, 60.0, 93.0])
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [90.0]
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    assert labels == [analysis.STRUCTURAL, analysis.LOCAL]


def _peers(tmp_path: Path, methods: dict[str, float]) -> report.Experiment:
    pixels = {(v, "coins", s): 0.9 for v in methods for s in (0, 1)}
    _write(tmp_path, "peers", {**_results("peers", pixels, {}),
                               "defect_kinds": _kind_rows(methods)})
    return report.load("peers", "cpu", tmp_path)


def test_peers_table_and_statement_set_the_methods_side_by_side(tmp_path: Path):
    exp = _peers(tmp_path, {"adtr": 0.0, "adtr_plus": 0.01, "padim": 0.35, "patchcore": 0.1})
    table = peers.defect_kind_table(exp)
    assert list(table.columns) == [
        "Category", "Defect kind", "Type", "Images", "Area (%)", "ADTR", "ADTR+", "PaDiM",
        "PatchCore"]
    assert list(table["ADTR"]) == ["97.0", "60.0", "93.0"]
    assert list(table["PaDiM"]) == ["100.0", "95.0", "100.0"]
    text = peers.defect_kind_statement(exp)
    assert ("on their own: ADTR 2, ADTR+ 2, PaDiM (anomalib) 3, PatchCore (anomalib) 2."
            in text)
    # scratch: PaDiM finds it, PatchCore (0.70) does not, so no kind is missed only by ADTR
    assert text.endswith("Missed by ADTR and found by PaDiM (anomalib) and PatchCore "
                         "(anomalib): none.")


def test_peers_statement_without_the_peers_only_counts(tmp_path: Path):
    exp = _peers(tmp_path, {"adtr": 0.0, "adtr_plus": 0.01})
    assert peers.defect_kind_statement(exp) == (
        "Defect kinds (of 3) that reach 90% image AUROC on their own: ADTR 2, ADTR+ 2.")
