"""Where the digit is: its ink found on a working copy of the upload, and, where it is small
there (a digit on a big page), looked at closer on the upload's own pixels.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from digitlens.prepare.artefacts import paint_out_edge_bands, smooth_blocks
from digitlens.prepare.decode import JPEG_FORMATS, drawn_on_nothing, open_image, to_greyscale
from digitlens.prepare.errors import InputError, OnlyPrint
from digitlens.prepare.light import flatten_background, isolate_ink, make_ink_light
from digitlens.prepare.lines import remove_printed_lines
from digitlens.prepare.marks import digit_candidates, digit_groups, looks_like_number
from digitlens.prepare.primitives import crop_to_ink, ink_box, overlaps, side_of

DETAIL_SIDE = 24            # ink whose longer side is shorter in the working copy is read again from the upload's own
CLOSE_SIDE = 96             # ... cut out with a margin and reduced so the ink's longer side is at most this ...
CROP_MARGIN = 0.6           # ... the margin: this share of the ink's longer side on every side (paper to judge it by),
FAINT_REACH = 3             # ... and at least this many pixels of the copy the ink was found on (see closer_look)
CLOSER_LOOKS = 3            # regions one closer look cuts out at most, wider or round a smaller part of the ink
MAX_CANDIDATES = 5          # marks apart on a page looked at as the digit, at most (see digit_candidates)
LOCATE_SIDE = 560           # a working copy with no ink found in it is searched again at this longer side
LINE_PIECE = 2              # on paper, a mark this many pixels thin or less is a piece of a printed line left over
LEVEL_BAR = 5               # on paper, a mark this many times wider than tall, 2 * LINE_PIECE tall at most, is a line's too
UNCONFIRMED_INK = 100       # print taken out, a working copy's mark no closer look confirms is a digit with this much
                            # ink at least (what the lines' removal leaves has less; a digit 20 px in a box has 200)


def find_ink(grey: np.ndarray, printed: bool = True) -> np.ndarray:
    """The ink of greyscale ``grey``, light on black at full scale, specks far from it cleared,
    printed lines taken out unless it cannot hold any (not ``printed``: a canvas drawing)."""
    return ink_without_print(grey, printed)[0]


def ink_without_print(grey: np.ndarray, printed: bool = True) -> tuple[np.ndarray, bool]:
    """find_ink's ink, and whether printed lines were taken out of it."""
    light_ink = flatten_background(make_ink_light(smooth_blocks(paint_out_edge_bands(grey))))
    ink = isolate_ink(light_ink)
    cleaned = remove_printed_lines(ink, light_ink) if printed else ink
    return cleaned, cleaned is not ink


