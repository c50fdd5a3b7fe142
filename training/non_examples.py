"""Things that are not what a model reads, as uploads: the non-examples the outlier score is
fitted on (``training.outliers``) and measured on (``training.evaluate``).

Kinds made for fitting and kinds only ever measured (held out) differ in what they are, not just
in which images: letters in half the typefaces are fitted, letters in the other half, cut from a
scanned page of text, and photographs are only measured; so are stars, hearts and arrows (the
fitted shapes are polygons, rings, crosses and spirals), garments for the digit model, empty
ruled paper.
"""
from __future__ import annotations

import math
import string
from functools import lru_cache
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from digitlens.prepare.normalise import center_by_mass, fit_longer_side
from digitlens.prepare.primitives import crop_to_ink
from training.data import fetch_dataset, load_split
from training.presentations import GARMENT_KINDS, KINDS, encode, load_test_set, product_photo, rubber_stamp
from training.typefaces import typeface_files

EVALUATION_SIZE = 400       # uploads of each kind measured
FIT_SEED, EVALUATION_SEED = 17, 2027
PRESENTERS = ("mnist-png", "canvas", "touch-drawing", "thin-pen-large-canvas", "bold-marker-tight",
              "heavy-blur", "low-resolution", "scan")      # cheap ways an image of ink is sent (training.presentations)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "moon", "grass", "gravel", "brick", "coins",
          "clock", "horse", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel")


def as_ink(coverage: np.ndarray) -> np.ndarray:
    """Any drawing (0-1 coverage, ink bright) as an MNIST-like uint8 28x28: cropped, 20 px, centred."""
    return np.round(center_by_mass(fit_longer_side(crop_to_ink(coverage.astype(np.float32)), 20), 28) * 255).astype(np.uint8)


def drawn(paint, size: int = 200) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    paint(ImageDraw.Draw(canvas), size)
    return np.asarray(canvas, np.float32) / 255


@lru_cache(maxsize=None)
def font_of(path: Path) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), 96)


def letter(font_path: Path, rng: np.random.Generator) -> np.ndarray | None:
    font = font_of(font_path)
    glyph = rng.choice(list(string.ascii_letters))
    canvas = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(canvas).text((40, 20), glyph, fill=255, font=font)
    ink = np.asarray(canvas.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR), np.float32) / 255
    return as_ink(ink) if ink.max() > 0 else None


def scribble(rng: np.random.Generator) -> np.ndarray:
    def paint(draw, size):
        for _ in range(int(rng.integers(1, 4))):
            points = [tuple(rng.uniform(0.1, 0.9, 2) * size) for _ in range(int(rng.integers(3, 9)))]
            draw.line(points, fill=255, width=int(rng.integers(6, 16)), joint="curve")
    return as_ink(drawn(paint))


def polygon_points(rng, sides: int, size: int, radius_of=lambda k: 1.0) -> list[tuple[float, float]]:
    turn = rng.uniform(0, 2 * math.pi)
    return [(size / 2 + 0.4 * size * radius_of(k) * math.cos(turn + 2 * math.pi * k / sides),
             size / 2 + 0.4 * size * radius_of(k) * math.sin(turn + 2 * math.pi * k / sides)) for k in range(sides)]


def fitted_shape(rng: np.random.Generator) -> np.ndarray:
    """A polygon, a ring or ellipse, a cross or a spiral, outlined or filled."""
    width, form = int(rng.integers(6, 16)), int(rng.integers(4))

    def paint(draw, size):
        if form == 0:
            points = polygon_points(rng, int(rng.integers(3, 9)), size)
            draw.polygon(points, fill=255 if rng.random() < 0.3 else None, outline=255, width=width)
        elif form == 1:
            squash = rng.uniform(0.5, 1)
            draw.ellipse([20, 20 + 80 * (1 - squash), size - 20, size - 20 - 80 * (1 - squash)], outline=255, width=width)
        elif form == 2:
            a, b = polygon_points(rng, 4, size)[:2], polygon_points(rng, 4, size)[2:]
            draw.line([a[0], b[0]], fill=255, width=width)
            draw.line([a[1], b[1]], fill=255, width=width)
        else:
            turns = rng.uniform(1.5, 3)
            points = [(size / 2 + 0.45 * size * t / turns * math.cos(2 * math.pi * t), size / 2 + 0.45 * size * t / turns
                       * math.sin(2 * math.pi * t)) for t in np.linspace(0.05, turns, 80)]
            draw.line(points, fill=255, width=width, joint="curve")
    return as_ink(drawn(paint))


def held_out_shape(rng: np.random.Generator) -> np.ndarray:
    """A star, a heart, an arrow or a smiling face: shapes never fitted."""
    width, form = int(rng.integers(6, 16)), int(rng.integers(4))

    def paint(draw, size):
        if form == 0:
            points = polygon_points(rng, 10, size, lambda k: 1.0 if k % 2 == 0 else 0.4)
            draw.polygon(points, fill=255 if rng.random() < 0.3 else None, outline=255, width=width)
        elif form == 1:
            t = np.linspace(0, 2 * math.pi, 80)
            x, y = 16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
            draw.line(list(zip(size / 2 + 5 * x, size / 2 - 5 * y)), fill=255, width=width, joint="curve")
        elif form == 2:
            draw.line([(30, size / 2), (size - 40, size / 2)], fill=255, width=width)
            draw.line([(size - 90, size / 2 - 50), (size - 35, size / 2), (size - 90, size / 2 + 50)], fill=255, width=width)
        else:
            draw.ellipse([20, 20, size - 20, size - 20], outline=255, width=width)
            draw.ellipse([65, 70, 80, 85], fill=255)
            draw.ellipse([120, 70, 135, 85], fill=255)
            draw.arc([60, 80, 140, 150], 20, 160, fill=255, width=width)
    return as_ink(drawn(paint))


