"""Fuzzing the data loader with random combinations of damage to a tiny MVTec-layout tree.

Each example builds a tree in memory: a few 16x16 PNGs stored as RGB, L, RGBA or 16-bit,
masks written as 0/255, 0/1, 0/128/255, 1-bit, 16-bit or colour, spaces and non-ASCII
letters in names. Hypothesis then applies a random list of damages (missing and empty
folders, non-image and hidden files, zero-byte, truncated and not-PNG files, masks of the
wrong size, masks without images, images without masks, images outside the folders read),
the tree is written to disk and loaded as a run does. An oracle works out from the tree
what must happen: the load succeeds with exactly the expected samples, RGB pixels and
{0,1} masks, or a ``DataError`` names an offending file or folder. Anything else fails.
"""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from PIL import Image

from adtr import data
from adtr.errors import DataError

SIDE = 16  # every valid image is SIDE x SIDE


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Entry:
    """A file of the tree: its bytes and what a correct loader must make of them."""

    data: bytes
    kind: str  # "image", "mask", "broken" (image suffix, unreadable) or "other" (not an image)
    expected: np.ndarray | None = None  # image: RGB uint8 (H, W, 3); mask: bool (H, W)

    def __repr__(self) -> str:
        shape = None if self.expected is None else self.expected.shape
        return f"Entry({self.kind!r}, {len(self.data)} bytes, expected {shape})"

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis shows a failing example
        printer.text(repr(self))


@dataclass
class Tree:
    """Files and folders of one category, by path relative to the category folder."""

    files: dict[str, Entry] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    damages: list[str] = field(default_factory=list)  # what was done, for the failure report

    def add(self, path: str, entry: Entry) -> None:
        self.files[path] = entry
        self.dirs |= {str(p) for p in PurePosixPath(path).parents if str(p) != "."}

    def below(self, folder: str) -> list[str]:
        return [p for p in [*self.files, *self.dirs] if p.startswith(folder + "/")]

    def __repr__(self) -> str:
        empty = sorted(d for d in self.dirs if not self.below(d))
        return (f"Tree(damages={self.damages}, files={dict(sorted(self.files.items()))}, "
                f"empty_dirs={empty})")

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))

    def empty(self, folder: str) -> None:
        for path in self.below(folder):
            self.files.pop(path, None)
            self.dirs.discard(path)

    def remove(self, folder: str) -> None:
        self.empty(folder)
        self.dirs.discard(folder)

    def listed(self, folder: str) -> list[str]:
        """The visible files directly in ``folder``."""
        return sorted(p for p in self.files if str(PurePosixPath(p).parent) == folder
                      and not PurePosixPath(p).name.startswith("."))

    def write(self, category_dir: Path) -> None:
        for folder in self.dirs:
            (category_dir / folder).mkdir(parents=True, exist_ok=True)
        for path, entry in self.files.items():
            (category_dir / path).write_bytes(entry.data)


