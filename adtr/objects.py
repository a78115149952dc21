"""Object categories of the offline data set: real pictures of objects laid out on a surface.

coins
    A foam tray with a 4x4 grid of round slots, one coin in each.  The coins are the
    individual coins of ``skimage.data.coins()`` (a photograph of 24 Greek coins from
    Pompeii), cut out by watershed segmentation; the 18 of similar size are used, and
    every slot draws one of them at a random rotation, so each tray holds another set of
    real coins, tinted silver.  Defects: ``missing`` (a slot empty), ``extra`` (a 17th
    coin lying across four others), ``colour`` (one coin of copper or brass), and the
    local ``scratch`` and ``stain`` (on the tray or the coins).
logo
    A round paper sticker printed with ``skimage.data.logo()`` (the scikit-image logo: a
    graphic, not a photograph), split into three printing plates (green ink, orange ink,
    the dark line drawing), on a brown cardboard-like board.  Defects: ``rotated`` (the
    sticker put on a quarter or half turn off), ``colour`` (one ink of the wrong hue),
    ``misprint`` (the green plate out of register by 1.5-3 % of the image), ``torn`` (a
    piece of the sticker torn off), and the local ``scratch`` and ``stain``.
horse
    A flat sheet-metal part cut in the shape of ``skimage.data.horse()`` (a binary
    silhouette drawing) with a brushed-steel grain made from a random crop of the
    ``skimage.data.gravel`` photograph, lying on a rubber mat.  Defects: ``broken`` (the
    lower part of a leg missing), ``bent`` (a leg bent by 20-35 degrees), ``flip`` (the
    part lying upside down: mirrored, its matte back face up), and the local
    ``scratch``, ``hole`` and ``stain``.

Synthetic: the tray, table, board, sticker paper, mat, shadows, the coins' tints and the
lighting.  Every normal image varies the object's position (2-4 % of the image) and
rotation (up to 3-8 degrees), the light (brightness and a soft gradient) and the
instances (which coins, and their rotation; the ink density; the metal grain).

A scene is a plain dict drawn by ``draw``; ``with_defect`` returns a changed copy and
``render`` turns either into an image, so a defective image equals its normal image
wherever the defect does not reach.  The local kinds (``LOCAL_KINDS``) are painted by
``adtr.synth`` on the rendered image, inside the region that ``render`` returns.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

from adtr.shapes import pixel_grid, smoothstep, value_noise

__all__ = ["LOCAL_KINDS", "OBJECT_KINDS", "SOURCES", "draw", "is_local", "render", "with_defect"]

FloatImage = NDArray[np.float32]
Mask = NDArray[np.bool_]
Scene = dict[str, Any]

#: Defect kinds per object category: structural / logical ones first, then local ones.
OBJECT_KINDS: dict[str, tuple[str, ...]] = {
    "coins": ("missing", "extra", "colour", "scratch", "stain"),
    "logo": ("rotated", "colour", "misprint", "torn", "scratch", "stain"),
    "horse": ("broken", "bent", "flip", "scratch", "hole", "stain"),
}
#: Kinds that ``adtr.synth`` paints with its texture painters, inside the object.
LOCAL_KINDS = frozenset({"scratch", "hole", "stain"})
#: What each category is made from (for the data set's manifest).
SOURCES: dict[str, str] = {
    "coins": "skimage.data.coins (coins cut out of the photograph)",
    "logo": "skimage.data.logo (graphic)",
    "horse": "skimage.data.horse (silhouette) + skimage.data.gravel (photograph, metal grain)",
}


def is_local(category: str, kind: str) -> bool:
    """Whether a defect of ``kind`` is painted on the surface (every kind of a texture, and
    the objects' ``LOCAL_KINDS``) rather than a change of an object's parts or layout."""
    return category not in OBJECT_KINDS or kind in LOCAL_KINDS


def draw(category: str, rng: np.random.Generator, size: int) -> Scene:
    """A random defect-free scene of ``category`` for a size x size image."""
    scene: Scene = {"category": category, "size": size, "light": _light(rng)}
    return _DRAW[category](scene, rng)


def render(scene: Scene) -> tuple[FloatImage, Mask]:
    """The scene as an RGB image in [0, 1], and the object's region (where defects go)."""
    image, region = _RENDER[scene["category"]](scene)
    return _lit(image, scene["light"]), region


def with_defect(scene: Scene, kind: str, rng: np.random.Generator) -> Scene:
    """A copy of ``scene`` with one structural or logical defect of ``kind``."""
    return _DEFECT[scene["category"]](scene, kind, rng)


# ----------------------------------------------------------------------------- helpers


def _warp(
    src: NDArray[np.float32],
    box: tuple[int, int, int, int],
    centre: tuple[float, float],
    scale: float,
    angle: float,
    cval: float = 0.0,
) -> FloatImage:
    """Sample ``src`` (2-D or H x W x C) into the window ``box`` = (y0, x0, h, w).

    The source's centre lands on the image point ``centre`` (y, x), magnified by
    ``scale`` and turned by ``angle`` (radians, counter-clockwise on screen).
    """
    y0, x0, h, w = box
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.array([[c, s], [-s, c]]) / scale
    middle = (np.asarray(src.shape[:2], dtype=float) - 1) / 2
    offset = middle - matrix @ (np.asarray(centre, dtype=float) - (y0, x0))
    planes = src[..., None] if src.ndim == 2 else src
    out = np.stack(
        [
            ndimage.affine_transform(
                planes[..., k], matrix, offset, output_shape=(h, w), order=1, cval=cval
            )
            for k in range(planes.shape[-1])
        ],
        axis=-1,
    ).astype(np.float32)
    return out[..., 0] if src.ndim == 2 else out


def _light(rng: np.random.Generator) -> Scene:
    """Overall brightness and a soft linear light gradient in a random direction."""
    return {
        "gain": rng.uniform(0.9, 1.07),
        "tilt": rng.uniform(0.0, 0.12),
        "towards": rng.uniform(0, 2 * np.pi),
    }


def _lit(image: FloatImage, light: Scene) -> FloatImage:
    size = image.shape[0]
    yy, xx = pixel_grid(size)
    ramp = (np.cos(light["towards"]) * xx + np.sin(light["towards"]) * yy) / size - 0.5
    gain = light["gain"] * (1 + light["tilt"] * ramp)
    return np.clip(image * gain[..., None].astype(np.float32), 0.0, 1.0)


def _surface(
    rng: np.random.Generator, size: int, rough: float, grain: float, fibres: bool = False
) -> FloatImage:
    """Relative brightness (around 1) of a softly textured surface (paper: ``fibres``)."""
    blotch = value_noise(rng, size, cells=4)
    blur = 0.6 + size / 400
    sigma = (blur, 4 * blur) if fibres else (blur, blur)
    fine = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    fine = fine / (fine.std() + 1e-8)
    return (1 + rough * blotch + grain * fine).astype(np.float32)


def _shadow(alpha: FloatImage, shift: tuple[float, float], blur: float) -> FloatImage:
    """A soft shadow of ``alpha`` cast along ``shift`` (pixels)."""
    moved = ndimage.shift(alpha, shift, order=1, cval=0.0)
    return ndimage.gaussian_filter(moved, blur).astype(np.float32)


def _resized(array: NDArray[np.float32], shape: tuple[int, int]) -> FloatImage:
    """A float image resized to (h, w) with an anti-aliasing filter."""
    planes = array[..., None] if array.ndim == 2 else array
    out = np.stack(
        [
            np.asarray(Image.fromarray(planes[..., k].astype(np.float32)).resize(
                (shape[1], shape[0]), Image.Resampling.BOX if shape[0] < array.shape[0]
                else Image.Resampling.BILINEAR
            ))
            for k in range(planes.shape[-1])
        ],
        axis=-1,
    ).astype(np.float32)
    return out[..., 0] if array.ndim == 2 else out


def _ramp(grey: FloatImage, dark: tuple[float, ...], bright: tuple[float, ...]) -> FloatImage:
    lo, hi = np.asarray(dark, np.float32), np.asarray(bright, np.float32)
    return lo + grey[..., None] * (hi - lo)


# ------------------------------------------------------------------------------- coins

_GRID = 4
_SLOT = 0.45  # slot radius, in units of the slot pitch
_TINTS = {
    "silver": ((0.11, 0.11, 0.12), (0.97, 0.97, 0.99)),
    "copper": ((0.20, 0.06, 0.02), (1.00, 0.62, 0.40)),
    "brass": ((0.17, 0.12, 0.02), (1.00, 0.86, 0.42)),
}


@cache
def _coin_cutouts() -> tuple[tuple[FloatImage, FloatImage, float], ...]:
    """(grey, alpha, radius) of each similar-sized coin of ``skimage.data.coins()``."""
    import skimage.data
    from skimage import filters, segmentation

    photo = np.pad(skimage.data.coins(), 32, mode="edge")
    markers = np.zeros(photo.shape, dtype=np.uint8)
    markers[photo < 30] = 1
    markers[photo > 150] = 2
    regions = segmentation.watershed(filters.sobel(photo), markers) == 2
    labels, count = ndimage.label(ndimage.binary_fill_holes(regions))
    grey = photo.astype(np.float32) / 255.0
    cutouts = []
    for label in range(1, count + 1):
        region = labels == label
        area = int(region.sum())
        if not 1050 <= area <= 1800:  # the 18 mid-sized coins; the 6 large ones stay out
            continue
        cy, cx = (int(round(c)) for c in ndimage.center_of_mass(region))
        half = int(np.sqrt(area / np.pi)) + 4
        window = (slice(cy - half, cy + half + 1), slice(cx - half, cx + half + 1))
        alpha = ndimage.binary_erosion(region, iterations=1)[window].astype(np.float32)
        alpha = ndimage.gaussian_filter(alpha, 0.6)
        cutouts.append((grey[window], alpha, float(np.sqrt(area / np.pi))))
    return tuple(cutouts)


def _draw_coins(scene: Scene, rng: np.random.Generator) -> Scene:
    size = scene["size"]
    cutouts = _coin_cutouts()
    coins = [
        _coin(rng, (i - 1.5, j - 1.5), 0.025, len(cutouts))
        for i in range(_GRID)
        for j in range(_GRID)
    ]
    scene.update(
        pitch=size * rng.uniform(0.198, 0.206),
        centre=tuple(size / 2 + rng.uniform(-0.02, 0.02, size=2) * size),
        angle=rng.uniform(-0.045, 0.045),
        sun=rng.uniform(-2.6, -2.0),  # light from the upper left
        coins=coins,
        table=_surface(rng, size, 0.03, 0.02),
        foam=_surface(rng, size, 0.05, 0.06),
    )
    return scene


def _coin(rng: np.random.Generator, pos: tuple[float, float], jitter: float, n: int) -> Scene:
    return {
        "pos": tuple(np.asarray(pos) + rng.uniform(-jitter, jitter, size=2)),
        "source": int(rng.integers(n)),
        "angle": rng.uniform(0, 2 * np.pi),
        "gain": rng.uniform(0.92, 1.06),
        "tint": "silver",
    }


def _tray_point(scene: Scene, pos: tuple[float, float]) -> tuple[float, float]:
    """Image (y, x) of a point given in tray units (row, column; pitch = 1)."""
    c, s = np.cos(scene["angle"]), np.sin(scene["angle"])
    v, u = pos[0] * scene["pitch"], pos[1] * scene["pitch"]
    return scene["centre"][0] + s * u + c * v, scene["centre"][1] + c * u - s * v


def _render_coins(scene: Scene) -> tuple[FloatImage, Mask]:
    size, pitch = scene["size"], scene["pitch"]
    yy, xx = pixel_grid(size)
    dy, dx = yy - scene["centre"][0], xx - scene["centre"][1]
    c, s = np.cos(scene["angle"]), np.sin(scene["angle"])
    u, v = (c * dx + s * dy) / pitch, (-s * dx + c * dy) / pitch
    # The tray: a rounded square, 4.5 pitches wide.
    qu, qv = np.abs(u) - 1.9, np.abs(v) - 1.9
    sdf = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0)) + np.minimum(np.maximum(qu, qv), 0)
    tray = smoothstep((0.35 - sdf) * pitch + 0.5)
    # Each pixel's nearest slot; the recess is darker, its far wall catches the light.
    du = u - (np.clip(np.rint(u + 1.5), 0, _GRID - 1) - 1.5)
    dv = v - (np.clip(np.rint(v + 1.5), 0, _GRID - 1) - 1.5)
    dist = np.hypot(du, dv)
    recess = smoothstep((_SLOT - dist) * pitch + 0.5)
    wall = np.exp(-(((dist - _SLOT) * pitch / 1.5) ** 2)) * np.cos(
        np.arctan2(dv, du) - scene["sun"] - np.pi
    )
    rim = np.exp(-(((0.35 - sdf) * pitch / 2.0) ** 2)) * 0.12
    foam = scene["foam"] * (1 - 0.38 * recess + 0.25 * wall + rim)
    foam_rgb = np.asarray((0.20, 0.25, 0.31), np.float32) * foam[..., None]
    table = np.asarray((0.80, 0.79, 0.75), np.float32) * scene["table"][..., None]
    sun = (-np.sin(scene["sun"]) * 0.03 * size, -np.cos(scene["sun"]) * 0.03 * size)
    table = table * (1 - 0.45 * _shadow(tray, sun, 0.02 * size))[..., None]
    canvas = table * (1 - tray[..., None]) + foam_rgb * tray[..., None]
    cutouts = _coin_cutouts()
    for coin in scene["coins"]:
        _paste_coin(canvas, coin, cutouts[coin["source"]], scene)
    return canvas, tray > 0.5


