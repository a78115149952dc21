"""What a phase of a run costs: its wall time and its peak memory.

``measure()`` times a block and tracks the most memory the process held during it above
what it held when the block started: on CUDA the peak of torch's allocated memory, on the
CPU the peak resident set size (sampled by a background thread every ``interval_s``; a
peak shorter than that can be missed). On the CPU the C heap's free memory is first given
back to the system (glibc's ``malloc_trim``): memory an earlier run freed but the process
kept would otherwise be reused unseen, and a second run would look as if it needed none.
The numbers hold only for the machine they were measured on; compare methods measured
side by side in one batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import torch

MB = 2**20


@contextmanager
def measure(into: dict[str, float], phase: str, device: torch.device | str = "cpu",
            interval_s: float = 0.02) -> Iterator[None]:
    """Time the block and record ``into[f"{phase}_s"]`` (seconds) and
    ``into[f"{phase}_peak_mb"]`` (peak memory above the start, MiB)."""
    device = torch.device(device)
    started = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        try:
            yield
        finally:
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - baseline
            into[f"{phase}_s"] = round(time.perf_counter() - started, 3)
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
        into[f"{phase}_s"] = round(time.perf_counter() - started, 3)
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