def digit_ink(image: Image.Image, data: bytes, max_pixels: int) -> tuple[np.ndarray, bool]:
    """The digit's ink in ``image`` (opened from ``data``), cropped to it, and whether the
    working copy's marks look like the digits of a number (marks.looks_like_number).

    The ink is found on the working copy (WORKING_SIDE). Where it is large there (DETAIL_SIDE)
    and one mark, that is the digit, unless on paper it is a level bar (is_level_bar) or, print
    taken out, a piece of a line (is_line_piece). Otherwise, where the upload has more pixels, a
    digit on a big page was reduced to a few pixels: each mark that may be the digit (digit_candidates),
    the heaviest first, is looked at closer (closer_look: cut out of the upload's own pixels, a
    JPEG decoded again at the scale it needs) until one is a digit at that resolution (a stamp
    is not, once its text shows). Where none is, or the working copy shows no ink, the marks of
    a larger copy (LOCATE_SIDE) are looked at so: a digit too faint to show on the working copy.
    Where none is there either, the heaviest mark of the working copy (or of the larger copy,
    DETAIL_SIDE there at least, unless the working copy held only print: then it is more of it)
    is the digit, unless on paper it is a piece of a printed line (is_line_piece) or, print taken
    out of the working copy, it has less ink than UNCONFIRMED_INK: the lines' removal leaves some."""
    grey = to_greyscale(image)
    printed = not drawn_on_nothing(image)
    blank = OnlyPrint()
    try:
        ink, print_taken = ink_without_print(grey, printed)
        candidates = digit_candidates(ink) or [ink]
    except InputError as refusal:
        ink, print_taken, candidates, blank = None, False, [], refusal
    if candidates and candidates[0] is ink:
        box = ink_box(ink)
        if side_of(box) >= DETAIL_SIDE:
            if printed and is_level_bar(box) or print_taken and is_line_piece(box):
                raise blank
            return ink[box[0]:box[2], box[1]:box[3]], False
    several = ink is not None and looks_like_number(digit_groups(ink)[1])
    one_mark = ink if candidates and candidates[0] is ink else None
    source = full_resolution(image, data, max_pixels, one_mark, max(grey.shape))
    if max(source.size) <= max(grey.shape):
        if not candidates:
            raise blank
        return crop_to_ink(candidates[0]), several
    if (closer := closest_digit(source, ink, candidates, max(source.size) / max(grey.shape), printed)) is not None:
        return closer, several
    if max(grey.shape) < LOCATE_SIDE:
        source = full_resolution(image, data, max_pixels, None, max(grey.shape))
        located = to_greyscale(source, LOCATE_SIDE)
        try:
            located_ink = find_ink(located, printed)
            found = digit_candidates(located_ink) or [located_ink]
        except InputError:
            located_ink, found = None, []
        if (closer := closest_digit(source, located_ink, found, max(source.size) / max(located.shape), printed)) is not None:
            return closer, several
        if not candidates and not isinstance(blank, OnlyPrint):     # where the copy held print alone, more of it
            candidates = [mark for mark in found if side_of(ink_box(mark)) >= DETAIL_SIDE]
    if (not candidates or printed and is_line_piece(ink_box(candidates[0]))
            or print_taken and np.count_nonzero(candidates[0]) < UNCONFIRMED_INK):
        raise blank
    return crop_to_ink(candidates[0]), several


def is_line_piece(box: tuple[int, int, int, int]) -> bool:
    """Whether ink in ``box`` (one mark's, or a closer look's) is LINE_PIECE pixels thin or less, or
    a level bar: on paper, what the printed lines' removal left of them, not a digit's stroke."""
    top, left, bottom, right = box
    return min(bottom - top, right - left) <= LINE_PIECE or is_level_bar(box)


def is_level_bar(box: tuple[int, int, int, int]) -> bool:
    """Whether ink in ``box`` is LEVEL_BAR times as wide as tall and 2 * LINE_PIECE tall at most: no
    digit lies so (a one lying is an upload turned), a ruled line's piece does."""
    top, left, bottom, right = box
    return bottom - top <= 2 * LINE_PIECE and right - left >= LEVEL_BAR * (bottom - top)


def closest_digit(source: Image.Image, ink: np.ndarray, candidates: list[np.ndarray], scale: float,
                  printed: bool) -> np.ndarray | None:
    """The first of ``candidates`` (marks of ``ink``, found on a copy ``scale`` times smaller
    than ``source``) that a closer look finds a digit (on paper, ``printed``, print found so is
    none), as that look's ink; None where none is.
    A candidate already DETAIL_SIDE on the copy that the look finds whole is taken as the copy
    shows it, within the box the look found (pieces of a thin stroke that the copy broke off
    included): more pixels would show a squared page's lines, not more of the digit."""
    for candidate in candidates[:MAX_CANDIDATES]:
        if (closer := closer_look(source, ink_box(candidate), scale, printed)) is None:
            continue
        closer_ink, box = closer
        if box is None or side_of(ink_box(candidate)) < DETAIL_SIDE:
            return closer_ink
        top, left, bottom, right = (math.floor(box[0] / scale), math.floor(box[1] / scale),
                                    math.ceil(box[2] / scale), math.ceil(box[3] / scale))
        within = ink[top:bottom, left:right]
        return crop_to_ink(within) if within.any() else closer_ink
    return None