def _paste_coin(
    canvas: FloatImage, coin: Scene, cutout: tuple[FloatImage, FloatImage, float], scene: Scene
) -> None:
    """Composite one coin, with the small shadow it casts, onto ``canvas`` in place."""
    grey, alpha, radius = cutout
    size, pitch = scene["size"], scene["pitch"]
    scale = 0.37 * pitch / 20.5  # 20.5 px: the median radius of the coins in the photo
    if scale < 0.8:  # filter before shrinking so that the coin's relief does not alias
        grey, alpha = (ndimage.gaussian_filter(a, 0.4 / scale) for a in (grey, alpha))
    cy, cx = _tray_point(scene, coin["pos"])
    shift = (-np.sin(scene["sun"]) * 0.05 * pitch, -np.cos(scene["sun"]) * 0.05 * pitch)
    reach = int(radius * scale + 0.05 * pitch + 0.12 * pitch) + 3
    y0, x0 = max(int(cy) - reach, 0), max(int(cx) - reach, 0)
    y1, x1 = min(int(cy) + reach + 1, size), min(int(cx) + reach + 1, size)
    if y0 >= y1 or x0 >= x1:
        return
    box = (y0, x0, y1 - y0, x1 - x0)
    g = _warp(grey, box, (cy, cx), scale, coin["angle"])
    a = _warp(alpha, box, (cy, cx), scale, coin["angle"])[..., None]
    dark = _warp(alpha, box, (cy + shift[0], cx + shift[1]), scale, coin["angle"])
    dark = ndimage.gaussian_filter(dark, 0.04 * pitch)[..., None]
    rgb = _ramp(np.clip(g * coin["gain"], 0, 1), *_TINTS[coin["tint"]])
    window = canvas[y0:y1, x0:x1]
    window *= 1 - 0.55 * dark
    window[...] = window * (1 - a) + rgb * a


