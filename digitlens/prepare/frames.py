"""The frames of a form's boxes among the straight thin segments of the ink (digitlens.prepare.
segments): a box's four sides, a comb field's long sides and the dividers between its boxes, a
frame with a side that a digit written over it hides. Which segments are lines across the paper
or underlines is told in digitlens.prepare.lines, which takes out all of them.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from digitlens.prepare.segments import Segment, least_squares_line

MEETS = 3                   # pixels within which a segment's end meets a segment across it, ...
OVERSHOOT = 0.15            # ... or this share of its length short of its end (a line run on past the corner)
FRAME_SHARE = 0.35          # a frame's side is at least this share of the image's shorter side long (a stamp's is shorter),
COMB_DIVIDERS = 3           # ... but where this many shorter sides divide the same two (a comb field of two boxes or more)
LIKE_THICKNESS = 1.5        # a frame's opposite sides are at most this many times (and a pixel) as thick as each other,
ACROSS_THICKNESS = 3        # ... the sides it meets this many (a digit overlapping a side thickens it; a digit's stroke is more)
FRAME_SIDES = 0.1           # a frame's opposite sides are at least this share of the longer side apart
EDGE = 0.05                 # ... and the share of the longer side within which it meets the image's edge
HIDDEN_SIDE = 0.6           # an open frame's hidden side: ink along this share of the way between its open ends at least
HELD_INK = 0.05             # ... and ink on this share of its inside at least (the digit in the box)
BESIDE_INK = 0.1            # ... and outside it, beside each of its two sides along each other, at most this share


def frame_sides(candidates: set, lines: set, segments: list[Segment], ends: list[tuple[set, set]],
                present: np.ndarray) -> set:
    """Of the ``candidates`` (segments of the ink ``present``, their ``ends``' partners), the sides
    of frames, the printed ``lines`` across the image taken as sides too: FRAME_SHARE of the image
    long at least, both ends on sides across them (or edges), A and B, that another side along
    them, FRAME_SIDES apart, also meets: a box's opposite side, a comb field's next box; each of
    them about as thick as it (print; a side a digit overlaps measures thicker, frame_side). A
    frame's sides hold each other up: one whose sides across are too short to be a frame's (a
    stamp's) is none, and a digit's stroke reaching from one side of its box to the other is
    thicker than the box's print. Comb fields' dividers (comb_dividers) and frames with a side
    hidden (open_frame) count too."""
    shape = present.shape
    sides = {index for index in candidates if segments[index].end - segments[index].start >= FRAME_SHARE * min(shape)}
    dividers, strokes = comb_dividers(candidates, segments, ends, sides | lines, shape)
    sides = (sides | dividers) - strokes
    open_sides = open_frame(sides, segments, ends, present)
    while True:
        held = lines | sides | EDGES
        kept = {index for index in sides if frame_side(index, segments, ends, held, present)}
        if kept == sides:
            return sides | open_sides
        sides = kept


def frame_side(index: int, segments: list[Segment], ends: list[tuple[set, set]], held: set,
               present: np.ndarray) -> bool:
    """Whether ``segment`` is a frame's side: both its ends meet sides across it, A and B, that
    another side along it, FRAME_SIDES apart, also meets, about as thick as it (LIKE_THICKNESS),
    or, where the two are the outermost of all that meet A and B, with no ink beside them outside
    (BESIDE_INK), as thick within ACROSS_THICKNESS (a digit lying along a side thickens it, a
    faint side measures thin; in a number, two digits' strokes have their neighbours beside them)."""
    segment, (first, last) = segments[index], ends[index]
    across = EDGES | {other for other in held - EDGES if segment.thickness <= ACROSS_THICKNESS * segments[other].thickness + 1}
    for a, b in {(a, b) for a in first & across for b in last & across if a != b}:
        meeting = {other for other, (start, end) in enumerate(ends)
                   if segments[other].axis == segment.axis and {a, b} <= start | end}
        outermost = {min(meeting, key=lambda other: centre(segments[other])), max(meeting, key=lambda other: centre(segments[other]))}
        for other in (held - EDGES) & meeting - {index}:
            if abs(segments[other].first - segment.first) < FRAME_SIDES * max(present.shape):
                continue
            if segment.thickness <= LIKE_THICKNESS * segments[other].thickness + 1:
                return True
            if ({index, other} == outermost and segment.thickness <= ACROSS_THICKNESS * segments[other].thickness + 1
                    and inked_beside(segment, segments[other], present) <= BESIDE_INK
                    and inked_beside(segments[other], segment, present) <= BESIDE_INK):
                return True
    return False


def open_frame(sides: set, segments: list[Segment], ends: list[tuple[set, set]], present: np.ndarray) -> set:
    """Of ``sides``, those of a frame whose fourth side a digit hides (its stroke lies along it,
    and the side is no straight thin segment there): a side whose ends meet two sides along each
    other, FRAME_SIDES apart and about as thick, that meet nothing at their other ends, level;
    ink runs most of the way between those ends (the hidden side: a four's open top has none),
    and the frame holds ink within it (a digit written square, a nought, holds none)."""
    found = set()
    for base in sides:
        for a, b in {(a, b) for a in ends[base][0] & sides for b in ends[base][1] & sides if a != b}:
            arms = [segments[a], segments[b]]
            thinnest = min(arm.thickness for arm in (*arms, segments[base]))
            if (arms[0].axis != arms[1].axis or abs(centre(arms[0]) - centre(arms[1])) < FRAME_SIDES * max(present.shape)
                    or max(arm.thickness for arm in arms) > LIKE_THICKNESS * min(arm.thickness for arm in arms) + 1
                    or max(arm.thickness for arm in (*arms, segments[base])) > ACROSS_THICKNESS * thinnest + 1):
                continue
            at_start = [base in ends[arm][0] and not ends[arm][1] for arm in (a, b)]
            at_end = [base in ends[arm][1] and not ends[arm][0] for arm in (a, b)]
            if not (all(at_start) or all(at_end)):
                continue
            free = [(arm.end - 1, arm.last) if all(at_start) else (arm.start, arm.first) for arm in arms]
            if (abs(free[0][0] - free[1][0]) <= MEETS + OVERSHOOT * min(arm.end - arm.start for arm in arms)
                    and inked_between(*free, arms[0].axis, present) >= HIDDEN_SIDE
                    and inked_within(arms, segments[base], free, present) >= HELD_INK
                    and all(inked_beside(arm, other, present) <= BESIDE_INK for arm, other in (arms, arms[::-1]))):
                found |= {base, a, b}
    return found


def inked_beside(arm: Segment, other: Segment, present: np.ndarray) -> float:
    """The share of a band along ``arm``, on its side away from ``other`` (outside the frame), twice
    its thickness and MEETS wide, that holds ink: paper beside a box; a digit's neighbour beside a
    digit's stroke, in a number."""
    outwards = 1 if centre(arm) > centre(other) else -1
    edge = centre(arm) + outwards * (arm.thickness / 2 + MEETS)
    near, far = sorted((round(edge), round(edge + outwards * (2 * arm.thickness + MEETS))))
    near, far = max(0, near), min(present.shape[1 - arm.axis], far)
    band = present[arm.start:arm.end, near:far] if arm.axis == 0 else present[near:far, arm.start:arm.end]
    return float(band.mean()) if band.size else 0.0


def inked_between(start: tuple[float, float], end: tuple[float, float], axis: int, present: np.ndarray) -> float:
    """The share of the straight way from ``start`` to ``end`` (each along, across ``axis``) that
    has ink within a pixel."""
    steps = max(2, round(abs(end[1] - start[1])))
    rows, columns = (np.linspace(start[0], end[0], steps), np.linspace(start[1], end[1], steps))[::1 if axis == 0 else -1]
    near = ndimage.maximum_filter(present.view(np.uint8), 3).view(bool)
    rows = np.clip(np.round(rows).astype(int), 0, present.shape[0] - 1)
    columns = np.clip(np.round(columns).astype(int), 0, present.shape[1] - 1)
    return float(near[rows, columns].mean())


def inked_within(arms: list[Segment], base: Segment, free: list[tuple[float, float]], present: np.ndarray) -> float:
    """The share of an open frame's inside (between its ``arms``, from its ``base`` to their
    ``free`` ends, its sides' thickness and MEETS in from each) that holds ink."""
    inset = max(segment.thickness for segment in (*arms, base)) + MEETS
    across = sorted(centre(arm) for arm in arms)
    along = sorted((centre(base), sum(end[0] for end in free) / 2))
    first, last = round(across[0] + inset), round(across[1] - inset)
    near, far = round(along[0] + inset), round(along[1] - inset)
    if last <= first or far <= near:
        return 0.0
    inside = present[near:far, first:last] if arms[0].axis == 0 else present[first:last, near:far]
    return float(inside.mean())


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
    return least_squares_line(np.round((at - at.min()) / pitch), at)


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
