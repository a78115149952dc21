"""`adtr reproduce` killed with SIGKILL in the middle of a notebook, then run again."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from adtr import report, reproduce

FIRST = """\
from pathlib import Path
from adtr import records
records.write_json(Path(results_dir) / profile / "first" / "results.json", {"notebook": 1})
"""

# Writes one result file whole, then hangs half-way through the second (in its atomic
# temporary file) on the first attempt only; it leaves its kernel's pid in a marker file.
SLOW = """\
import os, time
from pathlib import Path
from adtr import records
out = Path(results_dir) / profile / "slow"
records.write_json(out / "part1.json", {"rows": list(range(1000))})
started = Path(results_dir).parent / "02_started"
with records.atomic_path(out / "results.json") as tmp, open(tmp, "w") as handle:
    handle.write('{"rows": [')
    handle.flush()
    if not started.exists():
        started.write_text(str(os.getpid()))
        time.sleep(600)
    handle.write("1, 2, 3]}")
"""

LAST = """\
from pathlib import Path
from adtr import records
records.write_json(Path(results_dir) / profile / "last" / "results.json", {"notebook": 3})
"""


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nresults_dir = "results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def _wait_for_pid(marker: Path, batch: subprocess.Popen, log: Path) -> int:
    deadline = time.time() + 300
    while time.time() < deadline:
        text = marker.read_text().strip() if marker.exists() else ""
        if text:
            return int(text)
        assert batch.poll() is None, f"the batch ended before notebook 2 ran:\n{log.read_text()}"
        time.sleep(0.05)
    raise AssertionError(f"notebook 2 did not start in time:\n{log.read_text()}")


def test_killed_batch_keeps_finished_notebooks_and_redoes_the_killed_one(
        tmp_path, tiny_root, monkeypatch) -> None:
    """SIGKILL the batch while notebook 2 writes a result: no half file, a rerun finishes."""
    notebooks, results = tmp_path / "notebooks", tmp_path / "results"
    notebooks.mkdir()
    for name, body in [("01_first", FIRST), ("02_slow", SLOW), ("03_last", LAST)]:
        _notebook(notebooks / f"{name}.ipynb", body)
    monkeypatch.setenv("ADTR_NOTEBOOKS_DIR", str(notebooks))
    log = tmp_path / "batch.log"
    with log.open("w") as output:
        batch = subprocess.Popen(
            [sys.executable, "-m", "adtr", "reproduce", "--profile", "smoke", "--data-root",
             str(tiny_root), "--results-dir", str(results)],
            cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    kernel = _wait_for_pid(tmp_path / "02_started", batch, log)
    os.killpg(batch.pid, signal.SIGKILL)  # the batch and its papermill process
    os.kill(kernel, signal.SIGKILL)  # the notebook's kernel runs in a session of its own
    batch.wait()

    executed = results / "smoke" / "executed"
    assert json.loads((executed / "01_first.json").read_text())["status"] == "ok"
    assert not (executed / "02_slow.json").exists() and not (executed / "03_last.ipynb").exists()
    slow = results / "smoke" / "slow"
    assert [p.name for p in slow.iterdir() if not p.name.startswith(".")] == ["part1.json"]
    assert json.loads((slow / "part1.json").read_text()) == {"rows": list(range(1000))}
    leftovers = [p.name for p in slow.iterdir() if p.name.startswith(".")]
    assert leftovers and all(n.startswith(".results.json.") and n.endswith(".tmp")
                             for n in leftovers)  # the half-written file, under a hidden name
    assert report.load("slow", "smoke", results) is None  # and nothing reads it as a result

    outcomes = reproduce.reproduce("smoke", parameters={"data_root": str(tiny_root),
                                                         "results_dir": str(results)})
    assert [(o.name, o.status) for o in outcomes] == [
        ("01_first", "skipped"), ("02_slow", "ok"), ("03_last", "ok")], outcomes
    assert json.loads((slow / "results.json").read_text()) == {"rows": [1, 2, 3]}  # whole
    assert not [p for p in slow.iterdir() if p.name.startswith(".")]  # the leftover deleted
    assert json.loads((results / "smoke" / "last" / "results.json").read_text()) == {
        "notebook": 3}
    for name in ("02_slow", "03_last"):
        assert json.loads((executed / f"{name}.json").read_text())["status"] == "ok"
