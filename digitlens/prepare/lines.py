"""Printed structure on the paper, taken out of the ink: the lines of ruled and squared paper,
the frames of a form's boxes (alone or in a comb field), a line under the digit.

What is printed is found among the ink's straight thin segments (digitlens.prepare.segments): a
segment is printed where it runs across the image (ruled and squared paper), where both its
ends meet other segments across it (a box's frame, a comb field's boxes: digitlens.prepare.
frames), or where it lies under all the other ink and is wider than it (an underline). Only the thin part of a printed
segment goes: a stroke that crosses it, or stands on it, is thicker across the line than the
line is, and stays.

Ink that is nothing but printed structure (an empty form) is no digit: refused as blank. A lone
upright segment is not taken out: with nothing else on the page, it is the stroke of a one.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from digitlens.prepare.errors import OnlyPrint
from digitlens.prepare.frames import EDGES, LIKE_THICKNESS, MEETS, end_partners, frame_sides
from digitlens.prepare.primitives import EIGHT_NEIGHBOURS
from digitlens.prepare.segments import Segment, ink_and_print, straight_segments, thick_runs

SMALLEST_PAGE = 64          # an image smaller than this is a digit alone (MNIST's 28 px): no print looked for
LONE_LINE = 0.03            # a level line alone across the image is printed where at most this share of its length thick
UNDERLINE_WIDTH = 1.1       # an underline is this many times wider than the ink above it, ...
SEPARATE_UNDERLINE = 0.7    # ... or this many where it does not touch it; one that touches it is, ...
FRINGE = 2                  # pixels of an underline's blurred edge, beyond its thickness, that are still the line
THINNER = 0.8               # ... at most this share of its strokes' width (a two's base is as wide as its strokes)
END_SHARE = 0.3             #     where they land on it within this share of its width from an end
END_LANDING_WIDTH = 2       # where they land on its very end, it is this many times as wide as the ink (a one on a line),
END_THINNER = 0.55          # ... or at most this share of its strokes' width (a two's or a three's foot is two thirds and more)


def remove_printed_lines(ink: np.ndarray, light_ink: np.ndarray) -> np.ndarray:
    """``ink`` (light on black, found on ``light_ink``: the image with its ink made light and its
    background flat) without the printed lines on it (``ink`` itself where none are found);
    OnlyPrint where that is all it is. Lines are found on the ink and the faint print of
    ``light_ink`` (segments.ink_and_print): faint print falls below the ink's noise floor in
    pieces, which would pass for specks of ink."""
    if max(ink.shape) < SMALLEST_PAGE:
        return ink
    present = ink_and_print(ink, light_ink)
    segments = [*straight_segments(present, axis=1), *straight_segments(present, axis=0)]
    if not segments:
        return ink
    printed = printed_segments(segments, present)
    written = ink > 0
    lying = [segment for segment in segments if segment.axis == 1 and segment not in printed]
    for segment in sorted(lying, key=lambda segment: min(segment.first, segment.last)):    # highest first: of a
        lower = [other.mask for other in lying if min(other.first, other.last) > max(segment.first, segment.last)]
        if is_underline(segment, written & ~np.logical_or.reduce([np.zeros_like(written), *lower])):    # double
            printed.append(segment)                                 # underline, the one under the digit first
            written = written & ~segment.mask
    if not printed:
        return ink
    along = {axis: np.zeros_like(present) for axis in (0, 1)}
    for segment in printed:
        along[segment.axis] |= segment.mask
    removed = np.zeros_like(present)
    for segment in printed:
        # A stroke crossing a line is longer across it than twice the line's thickness (the lines across it
        # aside); a stroke along it, or a blob on it, is that thick both ways (where lines cross, they are not).
        across = 2 * segment.thickness + 1
        near = segment.around(2 * across + 2, present.shape)
        crossing = thick_runs(present[near] & ~along[1 - segment.axis][near], across, axis=1 - segment.axis)
        body = ndimage.binary_opening(present[near], np.ones((across, across), bool))
        removed[near] |= segment.mask[near] & present[near] & ~crossing & ~body
    cleaned = np.where(removed | residue(ink > 0, removed, max(segment.thickness for segment in printed)), 0, ink)
    if not cleaned.any():
        raise OnlyPrint()
    return cleaned


def residue(written: np.ndarray, removed: np.ndarray, thickness: int) -> np.ndarray:
    """What is left of the lines: the marks of ``written`` that lie, all of them, within twice a
    line's thickness (and a pixel or two) of the pixels ``removed``, and are no wider than that
    one way at least (where lines crossed, a line's blurred edge; a small digit in a comb
    field's box is more)."""
    left = written & ~removed
    reach = 2 * thickness + 3
    near = ndimage.maximum_filter(removed.view(np.uint8), reach).view(bool)
    labels, count = ndimage.label(left, EIGHT_NEIGHBOURS)
    keep = np.zeros(count + 1, bool)
    keep[labels[left & ~near]] = True
    keep[1:] |= np.array([min(rows.stop - rows.start, columns.stop - columns.start) > reach
                          for rows, columns in ndimage.find_objects(labels)], bool)
    return left & ~keep[labels]


def printed_segments(segments: list[Segment], present: np.ndarray) -> list[Segment]:
    """The printed ones of ``segments`` (of the ink ``present``): ruled and grid lines (both ends
    at the image's edges), the dividers of a comb field cut off beside its digit (divider_beside),
    and the sides of frames (frames.frame_sides)."""
    shape = present.shape
    ends = [end_partners(segment, segments, shape) for segment in segments]
    printed = {index for index, (first, last) in enumerate(ends) if first & EDGES and last & EDGES
               and (len(segments) > 1 or lone_ruled_line(segments[index]))}
    lines = [segments[index] for index in printed]
    printed |= {index for index, (first, last) in enumerate(ends) if index not in printed
                and any(segments[index].thickness <= LIKE_THICKNESS * min(segments[a].thickness, segments[b].thickness) + 1
                        for a in first & printed for b in last & printed if a != b)
                and divider_beside(segments[index], lines, present)}
    printed |= frame_sides(set(range(len(segments))) - printed, printed, segments, ends, present)
    return [segment for index, segment in enumerate(segments) if index in printed]


def divider_beside(segment: Segment, lines: list[Segment], present: np.ndarray) -> bool:
    """Whether ``segment``, whose ends meet two of the printed ``lines`` across it (a comb field's
    long sides, cut out with one box by a closer look), is the divider beside the box's digit:
    the rest of the ink, apart from the lines and not joined to it, lies all to one side of it,
    and there is at least half as much of it. A one written from one ruled line to the next has
    no such ink beside it; a four's upright has its other stroke joined to it."""
    on_lines = ndimage.binary_dilation(np.logical_or.reduce([line.mask for line in lines]), iterations=2)
    off_lines = present & ~on_lines
    rest = off_lines & ~ndimage.binary_dilation(segment.mask, iterations=segment.thickness + 2)
    if not rest.any() or rest.sum() < (segment.mask & off_lines).sum() / 2:
        return False
    labels, _ = ndimage.label(off_lines, EIGHT_NEIGHBOURS)
    if np.intersect1d(labels[segment.mask & off_lines], labels[rest]).any():
        return False
    at = np.flatnonzero(rest.any(axis=0 if segment.axis == 0 else 1))
    return bool(at[-1] < min(segment.first, segment.last) or at[0] > max(segment.first, segment.last))


def lone_ruled_line(segment: Segment) -> bool:
    """Whether ``segment``, alone across the image, is a ruled line: it lies (a one stands), and
    it is thin for its length (LONE_LINE)."""
    return segment.axis == 1 and segment.thickness <= LONE_LINE * (segment.end - segment.start)


def is_underline(segment: Segment, ink: np.ndarray) -> bool:
    """Whether horizontal ``segment`` lies under all the other ink and, where it stands apart
    from that ink, is as wide as most of it (SEPARATE_UNDERLINE); where the ink touches it, is
    wider than it (UNDERLINE_WIDTH), the ink not landing on it at both its ends, and, landing
    within END_SHARE of an end, the line thinner than the ink's strokes (THINNER), on its very
    end, END_LANDING_WIDTH times as wide as the ink or half as thick as its strokes (END_THINNER)."""
    fringe = np.zeros_like(segment.mask)
    near = segment.around(FRINGE + 1, fringe.shape)
    fringe[near] = ndimage.maximum_filter(segment.mask[near].view(np.uint8), 2 * FRINGE + 1).view(bool)
    above = ink & ~fringe                   # a pen's line is blurred beyond its usual thickness
    rows = np.flatnonzero(above.any(axis=1))
    if not len(rows) or rows[-1] > max(segment.first, segment.last) + MEETS:
        return False
    columns = np.flatnonzero(above.any(axis=0))
    width = segment.end - segment.start
    labels, _ = ndimage.label(ink, EIGHT_NEIGHBOURS)
    touched = np.unique(labels[segment.mask & ink])
    touching = np.isin(labels, touched[touched > 0]) & above
    if not touching.any():
        return width >= SEPARATE_UNDERLINE * (columns[-1] + 1 - columns[0])
    if width < UNDERLINE_WIDTH * (columns[-1] + 1 - columns[0]):
        return False
    # Where the ink it touches comes down onto it: a stamp's bottom side is met at both ends, a two's
    # base at one (and is as thick as the strokes above it); an underline within, or by a thinner line.
    top = round(min(segment.first, segment.last) - segment.thickness / 2 - 1.5)
    landing = np.flatnonzero(touching[max(0, top - 2 * segment.thickness):max(0, top)].any(axis=0))
    if not len(landing):
        return True
    margin = 2 * segment.thickness + MEETS
    at_start, at_end = landing[0] < segment.start + margin, landing[-1] >= segment.end - margin
    if at_start and at_end:
        return False
    towards = max(margin, END_SHARE * width)
    if segment.start + towards <= landing[0] and landing[-1] < segment.end - towards:
        return True
    thinner = np.median((segment.mask & ink)[:, segment.start:segment.end].sum(axis=0)) / stroke_width(above)
    if (at_start or at_end) and width < END_LANDING_WIDTH * (columns[-1] + 1 - columns[0]):
        return thinner <= END_THINNER
    return thinner <= THINNER


def stroke_width(ink: np.ndarray) -> float:
    """The usual width of ``ink``'s strokes, in pixels: its area over its centre lines' length."""
    return ink.sum() / max(1, skeletonize(ink).sum())
