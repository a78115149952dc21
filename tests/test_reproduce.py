"""The papermill batch on two tiny notebooks: one works, one fails."""

import json
from pathlib import Path

import nbformat
import pytest

from adtr import cli, reproduce


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
