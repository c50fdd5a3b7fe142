"""Digits written where people write them, for evaluation: in a printed box of a form, on squared
(grid) paper, on ruled paper, underlined; each scanned or photographed.

    form-box        a box of a form, alone or in a comb field (a row of boxes), the digit inside
                    it, now and then touching the frame
    squared-paper   a school notebook's grid, the digit over one or two squares
    ruled-paper     ruled lines, the digit standing on one, perhaps a margin line beside it
    underlined      a line under the digit, printed or drawn with the pen, touching it or not

Each kind has a held-out variant (``<kind>-held-out``) whose printed structure differs from
anything the preparation was tuned on: other colours (green, red), thicker lines, double frames,
a grid with every fifth line bold, ruled lines closer than a digit is tall, double underlines.
The empty kinds (``empty-box``, ``empty-grid``, ``empty-ruled``) are the same paper with nothing
written: no digit to read. Uploads are scans (greyscale or colour, PNG or JPEG, softened, with
scanner noise) or phone photos (turned a few degrees, uneven light, blur, JPEG). Made by code
with a fixed seed and cached like the presentation sets.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.presentations import CACHE, cached_uploads, encode, enlarge, load_test_set, paper_shading

PAPER_KINDS = ("form-box", "squared-paper", "ruled-paper", "underlined")
HELD_OUT = "-held-out"
EMPTY_KINDS = ("empty-box", "empty-grid", "empty-ruled")
PAPER_SET_SIZE = 400
PAPER_SEED = 2031
PAPER_VERSION = 1           # bump when a generator changes, so cached sets are made anew
PRINT = {"blue": (0.5, 0.25, 0.04), "grey": (0.4, 0.4, 0.4), "black": (0.85, 0.85, 0.85)}  # what print absorbs of R, G, B
HELD_OUT_PRINT = {"green": (0.45, 0.12, 0.4), "red": (0.05, 0.55, 0.5)}
PENS = ((0.85, 0.85, 0.85), (0.75, 0.6, 0.3), (0.8, 0.75, 0.55))     # black, blue ballpoint, a softer black


def digit_coverage(ink: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit (uint8 28x28) as pen coverage whose ink is about ``height`` px tall, now and
    then drawn with a thinner pen."""
    side = max(12, round(height * 28 / 20))
    coverage = enlarge(ink, side, Image.Resampling.BILINEAR)
    if rng.random() < 0.4:
        thin = Image.fromarray((coverage > 0.5).astype(np.uint8) * 255).filter(ImageFilter.MinFilter(max(3, side // 40) | 1))
        coverage = np.asarray(thin.filter(ImageFilter.GaussianBlur(0.7)), np.float32) / 255
    rows, cols = np.flatnonzero(coverage.max(1) > 0.1), np.flatnonzero(coverage.max(0) > 0.1)
    if not len(rows):
        return coverage
    return coverage[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


class Sheet:
    """A piece of paper: print and pen coverage drawn on it, then presented as an upload."""

    def __init__(self, width: int, height: int):
        self.print = Image.new("L", (width, height), 0)
        self.draw = ImageDraw.Draw(self.print)
        self.pen = np.zeros((height, width), np.float32)

    def line(self, start: tuple[float, float], end: tuple[float, float], width: int) -> None:
        self.draw.line([start, end], fill=255, width=width)

    def rectangle(self, box: tuple[float, float, float, float], width: int) -> None:
        self.draw.rectangle(box, outline=255, width=width)

    def write(self, coverage: np.ndarray, left: int, top: int) -> None:
        height, width = coverage.shape
        region = self.pen[top:top + height, left:left + width]
        np.maximum(region, coverage[:region.shape[0], :region.shape[1]], out=region)


def present(sheet: Sheet, print_rgb, pen_rgb, rng: np.random.Generator) -> bytes:
    """The sheet scanned or photographed, as the bytes of an upload."""
    printed = np.asarray(sheet.print, np.float32) / 255
    height, width = printed.shape
    paper = rng.uniform(0.86, 0.97) * paper_shading(rng, (height, width), rng.uniform(0.0, 0.03))
    rgb = paper[..., None] * np.asarray([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.88, 1.0)], np.float32)
    rgb = rgb * (1 - printed[..., None] * np.asarray(print_rgb, np.float32) * rng.uniform(0.7, 1.0))
    rgb = rgb * (1 - sheet.pen[..., None] * np.asarray(pen_rgb, np.float32))
    if rng.random() < 0.5:                      # a scan
        image = Image.fromarray(np.clip(rgb * 255, 0, 255).astype(np.uint8))
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
        noisy = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(1, 3), (height, width, 3))
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        if rng.random() < 0.5:
            image = image.convert("L")
        return encode(image, "PNG") if rng.random() < 0.4 else encode(image, "JPEG", quality=int(rng.integers(75, 95)))
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * math.pi)
    light = 0.8 + 0.15 * np.cos((xx / width - 0.5) * math.cos(angle) * 2 + (yy / height - 0.5) * math.sin(angle) * 2)
    rgb = rgb * light[..., None].astype(np.float32)
    image = Image.fromarray(np.clip(rgb * 255, 0, 255).astype(np.uint8))
    image = image.rotate(rng.uniform(-3, 3), Image.Resampling.BILINEAR, fillcolor=tuple(int(v) for v in rgb[0, 0] * 255))
    turned = max(2, round(0.03 * max(width, height)))           # the corners the turn left bare, cut off
    image = image.crop((turned, turned, width - turned, height - turned)).filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
    noisy = np.asarray(image, np.float32) + rng.normal(0, 4, (image.height, image.width, 3))
    return encode(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), "JPEG", quality=int(rng.integers(75, 92)))


