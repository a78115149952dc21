"""Backbone features, computed once per image and reused across epochs and variants.

The backbone is frozen and there is no augmentation, so an image's features never change
during training: computing them once makes an epoch cost only the reconstruction model.
Features are kept in memory for the process and on disk under a cache folder, keyed by
everything that changes them (backbone, weights, stages, image size, grid, the image
files themselves, timm's version). A cache file is checked against a SHA-256 written
beside it; a damaged or foreign file is reported with its path and rebuilt, never used.
A lock file beside it lets processes that need the same file compute it once. Beside each
file, ``<key>.json`` keeps the seconds the backbone's forward passes took when it was
computed (what a run reports as its backbone cost, also when its features were cached).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import Tensor, nn
from tqdm.auto import tqdm

from adtr import cost
from adtr.allocator import keep_freed_memory
from adtr.data import IMAGENET_MEAN, IMAGENET_STD, Sample, load_image
from adtr.errors import DataError
from adtr.records import atomic_path, file_sha256, file_stamps, write_json

_MEMORY: dict[str, Tensor] = {}
_SECONDS: dict[str, float | None] = {}  # the backbone's seconds of each cached entry
_MEAN = torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)


def to_unit(images: Tensor) -> Tensor:
    """ImageNet-normalised images (N, 3, H, W) back to [0, 1]."""
    return images * _STD + _MEAN


def from_unit(images: Tensor) -> Tensor:
    """Images (N, 3, H, W) in [0, 1] ImageNet-normalised, as the backbone expects."""
    return (images - _MEAN) / _STD


def default_cache_dir() -> Path:
    """``$ADTR_CACHE_DIR``, else ``~/.cache/adtr``."""
    return Path(os.environ.get("ADTR_CACHE_DIR", Path.home() / ".cache" / "adtr"))


def backbone_precision(device: torch.device) -> str:
    """The backbone's arithmetic: bf16 autocast on CUDA, fp32 on the CPU. Part of the cache
    key: the two give different features."""
    return "bf16" if device.type == "cuda" else "fp32"


def cache_key(extractor_id: dict, samples: Sequence[Sample], precision: str = "fp32") -> str:
    """A hash of the extractor's description, the backbone's precision and each image file
    (path, size, mtime)."""
    files = file_stamps([sample.image for sample in samples])
    payload = json.dumps({"extractor": extractor_id, "files": files, "timm": timm.__version__,
                          **({"precision": precision} if precision != "fp32" else {})},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _read_cache(path: Path) -> Tensor | None:
    """The cached tensor, or None (with a message) when the file is missing or damaged."""
    checksum = path.with_name(path.name + ".sha256")
    if not path.is_file():
        return None
    try:
        if not checksum.is_file() or checksum.read_text().strip() != file_sha256(path):
            raise ValueError("checksum mismatch")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        print(f"feature cache {path} is damaged ({error}); rebuilding it", file=sys.stderr)
        return None


def _write_cache(path: Path, features: Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(features, tmp)
    with atomic_path(path.with_name(path.name + ".sha256")) as tmp:
        tmp.write_text(file_sha256(path))


class _ImageFiles(torch.utils.data.Dataset):
    """Decoded, resized, normalised images of ``samples`` (what ``extract`` feeds the backbone).

    A file that cannot be read comes back as its ``DataError`` instead of being raised in the
    worker, so that the caller raises it with its own message (a worker's exception reaches
    the main process wrapped in a traceback text)."""

    def __init__(self, samples: Sequence[Sample], image_size: int) -> None:
        self.samples, self.image_size = samples, image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Tensor | DataError:
        try:
            return torch.from_numpy(load_image(self.samples[index].image, self.image_size)[0])
        except DataError as error:
            return error


def _stack(items: list[Tensor | DataError]) -> Tensor | DataError:
    """A batch, or the first error among its images."""
    errors = [item for item in items if isinstance(item, DataError)]
    return errors[0] if errors else torch.stack(items)


def loader_workers(images: int, batch_size: int, device: torch.device) -> int:
    """DataLoader processes that decode images while the backbone runs on a GPU: this
    process's share of the cores (``torch.get_num_threads()``, which ``adtr reproduce
    --jobs`` splits), at most 8; none for a single batch (starting workers costs more than
    they save there).

    None on the CPU: there the backbone already runs on every core of the share, and a
    worker decoding beside it slows it down more than it saves (the benchmark's
    *feature extraction* row measures this on the machine at hand)."""
    if device.type == "cpu" or images <= batch_size:
        return 0
    return min(8, torch.get_num_threads())


@torch.inference_mode()
def extract(
    extractor: nn.Module, samples: Sequence[Sample], image_size: int, device: torch.device,
    batch_size: int = 16, progress: bool = True, desc: str = "features",
    workers: int | None = None,
) -> Tensor:
    """Run the frozen extractor over ``samples``: a float32 (N, C, H, W) tensor on the CPU.

    Images are decoded by ``workers`` DataLoader processes (default: ``loader_workers``)
    while the backbone runs; on CUDA batches come in pinned memory and are copied
    asynchronously."""
    keep_freed_memory()
    extractor = extractor.to(device)
    if workers is None:
        workers = loader_workers(len(samples), batch_size, device)
    batches = torch.utils.data.DataLoader(
        _ImageFiles(samples, image_size), batch_size=batch_size, num_workers=workers,
        collate_fn=_stack, pin_memory=device.type == "cuda")
    out = []
    for images in tqdm(batches, desc=desc, disable=not progress, leave=False):
        if isinstance(images, DataError):
            raise images
        images = images.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=backbone_precision(device) == "bf16"):
            features = extractor(images)
        out.append(features.float().cpu())
    return torch.cat(out)


def _cached(key: str, cache_dir: Path | None, extractor: nn.Module,
            compute: Callable[[], Tensor], timings: list[float | None] | None) -> Tensor:
    """The tensor stored under ``key`` in memory or on disk, else ``compute()`` (then stored).
    Appends to ``timings`` the seconds the backbone's forward passes took for it when it
    was computed (None for a file written before the files said how long)."""
    if key not in _MEMORY:
        _MEMORY[key], _SECONDS[key] = _stored(key, cache_dir, extractor, compute)
    if timings is not None:
        timings.append(_SECONDS[key])
    return _MEMORY[key]


def _stored(key: str, cache_dir: Path | None, extractor: nn.Module,
            compute: Callable[[], Tensor]) -> tuple[Tensor, float | None]:
    def timed() -> tuple[Tensor, float]:
        clock = cost.Stopwatch()
        with clock.timing(extractor):
            features = compute()
        return features, round(clock.seconds, 3)

    if cache_dir is None:
        return timed()
    path = Path(cache_dir) / "features" / f"{key}.pt"
    seconds_file = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Processes side by side (``adtr reproduce --jobs 2``) compute each file once: the
    # others wait here, then read it.
    with FileLock(path.with_name(path.name + ".lock")):
        features = _read_cache(path)
        if features is None:
            features, seconds = timed()
            _write_cache(path, features)
            write_json(seconds_file, {"backbone_s": seconds})
            return features, seconds
    try:
        return features, json.loads(seconds_file.read_text())["backbone_s"]
    except (OSError, ValueError, KeyError):
        return features, None


def cached_features(
    extractor: nn.Module, samples: Sequence[Sample], image_size: int, device: torch.device,
    cache_dir: Path | None, progress: bool = True, desc: str = "features",
    timings: list[float | None] | None = None,
) -> Tensor:
    """``extract`` with the memory and disk caches in front of it, keyed by the extractor's
    ``identity`` and the image files (``timings``: see ``_cached``)."""
    key = cache_key(extractor.identity, samples, backbone_precision(device))
    return _cached(key, cache_dir, extractor, lambda: extract(
        extractor, samples, image_size, device, progress=progress, desc=desc), timings)


def normalise_arrays(images: np.ndarray, image_size: int) -> Tensor:
    """uint8 RGB images (N, h, w, 3) -> ImageNet-normalised (N, 3, size, size), bilinear."""
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return from_unit(F.interpolate(batch, size=(image_size, image_size), mode="bilinear",
                                   align_corners=False))


@torch.inference_mode()
def extract_arrays(extractor: nn.Module, images: np.ndarray, image_size: int,
                   device: torch.device, batch_size: int = 64, progress: bool = True,
                   desc: str = "features") -> Tensor:
    """``extract`` for images held in memory: uint8 RGB (N, h, w, 3)."""
    keep_freed_memory()
    extractor = extractor.to(device)
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress,
                      leave=False):
        batch = normalise_arrays(images[start:start + batch_size], image_size).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=backbone_precision(device) == "bf16"):
            out.append(extractor(batch).float().cpu())
    return torch.cat(out)


def array_digest(images: np.ndarray) -> str:
    """SHA-256 of an array's bytes (hex)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def cached_array_features(
    extractor: nn.Module, images: np.ndarray, image_size: int, device: torch.device,
    cache_dir: Path | None, progress: bool = True, desc: str = "features",
    timings: list[float | None] | None = None,
) -> Tensor:
    """``extract_arrays`` with the caches in front, keyed by the images' bytes."""
    precision = backbone_precision(device)
    payload = json.dumps({"extractor": extractor.identity, "images": array_digest(images),
                          "shape": list(images.shape), "timm": timm.__version__,
                          **({"precision": precision} if precision != "fp32" else {})},
                         sort_keys=True)
    key = hashlib.sha256(payload.encode()).hexdigest()[:20]
    return _cached(key, cache_dir, extractor, lambda: extract_arrays(
        extractor, images, image_size, device, progress=progress, desc=desc), timings)


def clear_memory_cache() -> None:
    """Forget the features held in memory (the disk cache stays)."""
    _MEMORY.clear()
    _SECONDS.clear()
