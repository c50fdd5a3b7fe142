"""A written number: its digits found apart (``marks.digit_groups``), ordered left to right,
each prepared as a single digit is, with its box in the upload's pixels.

The ink is found on one copy of the upload (NUMBER_SIDES) as for a single digit; a digit that is
small on that copy is found again on the upload's own pixels, cut out between its neighbours.
What is supported (digits written apart) is said in ``marks``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlens.config import ModelSpec
from digitlens.prepare.decode import JPEG_FORMATS, WORKING_SIDE, open_image, to_greyscale, upright_size
from digitlens.prepare.errors import InputError
from digitlens.prepare.locate import CLOSE_SIDE, LOCATE_SIDE, find_ink, ink_of_region
from digitlens.prepare.marks import digit_groups, ink_marks
from digitlens.prepare.normalise import PreparedImage, digit_input
from digitlens.prepare.primitives import ink_box, side_of

NUMBER_SIDES = (WORKING_SIDE, LOCATE_SIDE)   # longer sides of the copies the digits are found on: the first, and a
                            # closer one; a digit whose longer side is under the model's content_size (MNIST's 20 px) on
                            # the first is looked for on the closer one, and one still that small there, on the upload's
                            # own pixels ...
DIGIT_MARGIN = 0.15         # ... cut out with this share of its longer side round it, short of its neighbours
MAX_DIGITS = 12             # more groups than this are not a number (a page of text): refused


@dataclass(frozen=True)
class NumberDigit:
    image: PreparedImage
    box: tuple[int, int, int, int]      # (x0, y0, x1, y1) in the upload's pixels (upright), x1 and y1 exclusive


def number_digits(data: bytes, spec: ModelSpec) -> list[NumberDigit]:
    """The digits of the number in upload ``data``, left to right, each prepared as the network
    takes it, with its box; InputError where no ink is found or too many groups for a number."""
    image = open_image(data, spec.max_pixels, longest=NUMBER_SIDES[-1])
    width, height = upright_size(image)
    for side in NUMBER_SIDES:
        grey = to_greyscale(image, side)
        try:
            ink = find_ink(grey)
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
    digits = []
    for position, group in enumerate(groups):
        top, left, bottom, right = group.box
        in_group = np.zeros(marks + 1, bool)
        in_group[list(group.labels)] = True
        digit_ink = np.where(in_group[labels[top:bottom, left:right]], ink[top:bottom, left:right], 0)
        inner = ink_box(digit_ink)         # the marks' boxes were found on the ink grown by a pixel
        top, left, bottom, right = top + inner[0], left + inner[1], top + inner[2], left + inner[3]
        digit_ink = digit_ink[inner[0]:inner[2], inner[1]:inner[3]]
        if side_of((top, left, bottom, right)) < spec.content_size and scale > 1.5:
            if source is None:
                source = image if image.format not in JPEG_FORMATS else open_image(data, spec.max_pixels, longest=None)
            neighbours = (groups[position - 1].box[3] if position else 0,
                          groups[position + 1].box[1] if position + 1 < len(groups) else grey.shape[1])
            closer = closer_digit(source, (top, left, bottom, right), neighbours, scale)
            digit_ink = digit_ink if closer is None else closer
        box = (math.floor(left * scale), math.floor(top * scale), min(width, math.ceil(right * scale)),
               min(height, math.ceil(bottom * scale)))
        digits.append(NumberDigit(digit_input(digit_ink, spec), box))
    return digits


def closer_digit(source: Image.Image, box: tuple[int, int, int, int], neighbours: tuple[int, int],
                 scale: float) -> np.ndarray | None:
    """The ink of the digit in ``box`` (on a copy ``scale`` times smaller than ``source``) found
    again on ``source`` (locate.ink_of_region): cut out with DIGIT_MARGIN round it but short of
    the columns where its neighbours' boxes begin and end, reduced so its longer side is at most
    CLOSE_SIDE, and only the marks that overlap the box kept; None where none does."""
    top, left, bottom, right = (edge * scale for edge in box)
    margin = DIGIT_MARGIN * max(bottom - top, right - left)
    region = (max(0, round(max(left - margin, (left + neighbours[0] * scale) / 2))), max(0, round(top - margin)),
              min(source.width, round(min(right + margin, (right + neighbours[1] * scale) / 2))),
              min(source.height, round(bottom + margin)))
    reduction = min(1.0, CLOSE_SIDE / max(bottom - top, right - left, 1))
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
    return digit[top:bottom, left:right]
