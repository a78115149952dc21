"""Seeded randomness and the shapes of synthetic defects, for ``adtr.synth``.

Every function is deterministic given its generator; ``keyed_rng`` makes a generator that
depends only on a seed and keys, never on call order. Regions are boolean masks of a
size x size image.
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

Mask = NDArray[np.bool_]
FloatImage = NDArray[np.float32]
Rgb = NDArray[np.uint8]


def keyed_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator that depends only on (seed, keys), never on call order.

    String keys go through crc32 because Python's ``hash`` is salted per process.
    """
    words = [seed] + [zlib.crc32(k.encode()) if isinstance(k, str) else k for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def value_noise(rng: np.random.Generator, size: int, cells: int) -> FloatImage:
    """Smooth noise, unit std: a random (cells x cells) grid upsampled with cubic splines."""
    grid = rng.standard_normal((cells + 3, cells + 3))
    up = ndimage.zoom(grid, size / cells, order=3)[:size, :size]
    return ((up - up.mean()) / (up.std() + 1e-8)).astype(np.float32)


def fractal_noise(rng: np.random.Generator, size: int) -> FloatImage:
    """Perlin-like fractal noise: three octaves of value noise, halving amplitude."""
    total = sum(0.5**k * value_noise(rng, size, 8 * 2**k) for k in range(3))
    return (total / total.std()).astype(np.float32)



# ------------------------------------------------------------------- defect regions


def pixel_grid(size: int) -> tuple[FloatImage, FloatImage]:
    """Pixel-centre coordinates (y, x) of a size x size image."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def blob_radius(
    rng: np.random.Generator, size: int, roughness: float
) -> tuple[FloatImage, FloatImage]:
    """Normalised radius of a random rotated, wobbly ellipse; its region is ``rho <= 1``.

    Returns (rho, angle of each pixel around the ellipse's centre).
    """
    cy, cx = rng.uniform(0.12, 0.88, size=2) * size
    a, b = rng.uniform(0.035, 0.12, size=2) * size
    theta = rng.uniform(0, np.pi)
    yy, xx = pixel_grid(size)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    phi = np.arctan2(dy, dx)
    # A few low angular harmonics make the outline irregular but still smooth.
    wobble = sum(
        rng.uniform(-roughness, roughness) / k * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        for k in range(2, 6)
    )
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2) / (1.0 + wobble)
    return rho.astype(np.float32), phi.astype(np.float32)


def scratch_centreline(
    rng: np.random.Generator, size: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points (y, x) along a gently curved stroke, and the position 0..1 along it."""
    start = rng.uniform(0.1, 0.9, size=2) * size
    angle = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(0.3, 0.65) * size
    end = start + length * np.array([np.sin(angle), np.cos(angle)])
    normal = np.array([np.cos(angle), -np.sin(angle)])
    control = (start + end) / 2 + rng.uniform(-0.3, 0.3) * length * normal
    t = np.linspace(0.0, 1.0, int(4 * length) + 2)[:, None]
    points = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
    return points, t[:, 0]


def scratch_region(rng: np.random.Generator, size: int) -> Mask:
    """A thin curved line that tapers at both ends, like a tool mark."""
    points, t = scratch_centreline(rng, size)
    width = max(1.0, rng.uniform(0.005, 0.01) * size)
    mask = np.zeros((size, size), dtype=bool)
    yy, xx = pixel_grid(size)
    # Stamping discs along the stroke gives the taper; radius ~ width * sin(pi t)^0.4.
    radii = np.maximum(0.6, width * np.sin(np.pi * t) ** 0.4)
    for (py, px), r in zip(points, radii, strict=True):
        y0, y1 = max(int(py - r - 1), 0), min(int(py + r + 2), size)
        x0, x1 = max(int(px - r - 1), 0), min(int(px + r + 2), size)
        if y0 < y1 and x0 < x1:
            d2 = (yy[y0:y1, x0:x1] - py) ** 2 + (xx[y0:y1, x0:x1] - px) ** 2
            mask[y0:y1, x0:x1] |= d2 <= r * r
    return mask


def noise_blob(rng: np.random.Generator, size: int, noise_weight: float) -> Mask:
    """An irregular blob: a random Gaussian bump perturbed by smooth noise, thresholded."""
    rho, _ = blob_radius(rng, size, roughness=0.1)
    noise = value_noise(rng, size, cells=max(4, size // 24))
    return (np.exp(-(rho**2)) * (1.0 + noise_weight * noise)) > np.exp(-1.0)


def perlin_region(rng: np.random.Generator, size: int) -> Mask:
    """Thresholded fractal noise near a random spot (DRAEM-style anomaly shapes)."""
    cy, cx = rng.uniform(0.15, 0.85, size=2) * size
    spread = rng.uniform(0.06, 0.14) * size
    yy, xx = pixel_grid(size)
    envelope = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * spread**2))
    # The noise dominates the shape; the envelope only keeps it in one neighbourhood.
    score = fractal_noise(rng, size) + 3.0 * envelope
    target = rng.uniform(0.006, 0.04)
    region = score > np.quantile(score, 1.0 - target)
    # Noise peaks far from the spot leave specks of a few pixels; keep the main parts.
    labels, _ = ndimage.label(region)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return sizes[labels] >= 0.2 * sizes.max()


def smoothstep(x: FloatImage) -> FloatImage:
    """0 below 0, 1 above 1, smooth in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# ------------------------------------------------------------------ changed pixels


def enforce_min_change(normal: Rgb, painted: Rgb, mask: Mask, min_delta: int) -> Rgb:
    """Make every mask pixel differ from ``normal`` by at least ``min_delta`` grey levels.

    Pixels where the painted colour happens to match the background would otherwise
    be in the mask but unchanged; they get a brightness step in the defect's direction
    (or away from the clipped end of the range).
    """
    diff = painted.astype(np.int16) - normal.astype(np.int16)
    weak = mask & (np.abs(diff).max(axis=-1) < min_delta)
    if not weak.any():
        return painted
    base = normal[weak].astype(np.int16)
    direction = np.where(diff[weak].sum(axis=-1) >= 0, 1, -1)[:, None]
    # Step the way that stays inside [0, 255] for all channels.
    fits_up = base.max(axis=-1, keepdims=True) + min_delta <= 255
    fits_down = base.min(axis=-1, keepdims=True) - min_delta >= 0
    direction = np.where(direction > 0, np.where(fits_up, 1, -1), np.where(fits_down, -1, 1))
    out = painted.copy()
    out[weak] = np.clip(base + direction * min_delta, 0, 255).astype(np.uint8)
    return out


def changed_region(normal: Rgb, changed: Rgb, min_delta: int) -> Mask:
    """Where ``changed`` differs from ``normal`` by ``min_delta`` or more, made solid.

    One-pixel gaps and small holes (where the new colour happens to match the old) are
    closed, so a flipped or recoloured part gives one region, not a sieve; specks of a
    few pixels apart from it (the faint end of a shadow) are left out.
    """
    strong = np.abs(changed.astype(np.int16) - normal).max(axis=-1) >= min_delta
    mask = ndimage.binary_closing(np.pad(strong, 2))[2:-2, 2:-2] | strong
    holes, _ = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    small = np.bincount(holes.ravel()) <= max(4, mask.size // 2000)
    small[0] = False
    mask |= small[holes]
    parts, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    keep = np.bincount(parts.ravel()) >= max(3, mask.size // 4000)
    keep[0] = False
    return keep[parts]
