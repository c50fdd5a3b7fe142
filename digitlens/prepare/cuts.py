"""Cutting a run of touching digits apart where the string reader (``digitlens.strings``) says
one digit ends and the next begins: between the columns where it reads the one and the other,
the cut is the straight line, upright or leaning a little (SLOPES), that crosses the fewest
strokes and least ink, so a stroke that only touches its neighbour is parted at the touch; and
each piece keeps some ink (the reader reads a digit at its left edge or before it, so the columns
between a narrow one and the next digit may lie left of the one). Pure functions on an ink
image (light on black): no model.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from digitlens.prepare.primitives import EIGHT_NEIGHBOURS

SLOPES = (-0.3, -0.15, 0.0, 0.15, 0.3)  # a cut leans this many columns a row (digits lean, and overlap)
STROKE_COST = 0.15          # each stroke a cut crosses costs this share of the run's height in ink, ...
OFF_CENTRE = 0.05           # a column away from the middle of where a cut may be costs this much ink (ties broken)
SLIVER = 0.1                # a mark a cut left holding under this share of the piece's ink is the neighbour's: dropped
LEAST_PIECE = 0.15          # a cut leaves each piece at least this share of a digit's ink (the run's over its digits)


def straight_cuts(ink: np.ndarray, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Every straight cut of ``ink`` (h, w) leaning ``slope`` columns a row, one crossing each
    column at the middle row: (w, h) the column it passes in each row, and (w,) what it costs:
    the ink it crosses, and STROKE_COST of the height for each stroke (a cut through a ring's
    middle crosses two strokes, one where a ring touches its neighbour crosses one)."""
    height, width = ink.shape
    rows = np.arange(height)
    paths = np.clip(np.round(np.arange(width)[:, None] + slope * (rows - height / 2)), 0, width).astype(np.int32)
    padded = np.concatenate([ink, np.zeros((height, 1), ink.dtype)], 1).astype(np.float32)
    crossed = padded[rows, paths]
    inked = crossed > 0
    strokes = inked[:, 0] + (inked[:, 1:] & ~inked[:, :-1]).sum(1)
    return paths, crossed.sum(1) + STROKE_COST * height * strokes


def cut_between(paths: np.ndarray, costs: np.ndarray, before: np.ndarray, first: float, last: float,
                least: float, most: float) -> tuple[np.ndarray, float]:
    """Of the straight cuts at each of SLOPES (straight_cuts' ``paths``, (slopes, w, h), and
    ``costs``, (slopes, w)), the one crossing the middle row between columns ``first`` and
    ``last`` that costs least, a column of distance from their middle costing OFF_CENTRE of a
    pixel, among those with between ``least`` and ``most`` ink left of them (``before``: each
    row's ink before each column); where none between the columns has, of all that have; where
    none has, of those between the columns. (h,) its column in each row, and the ink left of it."""
    width = costs.shape[1]
    middle = (first + last) / 2
    near = np.arange(max(0, math.floor(first)), min(width - 1, math.ceil(last)) + 1)
    if not near.size:
        near = np.asarray([int(np.clip(round(middle), 0, width - 1))])
    rows = np.arange(before.shape[0])
    for columns, bounded in ((near, True), (np.arange(width), True), (near, False)):
        left = before[rows, paths[:, columns]].sum(2)
        fits = (left >= least) & (left <= most) if bounded else np.ones(left.shape, bool)
        if fits.any():
            break
    total = costs[:, columns] + OFF_CENTRE * np.abs(columns - middle)
    slope, index = np.unravel_index(np.argmin(np.where(fits, total, np.inf)), total.shape)
    return paths[slope, columns[index]], float(left[slope, index])


def pieces_between(ink: np.ndarray, between: list[tuple[float, float]]) -> list[np.ndarray]:
    """``ink`` cut once between each pair of columns of ``between`` (left to right; cut_between),
    each piece left LEAST_PIECE of a digit's ink: the ink of each piece, as large as ``ink``,
    without the slivers of its neighbours the cuts left in it."""
    found = [straight_cuts(ink, slope) for slope in SLOPES]
    paths, costs = np.stack([path for path, _ in found]), np.stack([cost for _, cost in found])
    before = np.concatenate([np.zeros((ink.shape[0], 1), np.float32), np.cumsum(ink, 1, dtype=np.float32)], 1)
    total = float(ink.sum(dtype=np.float32))
    least = LEAST_PIECE * total / (len(between) + 1)
    cuts, done = [None], 0.0
    for position, (first, last) in enumerate(between):
        cut, done = cut_between(paths, costs, before, first, last, done + least, total - least * (len(between) - position))
        cuts.append(cut)
    cuts.append(None)
    index = np.arange(ink.shape[1])[None, :]
    pieces = []
    for left, right in zip(cuts, cuts[1:]):
        inside = np.ones(ink.shape, bool)
        if left is not None:
            inside &= index >= left[:, None]
        if right is not None:
            inside &= index < right[:, None]
        pieces.append(without_slivers(np.where(inside, ink, 0).astype(ink.dtype)))
    return pieces


def without_slivers(ink: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(ink > 0, EIGHT_NEIGHBOURS)
    if count < 2:
        return ink
    masses = ndimage.sum_labels(ink, labels, np.arange(1, count + 1))
    small = np.flatnonzero(masses < SLIVER * masses.sum()) + 1
    return np.where(np.isin(labels, small), 0, ink).astype(ink.dtype)