def _coins_defect(scene: Scene, kind: str, rng: np.random.Generator) -> Scene:
    coins = list(scene["coins"])
    k = int(rng.integers(len(coins)))
    if kind == "missing":
        del coins[k]
    elif kind == "colour":
        coins[k] = {**coins[k], "tint": ("copper", "brass")[rng.integers(2)]}
    elif kind == "extra":
        # One coin too many, lying across the slots between four others.
        gap = rng.integers(0, _GRID - 1, size=2) - (_GRID - 2) / 2
        coins.append(_coin(rng, (float(gap[0]), float(gap[1])), 0.12, len(_coin_cutouts())))
    else:
        raise ValueError(kind)
    return {**scene, "coins": coins}


# -------------------------------------------------------------------------------- logo

_PAPER = np.asarray((0.96, 0.95, 0.92), np.float32)
_KRAFT = np.asarray((0.63, 0.48, 0.33), np.float32)


@cache
def _logo_layers(res: int) -> Scene:
    """The logo at res x res as printing plates: green ink, orange ink, dark line drawing."""
    import skimage.data

    full = Image.fromarray(np.ascontiguousarray(skimage.data.logo()[..., :3]))
    rgb = np.asarray(full.resize((res, res), Image.Resampling.LANCZOS), np.float32) / 255.0
    white = (rgb.min(axis=-1) > 0.82) & (np.ptp(rgb, axis=-1) < 0.1)
    ys, xs = np.nonzero(~white)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    radius = (ys.max() - ys.min() + xs.max() - xs.min()) / 4
    yy, xx = pixel_grid(res)
    disc = np.hypot(yy - cy, xx - cx) <= radius - 0.5
    # Closing removes the thin dark lines: what is left is the flat colour of each field.
    width = max(3, res // 60) | 1
    flat = np.stack([ndimage.grey_closing(rgb[..., k], size=width) for k in range(3)], -1)
    flat = np.where(disc[..., None], flat, 1.0).astype(np.float32)
    ink = np.clip(rgb.mean(-1) / np.maximum(flat.mean(-1), 1e-3), 0, 1)
    ink = np.where(disc, ink, 1.0).astype(np.float32)
    green = disc & (flat[..., 1] > flat[..., 0] + 0.05)
    orange = disc & (flat[..., 0] > flat[..., 1] + 0.05)
    # Each ink is a plate of its own: a coverage (soft at the edges) times its colour.
    nearest = ndimage.distance_transform_edt(~orange, return_distances=False, return_indices=True)
    orange_rgb = flat[nearest[0], nearest[1]]
    cover = {k: ndimage.gaussian_filter(m.astype(np.float32), 0.6)[..., None]
             for k, m in (("green", green), ("orange", orange))}
    return {
        "green": cover["green"][..., 0],
        "green_rgb": np.median(flat[green], axis=0).astype(np.float32),
        "orange": (1 - cover["orange"] * (1 - orange_rgb)).astype(np.float32),
        "ink": ink,
        "radius": radius,
    }


def _draw_logo(scene: Scene, rng: np.random.Generator) -> Scene:
    size = scene["size"]
    scene.update(
        centre=tuple(size / 2 + rng.uniform(-0.04, 0.04, size=2) * size),
        radius=size * rng.uniform(0.245, 0.255),  # of the print; the paper is 7 % wider
        angle=rng.uniform(-0.14, 0.14),
        density=rng.uniform(0.9, 1.03),  # how much ink the press laid down
        plate=(0.0, 0.0),  # where the green plate sits relative to the others
        green=None,  # the green ink's colour when it is not the logo's
        orange=None,  # the orange plate when its ink is not the logo's
        tear=None,
        board=_surface(rng, size, 0.04, 0.035, fibres=True),
    )
    return scene


def _render_logo(scene: Scene) -> tuple[FloatImage, Mask]:
    size, (cy, cx) = scene["size"], scene["centre"]
    layers = _logo_layers(max(64, int(round(0.7 * size))))
    yy, xx = pixel_grid(size)
    dy, dx = yy - cy, xx - cx
    sticker = smoothstep(1.07 * scene["radius"] - np.hypot(dy, dx) + 0.5)
    fibres = np.zeros_like(sticker)
    if scene["tear"] is not None:
        towards, cut, waves = scene["tear"]
        along = np.cos(towards) * dx + np.sin(towards) * dy
        across = (-np.sin(towards) * dx + np.cos(towards) * dy) / scene["radius"]
        edge = cut * scene["radius"] + sum(a * np.sin(f * across + p) for a, f, p in waves)
        kept = smoothstep(edge - along + 0.5)
        fibres = np.exp(-(((edge - along) / 1.2) ** 2)) * kept * sticker
        sticker = sticker * kept
    board = _KRAFT * scene["board"][..., None]
    lift = (0.006 * size, 0.004 * size)
    board = board * (1 - 0.35 * _shadow(sticker, lift, 0.005 * size + 0.3))[..., None]
    box, scale, angle = (0, 0, size, size), scene["radius"] / layers["radius"], scene["angle"]
    plate = (cy + scene["plate"][0], cx + scene["plate"][1])
    green = _warp(layers["green"], box, plate, scale, angle)[..., None]
    green_rgb = layers["green_rgb"] if scene["green"] is None else scene["green"]
    orange = layers["orange"] if scene["orange"] is None else scene["orange"]
    orange = _warp(orange, box, (cy, cx), scale, angle, cval=1.0)
    ink = _warp(layers["ink"], box, (cy, cx), scale, angle, cval=1.0)
    inks = (1 - green * (1 - green_rgb)) * orange * ink[..., None]
    printed = _PAPER * (1 - (1 - inks) * scene["density"])
    printed = printed + (1 - printed) * (0.8 * fibres)[..., None]  # torn paper shows white
    canvas = board * (1 - sticker[..., None]) + printed * sticker[..., None]
    return canvas, sticker > 0.5


def _logo_defect(scene: Scene, kind: str, rng: np.random.Generator) -> Scene:
    size = scene["size"]
    if kind == "rotated":  # the sticker went on a quarter or half turn off
        return {**scene, "angle": scene["angle"] + rng.integers(1, 4) * np.pi / 2}
    if kind == "colour":  # one of the two inks is the wrong one
        from skimage.color import hsv2rgb, rgb2hsv

        layers = _logo_layers(max(64, int(round(0.7 * size))))
        turn = rng.uniform(0.2, 0.8)
        if rng.random() < 0.5:
            hsv = rgb2hsv(layers["green_rgb"][None, None])
            hsv[..., 0] = (hsv[..., 0] + turn) % 1.0
            return {**scene, "green": hsv2rgb(hsv)[0, 0].astype(np.float32)}
        hsv = rgb2hsv(layers["orange"])
        hsv[..., 0] = (hsv[..., 0] + turn) % 1.0
        return {**scene, "orange": hsv2rgb(hsv).astype(np.float32)}
    if kind == "misprint":  # the green plate out of register with the other two
        towards, shift = rng.uniform(0, 2 * np.pi), rng.uniform(0.015, 0.03) * size
        return {**scene, "plate": (shift * np.sin(towards), shift * np.cos(towards))}
    if kind == "torn":  # a piece of the sticker torn off
        waves = [
            (rng.uniform(0.01, 0.04) * size / k, rng.uniform(2, 5) * k, rng.uniform(0, 2 * np.pi))
            for k in (1, 2, 4)
        ]
        return {**scene, "tear": (rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.75), waves)}
    raise ValueError(kind)


