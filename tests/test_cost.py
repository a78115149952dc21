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


class _Slow(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.1)
        return x


def test_a_phase_leaves_out_what_its_stopwatch_timed() -> None:
    slow, clock, spent = _Slow(), cost.Stopwatch(), {}
    with clock.timing(slow), cost.measure(spent, "train", excluded=clock):
        for _ in range(3):
            slow(torch.zeros(1))
        time.sleep(0.1)
    assert 0.3 <= clock.seconds < 0.4
    assert 0.1 <= spent["train_s"] < 0.2, spent  # the block's 0.4 s less the module's 0.3 s
    slow(torch.zeros(1))  # the hooks are gone after the block
    assert clock.seconds < 0.4
    with clock.running():
        time.sleep(0.05)
    assert clock.seconds >= 0.35
