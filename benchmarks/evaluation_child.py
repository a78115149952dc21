"""Benchmark child: wall time and peak memory of the three metrics, in a fresh process.

    python -m benchmarks.evaluation_child MAPS SIZE

Scores ``MAPS`` random anomaly maps of ``SIZE`` x ``SIZE`` pixels against rectangular
masks (two thirds of the images anomalous) and prints one JSON line: the seconds of each
metric, the peak RSS and the RSS before the metrics ran (the inputs), in GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from adtr import metrics
from adtr.allocator import keep_freed_memory


def inputs(count: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores, masks, maps) of ``count`` test images: random maps; two thirds of
    the images anomalous, each with one or two rectangles in its mask."""
    rng = np.random.default_rng(0)
    maps = rng.random((count, size, size), dtype=np.float32)
    masks = np.zeros((count, size, size), dtype=bool)
    for i in range(count):
        for _ in range(rng.integers(1, 3) if i % 3 else 0):
            y, x = rng.integers(0, size - 40, 2)
            masks[i, y:y + rng.integers(5, 40), x:x + rng.integers(5, 40)] = True
    labels = masks.reshape(count, -1).any(axis=1).astype(int)
    scores = maps.reshape(count, -1).max(axis=1)
    return labels, scores, masks, maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps", type=int, help="number of anomaly maps (test images)")
    parser.add_argument("size", type=int, help="side of each map in pixels")
    args = parser.parse_args()
    keep_freed_memory()  # as in an adtr run, whose evaluation follows training
    labels, scores, masks, maps = inputs(args.maps, args.size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = {}
    for name, metric in (("image_auroc", lambda: metrics.image_auroc(labels, scores)),
                         ("pixel_auroc", lambda: metrics.pixel_auroc(masks, maps)),
                         ("aupro", lambda: metrics.aupro(masks, maps))):
        started = time.perf_counter()
        metric()
        seconds[name] = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_gib": peak / 2**20,
                      "inputs_rss_gib": before / 2**20}))


if __name__ == "__main__":
    main()
