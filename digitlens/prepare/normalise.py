"""The last step: ink or an object, found and cut out, put in the frame the network takes, as
its training set was made (MNIST: scaled to the content size and centred by mass; Fashion-MNIST:
trimmed, fitted, padded to a square, the ground black), then normalised.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from digitlens.config import ModelSpec
from digitlens.prepare.errors import InputError
from digitlens.prepare.primitives import ink_box, side_of

TRIM_TOLERANCE = 0.05      # photo: rows and columns within this of the ground's shade are trimmed ...
FILLS_FRAME = 0.9          # ... unless the object already spans this share of the image's longer side


@dataclass(frozen=True)
class PreparedImage:
    tensor: np.ndarray      # (1, size, size) float32, normalised as in training
    pixels: np.ndarray      # (size, size) uint8, what the network sees before normalisation
    looks_like_number: bool = False     # the upload holds several digits in a row (read it with prepare_number)
    strip: np.ndarray | None = None     # ink wide enough to be touching digits, as the string reader's input


def fit_longer_side(ink: np.ndarray, side: int) -> np.ndarray:
    """Scale so the longer side is ``side`` pixels, keeping the aspect ratio."""
    height, width = ink.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.clip(np.asarray(Image.fromarray(ink).resize(size, resample)), 0, 1)


def center_by_mass(ink: np.ndarray, size: int) -> np.ndarray:
    """Place ``ink`` in a size x size frame with its centre of mass at the frame's centre."""
    height, width = ink.shape
    total = float(ink.sum())
    com_row = float(ink.sum(axis=1) @ np.arange(height)) / total if total > 0 else (height - 1) / 2
    com_col = float(ink.sum(axis=0) @ np.arange(width)) / total if total > 0 else (width - 1) / 2
    top = min(max(round((size - 1) / 2 - com_row), 0), size - height)
    left = min(max(round((size - 1) / 2 - com_col), 0), size - width)
    frame = np.zeros((size, size), dtype=np.float32)
    frame[top:top + height, left:left + width] = ink
    return frame


def trim_to_content(grey: np.ndarray, ground: float) -> np.ndarray:
    """Cut off the rows and columns at the edges that are all within TRIM_TOLERANCE of ``ground``.
    An object that (nearly) fills the frame is left as it is: trimming a pixel or two would only
    shift and rescale it (a Fashion-MNIST image itself stays exactly as it is)."""
    content = np.abs(grey - ground) > TRIM_TOLERANCE
    if not content.any():
        raise InputError("nothing found: the image is one flat shade", "blank")
    top, left, bottom, right = ink_box(content)
    if side_of((top, left, bottom, right)) >= FILLS_FRAME * max(grey.shape):
        return grey
    return grey[top:bottom, left:right]


def pad_to_square(grey: np.ndarray, side: int, ground: float) -> np.ndarray:
    """Centre ``grey`` in a side x side square filled with ``ground``."""
    height, width = grey.shape
    top, left = (side - height) // 2, (side - width) // 2
    square = np.full((side, side), ground, dtype=np.float32)
    square[top:top + height, left:left + width] = grey
    return square


def ground_to_black(grey: np.ndarray, ground: float) -> np.ndarray:
    """Levels that take the ground to 0 and the shade farthest from it to 1: a product on white
    is negated, one on black kept, and a grey or tinted ground becomes the training set's black."""
    if ground > 0.5:
        return np.clip((ground - grey) / ground, 0, 1)
    return np.clip((grey - ground) / (1 - ground), 0, 1)


def digit_input(ink: np.ndarray, spec: ModelSpec) -> PreparedImage:
    """A digit's ink, cropped to it, as MNIST presents a digit: its longer side scaled to the
    model's content size, centred by mass in the input frame."""
    return as_network_input(center_by_mass(fit_longer_side(ink, spec.content_size), spec.input_size), spec)


def as_network_input(light_on_dark: np.ndarray, spec: ModelSpec) -> PreparedImage:
    network_input = light_on_dark if spec.ink == "light" else 1.0 - light_on_dark
    pixels = np.round(network_input * 255).astype(np.uint8)
    tensor = spec.normalise(network_input).astype(np.float32)[None]
    return PreparedImage(tensor=tensor, pixels=pixels)


STRIP_HEIGHT = 32           # a run of touching digits as the string reader sees it: the ink's height scaled to
STRIP_CONTENT = 24          # STRIP_CONTENT rows, centred in STRIP_HEIGHT, STRIP_MARGIN empty columns each side,
STRIP_MARGIN = 4            # and as many columns after as make the width a multiple of STRIP_STEP (the columns
STRIP_STEP = 2              # of the strip a column of the reader's output stands for)


def strip_input(ink: np.ndarray) -> np.ndarray:
    """A run's ink (light on black, cropped to it) as the string reader's input: (STRIP_HEIGHT, W)
    float32 in [0, 1], the ink scaled to STRIP_CONTENT rows and its own brightest pixel to 1."""
    ink = ink.astype(np.float32) / max(float(ink.max()), 1e-6)
    width = max(1, round(ink.shape[1] * STRIP_CONTENT / ink.shape[0]))
    scaled = np.asarray(Image.fromarray(ink).resize((width, STRIP_CONTENT), Image.Resampling.BILINEAR), np.float32)
    total = width + 2 * STRIP_MARGIN
    strip = np.zeros((STRIP_HEIGHT, total + -total % STRIP_STEP), np.float32)
    top = (STRIP_HEIGHT - STRIP_CONTENT) // 2
    strip[top:top + STRIP_CONTENT, STRIP_MARGIN:STRIP_MARGIN + width] = np.clip(scaled, 0, 1)
    return strip
