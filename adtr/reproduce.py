"""Run the experiment notebooks as a papermill batch: ``adtr reproduce --profile cpu``.

Each notebook runs in its own papermill process; the executed copy goes to
``results/<profile>/executed/<name>.ipynb`` with a stamp beside it: its parameters, the
notebook's hash, the hash of the ``adtr`` modules it imports (found in its code, with
everything they import) and the digest of the data it reads. A notebook whose stamp
matches is skipped unless ``force``; a failing notebook does not stop the others, and the
summary names the cell and error of each failure. ``$ADTR_NOTEBOOKS_DIR`` runs the
notebooks of another folder.

With ``jobs > 1`` notebooks run side by side: on the least busy GPU where several exist
(none with ``device="cpu"``); each gets its share of the CPU cores (``OMP_NUM_THREADS``; a
user's own value wins); the longest (by the time its last stamp recorded) start first.
Notebooks that need the same training run share it: the first trains it under a lock; the
others do their other runs first and read it back at the end (``experiments.run_all``).

A batch that ran every notebook with the profile's own settings (only the locations of data
and outputs given) and found no finished run under ``runs/<profile>/`` writes ``batch.json``
beside the stamps: its wall time from data generation to the last notebook, jobs and
threads. Any other batch that ran a notebook removes an older ``batch.json``, which would
no longer describe the results beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adtr import catalog, stamps
from adtr.errors import ConfigError
from adtr.records import (
    atomic_path,
    environment,
    project_root,
    run_record,
    write_json,
)


@dataclass
class Outcome:
    name: str
    status: str  # "ok", "skipped" or "failed"
    seconds: float = 0.0
    error: str = ""


def notebooks_dir() -> Path:
    """Where the batch's notebooks are (``stamps.notebooks_dir``)."""
    return stamps.notebooks_dir()


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


def _stamp(name: str, parameters: dict[str, Any], data_digest: str) -> dict[str, Any]:
    return stamps.stamp(name, parameters, data_digest, notebooks_dir())


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
                 env: dict[str, str], data_digest: str = "") -> Outcome:
    executed = out_dir / f"{name}.ipynb"
    stamp_path = out_dir / f"{name}.json"
    stamp = _stamp(name, parameters, data_digest)
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
    if executed.is_file():
        without_machine_paths(executed)
    if done.returncode != 0:
        return Outcome(name, "failed", seconds, _first_error(executed))
    write_json(stamp_path, {**stamp, "status": "ok", "seconds": round(seconds, 1)})
    return Outcome(name, "ok", seconds)


def without_machine_paths(executed: Path) -> None:
    """Take the project's own folder and the Python environment's out of an executed
    notebook: papermill records the input and output paths, cells print paths of results,
    and warnings name the installed packages' files. What the published copy says is then
    where things lie in the project or the environment, not on the machine that ran it (as
    ``records.portable_path`` does for the results)."""
    folders = {f"{Path(p).resolve().as_posix()}/" for p in (project_root(), sys.prefix)}
    text = original = executed.read_text()
    for folder in sorted(folders, key=len, reverse=True):  # the deeper one first
        text = text.replace(folder, "")
    if text != original:
        with atomic_path(executed) as tmp:
            tmp.write_text(text)


#: Parameters that say where things are, not what is computed: a batch given only these
#: runs the profile's own experiments.
LOCATION_PARAMETERS = frozenset({"profile", "results_dir", "runs_dir", "data_root",
                                 "cifar_root", "cifar100_root"})


