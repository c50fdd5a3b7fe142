"""Written numbers for evaluation: 2 to 6 MNIST test digits (writers the model never trained on)
set side by side, apart, with their size, spacing and baseline varied, presented three ways:

    number-canvas   the page's canvas: dark strokes on a transparent ground, 1-4 times wider than tall
    number-brush    a brush tool: the strokes' centre lines drawn again with a round brush, dark on white
    number-photo    a phone photo of the number on paper (uneven light, noise, blur, JPEG)

Each upload comes with its number (a string) and the digits' boxes in its pixels. Made by code
with a fixed seed and not cached: 300 canvases or brush drawings take a few seconds, 300 photos
about a minute and a half.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter
from skimage.morphology import skeletonize

from training.augment import brush_along
from training.presentations import encode, load_test_set

NUMBER_SEED = 2029
NUMBER_LENGTHS = (2, 6)         # digits per number, both included
NUMBER_SET_SIZE = 300           # numbers of each kind
DIGIT_HEIGHT = 56               # px of a composed digit before its own scale (MNIST's 20 px of ink, doubled and more)


def compose_number(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """MNIST digits (uint8 28x28, light on black) written in a row: coverage in [0, 1] and each
    digit's box (x0, y0, x1, y1). Each is scaled by 0.8-1.15, moved up or down by up to a tenth of
    its height, and set 0.12-0.6 of a height after the one before (never touching)."""
    pieces, heights = [], []
    for digit in digits:
        scale = DIGIT_HEIGHT / 20 * rng.uniform(0.8, 1.15)
        big = np.asarray(Image.fromarray(digit).resize((round(28 * scale),) * 2, Image.Resampling.BILINEAR),
                         dtype=np.float32) / 255
        rows, cols = np.flatnonzero(big.max(1) > 0.1), np.flatnonzero(big.max(0) > 0.1)
        pieces.append(big[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
        heights.append(rows[-1] + 1 - rows[0])
    height = max(heights)
    margin = round(0.4 * height)
    shifts = [round(rng.uniform(-0.1, 0.1) * h) for h in heights]
    gaps = [round(rng.uniform(0.12, 0.6) * height) for _ in pieces[1:]]
    width = 2 * margin + sum(piece.shape[1] for piece in pieces) + sum(gaps)
    strip = np.zeros((height + 2 * margin + round(0.2 * height), width), np.float32)
    boxes, x = [], margin
    for index, piece in enumerate(pieces):
        top = margin + round(0.1 * height) + (height - piece.shape[0]) + shifts[index]     # on a shared baseline
        strip[top:top + piece.shape[0], x:x + piece.shape[1]] = piece
        boxes.append((x, top, x + piece.shape[1], top + piece.shape[0]))
        x += piece.shape[1] + (gaps[index] if index < len(gaps) else 0)
    return strip, boxes


def digit_height(boxes) -> int:
    return max(y1 - y0 for _, y0, _, y1 in boxes)


def resized(coverage: np.ndarray, factor: float) -> np.ndarray:
    size = (max(1, round(coverage.shape[1] * factor)), max(1, round(coverage.shape[0] * factor)))
    return np.asarray(Image.fromarray(coverage).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def scaled_boxes(boxes, factor: float, offset: tuple[int, int] = (0, 0)) -> list[tuple[int, int, int, int]]:
    return [(math.floor(x0 * factor) + offset[0], math.floor(y0 * factor) + offset[1],
             math.ceil(x1 * factor) + offset[0], math.ceil(y1 * factor) + offset[1]) for x0, y0, x1, y1 in boxes]


def number_canvas(strip: np.ndarray, boxes, rng: np.random.Generator):
    """The page's canvas: the tallest digit 60-160 px, dark strokes, transparent ground."""
    factor = rng.uniform(60, 160) / digit_height(boxes)
    coverage = np.clip(resized(strip, factor), 0, 1)
    drawing = np.zeros((*coverage.shape, 4), np.uint8)
    drawing[..., :3] = rng.integers(0, 60, 3)
    drawing[..., 3] = np.round(coverage * 255)
    return encode(Image.fromarray(drawing), "PNG"), scaled_boxes(boxes, factor)


