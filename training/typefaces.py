"""Digits set in typefaces: the shapes MNIST's writers seldom make, for training.

MNIST's 500 writers mostly write a one as a bare stroke, a nine with a straight tail and a two
without a loop. Other people write a one with a flag and a foot, a curled nine, a looped two, a
seven with a bar. Handwriting fonts (six "Because We Had To" hands, Daniel Kahn Gillmor's, Breip,
Kristi, Klee, Rufscript, Humor Sans, Comic Neue, Kaushan Script) and ordinary book and sans faces
have them. Each digit is rendered like an MNIST digit (ink light on black, longer side 20 px,
centred by mass in 28x28) and then trained on with the same augmentation as the handwriting, so
it is slanted, thickened, blurred and shrunk like the rest.

The fonts come from the Debian packages in TYPEFACE_PACKAGES (``make system-deps``).
"""
from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from digitlens.prepare.normalise import center_by_mass, fit_longer_side
from digitlens.prepare.primitives import crop_to_ink

TYPEFACE_PACKAGES = (
    "fonts-bwht", "fonts-dkg-handwriting", "fonts-breip", "fonts-kristi", "fonts-klee", "fonts-rufscript",
    "fonts-humor-sans", "fonts-comic-neue", "fonts-kaushanscript", "fonts-dejavu-core", "fonts-liberation",
    "fonts-freefont-ttf", "fonts-urw-base35", "fonts-open-sans", "fonts-sil-andika", "fonts-opendyslexic",
)
# Faces in those packages made for symbols or mathematics, and monospaced faces, whose dotted
# and slashed zeros no hand writes.
NOT_HANDS = ("D050000L*", "StandardSymbols*", "*Mono*", "DejaVuMathTeXGyre*")
RENDER_SIZE = 96            # pixels per em when a glyph is drawn, before it is reduced
DIGIT_BOX = 20              # the longer side of the ink in the 28x28 frame, as in MNIST
FRAME = 28


class TypefaceError(RuntimeError):
    """The typefaces could not be found."""


def typeface_files(packages: tuple[str, ...] = TYPEFACE_PACKAGES) -> list[Path]:
    """The TrueType and OpenType files the packages install, less the faces in NOT_HANDS."""
    files = []
    for package in packages:
        listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
        if listing.returncode != 0:
            raise TypefaceError(f"the Debian package {package} is not installed: run `make system-deps`")
        files += [Path(line) for line in listing.stdout.splitlines() if line.lower().endswith((".ttf", ".otf"))]
    return sorted(f for f in set(files) if f.is_file() and not any(fnmatch.fnmatch(f.name, p) for p in NOT_HANDS))


def render_digit(font: ImageFont.FreeTypeFont, digit: int) -> np.ndarray | None:
    """One digit as MNIST has it: float ink in [0, 1] on black, 28x28; None if the face has no glyph."""
    canvas = Image.new("L", (2 * RENDER_SIZE, 2 * RENDER_SIZE), 0)
    ImageDraw.Draw(canvas).text((RENDER_SIZE // 2, RENDER_SIZE // 4), str(digit), fill=255, font=font)
    ink = np.asarray(canvas, dtype=np.float32) / 255.0
    if ink.max() == 0:
        return None
    return center_by_mass(fit_longer_side(crop_to_ink(ink), DIGIT_BOX), FRAME)


def has_distinct_digits(glyphs: list[np.ndarray]) -> bool:
    """False for a face that draws one box ("tofu") for every digit it lacks."""
    return all(not np.array_equal(glyphs[0], other) for other in glyphs[1:])


def typeface_digits(files: list[Path] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every digit in every face: uint8 images (N, 28, 28) and their labels (N,), as load_split gives."""
    images, labels = [], []
    for file in typeface_files() if files is None else files:
        font = ImageFont.truetype(str(file), RENDER_SIZE)
        glyphs = [render_digit(font, digit) for digit in range(10)]
        if any(glyph is None for glyph in glyphs) or not has_distinct_digits(glyphs):
            continue
        images += glyphs
        labels += range(10)
    if not images:
        raise TypefaceError("no typeface with digits was found")
    stacked = np.round(np.stack(images) * 255).astype(np.uint8)
    return torch.from_numpy(stacked), torch.tensor(labels, dtype=torch.int64)
