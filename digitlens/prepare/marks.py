"""The separate marks of a digit's or a number's ink: where on a page the digit may be
(digit_candidates), and marks grouped into the digits of a number (digit_groups).

Pure functions on an ink image (light on black, 0 where there is no ink): no decoding, no
model. ``locate`` uses the candidates to find a small digit among a page's other marks (and the
groups to say an upload looks like a number); ``number`` uses the groups to read each digit.

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

from digitlens.prepare.primitives import EIGHT_NEIGHBOURS, dilate_3x3

LINE_REACH = 0.4            # a mark this share of the page long and LINE_ASPECT times longer than wide is a line ...
LINE_ASPECT = 8             # ... (a ruled line, a scanner's dark edge), not a digit (see digit_candidates), ...
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
MAX_WIDTH = 2               # no digit is this many times wider than tall
FRAMED_MASS = 0.1           # a mark enclosing this share of its own ink is a frame (see digit_candidates)
SPECK_GAP = 0.5             # marks this far apart at most (a share of the longer side of the group so far) are pieces of one digit


def ink_marks(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """The separate marks of ``ink`` (pixels two apart join), as a label image and their count."""
    return ndimage.label(dilate_3x3(ink > 0), EIGHT_NEIGHBOURS)


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


def digit_candidates(ink: np.ndarray) -> list[np.ndarray]:
    """Where the marks of ``ink`` might be the digit, each as ``ink`` with only those marks, the
    heaviest first: ``[ink]`` itself where it is one mark. Marks stand apart on a page (a stamp
    beside the digit): a mark whose holes hold FRAMED_MASS of its own ink or more (a stamp's
    ring or frame round its text) is not the digit, nor is what it encloses; nor is a mark
    MAX_WIDTH times wider than tall (a line of text, a dash), though it may be a piece of one
    (a seven's detached bar), nor a ruled line or a scanner's dark edge (line_like), which is
    not a piece either. Each remaining mark is taken with its pieces (pieces_of). Empty where
    no mark is left."""
    labels, count = ink_marks(ink)
    if count < 2:
        return [ink]
    boxes = ndimage.find_objects(labels)
    masses = ndimage.sum_labels(ink, labels, np.arange(1, count + 1))
    # A ruled line or a scanner's dark edge (line_like) is neither the digit nor a piece of it.
    joinable = np.asarray([not line_like(r.stop - r.start, c.stop - c.start, ink.shape) for r, c in boxes])
    for label in range(count):
        inside = enclosed_marks(labels, boxes, label)
        if inside and masses[inside].sum() >= FRAMED_MASS * masses[label]:
            joinable[[label, *inside]] = False
    wide = np.asarray([c.stop - c.start > MAX_WIDTH * (r.stop - r.start) for r, c in boxes])
    eligible = joinable & ~wide             # may be the digit's main mark
    candidates, taken = [], np.zeros(count, bool)
    for chosen in np.argsort(-masses):
        if not eligible[chosen] or taken[chosen]:
            continue
        near = pieces_of(boxes, chosen, joinable & ~taken)
        taken[near] = True
        candidates.append(np.where(np.isin(labels, np.add(near, 1)), ink, 0).astype(ink.dtype))
    return candidates


def pieces_of(boxes: list[tuple[slice, slice]], chosen: int, free: np.ndarray) -> list[int]:
    """Mark ``chosen`` and the ``free`` marks that lie within SPECK_GAP of the group so far
    (a share of its longer side), added until no more are: a thin stroke broken into a chain."""
    group, (rows, cols) = [chosen], boxes[chosen]
    top, left, bottom, right = rows.start, cols.start, rows.stop, cols.stop
    added = True
    while added:
        added = False
        reach = SPECK_GAP * max(bottom - top, right - left)
        for label, (r, c) in enumerate(boxes):
            if free[label] and label not in group and \
                    max(r.start - bottom, top - r.stop, c.start - right, left - c.stop) <= reach:
                group.append(label)
                top, left, bottom, right = min(top, r.start), min(left, c.start), max(bottom, r.stop), max(right, c.stop)
                added = True
    return group


def enclosed_marks(labels: np.ndarray, boxes: list[tuple[slice, slice]], label: int) -> list[int]:
    """The marks (indices into ``boxes``) lying in the holes of mark ``label``."""
    rows, cols = boxes[label]
    within = [other for other, (r, c) in enumerate(boxes) if other != label and rows.start <= r.start
              and r.stop <= rows.stop and cols.start <= c.start and c.stop <= cols.stop]
    if not within:
        return []
    region = labels[rows, cols]
    mark = region == label + 1
    in_holes = np.unique(region[ndimage.binary_fill_holes(mark) & ~mark])
    return [other for other in within if other + 1 in in_holes]