# ------------------------------------------------------------------------------- horse


@cache
def _horse_shape(width: int) -> Scene:
    """The horse silhouette ``width`` px wide, and each of its four legs (the lower third)."""
    import skimage.data

    silhouette = ~skimage.data.horse()
    ys, xs = np.nonzero(silhouette)
    silhouette = np.pad(silhouette[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], 8)
    rows = np.arange(silhouette.shape[0])[:, None] - 8
    tall = ys.max() - ys.min()
    # Below 80 % of the height only the four legs are left, apart from each other; higher up
    # (from 66 %) each pixel of a limb that reaches the ground goes to the nearest leg.
    feet, count = ndimage.label(silhouette & (rows >= 0.8 * tall))
    zone, _ = ndimage.label(silhouette & (rows >= 0.66 * tall))
    grounded = np.isin(zone, np.unique(zone[feet > 0]))
    nearest = ndimage.distance_transform_edt(feet == 0, return_distances=False, return_indices=True)
    owner = np.where(grounded, feet[nearest[0], nearest[1]], 0)
    shape = (int(round(silhouette.shape[0] * width / silhouette.shape[1])), width)
    return {
        "silhouette": _resized(silhouette.astype(np.float32), shape),
        "legs": [_resized((owner == k).astype(np.float32), shape) for k in range(1, count + 1)],
    }


