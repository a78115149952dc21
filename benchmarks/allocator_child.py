"""Benchmark child: backbone seconds and page faults per batch, in a fresh process.

    [ADTR_SYSTEM_MALLOC=1] python -m benchmarks.allocator_child PROFILE BATCHES

Runs the profile's backbone (random weights) on a batch of 16 random images once to warm
up, then ``BATCHES`` times, and prints one JSON line: whether malloc keeps freed memory in
this process (``adtr.allocator``; ``ADTR_SYSTEM_MALLOC=1`` leaves it as it is), and the
median seconds and minor page faults of a batch.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from adtr import profiles
from adtr.allocator import keep_freed_memory
from adtr.backbones import FeatureExtractor

BATCH = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", choices=profiles.profile_names())
    parser.add_argument("batches", type=int, help="timed backbone batches")
    args = parser.parse_args()
    kept = keep_freed_memory()
    config = profiles.resolve(args.profile)
    extractor = FeatureExtractor(config.backbone, config.stages, config.image_size,
                                 config.feature_stride, weights="random")
    images = torch.randn(BATCH, 3, config.image_size, config.image_size)
    seconds, faults = [], []
    with torch.inference_mode():
        extractor(images)
        for _ in range(args.batches):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.perf_counter()
            extractor(images)
            seconds.append(time.perf_counter() - started)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps({"kept": kept, "seconds": statistics.median(seconds),
                      "faults": statistics.median(faults)}))


if __name__ == "__main__":
    main()
