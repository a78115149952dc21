"""adtr.cost: a phase's time and peak memory above its start."""

import time

import torch

from adtr import allocator, cost


def _hold(megabytes: int, seconds: float) -> None:
    held = [torch.ones(2**18) for _ in range(megabytes)]  # 1 MiB each
    time.sleep(seconds)
    del held


def test_a_phase_reports_its_memory_each_time_even_when_the_heap_kept_it() -> None:
    allocator.keep_freed_memory()  # as every run does: freed memory stays with the process
    spent: dict[str, float] = {}
    for phase in ("first", "second"):
        with cost.measure(spent, phase):
            _hold(120, 0.15)
    for phase in ("first", "second"):
        assert 100 <= spent[f"{phase}_peak_mb"] <= 200, spent
        assert spent[f"{phase}_s"] >= 0.15
    with cost.measure(spent, "idle"):
        time.sleep(0.05)
    assert spent["idle_peak_mb"] < 20
