"""A written number: its groups of ink (``marks.digit_groups``), ordered left to right, each
prepared as a single digit is, with its box in the upload's pixels; a group wide enough to be
touching digits also as a run, which the string reader (``digitlens.strings``) may read as
several digits and ``split_run`` then cuts apart.

The ink is found on one copy of the upload (NUMBER_SIDES) as for a single digit; a digit that is
small on that copy is found again on the upload's own pixels, cut out between its neighbours,
and so is a run, at RUN_HEIGHT. How groups are made is said in ``marks``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlens.config import ModelSpec
from digitlens.prepare.cuts import pieces_between
from digitlens.prepare.decode import JPEG_FORMATS, WORKING_SIDE, drawn_on_nothing, open_image, to_greyscale, upright_size
from digitlens.prepare.errors import InputError
from digitlens.prepare.locate import CLOSE_SIDE, LOCATE_SIDE, find_ink, ink_of_region
from digitlens.prepare.marks import digit_groups, ink_marks
from digitlens.prepare.normalise import STRIP_CONTENT, STRIP_MARGIN, PreparedImage, digit_input, strip_input
from digitlens.prepare.primitives import ink_box, side_of

NUMBER_SIDES = (WORKING_SIDE, LOCATE_SIDE)   # longer sides of the copies the digits are found on: the first, and a
                            # closer one; a digit whose longer side is under the model's content_size (MNIST's 20 px) on
                            # the first is looked for on the closer one, and one still that small there, on the upload's
                            # own pixels ...
DIGIT_MARGIN = 0.15         # ... cut out with this share of its longer side round it, short of its neighbours
RUN_WIDTH = 0.5             # a group this many times wider than tall may be touching digits: a run (see Run), ...
RUN_HEIGHT = 48             # ... looked at closer on the upload's pixels, reduced to about this many pixels tall
MAX_DIGITS = 12             # more groups than this are not a number (a page of text): refused; runs are split within it


@dataclass(frozen=True)
class NumberDigit:
    image: PreparedImage
    box: tuple[int, int, int, int]      # (x0, y0, x1, y1) in the upload's pixels (upright), x1 and y1 exclusive


@dataclass(frozen=True)
class Run:
    """A group of ink wide enough to hold several touching digits, for the string reader."""
    ink: np.ndarray                     # cropped to the ink, ``reduction`` times the upload's size, ...
    origin: tuple[float, float]         # ... its corner at (x, y) in the upload's pixels
    reduction: float
    strip: np.ndarray                   # the string reader's input (normalise.strip_input)


@dataclass(frozen=True)
class NumberPart:
    """A group of the number's ink: one digit, or (where ``run`` is set) perhaps several touching."""
    whole: NumberDigit                  # the group read as one digit
    run: Run | None


def number_parts(data: bytes, spec: ModelSpec) -> list[NumberPart]:
    """The groups of ink of the number in upload ``data``, left to right, each prepared as the
    network takes a digit, with its box, and, where wide enough (RUN_WIDTH), as a run the string
    reader may split (split_run); InputError where no ink is found or too many groups for a number."""
    image = open_image(data, spec.max_pixels, longest=NUMBER_SIDES[-1])
    width, height = upright_size(image)
    printed = not drawn_on_nothing(image)
    for side in NUMBER_SIDES:
        grey = to_greyscale(image, side)
        try:
            ink = find_ink(grey, printed)
        except InputError:
            if side == NUMBER_SIDES[-1] or max(image.size) <= side:
                raise
            continue        # small digits in a comb field's boxes may merge with them on this copy
        labels, groups = digit_groups(ink)
        if max(image.size) <= side or all(side_of(group.box) >= spec.content_size for group in groups):
            break       # the digits are large enough on this copy, or no closer copy has more pixels
    if not groups:
        raise InputError("no digit found: the image holds only lines", "blank")
    if len(groups) > MAX_DIGITS:
        raise InputError(f"{len(groups)} separate marks: more than a number of {MAX_DIGITS} digits", "not_a_number")
    scale = max(width, height) / max(grey.shape)
    marks = int(labels.max())
    source = None
    parts = []
    for position, group in enumerate(groups):
        top, left, bottom, right = group.box
        in_group = np.zeros(marks + 1, bool)
        in_group[list(group.labels)] = True
        digit_ink = np.where(in_group[labels[top:bottom, left:right]], ink[top:bottom, left:right], 0)
        inner = ink_box(digit_ink)         # the marks' boxes were found on the ink grown by a pixel
        top, left, bottom, right = top + inner[0], left + inner[1], top + inner[2], left + inner[3]
        digit_ink = digit_ink[inner[0]:inner[2], inner[1]:inner[3]]
        box = (top, left, bottom, right)
        neighbours = (groups[position - 1].box[3] if position else 0,
                      groups[position + 1].box[1] if position + 1 < len(groups) else grey.shape[1])
        whole, run = digit_ink, None
        if side_of(box) < spec.content_size and scale > 1.5:
            source = full_source(image, data, spec) if source is None else source
            closer = closer_digit(source, box, neighbours, scale, min(1.0, CLOSE_SIDE / (scale * side_of(box))))
            whole = whole if closer is None else closer[0]
        if right - left >= RUN_WIDTH * (bottom - top):
            run = Run(digit_ink, (left * scale, top * scale), 1 / scale, strip_input(digit_ink))
            if scale * (bottom - top) > RUN_HEIGHT * 1.5:
                source = full_source(image, data, spec) if source is None else source
                closer = closer_digit(source, box, neighbours, scale, min(1.0, RUN_HEIGHT / (scale * (bottom - top))))
                if closer is not None:
                    run = Run(*closer, strip_input(closer[0]))
        upload_box = (math.floor(left * scale), math.floor(top * scale), min(width, math.ceil(right * scale)),
                      min(height, math.ceil(bottom * scale)))
        parts.append(NumberPart(NumberDigit(digit_input(whole, spec), upload_box), run))
    return parts


