"""glibc's malloc keeps freed memory after ``keep_freed_memory``: measured in page faults."""

import os
import platform
import subprocess
import sys

import pytest

CODE = """
import resource, statistics, torch
from adtr.allocator import keep_freed_memory
applied = keep_freed_memory()
x = torch.randn(4, 256, 112, 112)  # 49 MiB, like a backbone activation: glibc mmaps such blocks
conv = torch.nn.Conv2d(256, 256, 3, padding=1, groups=256)
faults = []
with torch.inference_mode():
    for _ in range(8):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.relu(conv(x) * 2)  # three blocks of x's size, freed at the end
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, statistics.median(faults[1:]))  # (the first pass maps the heap)
"""
PAGES = 4 * 256 * 112 * 112 * 4 // 4096  # of one such block


def _faults_of_a_repeated_pass(system_malloc: str) -> tuple[str, float]:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          check=True, env={**os.environ, "ADTR_SYSTEM_MALLOC": system_malloc})
    applied, faults = done.stdout.split()
    return applied, float(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    applied, faults = _faults_of_a_repeated_pass("0")
    assert applied == "True" and faults < PAGES // 10
    applied, faults = _faults_of_a_repeated_pass("1")  # glibc as it is: mapped afresh
    assert applied == "False" and faults > 2 * PAGES
