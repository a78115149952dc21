"""Benchmarks: training with and without the feature cache, inference stages, evaluation.

    python benchmarks/run.py [--quick] [--device cpu|cuda] [--out FILE]

Prints a table and writes ``results/benchmarks/<device>.json`` with the run record. All
rows of one run are measured in the same run, so their ratios hold on a noisy machine.
Timing uses random images and random-initialised backbones: speed does not depend on the
weights, and no result here is an accuracy.

Rows: training images/s with the feature cache vs the backbone in the loop (fp32, and
bf16 autocast), inference stage shares, evaluation time and memory, and on the CPU the
training throughput of processes side by side (what ``adtr reproduce --jobs N`` does)
vs one process using every core.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from adtr import profiles, reproduce
from adtr.backbones import FeatureExtractor
from adtr.model import ADTR, anomaly_map, reconstruction_loss, upsample_and_score
from adtr.records import environment, project_root, run_record, write_json


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_turns(*fns, device: torch.device, repeats: int) -> list[list[float]]:
    """Seconds of ``repeats`` calls of each function, taken in turns (first, second, first,
    ...) after one warm-up call each: a slow spell of the machine then hits all of them."""
    for fn in fns:
        fn()
    _sync(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            _sync(device)
            out.append(time.perf_counter() - started)
    return times


def _timed(fn, device: torch.device, repeats: int) -> float:
    """Seconds per call: the median of ``repeats`` timed calls after a warm-up (the median
    ignores a call slowed down by another process)."""
    return statistics.median(_timed_turns(fn, device=device, repeats=repeats)[0])


def _setup(profile: str, device: torch.device) -> tuple[profiles.RunConfig, FeatureExtractor,
                                                       ADTR]:
    config = profiles.resolve(profile)
    extractor = FeatureExtractor(config.backbone, config.stages, config.image_size,
                                 config.feature_stride, weights="random").to(device)
    model = ADTR(extractor.channels, extractor.grid, config).to(device)
    return config, extractor, model


def training_rows(profile: str, device: torch.device, images: int, amp: bool,
                  repeats: int) -> list[dict[str, Any]]:
    """Images/s of one epoch: features from the cache vs the backbone in the loop."""
    config, extractor, model = _setup(profile, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    batch = config.batch_size
    pixels = torch.randn(images, 3, config.image_size, config.image_size, device=device)
    with torch.inference_mode():
        cached = torch.cat([extractor(pixels[i:i + batch]) for i in range(0, images, batch)])
    cached = cached.clone()

    def step(features: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = reconstruction_loss(features, model(features).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)  # as in training
        optimizer.step()

    def epoch_cached() -> None:
        for i in range(0, images, batch):
            step(cached[i:i + batch])

    def epoch_backbone() -> None:
        for i in range(0, images, batch):
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                 enabled=amp):
                features = extractor(pixels[i:i + batch]).float()
            step(features)

    # In turns, and the ratio as the median of per-turn ratios: separate medians drift apart
    # on a shared machine.
    cache_s, backbone_s = _timed_turns(epoch_cached, epoch_backbone, device=device,
                                       repeats=repeats)
    precision = "bf16" if amp else "fp32"
    return [{"benchmark": "training", "profile": profile, "mode": "feature cache",
             "precision": precision, "images_per_s": images / statistics.median(cache_s),
             "speedup_vs_backbone_in_the_loop": statistics.median(
                 [b / c for c, b in zip(cache_s, backbone_s, strict=True)])},
            {"benchmark": "training", "profile": profile, "mode": "backbone in the loop",
             "precision": precision, "images_per_s": images / statistics.median(backbone_s)}]


def inference_rows(profile: str, device: torch.device, images: int, amp: bool,
                   repeats: int) -> list[dict[str, Any]]:
    """Images/s of the whole pipeline and each stage's share of its time."""
    config, extractor, model = _setup(profile, device)
    model.eval()
    batch = 16
    pixels = torch.randn(batch, 3, config.image_size, config.image_size, device=device)
    pool = max(1, round(config.score_pool * config.image_size / 224))
    stages: dict[str, float] = {}

    @torch.inference_mode()
    def run() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            features = extractor(pixels).float()
            reconstruction = model(features).float()
        maps = anomaly_map(features, reconstruction)
        upsample_and_score(maps, config.image_size, pool)

    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        features = extractor(pixels).float()
        reconstruction = model(features).float()
        stages["backbone"] = _timed(lambda: extractor(pixels), device, repeats)
        stages["reconstruction"] = _timed(lambda: model(features), device, repeats)
    stages["map + score"] = _timed(
        lambda: upsample_and_score(anomaly_map(features, reconstruction), config.image_size,
                                   pool), device, repeats)
    total = _timed(run, device, repeats)
    row = {"benchmark": "inference", "profile": profile, "mode": "whole pipeline",
           "precision": "bf16" if amp else "fp32", "images_per_s": batch / total,
           "reconstruction_plus_scoring_vs_backbone":
               (stages["reconstruction"] + stages["map + score"]) / stages["backbone"]}
    total_stages = sum(stages.values())
    row.update({f"share_{k}": v / total_stages for k, v in stages.items()})
    return [row]


