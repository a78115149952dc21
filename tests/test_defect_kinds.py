"""Which defect kinds a run finds: per-kind image AUROC from a run's saved test scores, its
table and statement in the book, and its figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adtr import analysis, report, viz
from adtr.schema import ExperimentResults
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


def _kind_rows() -> list[dict]:
    rows = []
    for seed, shift in ((0, -0.02), (1, 0.02)):
        for kind, kind_type, area, auroc in (("missing", analysis.STRUCTURAL, 4.0, 0.99),
                                              ("scratch", analysis.LOCAL, 0.4, 0.60),
                                              ("stain", analysis.LOCAL, 1.0, 0.93)):
            rows.append({"category": "coins", "kind": kind, "seed": seed, "type": kind_type,
                         "images": 8, "area_percent": area, "image_auroc": auroc + shift})
    return rows


def test_book_table_and_statement(tmp_path: Path):
    main = {("adtr", "coins", s): 0.9 for s in (0, 1)}
    paper = {"ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2}}
    _write(tmp_path, "main", {**_results("main", main, paper), "defect_kinds": _kind_rows()})
    exp = report.load("main", "cpu", tmp_path)
    table = report.defect_kind_table(exp)
    assert list(table["Defect kind"]) == ["missing", "scratch", "stain"]
    assert list(table["Image AUROC (%)"]) == ["99.0 ± 2.0", "60.0 ± 2.0", "93.0 ± 2.0"]
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
    assert np.allclose(widths, [99.0, 60.0, 93.0])
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    assert labels == [analysis.STRUCTURAL, analysis.LOCAL]
