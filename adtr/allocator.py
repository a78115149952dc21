"""glibc's malloc, told to keep freed memory for reuse instead of handing it back.

glibc serves every allocation above 32 MiB with its own ``mmap`` and unmaps it when it
is freed. A paper-size backbone batch (EfficientNet-B4, 16 images of 224 px) makes
activations of 40-80 MiB, so each forward pass maps them afresh and the kernel zero-fills
them page by page: 230,000-400,000 page faults per batch on a 2-core CPU, whose kernel
time was as long as the convolutions'. With mmap off and the heap kept, a freed block is
reused by the next batch: no page faults, and the backbone took 0.74 s per batch instead
of 1.24 s on that machine (the benchmark's *allocator* rows measure it on the machine at
hand).

``keep_freed_memory`` does this once per process, on Linux with glibc only. It costs memory
that the process has already used once: freed blocks stay with the process until it exits.
Set ``ADTR_SYSTEM_MALLOC=1`` to leave malloc as it is.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Turn off glibc's per-allocation mmap and heap trimming; whether malloc now keeps
    freed memory (False on other C libraries or with ``ADTR_SYSTEM_MALLOC=1``)."""
    global _applied
    if _applied:
        return True
    if os.environ.get("ADTR_SYSTEM_MALLOC", "") not in ("", "0"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    _applied = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied
