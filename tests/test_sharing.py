"""Processes side by side (`adtr reproduce --jobs 2`) compute shared work once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from adtr import experiments, features, train


def test_a_feature_cache_file_is_computed_once_by_concurrent_callers(tmp_path) -> None:
    calls = []
    entered = threading.Barrier(2)

    def compute() -> torch.Tensor:
        calls.append(threading.get_ident())
        time.sleep(0.3)  # the other caller is waiting on the lock by now
        return torch.arange(6.0).reshape(2, 3)

    def worker(_: int) -> torch.Tensor:
        entered.wait()
        return features._cached("shared-key", tmp_path, compute)

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
    real_fit = train.fit

    def counting_fit(*args, **kwargs):
        fits.append(args[1])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", counting_fit)
    entered = threading.Barrier(2)

    def worker(_: int) -> dict:
        entered.wait()
        return experiments.run_one(setup, "brick", 0)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(worker, range(2))
    assert fits == ["brick"]
    assert first["image_auroc"] == second["image_auroc"]
    assert first["record"]["checkpoint"] == second["record"]["checkpoint"]
