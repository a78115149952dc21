"""Run the experiment notebooks as a papermill batch: ``adtr reproduce --profile cpu``.

Each notebook runs in its own papermill process; the executed copy goes to
``results/<profile>/executed/<name>.ipynb`` with a stamp beside it (parameters, the
notebook's hash, the package's hash). A notebook whose stamp matches is skipped unless
``force``; a failing notebook does not stop the others, and the summary names the cell
and error of each failure. ``$ADTR_NOTEBOOKS_DIR`` runs the notebooks of another folder.

With ``jobs > 1`` notebooks run side by side: one GPU each where several exist, else each
gets its share of the CPU cores (``OMP_NUM_THREADS``), and the longest (by the time its last
stamp recorded) start first. Notebooks that need the same training run share it: the first
trains it under a lock, the others wait and read it back. A batch that ran every notebook
writes ``batch.json`` beside the stamps: its wall time, jobs and threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adtr.errors import ConfigError
from adtr.records import environment, files_sha256, project_root, run_record, write_json


@dataclass
class Outcome:
    name: str
    status: str  # "ok", "skipped" or "failed"
    seconds: float = 0.0
    error: str = ""


def notebooks_dir() -> Path:
    """``$ADTR_NOTEBOOKS_DIR`` if set (e.g. tests running a batch of tiny notebooks in a
    subprocess), else the project's ``notebooks/``."""
    chosen = os.environ.get("ADTR_NOTEBOOKS_DIR", "").strip()
    return Path(chosen) if chosen else project_root() / "notebooks"


def available_notebooks() -> list[str]:
    return sorted(p.stem for p in notebooks_dir().glob("[0-9]*.ipynb"))