def full_source(image: Image.Image, data: bytes, spec: ModelSpec) -> Image.Image:
    """The upload's own pixels for a closer look (a JPEG decoded again whole)."""
    return image if image.format not in JPEG_FORMATS else open_image(data, spec.max_pixels, longest=None)


def split_run(run: Run, between: list[tuple[float, float]], spec: ModelSpec) -> list[NumberDigit]:
    """A run's digits, cut (cuts.pieces_between) once within each pair of strip columns of
    ``between`` (where the string reader reads the one digit and where the next), each prepared
    as the network takes a digit, with its box in the upload's pixels; empty pieces dropped."""
    to_run = run.ink.shape[0] / STRIP_CONTENT
    windows = [((first - STRIP_MARGIN) * to_run, (last - STRIP_MARGIN) * to_run) for first, last in between]
    digits = []
    for piece in pieces_between(run.ink, windows):
        if not piece.any():
            continue
        top, left, bottom, right = ink_box(piece)
        x, y = run.origin
        box = (math.floor(x + left / run.reduction), math.floor(y + top / run.reduction),
               math.ceil(x + right / run.reduction), math.ceil(y + bottom / run.reduction))
        digits.append(NumberDigit(digit_input(piece[top:bottom, left:right], spec), box))
    return digits


def closer_digit(source: Image.Image, box: tuple[int, int, int, int], neighbours: tuple[int, int],
                 scale: float, reduction: float) -> tuple[np.ndarray, tuple[float, float], float] | None:
    """The ink of the digit (or run) in ``box`` (on a copy ``scale`` times smaller than
    ``source``) found again on ``source`` (locate.ink_of_region): cut out with DIGIT_MARGIN round
    it but short of the columns where its neighbours' boxes begin and end, reduced by
    ``reduction``, only the marks that overlap the box kept, and cropped to them; with where its
    corner lies in ``source`` (x, y) and the reduction made. None where no mark overlaps the box."""
    top, left, bottom, right = (edge * scale for edge in box)
    margin = DIGIT_MARGIN * max(bottom - top, right - left)
    region = (max(0, round(max(left - margin, (left + neighbours[0] * scale) / 2))), max(0, round(top - margin)),
              min(source.width, round(min(right + margin, (right + neighbours[1] * scale) / 2))),
              min(source.height, round(bottom + margin)))
    if (ink := ink_of_region(source, region, reduction)) is None:
        return None
    labels, _ = ink_marks(ink)
    aimed = [(top - region[1]) * reduction, (left - region[0]) * reduction,
             (bottom - region[1]) * reduction, (right - region[0]) * reduction]
    kept = [index + 1 for index, (rows, cols) in enumerate(ndimage.find_objects(labels))
            if rows.start < aimed[2] and aimed[0] < rows.stop and cols.start < aimed[3] and aimed[1] < cols.stop]
    if not kept:
        return None
    digit = np.where(np.isin(labels, kept), ink, 0)
    top, left, bottom, right = ink_box(digit)
    made = max(ink.shape) / max(region[2] - region[0], region[3] - region[1])     # the reduction as rounded
    return digit[top:bottom, left:right], (region[0] + left / made, region[1] + top / made), made