def _grain(crop: FloatImage, brushed: bool) -> FloatImage:
    """Unit-std metal grain: the photo smeared along x (brushed) or softly everywhere."""
    sigma = (0.4, 0.025 * crop.shape[1]) if brushed else (1.0, 1.0)
    grain = ndimage.gaussian_filter(crop, sigma)
    return ((grain - grain.mean()) / (grain.std() + 1e-6)).astype(np.float32)


def _draw_horse(scene: Scene, rng: np.random.Generator) -> Scene:
    import skimage.data

    size = scene["size"]
    shape = _horse_shape(max(48, int(round(0.9 * size))))
    height, width = shape["silhouette"].shape
    photo = skimage.data.gravel()
    y, x = rng.integers(0, photo.shape[0] - 240, size=2)
    crop = _resized(photo[y : y + 240, x : x + 240].astype(np.float32) / 255, (height, width))
    scene.update(
        centre=tuple(size / 2 + rng.uniform(-0.03, 0.03, size=2) * size),
        scale=0.7 * size / width * rng.uniform(0.98, 1.02),
        angle=rng.uniform(-0.1, 0.1),
        silhouette=shape["silhouette"],
        metal=crop,
        grain=_grain(crop, brushed=True),
        shine=rng.uniform(0.55, 0.65),
        back=False,
        mat=_surface(rng, size, 0.05, 0.08),
    )
    return scene