def select(only: list[str] | None) -> list[str]:
    """Notebook names for ``--only`` (a name or its number prefix, e.g. ``02``)."""
    names = available_notebooks()
    if not only:
        return names
    chosen = []
    for wanted in only:
        hits = [n for n in names if n == wanted or n.split("_")[0] == wanted
                or n.split("_", 1)[-1] == wanted]
        if not hits:
            raise ConfigError(f"no notebook {wanted!r}; choose from {names}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


#: The modules that decide what a notebook computes and draws; the book's and the command
#: line's code (report, cli, reproduce) do not make results stale.
NOTEBOOK_MODULES = ("analysis", "backbones", "data", "experiments", "features", "metrics",
                    "model", "oneclass", "paper", "plus", "profiles", "records", "synth",
                    "train", "viz")


#: Notebooks of the one-class setting (their data is not the MVTec-layout folder).
ONE_CLASS_NOTEBOOKS = ("08_one_class",)


def _stamp(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    package = [project_root() / "adtr" / f"{module}.py" for module in NOTEBOOK_MODULES]
    return {"notebook": name, "parameters": parameters,
            "notebook_sha256": files_sha256([notebooks_dir() / f"{name}.ipynb"])[:16],
            "package_sha256": files_sha256(package)[:16]}


def _first_error(executed: Path) -> str:
    """'cell N: Name: message' of the first cell whose output is an error."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return "no executed notebook was written"
    # Number cells as in the source notebook: papermill's injected cell is not one of them.
    code_cells = [c for c in cells if c["cell_type"] == "code"
                  and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for number, cell in enumerate(code_cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"code cell {number}: {output['ename']}: {output['evalue']}"
    return "the kernel died or papermill failed before any cell raised"


def run_notebook(name: str, parameters: dict[str, Any], out_dir: Path, force: bool,
                 env: dict[str, str]) -> Outcome:
    executed = out_dir / f"{name}.ipynb"
    stamp_path = out_dir / f"{name}.json"
    stamp = _stamp(name, parameters)
    if not force and executed.is_file() and stamp_path.is_file():
        previous = json.loads(stamp_path.read_text())
        if previous.get("status") == "ok" and {k: previous.get(k) for k in stamp} == stamp:
            return Outcome(name, "skipped")
    stamp_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "papermill", str(notebooks_dir() / f"{name}.ipynb"),
               str(executed), "--cwd", str(project_root()), "--log-level", "WARNING",
               "-y", json.dumps(parameters)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return Outcome(name, "failed", seconds, _first_error(executed))
    write_json(stamp_path, {**stamp, "status": "ok", "seconds": round(seconds, 1)})
    return Outcome(name, "ok", seconds)


def reproduce(profile: str, only: list[str] | None = None, force: bool = False, jobs: int = 1,
              parameters: dict[str, Any] | None = None) -> list[Outcome]:
    """Run the chosen notebooks; returns one outcome per notebook, in order."""
    from adtr import experiments

    started = time.perf_counter()  # a batch's time includes generating its data
    names = select(only)
    params = {"profile": profile, **{k: v for k, v in (parameters or {}).items()
                                    if v is not None}}
    # Validate parameters and generate offline data once, before notebooks run in parallel.
    # The one-class notebook reads CIFAR-10 or the digits, not the MVTec-layout data.
    if any(name not in ONE_CLASS_NOTEBOOKS for name in names):
        experiments.setup(**{k: v for k, v in params.items()
                             if k not in ("cifar_root", "cifar100_root")})
    if any(name in ONE_CLASS_NOTEBOOKS for name in names):
        from adtr import oneclass

        oneclass.setup(**{k: v for k, v in params.items()
                          if k not in ("data_root", "categories")})
    out_dir = experiments.absolute(params.get("results_dir", "results")) / profile / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    gpus = _gpu_count()
    threads = _threads_per_notebook(jobs, gpus)
    order = longest_first(names, out_dir) if jobs > 1 else names

    def work(index_name: tuple[int, str]) -> Outcome:
        index, name = index_name
        env = dict(os.environ)
        if gpus > 1:
            env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
        if threads is not None:
            env.setdefault("OMP_NUM_THREADS", str(threads))
            env.setdefault("MKL_NUM_THREADS", env["OMP_NUM_THREADS"])
        outcome = run_notebook(name, params, out_dir, force, env)
        print(f"{outcome.status:>7}  {name}  {outcome.seconds:6.0f} s  {outcome.error}",
              flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        by_name = {o.name: o for o in pool.map(work, enumerate(order))}
    outcomes = [by_name[name] for name in names]
    if only is None and all(o.status == "ok" for o in outcomes):
        _write_batch_record(out_dir, profile, params, jobs, threads, outcomes,
                            time.perf_counter() - started)
    return outcomes


def _threads_per_notebook(jobs: int, gpus: int) -> int | None:
    """CPU threads for each of ``jobs`` notebooks running side by side on the CPU (None:
    leave torch's default). Two 1-thread trainings on 2 cores get ~1.4x the steps per
    second of one 2-thread training: the transformer's small matrices use a second thread
    poorly. A user's ``OMP_NUM_THREADS`` wins."""
    if jobs == 1 or gpus > 0:
        return None
    return max(1, (os.cpu_count() or 1) // jobs)


def longest_first(names: list[str], out_dir: Path) -> list[str]:
    """``names`` by the seconds of their last stamp, longest first (the classic greedy rule
    for keeping parallel workers busy to the end); notebooks never run before go first."""
    def seconds(name: str) -> float:
        try:
            return float(json.loads((out_dir / f"{name}.json").read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return float("inf")

    return sorted(names, key=seconds, reverse=True)


def _write_batch_record(out_dir: Path, profile: str, parameters: dict[str, Any], jobs: int,
                        threads: int | None, outcomes: list[Outcome], seconds: float) -> None:
    """``batch.json``: the measured wall time of a batch that ran every notebook."""
    write_json(out_dir / "batch.json", run_record(
        experiment="reproduce", profile=profile, parameters=parameters, jobs=jobs,
        threads_per_notebook=threads, wall_time_s=round(seconds, 1),
        notebooks=[{"notebook": o.name, "seconds": round(o.seconds, 1)} for o in outcomes],
        environment=environment("cuda" if _gpu_count() else "cpu")))


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0