def number_brush(strip: np.ndarray, boxes, rng: np.random.Generator):
    """A brush tool on a phone or tablet, the tallest digit 60-160 px: the centre lines drawn
    again with one round brush, 3-12 % of that height wide, dark on white."""
    factor = rng.uniform(60, 160) / digit_height(boxes)
    centre_lines = skeletonize(resized(strip, factor) > 0.5)
    radius = rng.uniform(0.015, 0.06) * digit_height(boxes) * factor
    coverage = brush_along(centre_lines, radius)
    colour = rng.integers(0, 90, 3)
    drawing = np.round(255 - coverage[..., None] * (255 - colour)).astype(np.uint8)
    grown = math.ceil(radius)
    found = [(max(0, x0 - grown), max(0, y0 - grown), x1 + grown, y1 + grown) for x0, y0, x1, y1 in scaled_boxes(boxes, factor)]
    return encode(Image.fromarray(drawing), "PNG"), found


def number_photo(strip: np.ndarray, boxes, rng: np.random.Generator):
    """A 1600x1200 phone photo of the number written on cream paper, spanning 35-75 % of the
    photo's width (no more than 60 % of its height), under uneven light, with noise and blur."""
    width, height = 1600, 1200
    factor = min(rng.uniform(0.35, 0.75) * width / strip.shape[1], 0.6 * height / strip.shape[0])
    coverage = np.clip(resized(strip, factor), 0, 1)
    left = int(rng.integers(0, width - coverage.shape[1]))
    top = int(rng.integers(0, height - coverage.shape[0]))
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * math.pi)
    light = 0.82 + 0.12 * np.sin(xx / width * math.pi + angle) * np.cos(yy / height * math.pi / 2 + angle / 2)
    paper = np.stack([light * 235, light * 228, light * 210], axis=-1)
    region = paper[top:top + coverage.shape[0], left:left + coverage.shape[1]]
    region *= 1 - coverage[..., None] * rng.uniform(0.65, 0.85)
    paper += rng.normal(0, 6, paper.shape)
    photo = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.6)))
    return encode(photo, "JPEG", quality=int(rng.integers(75, 92))), scaled_boxes(boxes, factor, (left, top))


def number_on_canvas(digits: list[np.ndarray], rng: np.random.Generator, side: int = 280) -> bytes:
    """``digits`` written as a number across the page's square canvas (dark strokes, transparent
    ground), the row 95 % of its width: what the page sends when a number is drawn."""
    strip, _ = compose_number(digits, rng)
    coverage = np.clip(resized(strip, 0.95 * side / strip.shape[1]), 0, 1)[:side]
    drawing = np.zeros((side, side, 4), np.uint8)
    top, left = (side - coverage.shape[0]) // 2, (side - coverage.shape[1]) // 2
    drawing[top:top + coverage.shape[0], left:left + coverage.shape[1], 3] = np.round(coverage * 255)
    return encode(Image.fromarray(drawing), "PNG")


NUMBER_KINDS = {"number-canvas": number_canvas, "number-brush": number_brush, "number-photo": number_photo}


def number_set(kind: str, size: int = NUMBER_SET_SIZE, seed: int = NUMBER_SEED,
               lengths: tuple[int, int] = NUMBER_LENGTHS) -> list[tuple[bytes, str, list[tuple[int, int, int, int]]]]:
    """``size`` numbers of one kind: (upload bytes, the number, the digits' boxes in the upload)."""
    images, labels = load_test_set("mnist")
    rng = np.random.default_rng([seed, list(NUMBER_KINDS).index(kind)])
    made = []
    for _ in range(size):
        chosen = rng.choice(len(images), int(rng.integers(lengths[0], lengths[1] + 1)), replace=False)
        strip, boxes = compose_number(list(images[chosen]), rng)
        body, found = NUMBER_KINDS[kind](strip, boxes, rng)
        made.append((body, "".join(str(label) for label in labels[chosen]), found))
    return made