def _is_image(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in data.IMAGE_SUFFIXES


IMAGE_MODES = ("RGB", "L", "RGBA", "I;16")
MASK_STYLES = ("0/255", "0/1", "0/128/255", "1-bit", "16-bit 0/1", "16-bit", "colour")


def _image(rng: np.random.Generator, mode: str = "RGB") -> Entry:
    """A random image stored in ``mode``, with the RGB uint8 pixels a loader must give."""
    rgb = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    if mode == "RGB":
        stored, expected = rgb, rgb
    elif mode == "L":
        stored = np.asarray(Image.fromarray(rgb).convert("L"))
        expected = np.repeat(stored[..., None], 3, axis=2)
    elif mode == "RGBA":  # the colour channels count, the alpha channel is dropped
        alpha = rng.integers(0, 256, (SIDE, SIDE, 1), dtype=np.uint8)
        stored, expected = np.concatenate([rgb, alpha], axis=2), rgb
    else:  # 16 bit, scaled to 8 bit over the full 16-bit range
        stored = rng.integers(0, 65536, (SIDE, SIDE), dtype=np.uint16)
        gray = np.round(stored / 257).astype(np.uint8)
        expected = np.repeat(gray[..., None], 3, axis=2)
    return Entry(_png(stored), "image", expected)


def _mask(rng: np.random.Generator, style: str = "0/255",
          shape: tuple[int, int] = (SIDE, SIDE)) -> Entry:
    """A random mask written in ``style``; a loader must give True exactly where it is > 0."""
    binary = rng.random(shape) < 0.3
    binary[shape[0] // 2, shape[1] // 2] = True  # never empty
    if style == "0/255":
        stored = binary.astype(np.uint8) * 255
    elif style == "0/1":
        stored = binary.astype(np.uint8)
    elif style == "0/128/255":
        stored = np.where(binary, rng.choice([128, 255], shape), 0).astype(np.uint8)
    elif style == "1-bit":
        stored = binary
    elif style == "16-bit 0/1":
        stored = binary.astype(np.uint16)
    elif style == "16-bit":
        stored = np.where(binary, rng.integers(1, 65536, shape), 0).astype(np.uint16)
    else:  # one colour channel, any non-zero value
        stored = np.zeros((*shape, 3), np.uint8)
        stored[binary, rng.integers(0, 3)] = rng.integers(1, 256)
    return Entry(_png(stored), "mask", binary)


# --- damages: each changes the tree in place and says what it did (None: nothing to damage) ---

def _missing_folder(tree, draw, rng):
    folder = draw(st.sampled_from(sorted(tree.dirs)))
    tree.remove(folder)
    return f"removed {folder}"


def _empty_folder(tree, draw, rng):
    folder = draw(st.sampled_from(sorted(tree.dirs)))
    tree.empty(folder)
    return f"emptied {folder}"


def _new_empty_folder(tree, draw, rng):
    folder = draw(st.sampled_from(["test/new kind", "ground_truth/new kind", "train/good/sub"]))
    tree.dirs |= {folder, *(str(p) for p in PurePosixPath(folder).parents if str(p) != ".")}
    return f"new empty {folder}"


def _non_image_file(tree, draw, rng):
    folders = sorted(d for d in tree.dirs
                     if d == "train/good" or str(PurePosixPath(d).parent) == "test")
    if folders:
        path = f"{draw(st.sampled_from(folders))}/"
        path += draw(st.sampled_from(["notes.txt", "read me.md", "Thumbs.db"]))
        tree.add(path, Entry(b"not an image", "other"))
        return f"non-image {path}"


def _hidden_file(tree, draw, rng):
    """Hidden files (.DS_Store) are not data: they are ignored."""
    if tree.dirs:
        path = f"{draw(st.sampled_from(sorted(tree.dirs)))}/.DS_Store"
        tree.add(path, Entry(b"\0", "other"))
        return f"hidden {path}"


def _pngs(tree, *kinds):
    return sorted(p for p, e in tree.files.items() if e.kind in kinds)


def _unreadable(tree, draw, rng):
    targets = _pngs(tree, "image", "mask")
    if targets:
        path = draw(st.sampled_from(targets))
        whole = tree.files[path].data
        how = draw(st.sampled_from(["zero-byte", "truncated", "text"]))
        broken = {"zero-byte": b"", "text": b"this is not a PNG\n",
                  "truncated": whole[:draw(st.integers(0, len(whole) // 2))]}[how]
        tree.files[path] = Entry(broken, "broken")
        return f"{how} {path}"


def _mask_size(tree, draw, rng):
    targets = _pngs(tree, "mask")
    if targets:
        path = draw(st.sampled_from(targets))
        shape = draw(st.sampled_from([(SIDE - 4, SIDE - 4), (SIDE + 4, SIDE), (1, 1)]))
        tree.files[path] = _mask(rng, shape=shape)
        return f"{shape} mask {path}"


def _delete_test_image(tree, draw, rng):
    targets = [p for p in _pngs(tree, "image", "broken")
               if p.startswith("test/") and not p.startswith("test/good/")]
    if targets:
        path = draw(st.sampled_from(targets))
        del tree.files[path]
        return f"deleted {path}"


def _delete_mask(tree, draw, rng):
    targets = [p for p in tree.files if p.endswith("_mask.png")]
    if targets:
        path = draw(st.sampled_from(sorted(targets)))
        del tree.files[path]
        return f"deleted {path}"


def _stray_image(tree, draw, rng):
    """An image outside the folders a split reads: it must not be silently left out."""
    path = draw(st.sampled_from(["train", "test", "train/bad", "test/crack/more"])) + "/x.png"
    tree.add(path, _image(rng))
    return f"stray {path}"


DAMAGES = {f.__name__[1:]: f for f in (
    _missing_folder, _empty_folder, _new_empty_folder, _non_image_file, _hidden_file,
    _unreadable, _mask_size, _delete_test_image, _delete_mask,
    _stray_image)}


@st.composite
def damaged_trees(draw, first: str | None) -> tuple[str, str, Tree]:
    """(root name, category, tree): a tree with damage ``first`` and up to two random others."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    category = draw(st.sampled_from(["brick", "my category ü"]))
    defects = draw(st.sampled_from([["crack", "hole"], ["crack", "tache ø 数据"]]))
    stems = draw(st.sampled_from([["000", "001", "002"], ["a b", "ünï", "x_y"]]))
    mask_style = draw(st.sampled_from(MASK_STYLES))
    tree = Tree(damages=[f"masks {mask_style}"])

    def image() -> Entry:
        return _image(rng, draw(st.sampled_from(IMAGE_MODES)))

    for stem in stems[:draw(st.integers(1, 3))]:
        tree.add(f"train/good/{stem}.png", image())
    for stem in stems[:draw(st.integers(1, 2))]:
        tree.add(f"test/good/{stem}.png", image())
    for defect in defects:
        for stem in stems[:draw(st.integers(1, 2))]:
            tree.add(f"test/{defect}/{stem}.png", image())
            tree.add(f"ground_truth/{defect}/{stem}_mask.png", _mask(rng, mask_style))
    others = draw(st.lists(st.sampled_from(sorted(DAMAGES)), max_size=2))
    for name in [first, *others] if first else others:
        tree.damages.append(DAMAGES[name](tree, draw, rng) or f"({name}: nothing to damage)")
    root = draw(st.sampled_from(["root", "data root", "données ü 数据"]))
    return root, category, tree


# --- the oracle ---

def expected_faults(tree: Tree) -> set[str]:
    """Paths (relative to the category) that a DataError may name; empty: the load works."""
    faults: set[str] = set()
    good = tree.listed("train/good")
    faults |= {p for p in good if not _is_image(p)}
    if "train" not in tree.dirs:
        faults.add("train")
    elif not any(_is_image(p) for p in good):
        faults.add("train/good")
    used_masks, labels = set(), set()
    for folder in sorted(d for d in tree.dirs if str(PurePosixPath(d).parent) == "test"):
        for path in tree.listed(folder):
            if not _is_image(path):
                faults.add(path)
                continue
            defect = PurePosixPath(folder).name
            labels.add(int(defect != "good"))
            mask = f"ground_truth/{defect}/{PurePosixPath(path).stem}_mask.png"
            if defect == "good":
                continue
            if mask not in tree.files:
                faults.add(path)  # an image without its mask
                continue
            used_masks.add(mask)
            if tree.files[mask].kind == "broken" or tree.files[mask].expected.shape != (
                    SIDE, SIDE):
                faults.add(mask)  # unreadable, or not its image's size
    if "test" not in tree.dirs or labels != {0, 1}:
        faults.add("test")  # missing, no images, or only one kind
    for path, entry in tree.files.items():
        parts = PurePosixPath(path).parts
        if parts[0] in ("train", "test") and _is_image(path) and not parts[-1].startswith("."):
            if entry.kind == "broken":
                faults.add(path)
            if len(parts) != 3 or (parts[0] == "train" and parts[1] != "good"):
                faults.add(path)  # a stray image, outside train/good and test/<kind>
        if (parts[0] == "ground_truth" and len(parts) == 3 and path.endswith("_mask.png")
                and path not in used_masks):
            faults.add(path)  # a mask without its test image
    return faults


def _names(message: str, path: Path) -> bool:
    """The message names ``path``: the whole path, or its folder and its quoted name."""
    def whole(p: Path) -> bool:
        return re.search(re.escape(str(p)) + "(?!/)", message) is not None

    return whole(path) or (whole(path.parent) and repr(path.name) in message)


def _expected_input(rgb: np.ndarray, size: int) -> np.ndarray:
    resized = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return ((resized / 255.0 - data.IMAGENET_MEAN) / data.IMAGENET_STD).transpose(2, 0, 1)


def _expected_mask(binary: np.ndarray, size: int) -> np.ndarray:
    image = Image.fromarray(binary.astype(np.uint8) * 255).resize((size, size), Image.NEAREST)
    return np.asarray(image) > 0


def _check_load(root: Path, category: str, tree: Tree, size: int) -> None:
    """Load everything as a run does and compare with what the tree holds."""
    train = data.list_samples(root, category, "train")
    test = data.list_samples(root, category, "test")
    loaded = {s.image: data.load_image(s.image, size) for s in train + test}
    masks = data.load_masks(test, size)
    info = data.describe_root(root, category)

    folder = root / category
    images = {p: e for p, e in tree.files.items() if e.kind == "image"}
    assert sorted(str(s.image.relative_to(folder)) for s in train) == sorted(
        p for p in images if p.startswith("train/"))
    assert sorted(str(s.image.relative_to(folder)) for s in test) == sorted(
        p for p in images if p.startswith("test/"))  # every image, none skipped
    for sample in test:
        defect = sample.image.parent.name
        assert (sample.label, sample.defect) == (int(defect != "good"), defect)
        assert sample.mask == (None if defect == "good" else
                               folder / "ground_truth" / defect / f"{sample.image.stem}_mask.png")
    for path, (array, original) in loaded.items():
        expected = images[str(path.relative_to(folder))].expected
        assert original == (SIDE, SIDE) and array.shape == (3, size, size)
        np.testing.assert_allclose(array, _expected_input(expected, size), atol=0.03)
    assert masks.dtype == bool and masks.shape == (len(test), size, size)
    for sample, mask in zip(test, masks, strict=True):
        if sample.mask is None:
            assert not mask.any()
        else:
            binary = tree.files[str(sample.mask.relative_to(folder))].expected
            np.testing.assert_array_equal(mask, _expected_mask(binary, size))
    assert (info["n_train"], info["n_test_good"], info["n_test_anomalous"]) == (
        len(train), sum(s.label == 0 for s in test), sum(s.label == 1 for s in test))


# Each kind of damage gets its own examples (hypothesis favours short lists of early choices).
@pytest.mark.parametrize("first", [None, *sorted(DAMAGES)])
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fuzz=st.data(), size=st.sampled_from([SIDE, 8]))
def test_damaged_trees_load_correctly_or_raise_a_data_error_naming_the_file(
        first, fuzz, size) -> None:
    """Random damage to a data tree: a correct load or a DataError naming the damage."""
    root_name, category, tree = fuzz.draw(damaged_trees(first))
    faults = expected_faults(tree)
    note(f"expected faults: {sorted(faults)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / root_name
        tree.write(root / category)
        try:
            _check_load(root, category, tree, size)
        except DataError as error:
            assert faults, f"no fault expected, got DataError: {error}"
            named = [f for f in faults if _names(str(error), root / category / f)]
            assert named, f"{error} names none of the faults {sorted(faults)}"
        else:
            assert not faults, f"expected a DataError naming one of {sorted(faults)}"
