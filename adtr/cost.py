"""What a phase of a run costs: its wall time and its peak memory.

``measure()`` times a block and tracks the most memory the process held during it above
what it held when the block started: on CUDA the peak of torch's allocated memory, on the
CPU the peak resident set size (sampled by a background thread every ``interval_s``; a
peak shorter than that can be missed). On the CPU the C heap's free memory is first given
back to the system (glibc's ``malloc_trim``): memory an earlier run freed but the process
kept would otherwise be reused unseen, and a second run would look as if it needed none.
The numbers hold only for the machine they were measured on; compare methods measured
side by side in one batch.

Every method's phases mean the same: ``backbone`` is the frozen backbone's passes over a
run's training and test images, ``train`` fitting the model from their features and
``test`` scoring the test images from theirs (maps and image scores; the metrics are in
neither). A ``Stopwatch`` times what a phase must leave out (the backbone's forward
passes where a method runs them inside its own fit, ADTR's shortcut probes), and
``measure(..., excluded=)`` subtracts it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import torch

MB = 2**20


class Stopwatch:
    """Seconds accumulated over the spans it ran (``running()``, or a module's forward
    passes while ``timing(module)`` is on)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def running(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started

    @contextmanager
    def timing(self, module: torch.nn.Module) -> Iterator[None]:
        """Run while ``module``'s forward runs (CUDA synchronised at both ends)."""
        started: list[float] = []

        def sync(inputs: Any) -> None:
            tensor = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
            if isinstance(tensor, torch.Tensor) and tensor.is_cuda:
                torch.cuda.synchronize(tensor.device)

        def before(_module: torch.nn.Module, inputs: Any) -> None:
            sync(inputs)
            started.append(time.perf_counter())

        def after(_module: torch.nn.Module, inputs: Any, _output: Any) -> None:
            sync(inputs)
            self.seconds += time.perf_counter() - started.pop()

        handles = [module.register_forward_pre_hook(before),
                   module.register_forward_hook(after)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


@contextmanager
def measure(into: dict[str, float], phase: str, device: torch.device | str = "cpu",
            interval_s: float = 0.02, excluded: Stopwatch | None = None) -> Iterator[None]:
    """Time the block and record ``into[f"{phase}_s"]`` (seconds, less what ``excluded``
    ran meanwhile) and ``into[f"{phase}_peak_mb"]`` (peak memory above the start, MiB)."""
    device = torch.device(device)
    started = time.perf_counter()
    left_out = excluded.seconds if excluded is not None else 0.0

    def seconds() -> float:
        spent = excluded.seconds - left_out if excluded is not None else 0.0
        return round(time.perf_counter() - started - spent, 3)

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        try:
            yield
        finally:
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - baseline
            into[f"{phase}_s"] = seconds()
            into[f"{phase}_peak_mb"] = round(peak / MB, 1)
        return
    _release_free_memory()
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval_s):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        into[f"{phase}_s"] = seconds()
        into[f"{phase}_peak_mb"] = round((peak[0] - baseline) / MB, 1)


def _release_free_memory() -> None:
    """glibc's ``malloc_trim(0)``: free heap memory back to the system (elsewhere nothing)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        libc = None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
