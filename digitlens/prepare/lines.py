"""Printed structure on the paper, taken out of the ink: the lines of ruled and squared paper,
the frames of a form's boxes (alone or in a comb field), a line under the digit.

What is printed is found among the ink's straight thin segments (digitlens.prepare.segments): a
segment is printed where it runs across the image (ruled and squared paper), where both its
ends meet other segments across it (a box's frame, a comb field's boxes), or where it lies
under all the other ink and is wider than it (an underline). Only the thin part of a printed
segment goes: a stroke that crosses it, or stands on it, is thicker across the line than the
line is, and stays.

Ink that is nothing but printed structure (an empty form) is no digit: refused as blank. A lone
upright segment is not taken out: with nothing else on the page, it is the stroke of a one.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from digitlens.prepare.errors import InputError
from digitlens.prepare.primitives import EIGHT_NEIGHBOURS
from digitlens.prepare.segments import Segment, ink_and_print, print_thickness, straight_segments, thick_runs

SMALLEST_PAGE = 64          # an image smaller than this is a digit alone (MNIST's 28 px): no print looked for
MEETS = 3                   # pixels within which a segment's end meets a segment across it, ...
OVERSHOOT = 0.15            # ... or this share of its length short of its end (a line run on past the corner)
FRAME_SHARE = 0.35          # a frame's side is at least this share of the image's shorter side long (a stamp's is shorter),
COMB_DIVIDERS = 3           # ... but where this many shorter sides divide the same two (a comb field of two boxes or more)
LIKE_THICKNESS = 1.5        # a frame's opposite sides are at most this many times (and a pixel) as thick as each other,
ACROSS_THICKNESS = 3        # ... the sides it meets this many (a digit overlapping a side thickens it; a digit's stroke is more)
FRAME_SIDES = 0.1           # a frame's opposite sides are at least this share of the longer side apart
EDGE = 0.05                 # ... and the share of the longer side within which it meets the image's edge
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
    background flat) without the printed lines on it; InputError where that is all it is. Lines
    are found on the ink and the faint print of ``light_ink`` (segments.ink_and_print): faint
    print falls below the ink's noise floor in pieces, which would pass for specks of ink."""
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
        raise InputError("no digit found: the image holds only printed lines", "blank")
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
    and the sides of frames: FRAME_SHARE of the image long at least, both ends on sides across
    them (or edges), A and B, that another side along them, FRAME_SIDES apart, also meets: a
    box's opposite side, a comb field's next box; each of them about as thick as it (print; a
    side a digit overlaps measures thicker). A frame's sides hold each other up:
    one whose sides across are too short to be a frame's (a stamp's) is none, and a digit's
    stroke reaching from one side of its box to the other is thicker than the box's print."""
    shape = present.shape
    ends = [end_partners(segment, segments, shape) for segment in segments]
    printed = {index for index, (first, last) in enumerate(ends) if first & EDGES and last & EDGES
               and (len(segments) > 1 or lone_ruled_line(segments[index]))}
    lines = [segments[index] for index in printed]
    printed |= {index for index, (first, last) in enumerate(ends) if index not in printed
                and any(segments[index].thickness <= LIKE_THICKNESS * min(segments[a].thickness, segments[b].thickness) + 1
                        for a in first & printed for b in last & printed if a != b)
                and divider_beside(segments[index], lines, present)}
    sides = {index for index, segment in enumerate(segments) if index not in printed
             and segment.end - segment.start >= FRAME_SHARE * min(shape)}
    dividers, strokes = comb_dividers(set(range(len(segments))) - printed, segments, ends, sides | printed, shape)
    sides = (sides | dividers) - strokes
    while True:
        held = printed | sides | EDGES
        kept = {index for index in sides if frame_side(index, segments, ends, held, shape)}
        if kept == sides:
            return [segment for index, segment in enumerate(segments) if index in printed | sides]
        sides = kept


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


def comb_dividers(candidates: set, segments: list[Segment], ends: list[tuple[set, set]], long: set,
                  shape: tuple[int, int]) -> tuple[set, set]:
    """Of the ``candidates``, the dividers of a comb field's boxes and the strokes between them.
    Where COMB_DIVIDERS at least of those that meet the same two ``long`` sides, and are as thin as
    they are, lie evenly spaced (the boxes' pitch; a stamp's frame, as wide, has two), each that
    meets them on the pitch is a divider (a digit touching one thickens it), and each between
    them off the pitch a digit's stroke (a short strip of a comb field makes one reaching across
    its box as long as a side)."""
    between = {}
    for index in candidates:
        for a, b in {(a, b) for a in ends[index][0] & long for b in ends[index][1] & long if a != b}:
            between.setdefault((a, b), set()).add(index)
    dividers, strokes = set(), set()
    for (a, b), meeting in between.items():
        thin = {index for index in meeting
                if segments[index].thickness <= LIKE_THICKNESS * min(segments[a].thickness, segments[b].thickness) + 1}
        comb, pitch = evenly_spaced(thin, segments, FRAME_SIDES * max(shape))
        if not comb:
            continue
        pitch, origin = fitted_pitch(comb, segments, pitch)
        places = {index: (centre(segments[index]) - origin) / pitch for index in meeting}
        first, last = min(places[index] for index in comb), max(places[index] for index in comb)
        for index, place in places.items():
            on_pitch = abs(place - round(place)) * pitch <= MEETS
            if on_pitch and first - 1 < place < last + 1:
                dividers.add(index)
            elif not on_pitch and first < place < last:
                strokes.add(index)
    return dividers, strokes - dividers


