"""A small, deterministic stand-in for MVTec-AD, for working without the real data.

What the images are
    Textures (``brick``, ``grass``, ``gravel``): crops of the real texture *photographs*
    that ship inside the scikit-image wheel (``skimage.data.brick``, ``grass``,
    ``gravel``; 512x512 grey), randomly flipped / rotated, brightness-jittered, resized
    and given a fixed colour tint per category.
    Objects (``coins``, ``logo``, ``horse``; ``adtr.objects`` says more), where position
    and layout matter: a tray of 16 real coins cut out of the ``skimage.data.coins``
    photograph; a round sticker printed with the scikit-image logo (``skimage.data.logo``,
    a graphic) on a brown board; a sheet-metal part in the shape of the
    ``skimage.data.horse`` silhouette with a grain from the ``gravel`` photograph.  The
    surfaces, shadows, tints and light are synthetic; objects shift and turn a little.
    Defects are *synthetic*, each with an exact pixel mask (the pixels it changed):
    local ones (scratches, holes, stains, foreign material, noise-shaped
    discolourations) and, on the objects, structural / logical ones: a coin missing, one
    too many or of the wrong metal; the sticker on a quarter or half turn, an ink of the
    wrong colour, the green print out of register, a piece torn off; a leg of the metal
    part broken off or bent, or the part lying upside down.

What they are not
    They are not MVTec-AD.  Numbers measured on this data tell you whether the code
    works, never how the method compares with published MVTec-AD results.

The folder layout is MVTec-AD's, so the same loader reads both::

    <out>/<category>/train/good/000.png
    <out>/<category>/test/good/000.png
    <out>/<category>/test/<defect_kind>/000.png
    <out>/<category>/ground_truth/<defect_kind>/000_mask.png
    <out>/<category>/twins/<defect_kind>/000.png      (not in MVTec-AD, see below)
    <out>/synth.json          (what was generated, by which version, with which seed)

``twins/`` holds each defective test image's defect-free twin (the same image before its
defect was drawn in), so that a model's reconstruction of the two can be compared
(``adtr.data.twin_samples``, ``adtr.scores.twin_pass_through``); MVTec-AD readers ignore it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from adtr import objects
from adtr.errors import ConfigError
from adtr.shapes import (
    blob_radius,
    changed_region,
    enforce_min_change,
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
    "OBJECT_CATEGORIES",
    "TEXTURE_CATEGORIES",
    "area_range",
    "contact_sheet",
    "defect_kinds",
    "describe",
    "example",
    "generate",
]

# Bump whenever the bytes or the files produced for a given seed change
# ("3": the twins/ folder of defect-free twins was added; no image changed).
GENERATOR_VERSION = "3"

# Category -> (tint of the darkest grey, tint of the brightest grey), as RGB in [0, 1].
# A two-colour ramp keeps the photo's texture and gives a plausible material colour.
_TINTS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "brick": ((0.22, 0.08, 0.05), (0.98, 0.70, 0.55)),
    "grass": ((0.05, 0.12, 0.02), (0.72, 0.90, 0.40)),
    "gravel": ((0.16, 0.15, 0.13), (0.93, 0.89, 0.80)),
}
TEXTURE_CATEGORIES: tuple[str, ...] = tuple(_TINTS)
OBJECT_CATEGORIES: tuple[str, ...] = tuple(objects.OBJECT_KINDS)
CATEGORIES: tuple[str, ...] = TEXTURE_CATEGORIES + OBJECT_CATEGORIES

# Rotating brick by 90 degrees would turn its rows sideways, which is not "normal".
_ROTATE_90: dict[str, bool] = {"brick": False, "grass": True, "gravel": True}

_TEXTURE_KINDS = ("scratch", "hole", "stain", "foreign", "perlin")
# Category -> its defect kinds (test/<kind>/ folders), in a fixed order.
DEFECT_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {**{c: _TEXTURE_KINDS for c in TEXTURE_CATEGORIES}, **objects.OBJECT_KINDS}
)

# Every local defect covers this fraction of the image (rejection sampling enforces it);
# structural ones (a missing coin, a flipped part) may cover up to 30 %.
AREA_RANGE: tuple[float, float] = (0.003, 0.05)
_STRUCTURAL_AREA_RANGE: tuple[float, float] = (0.004, 0.3)

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


def defect_kinds(category: str) -> tuple[str, ...]:
    """The defect kinds of ``category`` (raises ConfigError for an unknown category)."""
    _check_choice("category", category, CATEGORIES)
    return DEFECT_KINDS[category]


def area_range(category: str, kind: str) -> tuple[float, float]:
    """The (min, max) fraction of the image that a defect of ``kind`` covers."""
    _check_choice("kind", kind, defect_kinds(category))
    return AREA_RANGE if objects.is_local(category, kind) else _STRUCTURAL_AREA_RANGE


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
    others = [c for c in TEXTURE_CATEGORIES if c != category]
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


def _add_defect(
    normal: FloatImage, kind: str, rng: np.random.Generator, category: str,
    region: Mask | None = None,
) -> tuple[Rgb, Rgb, Mask]:
    """Paint one local defect of ``kind``; return (normal uint8, defective uint8, mask).

    The painted colours are used only inside the binary region, so nothing outside the
    mask changes; regions outside ``AREA_RANGE`` are redrawn.  On an object the region is
    cut to the object's ``region`` (a hole must lie inside it).
    """
    normal_u8 = _to_uint8(normal)
    low, high = (int(np.ceil(f * normal.shape[0] ** 2)) for f in AREA_RANGE)
    for _ in range(1000):
        painted, mask = _PAINTERS[kind](normal, rng, category)
        if region is not None and not (kind == "hole" and (mask & ~region).any()):
            mask = mask & region
        if low <= mask.sum() <= high and (region is None or not (mask & ~region).any()):
            break
    else:  # pragma: no cover - the samplers land in range within a few tries
        raise RuntimeError(f"could not draw a {kind} defect within {AREA_RANGE}")
    defective = np.where(mask[..., None], _to_uint8(painted), normal_u8)
    return normal_u8, enforce_min_change(normal_u8, defective, mask, _MIN_DELTA), mask


def _add_structural(
    scene: objects.Scene, normal: Rgb, kind: str, rng: np.random.Generator
) -> tuple[Rgb, Rgb, Mask]:
    """Change the object's scene (a part missing, flipped, ...) and render it again.

    The mask is where the rendering moved by ``_MIN_DELTA`` or more, with gaps of a pixel
    and small holes closed; fainter changes outside it (the soft end of a shadow) are
    put back, so the mask is again exactly the changed pixels.
    """
    size = normal.shape[0]
    low, high = (int(np.ceil(f * size**2)) for f in _STRUCTURAL_AREA_RANGE)
    for _ in range(100):
        changed = _to_uint8(objects.render(objects.with_defect(scene, kind, rng))[0])
        mask = changed_region(normal, changed, _MIN_DELTA)
        if low <= mask.sum() <= high:
            break
    else:  # pragma: no cover - the scenes give defects within range
        raise RuntimeError(f"could not draw a {kind} defect within {_STRUCTURAL_AREA_RANGE}")
    defective = np.where(mask[..., None], changed, normal)
    return normal, enforce_min_change(normal, defective, mask, _MIN_DELTA), mask


# --------------------------------------------------------------------------- public API


def example(
    category: str, kind: str | None, *, seed: int = 0, index: int = 0, image_size: int = 256
) -> tuple[Rgb, Rgb, Mask]:
    """The images that ``generate`` writes as ``test/<kind>/<index>``.

    Returns (normal image, defective image, boolean mask); ``generate`` writes the normal
    image as the defective one's twin (``twins/<kind>/<index>``).  With ``kind=None`` it is
    ``test/good/<index>``: the defective image is the normal one and the mask is empty.
    """
    _check_choice("category", category, CATEGORIES)
    if kind is not None:
        _check_choice("kind", kind, DEFECT_KINDS[category])
    _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
    _check_int("seed", seed, 0)
    _check_int("index", index, 0)
    rng = keyed_rng(seed, category, "test", kind or "good", index)
    scene, region = None, None
    if category in OBJECT_CATEGORIES:
        scene = objects.draw(category, rng, image_size)
        normal, region = objects.render(scene)
    else:
        normal = _normal_float(category, rng, image_size)
    if kind is None:
        image = _to_uint8(normal)
        return image, image.copy(), np.zeros(image.shape[:2], dtype=bool)
    if scene is not None and kind not in objects.LOCAL_KINDS:
        return _add_structural(scene, _to_uint8(normal), kind, rng)
    return _add_defect(normal, kind, rng, category, region)


def _train_image(category: str, seed: int, index: int, image_size: int) -> Rgb:
    """The image that ``generate`` writes as ``train/good/<index>``."""
    rng = keyed_rng(seed, category, "train", "good", index)
    if category in OBJECT_CATEGORIES:
        return _to_uint8(objects.render(objects.draw(category, rng, image_size))[0])
    return _to_uint8(_normal_float(category, rng, image_size))


def generate(
    out: str | Path,
    *,
    seed: int = 0,
    categories: Sequence[str] | None = None,
    n_train: int = 60,
    n_test_good: int = 15,
    n_test_defective: int = 30,
    image_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a synthetic MVTec-AD-style data set under ``out`` and return its summary.

    Each category gets ``n_test_defective`` defective test images, spread over its kinds
    as evenly as possible (the first kinds get one more where it does not divide; a kind
    gets no folder when there are fewer images than kinds).  The same arguments always
    give byte-identical files; each image depends only on (seed, category, split, kind,
    index), so asking for fewer categories or in another order does not change the
    others.  Each defective test image's defect-free twin is written to
    ``<category>/twins/<kind>/<name>.png`` (good test images have none).  Files in
    ``out`` that this generator did not write are left alone; its own files from an
    earlier run are overwritten, and ones that the new counts no longer include are
    removed.  See ``describe()``.
    """
    cats = _check_categories(categories)
    _check_int("seed", seed, 0)
    for name, value in (
        ("n_train", n_train),
        ("n_test_good", n_test_good),
        ("n_test_defective", n_test_defective),
    ):
        _check_int(name, value, 1)
    _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"out: {root} exists and is not a folder")

    counts = {
        c: {"train": n_train, "good": n_test_good, "defect": _kind_counts(c, n_test_defective)}
        for c in cats
    }
    previous = _read_manifest(root)
    total = len(cats) * (n_train + n_test_good + n_test_defective)
    with tqdm(total=total, desc="synth", unit="img", disable=not progress) as bar:
        for category in cats:
            written = _write_category(root, category, seed, image_size, counts[category], bar)
            old = previous.get("categories", {}).get(category)
            if old is not None:
                _remove_stale(root, category, old, written)

    summary = _summary(seed, image_size, counts)
    if _same_recipe(previous, summary):
        # Keep categories generated by an earlier, compatible call into the same folder.
        summary["categories"] = {**previous["categories"], **summary["categories"]}
    _atomic_write(root / "synth.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def contact_sheet(
    path: str | Path | None = None,
    *,
    seed: int = 0,
    image_size: int = 128,
    index: int = 0,
    categories: Sequence[str] | None = None,
) -> Rgb:
    """One row per category: a normal image, then each defect kind and its mask.

    Returns the sheet as an RGB array and saves it as PNG when ``path`` is given.
    """
    cats = _check_categories(categories)
    gap = 4
    columns = 1 + 2 * max(len(DEFECT_KINDS[c]) for c in cats)
    step = image_size + gap
    sheet = np.full((len(cats) * step, columns * step, 3), 255, dtype=np.uint8)
    for row, category in enumerate(cats):
        tiles = [example(category, None, seed=seed, index=index, image_size=image_size)[0]]
        for kind in DEFECT_KINDS[category]:
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

