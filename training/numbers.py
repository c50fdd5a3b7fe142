"""Written numbers for evaluation: 2 to 6 MNIST test digits (writers the model never trained on)
set side by side with their size, spacing and baseline varied, presented three ways:

    number-canvas   the page's canvas: dark strokes on a transparent ground, 1-4 times wider than tall
    number-brush    a brush tool: the strokes' centre lines drawn again with a round brush, dark on white
    number-photo    a phone photo of the number on paper (uneven light, noise, blur, JPEG)

and spaced three ways (SPACINGS): apart as most people write (``number-canvas`` ...), close but
apart (``close-number-canvas`` ...), and touching, each digit run into the one before it or
overlapping it a little (``touching-number-canvas`` ...). Each upload comes with its number (a
string) and the digits' boxes in its pixels. Made by code with a fixed seed and not cached: 300
canvases or brush drawings take a few seconds, 300 photos about a minute and a half.
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


SPACINGS = ("apart", "close", "touching")
CLOSE_GAP = (0.02, 0.12)        # close but apart: the gap between two digits' boxes, a share of the tallest digit
TOUCH_OVERLAP = (0.0, 0.1)      # touching: how far a digit is pushed into the one before it once their ink meets
INK = 0.3                       # coverage that counts as ink where digits are made to touch


def compose_number(digits: list[np.ndarray], rng: np.random.Generator,
                   spacing: str = "apart") -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """MNIST digits (uint8 28x28, light on black) written in a row: coverage in [0, 1] and each
    digit's box (x0, y0, x1, y1). Each is scaled by 0.8-1.15, moved up or down by up to a tenth of
    its height, and set after the one before: ``apart`` 0.12-0.6 of a height after it, ``close``
    CLOSE_GAP of a height, ``touching`` moved left until its ink meets the ink before it, then
    TOUCH_OVERLAP of a height further (overlapping ink is added, at most 1)."""
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
    low, high = {"apart": (0.12, 0.6), "close": CLOSE_GAP, "touching": TOUCH_OVERLAP}[spacing]
    gaps = [round(rng.uniform(low, high) * height) for _ in pieces[1:]]
    width = 2 * margin + sum(piece.shape[1] for piece in pieces) + (sum(gaps) if spacing != "touching" else 0)
    strip = np.zeros((height + 2 * margin + round(0.2 * height), width), np.float32)
    boxes, x = [], margin
    for index, piece in enumerate(pieces):
        top = margin + round(0.1 * height) + (height - piece.shape[0]) + shifts[index]     # on a shared baseline
        if spacing == "touching" and index:
            x = max(boxes[-1][0] + 1, touching_left(strip, piece, top) - gaps[index - 1])
        strip[top:top + piece.shape[0], x:x + piece.shape[1]] = np.maximum(strip[top:top + piece.shape[0], x:x + piece.shape[1]], piece)
        boxes.append((x, top, x + piece.shape[1], top + piece.shape[0]))
        x += piece.shape[1] + (gaps[index] if index < len(gaps) and spacing != "touching" else 0)
    right = max(box[2] for box in boxes) + margin
    return strip[:, :right], boxes


def touching_left(strip: np.ndarray, piece: np.ndarray, top: int) -> int:
    """The leftmost column at which ``piece``, set with its top at row ``top``, has its ink meet
    (touch, eight-connected) the ink already on ``strip`` without overlapping it."""
    rows = range(max(0, top - 1), min(strip.shape[0], top + piece.shape[0] + 1))
    placed = [np.flatnonzero(strip[row] > INK) for row in rows]
    left = 0
    for offset, row in enumerate(rows):
        own = [np.flatnonzero(piece[r - top] > INK) for r in (row - 1, row, row + 1) if 0 <= r - top < piece.shape[0]]
        own = [cols for cols in own if cols.size]
        if placed[offset].size and own:
            left = max(left, placed[offset][-1] + 1 - min(int(cols[0]) for cols in own))
    return left


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
NARROW = (1, 7)                 # narrow digits, at least half of a "narrow" set's digits
NUMBER_SETS = {                 # name -> (presentation, spacing, lengths, narrow runs); the first three as before
    **{kind: (kind, "apart", NUMBER_LENGTHS, False) for kind in NUMBER_KINDS},
    **{f"{spacing}-{kind}": (kind, spacing, (1, 8), False) for spacing in SPACINGS[1:] for kind in NUMBER_KINDS},
    "touching-narrow-number-canvas": ("number-canvas", "touching", (2, 8), True),
}
HELD_OUT_SETS = ("touching-number-brush", "touching-narrow-number-canvas")   # no setting of the reader was tried on these


def number_set(kind: str, size: int = NUMBER_SET_SIZE, seed: int = NUMBER_SEED,
               lengths: tuple[int, int] | None = None,
               digits: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[bytes, str, list[tuple[int, int, int, int]]]]:
    """``size`` numbers of one set (NUMBER_SETS; ``lengths`` the fewest and most digits, both
    included, by default the set's; ``digits`` the images and labels they are made of, by
    default MNIST's test set): (upload bytes, the number, the digits' boxes in the upload)."""
    presentation, spacing, default_lengths, narrow = NUMBER_SETS[kind]
    lengths = lengths or default_lengths
    images, labels = digits if digits is not None else load_test_set("mnist")
    narrow_ones = np.flatnonzero(np.isin(labels, NARROW))
    rng = np.random.default_rng([seed, list(NUMBER_SETS).index(kind)])
    made = []
    for _ in range(size):
        count = int(rng.integers(lengths[0], lengths[1] + 1))
        chosen = rng.choice(len(images), count, replace=False)
        if narrow:
            chosen[rng.permutation(count)[:max(1, (count + 1) // 2)]] = rng.choice(narrow_ones, max(1, (count + 1) // 2))
        strip, boxes = compose_number(list(images[chosen]), rng, spacing)
        body, found = NUMBER_KINDS[presentation](strip, boxes, rng)
        made.append((body, "".join(str(label) for label in labels[chosen]), found))
    return made