def centre(segment: Segment) -> float:
    return (segment.first + segment.last) / 2


def evenly_spaced(candidates: set, segments: list[Segment], least_pitch: float) -> tuple[set, float]:
    """The most of ``candidates`` (parallel segments) that lie a whole number of one pitch apart,
    within MEETS, the pitch least_pitch at least, each place of the pitch between them without one
    counting against it (a one in the middle of a box lies on half the pitch); with the pitch.
    None where fewer than COMB_DIVIDERS do."""
    at = {index: centre(segments[index]) for index in candidates}
    best, best_pitch, best_score = set(), least_pitch, 0
    for first, last in ((a, b) for a in at for b in at if at[b] - at[a] >= least_pitch):
        for boxes in range(1, int((at[last] - at[first]) // least_pitch) + 1):
            pitch = (at[last] - at[first]) / boxes
            on = {index for index, x in at.items() if abs((x - at[first]) / pitch - round((x - at[first]) / pitch)) * pitch <= MEETS}
            places = {round((at[index] - at[first]) / pitch) for index in on}
            if (score := 2 * len(places) - (max(places) + 1 - min(places))) > best_score:
                best, best_pitch, best_score = on, pitch, score
    return (best, best_pitch) if len(best) >= COMB_DIVIDERS else (set(), best_pitch)


def fitted_pitch(comb: set, segments: list[Segment], pitch: float) -> tuple[float, float]:
    """The pitch of a comb field's dividers ``comb``, about ``pitch`` apart, and where its first
    place lies: a line fitted to their places (one found from two of them drifts)."""
    at = np.array([centre(segments[index]) for index in comb])
    places = np.round((at - at.min()) / pitch)
    pitch, origin = np.polyfit(places, at, 1)
    return float(pitch), float(origin)


def lone_ruled_line(segment: Segment) -> bool:
    """Whether ``segment``, alone across the image, is a ruled line: it lies (a one stands), and
    it is thin for its length (LONE_LINE)."""
    return segment.axis == 1 and segment.thickness <= LONE_LINE * (segment.end - segment.start)


def frame_side(index: int, segments: list[Segment], ends: list[tuple[set, set]], held: set,
               shape: tuple[int, int]) -> bool:
    """Whether ``segment`` is a frame's side: both its ends meet sides across it, A and B, that
    another side along it, FRAME_SIDES apart, also meets, about as thick as it (LIKE_THICKNESS),
    or, where the two are the outermost of all that meet A and B, as thick within ACROSS_THICKNESS
    (a digit lying along a side thickens it, a faint side measures thin)."""
    segment, (first, last) = segments[index], ends[index]
    across = EDGES | {other for other in held - EDGES if segment.thickness <= ACROSS_THICKNESS * segments[other].thickness + 1}
    for a, b in {(a, b) for a in first & across for b in last & across if a != b}:
        meeting = {other for other, (start, end) in enumerate(ends)
                   if segments[other].axis == segment.axis and {a, b} <= start | end}
        outermost = {min(meeting, key=lambda other: centre(segments[other])), max(meeting, key=lambda other: centre(segments[other]))}
        for other in (held - EDGES) & meeting - {index}:
            factor = ACROSS_THICKNESS if {index, other} == outermost else LIKE_THICKNESS
            if (segment.thickness <= factor * segments[other].thickness + 1
                    and abs(segments[other].first - segment.first) >= FRAME_SIDES * max(shape)):
                return True
    return False


EDGES = frozenset({"top", "left", "bottom", "right"})


def end_partners(segment: Segment, segments: list[Segment], shape: tuple[int, int]) -> tuple[set, set]:
    """What each end of ``segment`` meets: the indices of segments across it, and the image's edges."""
    edge = max(MEETS, EDGE * max(shape))
    height, width = shape
    partners = []
    overshoot = MEETS + OVERSHOOT * (segment.end - segment.start)
    for along, across, inwards in ((segment.start, segment.first, 1), (segment.end - 1, segment.last, -1)):
        row, column = (across, along) if segment.axis == 1 else (along, across)
        met = {index for index, other in enumerate(segments) if other.axis != segment.axis
               and other.start - MEETS <= across <= other.end + MEETS
               and -MEETS - 1 <= inwards * (other.across_at(across) - along) <= overshoot}
        met |= {name for name, near in (("top", row <= edge), ("bottom", row >= height - 1 - edge),
                                        ("left", column <= edge), ("right", column >= width - 1 - edge)) if near}
        partners.append(met)
    return partners[0], partners[1]


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
