"""Non-examples the digit network is trained on (outlier exposure): things that are not one digit,
presented as uploads and prepared as the endpoint prepares them, so the network learns what
they look like by the time they reach it.

Their kinds are not those `make evaluate` holds out (training.non_examples: letters in the other
typefaces, text crops, stars/hearts/arrows, crops of the sixteen photographs, empty ruled paper):
letters in the fitted typefaces, scribbles, fitted shapes, patterns, crops of other photographs
(a motorcycle, cells, faces, a logo), garments (Fashion-MNIST's training split), and two digits
run together (a piece a number reader must reject). Half a digit was tried
and left out: the left half of a 6 or the top of a 9 is a digit to a person too. A non-example
whose ink is a bar (a ruled line, a crop's edge) is left out too: a 1 looks like that. So was
empty squared paper: preparation leaves one of its lines, a bar, or refuses it as blank.
"""
from __future__ import annotations

import numpy as np
import skimage.data

from digitlens.config import ModelSpec
from digitlens.prepare import InputError, prepare
from training.common import validation_split_index
from training.data import DEFAULT_CACHE, fetch_dataset, load_split
from training.non_examples import as_ink, crop_of, fitted_shape, fonts, letter, pattern, presented, scribble
from training.presentations import GARMENT_KINDS, product_photo

MEASURED_KINDS_TRAINED_ON = ("letters", "scribbles", "shapes", "patterns", "garments")   # make evaluate's kinds
                            # (training.non_examples) whose kind these are: not held out from a network trained on them
POOL_SIZE = 12000           # prepared non-examples a training run draws from
POOL_SEED = 31
POOL_VERSION = 2            # bump when a kind changes, so a cached pool is made anew
MISSED_IN_A_ROW = 50        # a kind refused (or a bar) so often is left out: preparation catches it without the network
MAX_OVERLAP = 4             # two digits run together overlap by this many pixels at most (more made one 8 of 3 and 0)
STROKE_ASPECT = 0.3         # a prepared non-example whose ink is this narrow for its length is left out: it is a 1


def training_photos() -> list[np.ndarray]:
    """Photographs of scikit-image's that the held-out photo crops never use."""
    faces = skimage.data.lfw_subset()
    return [skimage.data.stereo_motorcycle()[0], skimage.data.cell(), skimage.data.microaneurysms(),
            skimage.data.logo()[..., :3], *(np.round(face * 255).astype(np.uint8) for face in faces[::10])]


def run_together(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two digits side by side, overlapping by up to MAX_OVERLAP pixels of 28: no one digit."""
    first, second = (digits[int(rng.integers(len(digits)))].astype(np.float32) / 255 for _ in range(2))
    overlap = int(rng.integers(0, MAX_OVERLAP + 1))
    canvas = np.zeros((28, 56 - overlap), np.float32)
    canvas[:, :28] = first
    canvas[:, 28 - overlap:] = np.maximum(canvas[:, 28 - overlap:], second)
    return as_ink(canvas)


def is_a_bar(pixels: np.ndarray) -> bool:
    """Whether the ink of a prepared image is a bar, STROKE_ASPECT as wide as long or less."""
    rows, cols = np.flatnonzero((pixels > 76).any(1)), np.flatnonzero((pixels > 76).any(0))
    if rows.size == 0:
        return True
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    return min(height, width) <= STROKE_ASPECT * max(height, width)


def exposure_kinds() -> dict:
    """Makers of one upload each, by kind (see the module's docstring)."""
    fitted_fonts, _ = fonts()
    images, _ = load_split(fetch_dataset("mnist"), "train")
    _, training = validation_split_index(len(images), 5000, 1)
    digits = images[training].numpy()
    garments, _ = load_split(fetch_dataset("fashion-mnist"), "train")
    garments = garments.numpy()
    photos = training_photos()

    def a_letter(rng):
        while (ink := letter(fitted_fonts[int(rng.integers(len(fitted_fonts)))], rng)) is None:
            pass
        return presented(ink, rng)

    def a_garment(rng):
        garment = garments[int(rng.integers(len(garments)))]
        return product_photo(garment, rng) if rng.random() < 0.5 else GARMENT_KINDS["fashion-png"](garment, rng)

    return {"letters": a_letter,
            "scribbles": lambda rng: presented(scribble(rng), rng),
            "shapes": lambda rng: presented(fitted_shape(rng), rng),
            "patterns": lambda rng: presented(pattern(rng), rng),
            "other-photo-crops": lambda rng: crop_of(photos[int(rng.integers(len(photos)))], rng),
            "garments": a_garment,
            "two-digits-run-together": lambda rng: presented(run_together(digits, rng), rng)}


def exposure_pool(spec: ModelSpec, size: int = POOL_SIZE, seed: int = POOL_SEED) -> np.ndarray:
    """``size`` non-examples as the network sees them, (N, 28, 28) uint8, the kinds taking turns;
    an upload that preparation refuses (the endpoint would: nothing to learn) or that comes out a
    bar is replaced by another of its kind, and a kind that misses MISSED_IN_A_ROW times running is
    left out. Cached."""
    path = DEFAULT_CACHE.parent / f"exposure-{size}-{seed}-v{POOL_VERSION}.npy"
    if path.exists():
        return np.load(path)
    kinds = exposure_kinds()
    rng = np.random.default_rng(seed)
    names, pool, missed = sorted(kinds), [], 0
    while len(pool) < size and names:
        name = names[len(pool) % len(names)]
        try:
            pixels = prepare(kinds[name](rng), spec).pixels
        except InputError:
            pixels = None
        if pixels is not None and not is_a_bar(pixels):
            pool.append(pixels)
            missed = 0
        elif (missed := missed + 1) == MISSED_IN_A_ROW:
            names.remove(name)
            missed = 0
    pool = np.stack(pool)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, pool)
    return pool
