"""The separate marks of a digit's or a number's ink, and marks grouped into digits.

Pure functions on an ink image (light on black, 0 where there is no ink): no decoding, no
model. ``preprocess`` uses the marks to find a small digit among a page's other marks (and to
say an upload looks like a number); ``numbers`` uses the groups to read each digit.

Grouping supports digits written apart (their columns do not overlap): tall marks whose
columns overlap are strokes of one digit (a 4's two strokes), a low wide mark is a bar of the
digit nearest it (a 5's, a 7's), a dot is a piece of a digit it nearly touches (a thin stroke
broken up) or else dropped (a decimal point, dust), and ruled lines are no digit. Digits that
touch, or whose columns overlap, are one group.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

LINE_REACH = 0.4            # a mark this share of the page long and LINE_ASPECT times longer than wide is a line ...
LINE_ASPECT = 8             # ... (a ruled line, a scanner's dark edge), not a digit (see preprocess.digit_candidates), ...
LINE_WIDTH = 0.03           # ... if at most this share of the page thick (a one's stroke in a tight crop is thicker)
PIECE_OVERLAP = 0.3         # marks whose columns overlap by this share of the narrower are strokes of one digit
LOW_MARK = 0.4              # a mark lower than this share of the tallest mark is no digit alone: a bar (a 5's, a 7's) ...
BAR_WIDTH = 0.3             # ... if at least this share of the tallest mark wide, joined to the nearest digit ...
BAR_REACH = 0.35            # ... within this share of that digit's height, ...
DOT_REACH = 0.06            # ... else a dot, joined to a digit this close (a thin stroke broken up), else dropped;
SLIVER = 0.2                # a mark this narrow for its height that close to a digit is a piece of it (a slanted 1 broken)
ROW_HEIGHTS = 1.6           # digits of one number: neighbours' heights within this factor, ...
ROW_OVERLAP = 0.5           # ... their rows overlapping by this share of the lower one's height, ...
ROW_GAP = 1.5               # ... and at most this many of the taller one's heights apart (see looks_like_number)
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)   # marks are labelled with diagonal neighbours joined


def ink_marks(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """The separate marks of ``ink`` (pixels two apart join), as a label image and their count."""
    return ndimage.label(dilate_3x3(ink > 0), EIGHT_NEIGHBOURS)


def dilate_3x3(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel in all eight directions (ndimage.binary_dilation with a 3x3
    square, by shifted ORs: a tenth of its time on a working copy)."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    grown = rows.copy()
    grown[:, 1:] |= rows[:, :-1]
    grown[:, :-1] |= rows[:, 1:]
    return grown


def line_like(height: int, width: int, shape: tuple[int, int]) -> bool:
    return ((height >= LINE_REACH * shape[0] and height >= LINE_ASPECT * width and width <= LINE_WIDTH * shape[1])
            or (width >= LINE_REACH * shape[1] and width >= LINE_ASPECT * height and height <= LINE_WIDTH * shape[0]))


@dataclass(frozen=True)
class Group:
    labels: tuple[int, ...]             # the marks (labels of ink_marks) of one digit
    box: tuple[int, int, int, int]      # (top, left, bottom, right) on the copy, the last two exclusive


def digit_groups(ink: np.ndarray) -> tuple[np.ndarray, list[Group]]:
    """The marks of ``ink`` as a label image and grouped into digits, ordered left to right:
    marks whose columns overlap first, then groups LOW_MARK of the tallest or less (bars, dots)
    and slivers joined to the digit nearest them where it is near enough, or dropped."""
    labels, count = ink_marks(ink)
    boxes = [(r.start, c.start, r.stop, c.stop) for r, c in ndimage.find_objects(labels)]
    marks = [index for index, (top, left, bottom, right) in enumerate(boxes)
             if not line_like(bottom - top, right - left, ink.shape)]
    if not marks:
        return labels, []
    digits = join_overlapping_columns(marks, boxes)
    tallest = max(height_of(union_box(digit, boxes)) for digit in digits)
    pieces = [digit for digit in digits if height_of(union_box(digit, boxes)) < LOW_MARK * tallest]
    digits = [digit for digit in digits if not any(digit is piece for piece in pieces)]
    for piece in pieces + [digit for digit in digits if is_sliver(union_box(digit, boxes))]:
        others = [digit for digit in digits if digit is not piece]
        if not others:
            continue
        piece_box = union_box(piece, boxes)
        distances = [gap_between(piece_box, union_box(digit, boxes)) for digit in others]
        nearest = others[int(np.argmin(distances))]
        bar = piece_box[3] - piece_box[1] >= BAR_WIDTH * tallest
        if min(distances) <= (BAR_REACH if bar else DOT_REACH) * height_of(union_box(nearest, boxes)):
            nearest.extend(piece)
            digits = [digit for digit in digits if digit is not piece]
    groups = [Group(tuple(label + 1 for label in digit), union_box(digit, boxes)) for digit in digits]
    return labels, sorted(groups, key=lambda group: group.box[1] + group.box[3])


def height_of(box: tuple[int, int, int, int]) -> int:
    return box[2] - box[0]


def is_sliver(box: tuple[int, int, int, int]) -> bool:
    return box[3] - box[1] < SLIVER * height_of(box)


def side_of(box: tuple[int, int, int, int]) -> int:
    return max(box[2] - box[0], box[3] - box[1])


def union_box(indices: list[int], boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    chosen = [boxes[index] for index in indices]
    return (min(b[0] for b in chosen), min(b[1] for b in chosen), max(b[2] for b in chosen), max(b[3] for b in chosen))


def join_overlapping_columns(strokes: list[int], boxes: list[tuple[int, int, int, int]]) -> list[list[int]]:
    """``strokes`` grouped so that marks whose columns overlap by PIECE_OVERLAP of the narrower
    one's width (or of the group's, once joined) are in one group."""
    digits: list[list[int]] = []
    for stroke in sorted(strokes, key=lambda index: boxes[index][1]):
        _, left, _, right = boxes[stroke]
        for digit in digits:
            _, group_left, _, group_right = union_box(digit, boxes)
            overlap = min(right, group_right) - max(left, group_left)
            if overlap >= PIECE_OVERLAP * min(right - left, group_right - group_left):
                digit.append(stroke)
                break
        else:
            digits.append([stroke])
    return digits


def gap_between(box: tuple[int, int, int, int], other: tuple[int, int, int, int]) -> int:
    """The larger of the vertical and horizontal gaps between two boxes (0 or less where they touch)."""
    return max(other[0] - box[2], box[0] - other[2], other[1] - box[3], box[1] - other[3])


def looks_like_number(groups: list[Group]) -> bool:
    """Whether two neighbouring groups (ordered left to right) look like digits of one number
    written in a row: of like height, side by side on one line, not far apart."""
    for first, second in zip(groups, groups[1:]):
        low, high = sorted((height_of(first.box), height_of(second.box)))
        overlap = min(first.box[2], second.box[2]) - max(first.box[0], second.box[0])
        if high <= ROW_HEIGHTS * low and overlap >= ROW_OVERLAP * low and second.box[1] - first.box[3] <= ROW_GAP * high:
            return True
    return False
