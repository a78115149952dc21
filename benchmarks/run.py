"""Benchmarks: training with and without the feature cache, inference stages, evaluation.

    python benchmarks/run.py [--quick] [--device cpu|cuda] [--precisions fp32 bf16 fp16]
                             [--compile] [--out FILE]

Prints a table and writes ``results/benchmarks/<device>.json`` with the run record. All
rows of one run are measured in the same run, so their ratios hold on a noisy machine.
Timing uses random images and random-initialised backbones: speed does not depend on the
weights, and no result here is an accuracy.

Rows: training images/s with the feature cache vs the backbone in the loop, for each
precision (fp32; bf16 autocast where the device has bf16 matrix units: CUDA, CPUs with AMX
or AVX512-BF16; fp16 autocast with a gradient scaler on CUDA), with the bound that this
machine's matrix-multiply speed puts on their ratio; ``torch.compile`` against eager
(CUDA, or ``--compile``); feature extraction from MVTec-sized PNG files with and without
DataLoader workers; the backbone with glibc's malloc as it is vs keeping freed memory
(``adtr.allocator``); inference stage shares; evaluation time and memory; and on the CPU
the training throughput of processes side by side (what ``adtr reproduce --jobs N``
does) vs one process using every core.

Measurements that need a fresh process run as child programs of their own, started with
``python -m`` from the project root: ``benchmarks/evaluation_child.py`` (the metrics),
``benchmarks/allocator_child.py`` (the backbone under each malloc setting) and
``benchmarks/parallel_child.py`` (one training process of the side-by-side rows). Every
training row makes its steps with ``adtr.train.training_step``, the step training makes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata
from torch.utils.flop_counter import FlopCounterMode

from adtr import profiles, reproduce
from adtr.allocator import keep_freed_memory
from adtr.backbones import FeatureExtractor
from adtr.data import Sample
from adtr.features import extract, loader_workers
from adtr.model import ADTR, anomaly_map, reconstruction_loss, upsample_and_score
from adtr.records import environment, project_root, run_record, write_json
from adtr.train import make_optimizer, training_step

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

#: The folder holding ``benchmarks/``: the child programs run there as ``python -m
#: benchmarks.<name>``, whether this script runs as a file or as ``-m benchmarks.run``.
ROOT = Path(__file__).resolve().parent.parent


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


def _setup(profile: str, device: torch.device) -> tuple[profiles.RunConfig, FeatureExtractor,
                                                       ADTR]:
    config = profiles.resolve(profile)
    extractor = FeatureExtractor(config.backbone, config.stages, config.image_size,
                                 config.feature_stride, weights="random").to(device)
    model = ADTR(extractor.channels, extractor.grid, config).to(device)
    return config, extractor, model


def _autocast(device: torch.device, precision: str) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=DTYPES[precision], enabled=precision != "fp32")


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AMX or AVX512-BF16); without,
    oneDNN emulates them and bf16 is far slower than fp32."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def default_precisions(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["fp32", "bf16", "fp16"]
    return ["fp32", "bf16"] if cpu_has_bf16_units() else ["fp32"]


def _training_step(body: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   config: profiles.RunConfig, device: torch.device, precision: str = "fp32"
                   ) -> Callable[[torch.Tensor], float]:
    """One training step of ``body`` (the model, or its compiled form) on a feature batch:
    ``adtr.train.training_step``, the step every run makes (autocast, gradient clipping, a
    gradient scaler for fp16, the loss read back as training does)."""
    autocast = None if precision == "fp32" else DTYPES[precision]
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def step(features: torch.Tensor) -> float:
        return training_step(body, optimizer,
                             lambda: reconstruction_loss(features, body(features).float()),
                             config.grad_clip, device, autocast, scaler)

    return step


def _matmul_rate(device: torch.device, precision: str) -> tuple[float, Any]:
    """GFLOP per call of a 2048^3 matrix product at ``precision``, and the call."""
    a, b = (torch.randn(2048, 2048, device=device, dtype=DTYPES[precision]) for _ in range(2))
    return 2 * 2048**3 / 1e9, lambda: a @ b


def _gflop(fn) -> float:
    """Matrix-multiply and convolution GFLOP of one call (torch's FLOP counter)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def training_rows(profile: str, device: torch.device, images: int, precision: str,
                  repeats: int) -> list[dict[str, Any]]:
    """Images/s of one epoch: features from the cache vs the backbone in the loop.

    Timed in the same turns: the backbone alone and a large matrix product, which give the
    bound a perfect implementation could reach here: the step's matrix-multiply FLOPs at
    this device's matrix-multiply speed (``step_s_at_matmul_peak``) against the measured
    backbone time."""
    config, extractor, model = _setup(profile, device)
    optimizer = make_optimizer(model, config.lr, config)  # as adtr's training
    step = _training_step(model, optimizer, config, device, precision)
    batch = config.batch_size
    pixels = torch.randn(images, 3, config.image_size, config.image_size, device=device)
    with torch.inference_mode():
        cached = torch.cat([extractor(pixels[i:i + batch]) for i in range(0, images, batch)])
    cached = cached.clone()

    def backbone(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), _autocast(device, precision):
            return extractor(images).float()

    def epoch_cached() -> None:
        for i in range(0, images, batch):
            step(cached[i:i + batch])

    def epoch_backbone() -> None:
        for i in range(0, images, batch):
            step(backbone(pixels[i:i + batch]))

    def backbone_alone() -> None:
        for i in range(0, images, batch):
            backbone(pixels[i:i + batch])

    matmul_gflop, matmul = _matmul_rate(device, precision)
    step_gflop = _gflop(lambda: step(cached[:batch]))
    # In turns, and the ratio as the median of per-turn ratios: separate medians drift apart
    # on a shared machine.
    cache_s, backbone_s, alone_s, matmul_s = _timed_turns(
        epoch_cached, epoch_backbone, backbone_alone, matmul, device=device, repeats=repeats)
    batches = -(-images // batch)
    step_s, backbone_batch_s = (statistics.median(t) / batches for t in (cache_s, alone_s))
    matmul_rate = matmul_gflop / statistics.median(matmul_s)
    peak_step_s = step_gflop / matmul_rate
    return [{"benchmark": "training", "profile": profile, "mode": "feature cache",
             "precision": precision, "images_per_s": images / statistics.median(cache_s),
             "speedup_vs_backbone_in_the_loop": statistics.median(
                 [b / c for c, b in zip(cache_s, backbone_s, strict=True)]),
             "step_gflop": step_gflop, "step_gflop_per_s": step_gflop / step_s,
             "matmul_gflop_per_s": matmul_rate, "step_s_at_matmul_peak": peak_step_s,
             "backbone_s_per_batch": backbone_batch_s,
             "speedup_bound": (backbone_batch_s + peak_step_s) / peak_step_s},
            {"benchmark": "training", "profile": profile, "mode": "backbone in the loop",
             "precision": precision, "images_per_s": images / statistics.median(backbone_s)}]


def compile_rows(profile: str, device: torch.device, images: int, repeats: int
                 ) -> list[dict[str, Any]]:
    """Training images/s with the feature cache, ``torch.compile`` vs eager (fp32)."""
    config, extractor, model = _setup(profile, device)
    compiled = torch.compile(model)
    optimizer = make_optimizer(model, config.lr, config)  # as adtr's training
    batch = config.batch_size
    with torch.inference_mode():
        features = extractor(torch.randn(batch, 3, config.image_size, config.image_size,
                                         device=device))
    features = features.clone()

    def epoch(body: torch.nn.Module) -> Any:
        step = _training_step(body, optimizer, config, device)

        def run() -> None:
            for _ in range(-(-images // batch)):
                step(features)
        return run

    started = time.perf_counter()
    epoch(compiled)()  # compiles
    _sync(device)
    compile_s = time.perf_counter() - started
    eager_s, compiled_s = _timed_turns(epoch(model), epoch(compiled), device=device,
                                       repeats=repeats)
    return [{"benchmark": "torch.compile", "profile": profile, "mode": "feature cache",
             "precision": "fp32", "images_per_s": images / statistics.median(compiled_s),
             "eager_images_per_s": images / statistics.median(eager_s),
             "speedup_vs_eager": statistics.median(
                 [e / c for e, c in zip(eager_s, compiled_s, strict=True)]),
             "first_epoch_s": compile_s}]


def _png_files(folder: Path, count: int, size: int) -> list[Sample]:
    """``count`` different RGB photographs of ``size`` px as PNG files (MVTec-AD's images are
    700-1024 px PNGs): scikit-image's coffee picture, resized and shifted in colour."""
    base = Image.fromarray(skdata.coffee()).resize((size, size), Image.BILINEAR)
    samples = []
    for i in range(count):
        path = folder / f"{i:03d}.png"
        shifted = (np.asarray(base, dtype=np.int16) + i * 7) % 256
        Image.fromarray(shifted.astype(np.uint8)).save(path)
        samples.append(Sample(image=path, label=0, defect="good", mask=None))
    return samples


def extraction_rows(profile: str, device: torch.device, images: int, repeats: int
                    ) -> list[dict[str, Any]]:
    """Images/s of feature extraction from 1024-px PNG files: decoding in the main process
    vs in DataLoader workers (``loader_workers``'s number, at least one: on the CPU, where
    ``adtr`` uses none, the row shows what one would do)."""
    config, extractor, _ = _setup(profile, device)
    used = loader_workers(images, config.batch_size, device)
    workers = max(1, used)
    with tempfile.TemporaryDirectory() as folder:
        samples = _png_files(Path(folder), images, 1024)

        def run(count: int) -> Any:
            return lambda: extract(extractor, samples, config.image_size, device,
                                   config.batch_size, progress=False, workers=count)

        serial_s, workers_s = _timed_turns(run(0), run(workers), device=device,
                                           repeats=repeats)
    return [{"benchmark": "feature extraction", "profile": profile,
             "mode": "1024-px PNG files", "workers": workers, "adtr_uses_workers": used,
             "images_per_s": images / statistics.median(workers_s),
             "serial_images_per_s": images / statistics.median(serial_s),
             "speedup_vs_serial": statistics.median(
                 [s / w for s, w in zip(serial_s, workers_s, strict=True)])}]


def inference_rows(profile: str, device: torch.device, images: int, precision: str,
                   repeats: int) -> list[dict[str, Any]]:
    """Images/s of the whole pipeline and each stage's share of its time, the stages timed
    in turns; with the bound of a reconstruction at this device's matrix-multiply speed."""
    config, extractor, model = _setup(profile, device)
    model.eval()
    batch = 16
    pixels = torch.randn(batch, 3, config.image_size, config.image_size, device=device)
    pool = max(1, round(config.score_pool * config.image_size / 224))

    def staged(fn) -> Any:
        def run() -> Any:
            with torch.inference_mode(), _autocast(device, precision):
                return fn()
        return run

    backbone = staged(lambda: extractor(pixels).float())
    features = backbone()
    reconstruct = staged(lambda: model(features).float())
    reconstruction = reconstruct()
    score = staged(lambda: upsample_and_score(anomaly_map(features, reconstruction),
                                              config.image_size, pool))

    def pipeline() -> Any:
        new_features = extractor(pixels).float()
        maps = anomaly_map(new_features, model(new_features).float())
        return upsample_and_score(maps, config.image_size, pool)

    whole = staged(pipeline)
    matmul_gflop, matmul = _matmul_rate(device, precision)
    reconstruction_gflop = _gflop(lambda: model(features))  # (the counter needs autograd on)
    times = _timed_turns(backbone, reconstruct, score, whole, matmul, device=device,
                         repeats=repeats)
    backbone_s, reconstruct_s, score_s, whole_s, matmul_s = map(statistics.median, times)
    peak_s = reconstruction_gflop / (matmul_gflop / matmul_s)
    row = {"benchmark": "inference", "profile": profile, "mode": "whole pipeline",
           "precision": precision, "images_per_s": batch / whole_s,
           "reconstruction_plus_scoring_vs_backbone": statistics.median(
               [(r + s) / b for b, r, s in zip(*times[:3], strict=True)]),
           "reconstruction_gflop": reconstruction_gflop,
           "reconstruction_s_at_matmul_peak": peak_s,
           "bound_vs_backbone": (peak_s + score_s) / backbone_s}
    stages = {"backbone": backbone_s, "reconstruction": reconstruct_s, "map + score": score_s}
    row.update({f"share_{k}": v / sum(stages.values()) for k, v in stages.items()})
    return [row]


def _child(module: str, *args: Any) -> list[str]:
    """The command line of the child program ``benchmarks/<module>.py`` (run from ``ROOT``)."""
    return [sys.executable, "-m", f"benchmarks.{module}", *map(str, args)]


def evaluation_row(maps: int, size: int) -> dict[str, Any]:
    """Wall time and peak memory of the three metrics, in a fresh process."""
    done = subprocess.run(_child("evaluation_child", maps, size), cwd=ROOT,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    return {"benchmark": "evaluation", "mode": f"{maps} maps of {size}x{size}",
            "seconds_total": sum(result["seconds"].values()),
            **{f"seconds_{k}": v for k, v in result["seconds"].items()},
            "peak_rss_gib": result["peak_rss_gib"]}


def _train_side_by_side(profile: str, processes: int, threads: int, steps: int) -> float:
    """Images/s of ``processes`` training processes started together: all their images over
    the time from the first start to the last end."""
    children = [subprocess.Popen(_child("parallel_child", profile, threads, steps), cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(processes)]
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


def allocator_rows(profile: str, batches: int, turns: int) -> list[dict[str, Any]]:
    """Backbone seconds per batch of 16 and page faults, with glibc's malloc as it is vs
    keeping freed memory (what ``adtr`` does, ``adtr.allocator``): fresh processes, the two
    kinds in turns."""
    def child(system_malloc: str) -> dict[str, Any]:
        done = subprocess.run(_child("allocator_child", profile, batches), cwd=ROOT,
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "ADTR_SYSTEM_MALLOC": system_malloc})
        return json.loads(done.stdout)

    system, kept = zip(*((child("1"), child("0")) for _ in range(turns)), strict=True)
    if not all(k["kept"] for k in kept):
        return []  # not glibc: nothing to compare
    rows = [{"benchmark": "allocator", "profile": profile, "mode": mode,
             "backbone_s_per_batch": statistics.median(r["seconds"] for r in runs),
             "page_faults_per_batch": statistics.median(r["faults"] for r in runs)}
            for mode, runs in (("glibc malloc as it is", system),
                               ("freed memory kept", kept))]
    rows[1]["speedup_vs_glibc_as_it_is"] = statistics.median(
        s["seconds"] / k["seconds"] for s, k in zip(system, kept, strict=True))
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()]
        print("  ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    parser.add_argument("--precisions", nargs="+", choices=sorted(DTYPES),
                        help="default: fp32, bf16 and fp16 on CUDA; fp32 on the CPU, and bf16 "
                             "where the CPU has bf16 matrix units")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile rows on the CPU too (always on CUDA)")
    parser.add_argument("--out", type=Path,
                        help="where to write the file (default: results/benchmarks/<device>.json)")
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = args.precisions or default_precisions(device)
    images, repeats = (16, 1) if args.quick else (32, 3)
    keep_freed_memory()  # as adtr's extraction and training do
    name = "cuda" if device.type == "cuda" else "cpu"
    path = args.out or project_root() / "results" / "benchmarks" / f"{name}.json"
    partial = path.with_name(path.name + ".partial")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []

    def measure(label: str, rows_of: Callable[..., list[dict[str, Any]]], *values: Any) -> None:
        """Add the rows ``rows_of(*values)`` measures; say on stderr how long they took and
        keep the rows so far in ``<out>.partial``: a run cut short by a time limit shows how
        far it got and what it measured."""
        began = time.perf_counter()
        rows.extend(rows_of(*values))
        print(f"{label}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
        write_json(partial, {"rows": rows, "partial": True})

    for profile in ("paper", "cpu"):
        for precision in precisions:
            measure(f"training {profile} {precision}", training_rows, profile, device, images,
                    precision, repeats)
            measure(f"inference {profile} {precision}", inference_rows, profile, device,
                    images, precision, repeats)
        if device.type == "cuda" or args.compile:
            try:
                measure(f"torch.compile {profile}", compile_rows, profile, device, images,
                        repeats)
            except Exception as error:  # e.g. no C compiler for inductor: keep the other rows
                message = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
                print(f"torch.compile rows of {profile} failed: {message}", file=sys.stderr)
                rows.append({"benchmark": "torch.compile", "profile": profile,
                             "error": message})
    measure("feature extraction", extraction_rows, "paper", device, 32 if args.quick else 64,
            repeats)
    for profile in ("paper", "cpu"):
        measure(f"allocator {profile}", allocator_rows, profile, 2 if args.quick else 3,
                1 if args.quick else 2)
    measure("evaluation", lambda: [evaluation_row(1725 if not args.quick else 200, 224)])
    if device.type == "cpu" and reproduce.cores() > 1:
        measure("parallel training", parallel_rows, "cpu", 10 if args.quick else 40)
    print_table(rows)
    write_json(path, {"rows": rows, "record": run_record(
        experiment="benchmarks", quick=args.quick, images=images, repeats=repeats,
        precisions=precisions, cpu_has_bf16_units=cpu_has_bf16_units(),
        environment=environment(str(device)), wall_time_s=time.perf_counter() - started,
        peak_rss_gib_parent=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)})
    partial.unlink(missing_ok=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