Counts = dict[str, Any]  # {"train": n, "good": n, "defect": {kind: n}}


def _kind_counts(category: str, n_defective: int) -> dict[str, int]:
    """``n_defective`` spread over the category's kinds, the first ones getting the rest."""
    kinds = DEFECT_KINDS[category]
    share, rest = divmod(n_defective, len(kinds))
    return {kind: share + (i < rest) for i, kind in enumerate(kinds)}


def _names(n: int) -> list[str]:
    """MVTec-style file stems: 000, 001, ... (wider only past 999 images)."""
    width = max(3, len(str(n - 1)))
    return [f"{i:0{width}d}" for i in range(n)]


def _category_files(category: str, counts: Counts) -> list[str]:
    """Relative paths of every file generated for one category with these counts."""
    files = [f"{category}/train/good/{s}.png" for s in _names(counts["train"])]
    files += [f"{category}/test/good/{s}.png" for s in _names(counts["good"])]
    for kind, n in counts["defect"].items():
        for stem in _names(n) if n else []:
            files += [
                f"{category}/test/{kind}/{stem}.png",
                f"{category}/ground_truth/{kind}/{stem}_mask.png",
                f"{category}/twins/{kind}/{stem}.png",
            ]
    return files


def _write_category(
    root: Path, category: str, seed: int, size: int, counts: Counts, bar: tqdm
) -> set[str]:
    """Write every image, mask and defect-free twin of one category; return their paths."""
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
    for kind, n in counts["defect"].items():
        for index, stem in enumerate(_names(n) if n else []):
            twin, image, mask = example(category, kind, seed=seed, index=index, image_size=size)
            _atomic_write(root / category / "test" / kind / f"{stem}.png", _png_bytes(image))
            _atomic_write(root / category / "twins" / kind / f"{stem}.png", _png_bytes(twin))
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
        test = dict(old["test"])
        counts = {
            "train": int(old["train"]),
            "good": int(test.pop("good")),
            "defect": {str(k): int(n) for k, n in test.items() if str(k).isidentifier()},
        }
    except (KeyError, TypeError, ValueError):
        return
    for rel in set(_category_files(category, counts)) - written:
        (root / rel).unlink(missing_ok=True)


def _summary(seed: int, size: int, counts: dict[str, Counts]) -> dict[str, Any]:
    """What ``generate`` returns and stores as ``synth.json``."""
    per_category = {
        c: {
            "train": n["train"],
            "test": {"good": n["good"], **n["defect"]},
            "source": objects.SOURCES.get(c, f"skimage.data.{c} (photograph)"),
        }
        for c, n in counts.items()
    }
    return {
        "generator": "adtr.synth",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "image_size": size,
        "defect_kinds": {c: list(kinds) for c, kinds in DEFECT_KINDS.items()},
        "area_range": {"local": list(AREA_RANGE), "structural": list(_STRUCTURAL_AREA_RANGE)},
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