def _render_horse(scene: Scene) -> tuple[FloatImage, Mask]:
    size, centre, scale, angle = scene["size"], scene["centre"], scene["scale"], scene["angle"]
    box = (0, 0, size, size)
    alpha = np.clip(_warp(scene["silhouette"], box, centre, scale, angle), 0, 1)
    lift = (centre[0] + 0.02 * size, centre[1] + 0.015 * size)
    shadow = _warp(scene["silhouette"], box, lift, scale, angle)
    shadow = ndimage.gaussian_filter(shadow, 0.01 * size)
    mat = (0.16 * scene["mat"] * (1 - 0.5 * shadow))[..., None] * np.float32((1, 1, 1.06))
    grain = _warp(scene["grain"], box, centre, scale, angle)
    yy, xx = pixel_grid(size)
    sheen = 0.1 * np.cos(2.5 * (xx - centre[1]) / size + scene["shine"] * 4)
    # The cut edges: bright where they face the light (upper left), dark on the far side.
    gy, gx = np.gradient(ndimage.gaussian_filter(alpha, 0.8 + size / 300))
    bevel = np.clip(-(gy + gx) * size / 40, -0.25, 0.25)
    finish = (0.05, 0.0) if not scene["back"] else (0.03, -0.12)  # the back is matte, darker
    value = scene["shine"] + finish[1] + finish[0] * grain + sheen + bevel
    steel = np.clip(value, 0, 1)[..., None] * np.asarray((0.93, 0.96, 1.0), np.float32)
    canvas = mat * (1 - alpha[..., None]) + steel * alpha[..., None]
    return canvas, ndimage.binary_erosion(alpha > 0.5)


