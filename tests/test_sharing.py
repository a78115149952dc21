"""Processes side by side (`adtr reproduce --jobs 2`) compute shared work once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import torch
from filelock import FileLock

from adtr import experiments, features, pipeline, profiles
from adtr.schema import RunRecord, RunResult


def test_a_feature_cache_file_is_computed_once_by_concurrent_callers(tmp_path) -> None:
    calls = []
    entered = threading.Barrier(2)

    def compute() -> torch.Tensor:
        calls.append(threading.get_ident())
        time.sleep(0.3)  # the other caller is waiting on the lock by now
        return torch.arange(6.0).reshape(2, 3)

    def worker(_: int) -> torch.Tensor:
        entered.wait()
        return features._cached("shared-key", tmp_path, torch.nn.Identity(), compute, None)

    features.clear_memory_cache()
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(worker, range(2))
    assert len(calls) == 1
    torch.testing.assert_close(first, second)
    assert (tmp_path / "features" / "shared-key.pt").is_file()


def test_a_training_run_is_trained_once_by_concurrent_notebooks(tiny_root, tmp_path,
                                                                  monkeypatch) -> None:
    setup = experiments.setup("smoke", data_root=str(tiny_root), categories=["brick"],
                              seeds=[0], epochs=1, runs_dir=str(tmp_path / "runs"))
    fits = []
    real_fit = pipeline.fit

    def counting_fit(*args, **kwargs):
        fits.append(args[1].name)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(pipeline, "fit", counting_fit)
    entered = threading.Barrier(2)

    def worker(_: int) -> dict:
        entered.wait()
        return experiments.run_one(setup, "brick", 0)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(worker, range(2))
    assert fits == ["brick"]
    assert first.image_auroc == second.image_auroc
    assert first.record.checkpoint == second.record.checkpoint


def test_runs_another_notebook_is_training_are_taken_up_after_the_others(tmp_path) -> None:
    config = profiles.resolve("smoke")
    key = "run-key"
    (tmp_path / "b").mkdir()
    other_notebook = FileLock(tmp_path / "b" / ".lock")
    other_notebook.acquire()  # it is training run b now
    computed = []

    def finish(job: str, out: Path) -> RunResult:
        record = RunRecord(written_at="now", experiment="fit", variant="adtr", category=job,
                           metrics={"image_auroc": 0.5}, config=config.to_dict(), data={},
                           backbone={}, seed=0, environment={}, run_key=key)
        result = RunResult(category=job, image_auroc=0.5, record=record)
        result.write(out / "metrics.json")
        return result

    def compute(job: str, out: Path) -> RunResult:
        computed.append(job)
        if job == "c":  # meanwhile the other notebook finishes b
            finish("b by the other notebook", tmp_path / "b")
            other_notebook.release()
        return finish(job, out)

    def run(job: str, wait: bool) -> RunResult | None:
        return experiments.shared_run(tmp_path / job, key, partial(compute, job), wait)

    results = experiments.run_all(["a", "b", "c"], run, progress=False)
    assert computed == ["a", "c"]
    assert [r.category for r in results] == ["a", "b by the other notebook", "c"]
