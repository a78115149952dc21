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

from adtr import analysis, data, pipeline, profiles, report, viz
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


def test_a_real_run_is_scored_per_kind_from_its_saved_scores(tiny_root: Path, tmp_path: Path):
    config = profiles.resolve("smoke", data_root=str(tiny_root), variant="pca")
    run = pipeline.category_data(config, "brick")
    result = pipeline.fit(config, run, tmp_path / "run", progress=False)
    runs = pd.DataFrame([{"variant": "pca", "category": "brick", "seed": 0}])
    kinds = analysis.defect_kinds(config, runs, [result.record])
    listed = [s.defect for s in run.test if s.label]
    assert list(kinds["kind"]) == list(dict.fromkeys(listed))
    assert set(kinds["type"]) == {analysis.LOCAL} and set(kinds["variant"]) == {"pca"}
    saved = np.load(tmp_path / "run" / pipeline.SCORES_FILE)["image_scores"]
    normal = [i for i, s in enumerate(run.test) if not s.label]
    for row in kinds.itertuples():
        mine = [i for i, s in enumerate(run.test) if s.defect == row.kind]
        assert row.images == len(mine)
        expected = roc_auc_score([0] * len(normal) + [1] * len(mine), saved[normal + mine])
        assert row.image_auroc == pytest.approx(expected)
        masks = [np.asarray(Image.open(run.test[i].mask).resize(
            (config.image_size, config.image_size), Image.NEAREST)) > 0 for i in mine]
        assert row.area_percent == pytest.approx(100 * np.mean(masks), abs=0.5)
    assert np.array_equal(data.load_masks(run.test, config.image_size).any(axis=(1, 2)),
                          run.labels.astype(bool))
    # scores that are not of this test listing (labels reversed) are refused
    flipped = dataclasses.replace(result.record, scores=str(_flipped(tmp_path / "run")))
    with pytest.raises(AdtrError, match="not of its test images"):
        analysis.defect_kinds(config, runs, [flipped])


def _flipped(run_dir: Path) -> Path:
    """A copy of a run's scores whose labels are reversed, so they match no test listing."""
    scores = RunScores.load(run_dir / pipeline.SCORES_FILE)
    flipped = RunScores(1 - scores.labels, scores.image_scores, scores.pixel_counts)
    flipped.save(run_dir / "flipped.npz")
    return run_dir / "flipped.npz"


def _kind_rows(methods: dict[str, float] | None = None) -> list[dict]:
    rows = []
    for variant, offset in (methods or {"adtr": 0.0}).items():
        for seed, shift in ((0, -0.02), (1, 0.02)):
            for kind, kind_type, area, auroc in (("missing", analysis.STRUCTURAL, 4.0, 0.97),
                                                  ("scratch", analysis.LOCAL, 0.4, 0.60),
                                                  ("stain", analysis.LOCAL, 1.0, 0.93)):
                rows.append({"variant": variant, "category": "coins", "kind": kind,
                             "seed": seed, "type": kind_type, "images": 8,
                             "area_percent": area,
                             "image_auroc": min(1.0, auroc + shift + offset)})
    return rows


def test_book_table_and_statement(tmp_path: Path):
    main = {("adtr", "coins", s): 0.9 for s in (0, 1)}
    paper = {"ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2}}
    _write(tmp_path, "main", {**_results("main", main, paper), "defect_kinds": _kind_rows()})
    exp = report.load("main", "cpu", tmp_path)
    table = report.defect_kind_table(exp)
    assert list(table["Defect kind"]) == ["missing", "scratch", "stain"]
    assert list(table["Image AUROC (%)"]) == ["97.0 ± 2.0", "60.0 ± 2.0", "93.0 ± 2.0"]
    assert list(table["Share of the image (%)"]) == ["4.00", "0.40", "1.00"]
    text = report.defect_kind_statement(exp)
    assert text.startswith("2 of 3 defect kinds reach 90% image AUROC")
    assert "Structural / logical: 1 of 1." in text and "Local: 1 of 2." in text
    assert "Below it: coins scratch (60.0%, 0.40% of the image)." in text
    assert "median 0.40% of the image, those above it 2.50%" in text


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
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    assert labels == [analysis.STRUCTURAL, analysis.LOCAL]


def test_peers_table_and_statement_set_the_methods_side_by_side(tmp_path: Path):
    pixels = {(v, "coins", s): 0.9 for v in ("adtr", "padim") for s in (0, 1)}
    rows = _kind_rows({"adtr": 0.0, "padim": 0.35})
    _write(tmp_path, "peers", {**_results("peers", pixels, {}), "defect_kinds": rows})
    exp = report.load("peers", "cpu", tmp_path)
    table = peers.defect_kind_table(exp)
    assert list(table.columns) == ["Category", "Defect kind", "Type", "Share of the image (%)",
                                   "ADTR", "PaDiM (anomalib)"]
    assert list(table["ADTR"]) == ["97.0", "60.0", "93.0"]
    assert list(table["PaDiM (anomalib)"]) == ["100.0", "95.0", "100.0"]
    text = peers.defect_kind_statement(exp)
    assert "on their own: ADTR 2, PaDiM (anomalib) 3." in text
    assert "Missed by ADTR and found by PaDiM (anomalib): coins scratch." in text