def _horse_defect(scene: Scene, kind: str, rng: np.random.Generator) -> Scene:
    if kind == "flip":  # lying on its back: mirrored, back face up
        return {
            **scene,
            "silhouette": scene["silhouette"][:, ::-1],
            "grain": _grain(scene["metal"], brushed=False)[:, ::-1],
            "back": True,
        }
    legs = _horse_shape(scene["silhouette"].shape[1])["legs"]
    leg = legs[rng.integers(len(legs))]
    # Where it breaks or bends: somewhere down the leg, on a slightly slanted line.
    ys, xs = np.nonzero(leg > 0.5)
    cut = ys.min() + rng.uniform(0.1, 0.55) * (ys.max() - ys.min())
    joint = (cut, float(xs[np.abs(ys - cut) < 1.5].mean()))
    yy, xx = np.mgrid[0 : leg.shape[0], 0 : leg.shape[1]].astype(np.float32)
    below = smoothstep(yy - cut - np.tan(rng.uniform(-0.35, 0.35)) * (xx - joint[1]) + 0.5)
    part = leg * below
    rest = np.clip(scene["silhouette"] - part, 0, 1)
    if kind == "broken":  # a leg broken off
        return {**scene, "silhouette": rest}
    if kind == "bent":  # a leg bent
        turn = rng.choice((-1, 1)) * rng.uniform(0.35, 0.6)
        c, s = np.cos(turn), np.sin(turn)
        matrix = np.array([[c, s], [-s, c]])
        offset = np.asarray(joint) - matrix @ np.asarray(joint)
        bent = ndimage.affine_transform(part, matrix, offset, order=1).astype(np.float32)
        return {**scene, "silhouette": np.maximum(rest, bent)}
    raise ValueError(kind)


_DRAW = {"coins": _draw_coins, "logo": _draw_logo, "horse": _draw_horse}
_RENDER = {"coins": _render_coins, "logo": _render_logo, "horse": _render_horse}
_DEFECT = {"coins": _coins_defect, "logo": _logo_defect, "horse": _horse_defect}