def closer_look(source: Image.Image, box: tuple[int, int, int, int], scale: float,
                printed: bool) -> tuple[np.ndarray, tuple[int, int, int, int] | None] | None:
    """The ink in ``box`` (of a copy ``scale`` times smaller than ``source``) found again on the
    region round it cut out of ``source``, cropped, and its box in ``source`` where it is the
    whole of the box's ink (None where it is a part); None if it is no digit there. The region is
    reduced so the box's longer side is at most CLOSE_SIDE; its margin is CROP_MARGIN of that
    side and FAINT_REACH copy pixels at least (a digit's faint parts were lost on the copy).
    Where the digit found there runs into the region's edge, the margin is doubled; where it is
    a small part of the box (a digit beside a stamp), it is looked at again on its own. On paper
    (``printed``), ink that runs into the edge still is a printed line running past, and ink
    that is a piece of a line (is_line_piece) what the lines' removal left: no digit."""
    top, left, bottom, right = (round(edge * scale) for edge in box)
    margin, whole = None, True
    for _ in range(CLOSER_LOOKS):
        side = max(bottom - top, right - left, 1)
        margin = margin or round(max(CROP_MARGIN * side, FAINT_REACH * scale))
        region = (max(0, left - margin), max(0, top - margin), min(source.width, right + margin),
                  min(source.height, bottom + margin))
        reduction = min(1.0, CLOSE_SIDE / side)
        if (region_ink := ink_of_region(source, region, reduction)) is None:
            return None
        candidates = digit_candidates(region_ink)
        aimed = [round((edge - offset) * reduction) for edge, offset in
                 zip((top, left, bottom, right), (region[1], region[0], region[1], region[0]))]
        ink = next((candidate for candidate in candidates if overlaps(ink_box(candidate), aimed)), None)
        if ink is None:
            return None             # only other marks near it are digits: they get their own look
        if runs_into_edge(ink, region, source.size):
            margin *= 2
        elif reduction < 1 and side_of(ink_box(ink)) < side * reduction / 2:
            found = ink_box(ink)
            top, left, bottom, right = (round(edge / reduction) + offset for edge, offset in
                                        zip(found, (region[1], region[0], region[1], region[0])))
            margin, whole = None, False
        else:
            break
    else:
        if printed and runs_into_edge(ink, region, source.size):
            return None
    found = ink_box(ink)
    if printed and is_line_piece(found):
        return None
    in_source = tuple(round(edge / reduction) + offset for edge, offset in
                      zip(found, (region[1], region[0], region[1], region[0])))
    return crop_to_ink(ink), in_source if whole else None


def ink_of_region(source: Image.Image, region: tuple[int, int, int, int], reduction: float) -> np.ndarray | None:
    """The ink found on ``region`` (left, top, right, bottom) of ``source``, reduced by
    ``reduction`` (at most 1); None where there is none. The closer look of a digit and of a
    number's digit both read the upload's own pixels so."""
    crop = source.crop(region)
    try:
        return find_ink(to_greyscale(crop, max(1, round(max(crop.size) * reduction))), not drawn_on_nothing(crop))
    except InputError:
        return None


def runs_into_edge(ink: np.ndarray, region: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    """Whether ``ink`` (found in ``region`` of an image of ``size``) reaches an edge of the
    region that is not the image's own."""
    top, left, bottom, right = ink_box(ink)
    return ((top == 0 and region[1] > 0) or (left == 0 and region[0] > 0) or
            (bottom == ink.shape[0] and region[3] < size[1]) or (right == ink.shape[1] and region[2] < size[0]))


def full_resolution(image: Image.Image, data: bytes, max_pixels: int, mark: np.ndarray | None,
                    working_side: int) -> Image.Image:
    """``image`` with the pixels a closer look needs: other formats are decoded whole already; a
    JPEG is decoded again, at the DCT scale that gives the ink of ``mark`` (the working copy's
    one mark, in a copy of longer side ``working_side``) CLOSE_SIDE pixels, or at full size
    where there is no one mark (none found, or several: a small digit may hide among them)."""
    if image.format not in JPEG_FORMATS:
        return image
    if mark is None:
        return open_image(data, max_pixels, longest=None)
    return open_image(data, max_pixels, longest=math.ceil(working_side * CLOSE_SIDE / side_of(ink_box(mark))))