EVALUATION_CODE = """
import json, resource, time, sys
import numpy as np
from adtr import metrics
n, size = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
maps = rng.random((n, size, size), dtype=np.float32)
masks = np.zeros((n, size, size), dtype=bool)
for i in range(n):  # two thirds of the images anomalous, one or two rectangles each
    for _ in range(rng.integers(1, 3) if i % 3 else 0):
        y, x = rng.integers(0, size - 40, 2)
        masks[i, y:y + rng.integers(5, 40), x:x + rng.integers(5, 40)] = True
labels = masks.reshape(n, -1).any(axis=1).astype(int)
scores = maps.reshape(n, -1).max(axis=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = {}
for name, fn in (("image_auroc", lambda: metrics.image_auroc(labels, scores)),
                 ("pixel_auroc", lambda: metrics.pixel_auroc(masks, maps)),
                 ("aupro", lambda: metrics.aupro(masks, maps))):
    started = time.perf_counter(); fn(); times[name] = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": times, "peak_rss_gib": peak / 2**20,
                  "inputs_rss_gib": before / 2**20}))
"""


def evaluation_row(maps: int, size: int) -> dict[str, Any]:
    """Wall time and peak memory of the three metrics, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", EVALUATION_CODE, str(maps), str(size)],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    return {"benchmark": "evaluation", "mode": f"{maps} maps of {size}x{size}",
            "seconds_total": sum(result["seconds"].values()),
            **{f"seconds_{k}": v for k, v in result["seconds"].items()},
            "peak_rss_gib": result["peak_rss_gib"]}


PARALLEL_CODE = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
from adtr import profiles
from adtr.model import ADTR, reconstruction_loss
config = profiles.resolve(sys.argv[1])
torch.manual_seed(0)
grid = config.image_size // config.feature_stride
model = ADTR(192, grid, config)
optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
features = torch.randn(config.batch_size, 192, grid, grid)
def step():
    loss = reconstruction_loss(features, model(features))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
step()
print("ready", flush=True)
sys.stdin.readline()  # every process starts timing on the same signal
steps, started = int(sys.argv[3]), time.monotonic()
for _ in range(steps):
    step()
print(json.dumps({"images": steps * config.batch_size, "start": started,
                  "end": time.monotonic()}))
"""


def _train_side_by_side(profile: str, processes: int, threads: int, steps: int) -> float:
    """Images/s of ``processes`` training processes started together: all their images over
    the time from the first start to the last end."""
    children = [subprocess.Popen([sys.executable, "-c", PARALLEL_CODE, profile, str(threads),
                                  str(steps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(processes)]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a training process failed to start (exit {child.wait()})")
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a training process failed (exit {child.returncode})")
        results.append(json.loads(out))
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["images"] for r in results) / span


def parallel_rows(profile: str, steps: int) -> list[dict[str, Any]]:
    """Training images/s (feature cache) of one process with every core vs one 1-thread
    process per core side by side (what ``adtr reproduce --jobs N`` does). A model of the
    profile's size on 192 channels (EfficientNet-Lite0's stages 0-3)."""
    cores = reproduce.cores()
    alone = _train_side_by_side(profile, 1, cores, steps)
    side_by_side = _train_side_by_side(profile, cores, 1, steps)
    return [{"benchmark": "parallel training", "profile": profile,
             "mode": f"1 process x {cores} threads", "images_per_s": alone},
            {"benchmark": "parallel training", "profile": profile,
             "mode": f"{cores} processes x 1 thread", "images_per_s": side_by_side,
             "speedup_vs_one_process": side_by_side / alone}]


def print_table(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()]
        print("  ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    parser.add_argument("--out", type=Path,
                        help="where to write the file (default: results/benchmarks/<device>.json)")
    args = parser.parse_args()
    device = torch.device(args.device)
    images, repeats = (16, 1) if args.quick else (32, 3)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for profile in ("paper", "cpu"):
        for amp in (False, True):  # bf16 autocast: tensor cores on CUDA, AMX where a CPU has it
            rows += training_rows(profile, device, images, amp, repeats)
            rows += inference_rows(profile, device, images, amp, repeats)
    rows.append(evaluation_row(1725 if not args.quick else 200, 224))
    if device.type == "cpu" and reproduce.cores() > 1:
        rows += parallel_rows("cpu", 10 if args.quick else 40)
    print_table(rows)
    name = "cuda" if device.type == "cuda" else "cpu"
    path = args.out or project_root() / "results" / "benchmarks" / f"{name}.json"
    write_json(path, {"rows": rows, "record": run_record(
        experiment="benchmarks", quick=args.quick, images=images, repeats=repeats,
        environment=environment(str(device)), wall_time_s=time.perf_counter() - started,
        peak_rss_gib_parent=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
