"""A small, deterministic stand-in for MVTec-AD, for working without the real data.

What the images are
    Every image is a crop of one of the real texture *photographs* that ship inside the
    scikit-image wheel (``skimage.data.brick``, ``grass``, ``gravel``; 512x512 grey),
    randomly flipped / rotated, brightness-jittered, resized and given a fixed colour
    tint per category.  Defects are *synthetic*: scratches, holes, stains, foreign
    material and noise-shaped discolourations painted on a normal image, each with an
    exact pixel mask.

What they are not
    They are not MVTec-AD.  Numbers measured on this data tell you whether the code
    works, never how the method compares with published MVTec-AD results.

The folder layout is MVTec-AD's, so the same loader reads both::

    <out>/<category>/train/good/000.png
    <out>/<category>/test/good/000.png
    <out>/<category>/test/<defect_kind>/000.png
    <out>/<category>/ground_truth/<defect_kind>/000_mask.png
    <out>/synth.json          (what was generated, by which version, with which seed)
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from adtr.errors import ConfigError
from adtr.shapes import (
    blob_radius,
    keyed_rng,
    noise_blob,
    perlin_region,
    scratch_region,
    smoothstep,
)

__all__ = [
    "AREA_RANGE",
    "CATEGORIES",
    "DEFECT_KINDS",
    "GENERATOR_VERSION",
    "contact_sheet",
    "describe",
    "example",
    "generate",
]

# Bump whenever the bytes produced for a given seed change.
GENERATOR_VERSION = "1"

# Category -> (tint of the darkest grey, tint of the brightest grey), as RGB in [0, 1].
# A two-colour ramp keeps the photo's texture and gives a plausible material colour.
_TINTS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "brick": ((0.22, 0.08, 0.05), (0.98, 0.70, 0.55)),
    "grass": ((0.05, 0.12, 0.02), (0.72, 0.90, 0.40)),
    "gravel": ((0.16, 0.15, 0.13), (0.93, 0.89, 0.80)),
}
CATEGORIES: tuple[str, ...] = tuple(_TINTS)

# Rotating brick by 90 degrees would turn its rows sideways, which is not "normal".
_ROTATE_90: dict[str, bool] = {"brick": False, "grass": True, "gravel": True}

DEFECT_KINDS: tuple[str, ...] = ("scratch", "hole", "stain", "foreign", "perlin")

# Every defect covers this fraction of the image (rejection sampling enforces it).
AREA_RANGE: tuple[float, float] = (0.003, 0.05)

# Each mask pixel differs from the normal image by at least this many grey levels in
# some channel, so the mask is exactly the set of changed pixels.
_MIN_DELTA = 12

_MIN_IMAGE_SIZE = 32

Rgb = NDArray[np.uint8]
Mask = NDArray[np.bool_]
FloatImage = NDArray[np.float32]
# A painter's output: the image painted everywhere, and the region to take it from.
Painted = tuple[FloatImage, Mask]


def describe() -> str:
    """Return a plain-language description of the generated data (the module docstring)."""
    return (__doc__ or "").strip()


# ------------------------------------------------------------------------ normal images


@cache
def _texture(category: str) -> NDArray[np.uint8]:
    """The 512x512 grey texture photo behind a category (loaded from the skimage wheel)."""
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, category)())


def _tint(grey: FloatImage, category: str) -> FloatImage:
    """Map grey values in [0, 1] onto the category's dark-to-bright colour ramp."""
    dark, bright = (np.asarray(c, dtype=np.float32) for c in _TINTS[category])
    return dark + grey[..., None] * (bright - dark)


