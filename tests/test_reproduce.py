"""The papermill batch on two tiny notebooks: one works, one fails."""

import json
import sys
from pathlib import Path

import nbformat
import pytest

from adtr import cli, reproduce, stamps


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nresults_dir = "results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_root: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    _notebook(tmp_path / "notebooks" / "01_good.ipynb", "print(profile)")
    _notebook(tmp_path / "notebooks" / "02_bad.ipynb", "raise ValueError('broken on purpose')")
    monkeypatch.setattr(reproduce, "notebooks_dir", lambda: tmp_path / "notebooks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_failures_do_not_stop_the_batch_and_name_the_cell(batch, tiny_root, capsys) -> None:
    args = ["reproduce", "--profile", "smoke", "--data-root", str(tiny_root),
            "--results-dir", str(batch / "results")]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "FAILED 02_bad: code cell 3: ValueError: broken on purpose" in err
    executed = batch / "results" / "smoke" / "executed"
    assert (executed / "01_good.ipynb").is_file()
    stamp = json.loads((executed / "01_good.json").read_text())
    assert stamp["status"] == "ok" and stamp["parameters"]["data_root"] == str(tiny_root)
    assert not (executed / "02_bad.json").exists()

    outcomes = reproduce.reproduce("smoke", parameters={"data_root": str(tiny_root),
                                                         "results_dir": str(batch / "results")})
    assert [o.status for o in outcomes] == ["skipped", "failed"]  # up to date is skipped
    outcomes = reproduce.reproduce("smoke", only=["01"], parameters={
        "data_root": str(tiny_root), "results_dir": str(batch / "results"), "seeds": [1]})
    assert [o.status for o in outcomes] == ["ok"]  # other parameters: redone


def test_unknown_notebook_is_refused(batch) -> None:
    with pytest.raises(Exception, match=r"no notebook '07'; choose from \['01_good', '02_bad'\]"):
        reproduce.select(["07"])


def test_side_by_side_notebooks_share_the_cores_and_the_batch_time_is_recorded(
        batch, tiny_root, monkeypatch) -> None:
    """--jobs 2 on a 4-core machine: both notebooks at once, 2 threads each; a whole batch
    from scratch writes batch.json, a batch of skips leaves it alone."""
    (batch / "notebooks" / "02_bad.ipynb").unlink()
    _notebook(batch / "notebooks" / "01_good.ipynb", "import time\ntime.sleep(3)")
    _notebook(batch / "notebooks" / "02_threads.ipynb",
              "import os, time\nassert os.environ['OMP_NUM_THREADS'] == '2', os.environ\n"
              "time.sleep(3)")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(reproduce, "cores", lambda: 4)
    monkeypatch.setattr(reproduce, "_gpu_count", lambda: 0)
    params = {"data_root": str(tiny_root), "results_dir": str(batch / "results"),
              "runs_dir": str(batch / "runs")}
    outcomes = reproduce.reproduce("smoke", jobs=2, parameters=params)
    assert [(o.name, o.status) for o in outcomes] == [("01_good", "ok"), ("02_threads", "ok")]
    record_path = batch / "results" / "smoke" / "executed" / "batch.json"
    record = json.loads(record_path.read_text())
    assert record["jobs"] == 2 and record["threads_per_notebook"] == 2
    assert [n["notebook"] for n in record["notebooks"]] == ["01_good", "02_threads"]
    total = sum(n["seconds"] for n in record["notebooks"])
    assert record["wall_time_s"] < total - 2  # side by side: one after another takes the sum

    outcomes = reproduce.reproduce("smoke", jobs=2, parameters=params)
    assert [o.status for o in outcomes] == ["skipped", "skipped"]
    assert json.loads(record_path.read_text()) == record  # a batch of skips measures nothing


@pytest.mark.parametrize("change", ["override", "runs to reuse", "only"])
def test_a_batch_that_is_not_the_whole_batch_from_scratch_removes_the_record(
        batch, tiny_root, change) -> None:
    (batch / "notebooks" / "02_bad.ipynb").unlink()
    params = {"data_root": str(tiny_root), "results_dir": str(batch / "results"),
              "runs_dir": str(batch / "runs")}
    record_path = batch / "results" / "smoke" / "executed" / "batch.json"
    reproduce.reproduce("smoke", parameters=params)
    assert record_path.is_file()
    only = None
    if change == "override":
        params["epochs"] = 1
    elif change == "runs to reuse":
        (batch / "runs" / "smoke" / "brick" / "adtr-0").mkdir(parents=True)
        (batch / "runs" / "smoke" / "brick" / "adtr-0" / "metrics.json").write_text("{}")
    else:
        only = ["01"]
    outcomes = reproduce.reproduce("smoke", only=only, force=True, parameters=params)
    assert [o.status for o in outcomes] == ["ok"]
    assert not record_path.exists()


def test_longest_notebooks_start_first(tmp_path) -> None:
    for name, seconds in (("01_a", 10.0), ("02_b", 300.0), ("03_c", 40.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"seconds": seconds}))
    assert reproduce.longest_first(["01_a", "02_b", "03_c", "04_new"], tmp_path) == [
        "04_new", "02_b", "03_c", "01_a"]  # never run: unknown length, so first
    # a notebook that last read its runs back (10 s) is as long as its runs took (500 s)
    results = tmp_path.parent / "cpu" / "main" / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps({"record": {"wall_time_s": 500.0}}))
    executed = tmp_path.parent / "cpu" / "executed"
    executed.mkdir()
    for name, seconds in (("01_main_results", 10.0), ("02_b", 300.0)):
        (executed / f"{name}.json").write_text(json.dumps({"seconds": seconds}))
    assert reproduce.longest_first(["02_b", "01_main_results"], executed) == [
        "01_main_results", "02_b"]