def pattern(rng: np.random.Generator) -> np.ndarray:
    """Blurred noise cut at a level, a grating or a checkerboard."""
    form = int(rng.integers(3))
    if form == 0:
        noise = Image.fromarray((rng.random((20, 20)) * 255).astype(np.uint8)).resize((200, 200), Image.Resampling.BICUBIC)
        field = np.asarray(noise.filter(ImageFilter.GaussianBlur(4)), np.float32) / 255
        return as_ink((field > np.quantile(field, rng.uniform(0.5, 0.85))).astype(np.float32))
    yy, xx = np.mgrid[0:200, 0:200] / 200
    period = rng.uniform(0.08, 0.3)
    if form == 1:
        angle = rng.uniform(0, math.pi)
        return as_ink((np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0).astype(np.float32))
    return as_ink(((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32))


def photo_crop(rng: np.random.Generator) -> bytes:
    """A crop of a photograph (scikit-image's samples: a cat, a rocket, coffee, coins, gravel ...) as JPEG."""
    image = getattr(skimage.data, PHOTOS[int(rng.integers(len(PHOTOS)))])()
    return crop_of(image[..., :3] if image.ndim == 3 else image, rng)


def crop_of(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """A square crop of a third of ``image``'s shorter side or more, resized to 96-400 px, as JPEG."""
    side = int(rng.integers(min(image.shape[:2]) // 3, min(image.shape[:2]) + 1))
    top, left = int(rng.integers(0, image.shape[0] - side + 1)), int(rng.integers(0, image.shape[1] - side + 1))
    crop = Image.fromarray(image[top:top + side, left:left + side]).resize((int(rng.integers(96, 400)),) * 2)
    return encode(crop.convert("RGB"), "JPEG", quality=85)


def text_crop(rng: np.random.Generator) -> bytes:
    """A word or two cut from a scanned page of text (scikit-image's `text` and `page`)."""
    image = skimage.data.text() if rng.random() < 0.5 else skimage.data.page()
    height, width = int(rng.integers(30, 60)), int(rng.integers(40, 140))
    top, left = int(rng.integers(0, image.shape[0] - height)), int(rng.integers(0, image.shape[1] - width))
    return encode(Image.fromarray(image[top:top + height, left:left + width]), "PNG")


def ruled_paper(rng: np.random.Generator) -> bytes:
    """An empty sheet: ruled lines and a margin line, perhaps a stamp, scanned or photographed."""
    page = np.full((700, 500), rng.uniform(0.85, 0.97), np.float32)
    for y in range(int(rng.integers(30, 60)), 700, int(rng.integers(28, 40))):
        page[y:y + 2] *= 0.8
    page[:, 60:62] *= 0.75
    if rng.random() < 0.3:
        page[400:520, 300:420] *= 1 - 0.5 * rubber_stamp(rng, 120)
    page += rng.normal(0, 0.01, page.shape).astype(np.float32)
    image = Image.fromarray(np.clip(page * 255, 0, 255).astype(np.uint8))
    return encode(image, "JPEG", quality=85) if rng.random() < 0.5 else encode(image, "PNG")


def presented(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    return KINDS[PRESENTERS[int(rng.integers(len(PRESENTERS)))]](ink, rng)


def fonts() -> tuple[list[Path], list[Path]]:
    """The typefaces split in two: every other one fitted, the rest only measured."""
    files = typeface_files()
    return files[::2], files[1::2]


def letters(font_files: list[Path], rng: np.random.Generator) -> bytes:
    while (ink := letter(font_files[int(rng.integers(len(font_files)))], rng)) is None:
        pass
    return presented(ink, rng)


def outlier_kinds(dataset: str, held_out: bool) -> dict:
    """Makers of one upload each from a generator, by kind: fitted ones or held-out ones."""
    fitted_fonts, other_fonts = fonts()
    if not held_out:
        kinds = {"letters": lambda rng: letters(fitted_fonts, rng),
                 "scribbles": lambda rng: presented(scribble(rng), rng),
                 "shapes": lambda rng: presented(fitted_shape(rng), rng),
                 "patterns": lambda rng: presented(pattern(rng), rng)}
        if dataset == "fashion-mnist":
            digits, _ = load_split(fetch_dataset("mnist"), "train")
            kinds["digits"] = lambda rng: presented(digits[int(rng.integers(len(digits)))].numpy(), rng)
        return kinds
    kinds = {"letters-other-typefaces": lambda rng: letters(other_fonts, rng),
             "text-crops": text_crop,
             "stars-hearts-arrows": lambda rng: presented(held_out_shape(rng), rng),
             "photo-crops": photo_crop,
             "ruled-paper": ruled_paper}
    if dataset == "mnist":
        garments, _ = load_test_set("fashion-mnist")
        kinds["garments"] = lambda rng: (product_photo(garments[int(rng.integers(len(garments)))], rng)
                                         if rng.random() < 0.5 else GARMENT_KINDS["fashion-png"](
                                             garments[int(rng.integers(len(garments)))], rng))
    else:
        digits, _ = load_test_set("mnist")
        kinds["digits-test"] = lambda rng: presented(digits[int(rng.integers(len(digits)))], rng)
    return kinds


def outlier_set(dataset: str, kind: str, size: int, seed: int) -> list[bytes]:
    kinds = {**outlier_kinds(dataset, False), **outlier_kinds(dataset, True)}
    rng = np.random.default_rng([seed, sorted(kinds).index(kind)])
    return [kinds[kind](rng) for _ in range(size)]
