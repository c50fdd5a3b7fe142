"""Artefacts of how an image was made, undone before the ink is looked for: the blocks of a
nearest-neighbour enlargement (a low-resolution image blown up by a viewer) and a scanner lid's
dark edge along a side.
"""
from __future__ import annotations

import numpy as np

from digitlens.prepare.primitives import box_blur, mostly_below

BLOCK_EDGE = 0.15           # a step between neighbouring pixels this share of the image's range may be a block's edge
MIN_BLOCK_SIDE = 3          # smaller blocks are left as they are: a shrink to 20 px averages them away
SHARP_STEP = 0.25           # blocks step by at least this share of the image's range somewhere (a blur never does)
ON_LATTICE = 0.9            # the share of the steps' energy within a pixel of the block edges (see block_period)
EDGE_BAND = 0.04            # a scanner lid's dark edge is at most this share of the image across ...
EDGE_CONTRAST = 0.3         # ... and this far from the paper's shade (see paint_out_edge_bands)


def block_period(grey: np.ndarray, axis: int, span: float) -> float:
    """The spacing of the block edges along ``axis`` (0: between rows, 1: between columns) that
    a nearest-neighbour enlargement made, or 0 if there are none. The large steps must be one
    pixel wide, or two after a shrink blended them (a smooth stroke's edge is wider), at least
    three of them on a lattice of one period (a fraction after a shrink), and nearly all of
    the change must happen within a pixel of that lattice: a JPEG's ringing beside each edge is
    faint, the edges of strokes drawn or blurred fall anywhere. ``span``: the image's range."""
    steps = np.abs(np.diff(grey, axis=axis)).max(axis=1 - axis)
    if steps.size == 0 or span == 0 or steps.max() < SHARP_STEP * span:      # no steps: one pixel wide
        return 0.0
    edges = np.flatnonzero(steps > BLOCK_EDGE * span)
    breaks = np.diff(edges) > 1
    starts, ends = edges[np.r_[True, breaks]], edges[np.r_[breaks, True]]
    if starts.size < 3 or (ends - starts).max() > 1:
        return 0.0
    centres = (starts + ends) / 2
    spacings = np.diff(centres)
    multiples = np.round(spacings / spacings.min())
    period = float(spacings.sum() / multiples.sum())
    if period < MIN_BLOCK_SIDE or np.abs(spacings / period - multiples).max() > 0.25:
        return 0.0
    offsets = centres - centres[0]
    origin = centres[0] + float(np.mean(offsets - period * np.round(offsets / period)))
    phase = (np.arange(steps.size) - origin) / period
    near_edge = np.abs(phase - np.round(phase)) * period <= 1
    energy = steps ** 2
    return period if energy[near_edge].sum() >= ON_LATTICE * energy.sum() else 0.0


def block_side(grey: np.ndarray) -> int:
    """The side of the flat blocks a nearest-neighbour enlargement (a low-resolution image
    blown up by a viewer) made of ``grey``, or 1 if it has none: square blocks, the same
    period along both axes, at least MIN_BLOCK_SIDE pixels."""
    span = float(grey.max() - grey.min())
    across = block_period(grey, 1, span)
    if across < MIN_BLOCK_SIDE:
        return 1
    down = block_period(grey, 0, span)
    if down < MIN_BLOCK_SIDE or abs(across - down) > 1:
        return 1
    return round((across + down) / 2)


def paint_out_edge_bands(grey: np.ndarray) -> np.ndarray:
    """``grey`` with a scanner lid's dark edge painted the paper's shade: a band along a side,
    at most EDGE_BAND of the image across, whose rows or columns are EDGE_CONTRAST darker than
    the image's median along most of their length, with paper right beside it (a shadow fades
    in; the one line between may be half dark, where the band's edge fell inside a pixel). A
    stroke that touches the side does not count: it runs across the side, not along it."""
    outer_lines = (grey[0], grey[-1], grey[:, 0], grey[:, -1])
    if not any(mostly_below(line, float(grey.max()) - EDGE_CONTRAST) for line in outer_lines):
        return grey                                           # no outer line is dark even against the lightest pixel
    paper = float(np.median(grey[::3, ::3]))                  # a ninth of the pixels: the same shade
    if not any(mostly_below(line, paper - EDGE_CONTRAST) for line in outer_lines):
        return grey                                           # no side's outermost line is dark: no band
    painted = grey
    for axis in (0, 1):
        limit = max(1, round(EDGE_BAND * grey.shape[axis]))
        if grey.shape[axis] <= 2 * (limit + 2):
            continue
        for from_start in (True, False):
            edge_lines = np.moveaxis(grey, axis, 0)[:limit + 2] if from_start else np.moveaxis(grey, axis, 0)[::-1][:limit + 2]
            outward = np.median(edge_lines, axis=1)          # one value per line, from the side inwards
            width = int(np.argmin(paper - outward > EDGE_CONTRAST))    # the dark lines from the side in
            if not 0 < width <= limit or paper - outward[width + 1] > EDGE_CONTRAST / 3:
                continue
            if painted is grey:
                painted = grey.copy()
            edge = slice(0, width + 1) if from_start else slice(grey.shape[axis] - width - 1, None)
            painted[(edge, slice(None)) if axis == 0 else (slice(None), edge)] = paper
    return painted


def smooth_blocks(grey: np.ndarray) -> np.ndarray:
    """Undo a blocky (nearest-neighbour) enlargement: the network reads a smoothly enlarged
    low-resolution digit far better than the same pixels as sharp-edged squares."""
    side = block_side(grey)
    return box_blur(grey, side) if side > 1 else grey