def sheet_round(digit_box: tuple[float, float, float, float], rng: np.random.Generator,
                reach: tuple[float, float] = (0.3, 1.4)) -> tuple[int, int]:
    """A sheet's size leaving a margin of ``reach`` digit heights (drawn per side) round ``digit_box``
    (left, top, right, bottom), which starts at the margin: the sheet's size and the box's offset."""
    left, top, right, bottom = digit_box
    height = bottom - top
    margins = [rng.uniform(*reach) * height for _ in range(4)]
    return (round(right - left + margins[0] + margins[2]), round(height + margins[1] + margins[3])), \
        (round(margins[0] - left), round(margins[1] - top))


def form_box(coverage: np.ndarray | None, rng: np.random.Generator, held_out: bool) -> Sheet:
    """A box (or a comb field's boxes) with the digit inside, now and then touching the frame."""
    height = coverage.shape[0] if coverage is not None else rng.uniform(50, 160)
    box_h = height / rng.uniform(0.55, 0.85)
    box_w = box_h * rng.uniform(0.75, 1.25)
    line = int(rng.integers(1, 4)) if not held_out else int(rng.integers(4, 7))
    comb = rng.random() < 0.5
    others = (int(rng.integers(0, 3)), int(rng.integers(0, 3))) if comb else (0, 0)
    (width, sheet_h), (dx, dy) = sheet_round((-others[0] * box_w, 0, (1 + others[1]) * box_w, box_h), rng, (0.15, 1.0))
    sheet = Sheet(width, sheet_h)
    for index in range(-others[0], 1 + others[1]):
        left = dx + index * box_w
        sheet.rectangle((left, dy, left + box_w, dy + box_h), line)
        if held_out and rng.random() < 0.5:             # a double frame
            inset = line + 2
            sheet.rectangle((left + inset * 2, dy + inset * 2, left + box_w - inset * 2, dy + box_h - inset * 2), max(1, line // 2))
    if coverage is not None:
        spare_x, spare_y = box_w - coverage.shape[1], box_h - coverage.shape[0]
        touch = rng.random() < 0.15         # written a little over the frame
        x = dx + (rng.uniform(-0.05, 0.15) * spare_x if touch else rng.uniform(0.2, 0.8) * spare_x)
        y = dy + (rng.uniform(0.85, 1.1) * spare_y if touch else rng.uniform(0.2, 0.8) * spare_y)
        sheet.write(coverage, max(0, round(x)), max(0, round(y)))
    return sheet


def squared_paper(coverage: np.ndarray | None, rng: np.random.Generator, held_out: bool) -> Sheet:
    """A grid whose squares are a half to a whole digit high, the digit over them."""
    height = coverage.shape[0] if coverage is not None else rng.uniform(50, 160)
    width = coverage.shape[1] if coverage is not None else height * 0.7
    pitch = height / rng.uniform(1.0, 2.2)
    (sheet_w, sheet_h), (dx, dy) = sheet_round((0, 0, width, height), rng)
    sheet = Sheet(sheet_w, sheet_h)
    line = int(rng.integers(1, 3))
    start_x, start_y = rng.uniform(0, pitch, 2)
    for axis, extent in ((0, sheet_w), (1, sheet_h)):
        for count, position in enumerate(np.arange(start_x if axis == 0 else start_y, extent, pitch)):
            bold = held_out and count % 5 == 0
            ends = ((position, 0), (position, sheet_h)) if axis == 0 else ((0, position), (sheet_w, position))
            sheet.line(*ends, line + 2 if bold else line)
    if coverage is not None:
        sheet.write(coverage, dx, dy)
    return sheet


def ruled_paper(coverage: np.ndarray | None, rng: np.random.Generator, held_out: bool) -> Sheet:
    """Ruled lines, the digit standing on one (its foot a little above or below), a margin line
    beside it now and then."""
    height = coverage.shape[0] if coverage is not None else rng.uniform(50, 160)
    width = coverage.shape[1] if coverage is not None else height * 0.7
    spacing = height / (rng.uniform(0.55, 1.0) if not held_out else rng.uniform(1.05, 1.4))
    (sheet_w, sheet_h), (dx, dy) = sheet_round((0, 0, width, height), rng)
    sheet = Sheet(sheet_w, sheet_h)
    line = int(rng.integers(1, 3)) if not held_out else int(rng.integers(2, 5))
    baseline = dy + height + rng.uniform(-0.08, 0.05) * height
    for position in np.arange(baseline % spacing, sheet_h, spacing):
        sheet.line((0, position), (sheet_w, position), line)
    if rng.random() < 0.3:
        margin = dx - rng.uniform(0.2, 0.8) * height
        if margin > 2:
            sheet.line((margin, 0), (margin, sheet_h), line + 1)
    if coverage is not None:
        sheet.write(coverage, dx, dy)
    return sheet


def underlined(coverage: np.ndarray | None, rng: np.random.Generator, held_out: bool) -> tuple[Sheet, bool]:
    """A line under the digit, 1-2.5 of its widths long, printed (an answer's blank) or drawn with
    the pen a little aslant; and whether it was drawn with the pen."""
    height = coverage.shape[0] if coverage is not None else rng.uniform(50, 160)
    width = coverage.shape[1] if coverage is not None else height * 0.7
    length = max(width, 0.5 * height) * rng.uniform(1.0, 2.5)
    (sheet_w, sheet_h), (dx, dy) = sheet_round((0, 0, length, height * 1.25), rng, (0.2, 1.0))
    sheet = Sheet(sheet_w, sheet_h)
    left = dx
    x = dx + rng.uniform(0, length - width)
    y = dy + height + rng.uniform(-0.05, 0.2) * height
    drawn = rng.random() < 0.5
    lines = 2 if held_out else 1
    for index in range(lines):
        below = y + index * rng.uniform(0.08, 0.14) * height
        if drawn:
            pen = Image.new("L", (sheet_w, sheet_h), 0)
            slant = math.tan(math.radians(rng.uniform(-3, 3))) * length
            ImageDraw.Draw(pen).line([(left, below), (left + length, below + slant)], fill=255,
                                     width=max(1, round(rng.uniform(0.04, 0.1) * height)))
            sheet.write(np.asarray(pen.filter(ImageFilter.GaussianBlur(0.7)), np.float32) / 255, 0, 0)
        else:
            sheet.line((left, below), (left + length, below), int(rng.integers(1, 4)))
    if coverage is not None:
        sheet.write(coverage, round(x), dy)
    return sheet, drawn


def paper_upload(kind: str, ink: np.ndarray | None, rng: np.random.Generator) -> bytes:
    """One upload of ``kind`` (a PAPER_KINDS name, perhaps with HELD_OUT, or an EMPTY_KINDS name)
    with MNIST digit ``ink`` written on it (None for the empty kinds)."""
    held_out = kind.endswith(HELD_OUT)
    base = kind.removesuffix(HELD_OUT)
    photo_scale = rng.uniform(1.0, 2.0) if rng.random() < 0.5 else 1.0
    coverage = digit_coverage(ink, rng.uniform(40, 140) * photo_scale, rng) if ink is not None else None
    pen = PENS[int(rng.integers(len(PENS)))]
    colours = HELD_OUT_PRINT if held_out else PRINT
    print_rgb = colours[list(colours)[int(rng.integers(len(colours)))]]
    if base in ("form-box", "empty-box"):
        sheet = form_box(coverage, rng, held_out)
    elif base in ("squared-paper", "empty-grid"):
        sheet = squared_paper(coverage, rng, held_out)
    elif base in ("ruled-paper", "empty-ruled"):
        sheet = ruled_paper(coverage, rng, held_out)
    else:
        sheet, _ = underlined(coverage, rng, held_out)
    return present(sheet, print_rgb, pen, rng)


def paper_set(kind: str, size: int = PAPER_SET_SIZE, seed: int = PAPER_SEED,
              cache: Path = CACHE) -> tuple[list[bytes], np.ndarray]:
    """``size`` uploads of ``kind`` and their labels (-1 for the empty kinds); seeded, cached."""
    kinds = [*PAPER_KINDS, *(kind + HELD_OUT for kind in PAPER_KINDS), *EMPTY_KINDS]
    if kind not in kinds:
        raise ValueError(f"unknown paper kind {kind!r}: one of {', '.join(kinds)}")

    def build() -> dict[str, np.ndarray]:
        images, labels = load_test_set("mnist")
        rng = np.random.default_rng([seed, kinds.index(kind)])
        chosen = rng.choice(len(images), size, replace=False)
        empty = kind in EMPTY_KINDS
        bodies = [paper_upload(kind, None if empty else image, rng) for image in images[chosen]]
        return {"bodies": bodies, "labels": np.full(size, -1) if empty else labels[chosen]}

    return cached_uploads(cache / f"paper-{kind}-{size}-{seed}-v{PAPER_VERSION}.npz", build)


def number_on_paper(digits: list[np.ndarray], rng: np.random.Generator, comb: bool) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """MNIST digits written as a number in a comb field (one digit a box) or along a ruled line,
    scanned or photographed as PAPER_KINDS are: the upload and each digit's box (x0, y0, x1, y1)
    on the sheet (a photo turns it by up to 3 degrees and cuts 3 % off each side)."""
    height = rng.uniform(50, 110)
    coverages = [digit_coverage(ink, height * rng.uniform(0.9, 1.1), rng) for ink in digits]
    cell = height / rng.uniform(0.6, 0.8)
    pitch = cell if comb else height * rng.uniform(0.75, 1.0)
    width = round(pitch * len(digits) + 2 * cell)
    sheet = Sheet(width, round(3 * cell))
    line = int(rng.integers(1, 3))
    if comb:
        for index in range(len(digits)):
            sheet.rectangle((cell + index * pitch, cell, cell + (index + 1) * pitch, 2 * cell), line)
    else:
        for position in np.arange((2 * cell) % (0.9 * cell), 3 * cell, 0.9 * cell * rng.uniform(1.0, 1.3)):
            sheet.line((0, position), (width, position), line)
    boxes = []
    for index, coverage in enumerate(coverages):
        left = round(cell + index * pitch + (pitch - coverage.shape[1]) / 2)
        top = round(2 * cell - coverage.shape[0] - (cell - coverage.shape[0]) / 2) if comb else round(2 * cell - coverage.shape[0])
        sheet.write(coverage, left, top)
        boxes.append((left, top, left + coverage.shape[1], top + coverage.shape[0]))
    colours = list(PRINT.values())
    return present(sheet, colours[int(rng.integers(len(colours)))], PENS[int(rng.integers(len(PENS)))], rng), boxes