def test_a_notebook_retrains_when_the_images_change(batch, tmp_path) -> None:
    """The data regenerated with another seed into the same folder: the notebook is run
    again (its stamp holds the data's digest) and its run is trained anew (the run's key
    holds it too) instead of the run of the old images being read back."""
    from adtr import synth

    (batch / "notebooks" / "02_bad.ipynb").unlink()
    _notebook(batch / "notebooks" / "01_good.ipynb", "\n".join([
        "import json",
        "from adtr import experiments",
        "setup = experiments.setup(profile, data_root=data_root, seeds=[0], epochs=1,",
        "                          results_dir=results_dir, runs_dir=runs_dir)",
        "runs, records = experiments.run_grid(setup, {'adtr': {}}, progress=False)",
        "print(json.dumps({'key': records[0].run_key, 'loss': records[0].loss_history,",
        "                  'pixel_auroc': float(runs['pixel_auroc'][0])}))"]))
    root = tmp_path / "data"
    sizes = dict(categories=["brick"], n_train=4, n_test_good=2, n_test_defective=5,
                 image_size=64, progress=False)
    params = {"data_root": str(root), "results_dir": str(batch / "results"),
              "runs_dir": str(batch / "runs")}
    executed = batch / "results" / "smoke" / "executed" / "01_good.ipynb"

    def printed() -> dict:
        outputs = json.loads(executed.read_text())["cells"][-1]["outputs"]
        text = "".join("".join(o["text"]) for o in outputs if o.get("name") == "stdout")
        return json.loads(text.strip().splitlines()[-1])

    synth.generate(root, seed=0, **sizes)
    assert [o.status for o in reproduce.reproduce("smoke", parameters=params)] == ["ok"]
    first = printed()
    assert [o.status for o in reproduce.reproduce("smoke", parameters=params)] == ["skipped"]
    synth.generate(root, seed=1, **sizes)
    assert [o.status for o in reproduce.reproduce("smoke", parameters=params)] == ["ok"]
    second = printed()
    assert second["key"] != first["key"] and second["loss"] != first["loss"]
    assert len(list((batch / "runs" / "smoke" / "brick").glob("adtr-*"))) == 2


def test_a_stamp_from_other_code_is_reported_as_computed_by_earlier_code(tmp_path) -> None:
    from adtr import report
    from tests.test_report import _results, _write

    stamp = stamps.stamp("03_target", {"profile": "cpu"}, "data")
    assert not stamps.code_changed(stamp)
    assert stamps.code_changed({**stamp, "package_sha256": "0" * 16})
    assert stamps.code_changed({**stamp, "notebook": "99_gone"})
    _write(tmp_path, "target", _results("target", {("features", "a", 0): 0.9}, {}))
    exp = report.load("target", "cpu", tmp_path)
    assert report.stale_note(exp) == ""  # no stamp: nothing to compare
    exp.stamp.update({**stamp, "package_sha256": "0" * 16})
    assert "Computed by an earlier version of the code" in report.stale_note(exp)
    assert "adtr reproduce --profile cpu --only 03_target" in report.stale_note(exp)


def test_executed_notebooks_keep_no_machine_path(tmp_path) -> None:
    from adtr.records import project_root

    root = project_root().resolve().as_posix()
    executed = tmp_path / "02_attention_query.ipynb"
    executed.write_text(json.dumps({"metadata": {"papermill": {
        "input_path": f"{root}/notebooks/02_attention_query.ipynb",
        "output_path": f"{root}/results/cpu/executed/02_attention_query.ipynb"}},
        "cells": [{"outputs": [{"data": {
            "text/plain": f"PosixPath('{root}/results/cpu/attention_query')"}}]}],
        "other": "/elsewhere/file"}))
    reproduce.without_machine_paths(executed)
    notebook = json.loads(executed.read_text())
    warning = f"{Path(sys.prefix).resolve().as_posix()}/lib/tqdm/auto.py:21: TqdmWarning"
    executed.write_text(json.dumps({"text": warning}))
    reproduce.without_machine_paths(executed)  # the environment, wherever it lies
    assert json.loads(executed.read_text())["text"] == "lib/tqdm/auto.py:21: TqdmWarning"
    assert notebook["metadata"]["papermill"] == {
        "input_path": "notebooks/02_attention_query.ipynb",
        "output_path": "results/cpu/executed/02_attention_query.ipynb"}
    assert notebook["cells"][0]["outputs"][0]["data"]["text/plain"] == (
        "PosixPath('results/cpu/attention_query')")
    assert notebook["other"] == "/elsewhere/file"  # only the project's own folder goes

