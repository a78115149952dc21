"""Benchmark child: one training process of the *parallel training* rows.

    python -m benchmarks.parallel_child PROFILE THREADS STEPS

Builds the profile's model on 192 channels (EfficientNet-Lite0's stages 0-3) with
``THREADS`` torch threads, makes one training step, prints ``ready`` and waits for a line
on stdin (every process side by side starts timing on the same signal), then makes
``STEPS`` steps of ``adtr.train.training_step`` on one random feature batch and prints
one JSON line: the images trained and the monotonic start and end times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from adtr import profiles
from adtr.allocator import keep_freed_memory
from adtr.model import ADTR, reconstruction_loss
from adtr.train import make_optimizer, training_step

CHANNELS = 192  # EfficientNet-Lite0's stages 0-3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", choices=profiles.profile_names())
    parser.add_argument("threads", type=int, help="torch threads of this process")
    parser.add_argument("steps", type=int, help="timed training steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as adtr's training does
    config = profiles.resolve(args.profile)
    torch.manual_seed(0)
    grid = config.image_size // config.feature_stride
    model = ADTR(CHANNELS, grid, config)
    optimizer = make_optimizer(model, config.lr, config)  # as adtr's training
    features = torch.randn(config.batch_size, CHANNELS, grid, grid)
    device = torch.device("cpu")

    def step() -> float:
        return training_step(model, optimizer,
                             lambda: reconstruction_loss(features, model(features).float()),
                             config.grad_clip, device)

    step()
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.monotonic()
    for _ in range(args.steps):
        step()
    print(json.dumps({"images": args.steps * config.batch_size, "start": started,
                      "end": time.monotonic()}))


if __name__ == "__main__":
    main()