def reproduce(profile: str, only: list[str] | None = None, force: bool = False, jobs: int = 1,
              parameters: dict[str, Any] | None = None) -> list[Outcome]:
    """Run the chosen notebooks; returns one outcome per notebook, in order."""
    from adtr import experiments

    started = time.perf_counter()  # a batch's time includes generating its data
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    names = select(only)
    params = {"profile": profile, **{k: v for k, v in (parameters or {}).items()
                                    if v is not None}}
    runs_dir = experiments.absolute(params.get("runs_dir", "runs")) / profile
    finished_before = sum(1 for _ in runs_dir.rglob("metrics.json")) if runs_dir.is_dir() else 0
    # Validate parameters and generate offline data once, before notebooks run in parallel.
    # The one-class notebook reads CIFAR-10 or the digits, not the MVTec-layout data.
    digests = {}
    if any(not _one_class(name) for name in names):
        digests[False] = experiments.setup(**{k: v for k, v in params.items()
                                              if k not in ("cifar_root", "cifar100_root")}
                                           ).data_digest
    if any(_one_class(name) for name in names):
        digests[True] = experiments.one_class_setup(
            **{k: v for k, v in params.items() if k not in ("data_root", "categories")}
        ).data_digest
    out_dir = experiments.absolute(params.get("results_dir", "results")) / profile / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    gpus = 0 if str(params.get("device", "auto")).startswith("cpu") else _gpu_count()
    threads = _threads_per_notebook(min(jobs, len(names)))
    if threads is not None:
        threads = int(os.environ.get("OMP_NUM_THREADS") or threads)  # a user's value wins
    order = longest_first(names, out_dir) if jobs > 1 else names
    notebooks_on_gpu = [0] * gpus
    gpu_lock = threading.Lock()

    def work(name: str) -> Outcome:
        env = dict(os.environ)
        gpu = None
        if gpus > 1:  # the least busy GPU
            with gpu_lock:
                gpu = min(range(gpus), key=notebooks_on_gpu.__getitem__)
                notebooks_on_gpu[gpu] += 1
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        if threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        try:
            outcome = run_notebook(name, params, out_dir, force, env,
                                   digests[_one_class(name)])
        finally:
            if gpu is not None:
                with gpu_lock:
                    notebooks_on_gpu[gpu] -= 1
        print(f"{outcome.status:>7}  {name}  {outcome.seconds:6.0f} s  {outcome.error}",
              flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        by_name = {o.name: o for o in pool.map(work, order)}
    outcomes = [by_name[name] for name in names]
    batch_path = out_dir / "batch.json"
    whole = (only is None and all(o.status == "ok" for o in outcomes)
             and set(params) <= LOCATION_PARAMETERS and finished_before == 0)
    if whole:
        _write_batch_record(batch_path, profile, params, jobs, threads, outcomes,
                            time.perf_counter() - started, "cuda" if gpus else "cpu")
    elif any(o.status != "skipped" for o in outcomes):
        batch_path.unlink(missing_ok=True)  # it no longer describes the results beside it
    return outcomes


def _one_class(notebook: str) -> bool:
    """Whether a notebook runs the one-class setting (its data is not the MVTec folder)."""
    experiment = catalog.by_notebook(notebook)
    return experiment is not None and experiment.one_class


def cores() -> int:
    """CPU cores this process may use (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _threads_per_notebook(side_by_side: int) -> int | None:
    """CPU threads for each of ``side_by_side`` notebooks running at once (None: one
    notebook, torch's default). On the CPU, two 1-thread trainings on 2 cores get ~1.5x the
    images/s of one 2-thread training (the benchmark's *parallel training* rows): the
    transformer's small matrices use a second thread poorly. Beside a GPU the share also
    bounds each notebook's image-decoding workers (``features.loader_workers``), so that
    notebooks side by side do not oversubscribe the cores."""
    if side_by_side == 1:
        return None
    return max(1, cores() // side_by_side)


def longest_first(names: list[str], out_dir: Path) -> list[str]:
    """``names`` longest first (the classic greedy rule for keeping parallel workers busy to
    the end), by the seconds of their last stamp or, where longer, the seconds their runs
    took as their results record them (a notebook that read its runs back ran in seconds);
    notebooks never run before go first."""
    def seconds(name: str) -> float:
        try:
            stamped = float(json.loads((out_dir / f"{name}.json").read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return float("inf")
        return max(stamped, _recorded_run_seconds(name, out_dir.parent))

    return sorted(names, key=seconds, reverse=True)


def _recorded_run_seconds(notebook: str, profile_dir: Path) -> float:
    """The training time of the runs a notebook's ``results.json`` records (0 if none):
    ``schema.training_seconds``, as the file stores it."""
    experiment = catalog.by_notebook(notebook)
    path = profile_dir / (experiment.name if experiment else notebook) / "results.json"
    try:
        return float(json.loads(path.read_text())["record"]["wall_time_s"] or 0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _write_batch_record(path: Path, profile: str, parameters: dict[str, Any], jobs: int,
                        threads: int | None, outcomes: list[Outcome], seconds: float,
                        device: str) -> None:
    """``batch.json``: the measured wall time of a whole batch, trained from scratch."""
    write_json(path, run_record(
        experiment="reproduce", profile=profile, parameters=parameters, jobs=jobs,
        threads_per_notebook=threads, wall_time_s=round(seconds, 1),
        notebooks=[{"notebook": o.name, "seconds": round(o.seconds, 1)} for o in outcomes],
        environment=environment(device)))


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0