def _normal_float(category: str, rng: np.random.Generator, size: int) -> FloatImage:
    """A defect-free RGB image in [0, 1]: a random crop of the category's photo."""
    source = _texture(category)
    side = int(rng.uniform(0.45, 0.6) * source.shape[0])
    y, x = rng.integers(0, source.shape[0] - side + 1, size=2)
    crop = source[y : y + side, x : x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1, :]
    if _ROTATE_90[category] and rng.random() < 0.5:
        crop = np.rot90(crop)
    resized = Image.fromarray(np.ascontiguousarray(crop)).resize(
        (size, size), Image.Resampling.LANCZOS
    )
    grey = np.asarray(resized, dtype=np.float32) / 255.0
    grey = grey * rng.uniform(0.93, 1.07) + rng.uniform(-0.03, 0.03)
    return np.clip(_tint(np.clip(grey, 0.0, 1.0), category), 0.0, 1.0)


def _to_uint8(image: FloatImage) -> Rgb:
    """Round a [0, 1] float image to uint8."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------- defect regions


def _paint_scratch(image: FloatImage, rng: np.random.Generator, category: str) -> Painted:
    """Bright (exposed material) or dark (groove) line."""
    mask = scratch_region(rng, image.shape[0])
    target = np.float32(rng.uniform(0.85, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.1))
    alpha = np.float32(rng.uniform(0.55, 0.85))
    return image * (1 - alpha) + target * alpha, mask


def _paint_hole(image: FloatImage, rng: np.random.Generator, category: str) -> Painted:
    """A dark pit: the wall opposite the light is lit, the near wall is in shadow."""
    rho, phi = blob_radius(rng, image.shape[0], roughness=0.15)
    mask = rho <= 1.0
    light = rng.uniform(0, 2 * np.pi)
    # Light arrives from angle `light`, so inside a pit the wall on the opposite side
    # faces it; shading only the outer rim band keeps the centre uniformly deep.
    facing = np.cos(phi - light - np.pi)
    rim = smoothstep((rho - 0.6) / 0.4)
    depth = 0.12 + 0.35 * smoothstep(rho)
    shade = depth * (1 - rim) + rim * (0.55 + 0.6 * facing)
    grey = image.mean(axis=-1, keepdims=True)
    inside = (0.6 * image + 0.4 * grey) * shade[..., None]
    return np.clip(inside, 0.0, 1.0), mask


_STAIN_GAINS: tuple[tuple[float, float, float], ...] = (
    (0.55, 0.38, 0.22),  # coffee / dirt
    (1.15, 0.62, 0.32),  # rust
    (0.42, 0.44, 0.55),  # oil
    (1.05, 0.95, 0.35),  # yellowing
)


def _paint_stain(image: FloatImage, rng: np.random.Generator, category: str) -> Painted:
    """A smooth blob with a colour cast, darker at its rim like a dried liquid."""
    mask = noise_blob(rng, image.shape[0], noise_weight=0.35)
    inner = ndimage.distance_transform_edt(mask).astype(np.float32)
    rim = np.exp(-inner / max(1.5, 0.01 * image.shape[0]))
    alpha = rng.uniform(0.45, 0.7) + 0.3 * rim
    gain = np.asarray(_STAIN_GAINS[rng.integers(len(_STAIN_GAINS))], dtype=np.float32)
    stained = image * ((1 - alpha)[..., None] + alpha[..., None] * gain)
    return np.clip(stained, 0.0, 1.0), mask


def _paint_foreign(image: FloatImage, rng: np.random.Generator, category: str) -> Painted:
    """A piece of another material (another category's texture) stuck onto the surface."""
    size = image.shape[0]
    rho, _ = blob_radius(rng, size, roughness=0.45)
    mask = rho <= 1.0
    others = [c for c in CATEGORIES if c != category]
    other = others[rng.integers(len(others))]
    return _normal_float(other, rng, size), mask


def _paint_perlin(image: FloatImage, rng: np.random.Generator, category: str) -> Painted:
    """An irregular noise-shaped patch that is darker, brighter or off-colour."""
    mask = perlin_region(rng, image.shape[0])
    mode = rng.integers(3)
    if mode == 0:
        changed = image * rng.uniform(0.45, 0.7)
    elif mode == 1:
        changed = image + (1 - image) * rng.uniform(0.35, 0.6)
    else:
        # Rotating the channels shifts hue while keeping the texture.
        changed = 0.35 * image + 0.65 * np.roll(image, int(rng.integers(1, 3)), axis=-1)
    return changed, mask


# Painters share one signature (only "foreign" needs the category) so they can be looked up.
_PAINTERS: dict[str, Callable[[FloatImage, np.random.Generator, str], Painted]] = {
    "scratch": _paint_scratch,
    "hole": _paint_hole,
    "stain": _paint_stain,
    "foreign": _paint_foreign,
    "perlin": _paint_perlin,
}


def _enforce_min_change(normal: Rgb, painted: Rgb, mask: Mask) -> Rgb:
    """Make every mask pixel differ from ``normal`` by at least ``_MIN_DELTA`` grey levels.

    Pixels where the painted colour happens to match the background would otherwise
    be in the mask but unchanged; they get a brightness step in the defect's direction
    (or away from the clipped end of the range).
    """
    diff = painted.astype(np.int16) - normal.astype(np.int16)
    weak = mask & (np.abs(diff).max(axis=-1) < _MIN_DELTA)
    if not weak.any():
        return painted
    base = normal[weak].astype(np.int16)
    direction = np.where(diff[weak].sum(axis=-1) >= 0, 1, -1)[:, None]
    # Step the way that stays inside [0, 255] for all channels.
    fits_up = base.max(axis=-1, keepdims=True) + _MIN_DELTA <= 255
    fits_down = base.min(axis=-1, keepdims=True) - _MIN_DELTA >= 0
    direction = np.where(direction > 0, np.where(fits_up, 1, -1), np.where(fits_down, -1, 1))
    out = painted.copy()
    out[weak] = np.clip(base + direction * _MIN_DELTA, 0, 255).astype(np.uint8)
    return out


def _add_defect(
    normal: FloatImage, kind: str, rng: np.random.Generator, category: str
) -> tuple[Rgb, Rgb, Mask]:
    """Paint one defect of ``kind``; return (normal uint8, defective uint8, mask).

    The painted colours are used only inside the binary region, so nothing outside the
    mask changes; regions outside ``AREA_RANGE`` are redrawn.
    """
    normal_u8 = _to_uint8(normal)
    low, high = (int(np.ceil(f * normal.shape[0] ** 2)) for f in AREA_RANGE)
    for _ in range(1000):
        painted, mask = _PAINTERS[kind](normal, rng, category)
        if low <= mask.sum() <= high:
            break
    else:  # pragma: no cover - the samplers land in range within a few tries
        raise RuntimeError(f"could not draw a {kind} defect within {AREA_RANGE}")
    defective = np.where(mask[..., None], _to_uint8(painted), normal_u8)
    return normal_u8, _enforce_min_change(normal_u8, defective, mask), mask


# --------------------------------------------------------------------------- public API


def example(
    category: str, kind: str | None, *, seed: int = 0, index: int = 0, image_size: int = 256
) -> tuple[Rgb, Rgb, Mask]:
    """The images that ``generate`` writes as ``test/<kind>/<index>``.

    Returns (normal image, defective image, boolean mask).  With ``kind=None`` it is
    ``test/good/<index>``: the defective image is the normal one and the mask is empty.
    """
    _check_choice("category", category, CATEGORIES)
    if kind is not None:
        _check_choice("kind", kind, DEFECT_KINDS)
    _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
    _check_int("seed", seed, 0)
    _check_int("index", index, 0)
    rng = keyed_rng(seed, category, "test", kind or "good", index)
    normal = _normal_float(category, rng, image_size)
    if kind is None:
        image = _to_uint8(normal)
        return image, image.copy(), np.zeros(image.shape[:2], dtype=bool)
    return _add_defect(normal, kind, rng, category)


def _train_image(category: str, seed: int, index: int, image_size: int) -> Rgb:
    """The image that ``generate`` writes as ``train/good/<index>``."""
    return _to_uint8(
        _normal_float(category, keyed_rng(seed, category, "train", "good", index), image_size)
    )


def generate(
    out: str | Path,
    *,
    seed: int = 0,
    categories: Sequence[str] | None = None,
    n_train: int = 60,
    n_test_good: int = 15,
    n_test_per_defect: int = 6,
    image_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a synthetic MVTec-AD-style data set under ``out`` and return its summary.

    The same arguments always give byte-identical files; each image depends only on
    (seed, category, split, kind, index), so asking for fewer categories or in another
    order does not change the others.  Files in ``out`` that this generator did not
    write are left alone; its own files from an earlier run are overwritten, and ones
    that the new counts no longer include are removed.  See ``describe()``.
    """
    cats = _check_categories(categories)
    _check_int("seed", seed, 0)
    for name, value in (
        ("n_train", n_train),
        ("n_test_good", n_test_good),
        ("n_test_per_defect", n_test_per_defect),
    ):
        _check_int(name, value, 1)
    _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"out: {root} exists and is not a folder")

    counts = {"train": n_train, "good": n_test_good, "defect": n_test_per_defect}
    previous = _read_manifest(root)
    total = len(cats) * (n_train + n_test_good + len(DEFECT_KINDS) * n_test_per_defect)
    with tqdm(total=total, desc="synth", unit="img", disable=not progress) as bar:
        for category in cats:
            written = _write_category(root, category, seed, image_size, counts, bar)
            old = previous.get("categories", {}).get(category)
            if old is not None:
                _remove_stale(root, category, old, written)

    summary = _summary(seed, image_size, cats, counts)
    if _same_recipe(previous, summary):
        # Keep categories generated by an earlier, compatible call into the same folder.
        summary["categories"] = {**previous["categories"], **summary["categories"]}
    _atomic_write(root / "synth.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def contact_sheet(
    path: str | Path | None = None, *, seed: int = 0, image_size: int = 128, index: int = 0
) -> Rgb:
    """One row per category: a normal image, then each defect kind and its mask.

    Returns the sheet as an RGB array and saves it as PNG when ``path`` is given.
    """
    gap = 4
    columns = 1 + 2 * len(DEFECT_KINDS)
    step = image_size + gap
    sheet = np.full((len(CATEGORIES) * step, columns * step, 3), 255, dtype=np.uint8)
    for row, category in enumerate(CATEGORIES):
        tiles = [example(category, None, seed=seed, index=index, image_size=image_size)[0]]
        for kind in DEFECT_KINDS:
            _, defective, mask = example(
                category, kind, seed=seed, index=index, image_size=image_size
            )
            tiles += [defective, np.repeat(mask[..., None] * np.uint8(255), 3, axis=-1)]
        for col, tile in enumerate(tiles):
            sheet[row * step : row * step + image_size, col * step : col * step + image_size] = tile
    if path is not None:
        _atomic_write(Path(path), _png_bytes(sheet))
    return sheet


# ----------------------------------------------------------------------------- writing


def _names(n: int) -> list[str]:
    """MVTec-style file stems: 000, 001, ... (wider only past 999 images)."""
    width = max(3, len(str(n - 1)))
    return [f"{i:0{width}d}" for i in range(n)]


def _category_files(category: str, counts: dict[str, int]) -> list[str]:
    """Relative paths of every file generated for one category with these counts."""
    files = [f"{category}/train/good/{s}.png" for s in _names(counts["train"])]
    files += [f"{category}/test/good/{s}.png" for s in _names(counts["good"])]
    for kind in DEFECT_KINDS:
        for stem in _names(counts["defect"]):
            files += [
                f"{category}/test/{kind}/{stem}.png",
                f"{category}/ground_truth/{kind}/{stem}_mask.png",
            ]
    return files


def _write_category(
    root: Path, category: str, seed: int, size: int, counts: dict[str, int], bar: tqdm
) -> set[str]:
    """Write every image and mask of one category; return their relative paths."""
    for index, stem in enumerate(_names(counts["train"])):
        _atomic_write(
            root / category / "train" / "good" / f"{stem}.png",
            _png_bytes(_train_image(category, seed, index, size)),
        )
        bar.update()
    for index, stem in enumerate(_names(counts["good"])):
        image = example(category, None, seed=seed, index=index, image_size=size)[1]
        _atomic_write(root / category / "test" / "good" / f"{stem}.png", _png_bytes(image))
        bar.update()
    for kind in DEFECT_KINDS:
        for index, stem in enumerate(_names(counts["defect"])):
            _, image, mask = example(category, kind, seed=seed, index=index, image_size=size)
            _atomic_write(root / category / "test" / kind / f"{stem}.png", _png_bytes(image))
            mask_u8 = mask.astype(np.uint8) * np.uint8(255)
            _atomic_write(
                root / category / "ground_truth" / kind / f"{stem}_mask.png", _png_bytes(mask_u8)
            )
            bar.update()
    return set(_category_files(category, counts))


def _png_bytes(array: NDArray[np.uint8]) -> bytes:
    """Encode as PNG; PIL writes no timestamp, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_manifest(root: Path) -> dict[str, Any]:
    """The previous ``synth.json`` if this generator wrote it, else an empty dict."""
    try:
        manifest = json.loads((root / "synth.json").read_text())
    except (OSError, ValueError):
        return {}
    ours = isinstance(manifest, dict) and manifest.get("generator") == "adtr.synth"
    return manifest if ours and isinstance(manifest.get("categories"), dict) else {}


def _remove_stale(root: Path, category: str, old: Any, written: set[str]) -> None:
    """Delete files an earlier run wrote for ``category`` that this run did not rewrite.

    Only paths derivable from the earlier manifest's counts are touched, so files
    someone else put in the folder survive.
    """
    try:
        counts = {
            "train": int(old["train"]),
            "good": int(old["test"]["good"]),
            "defect": int(old["test"][DEFECT_KINDS[0]]),
        }
    except (KeyError, TypeError, ValueError):
        return
    for rel in set(_category_files(category, counts)) - written:
        (root / rel).unlink(missing_ok=True)


def _summary(seed: int, size: int, cats: list[str], counts: dict[str, int]) -> dict[str, Any]:
    """What ``generate`` returns and stores as ``synth.json``."""
    per_category = {
        c: {
            "train": counts["train"],
            "test": {"good": counts["good"], **{k: counts["defect"] for k in DEFECT_KINDS}},
            "texture": f"skimage.data.{c}",
        }
        for c in cats
    }
    return {
        "generator": "adtr.synth",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "image_size": size,
        "defect_kinds": list(DEFECT_KINDS),
        "area_range": list(AREA_RANGE),
        "categories": per_category,
        "description": describe(),
    }


def _same_recipe(previous: dict[str, Any], summary: dict[str, Any]) -> bool:
    """Whether an earlier manifest was made with the same version, seed and size."""
    keys = ("version", "seed", "image_size", "defect_kinds")
    return bool(previous) and all(previous.get(k) == summary[k] for k in keys)


# -------------------------------------------------------------------------- validation


def _check_int(name: str, value: object, minimum: int) -> None:
    """Raise ConfigError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name} {value!r} is unknown; allowed: {', '.join(allowed)}")


def _check_categories(categories: Sequence[str] | str | None) -> list[str]:
    """Validate the requested categories; None means all, duplicates are dropped."""
    if categories is None:
        return list(CATEGORIES)
    requested = [categories] if isinstance(categories, str) else list(categories)
    if not requested:
        raise ConfigError(f"categories is empty; allowed: {', '.join(CATEGORIES)}")
    for category in requested:
        _check_choice("categories", category, CATEGORIES)
    return list(dict.fromkeys(requested))
