"""The straight thin segments of an image's ink, along its rows and along its columns, a few
degrees off too (a photo): where printed lines are looked for (digitlens.prepare.lines).

A segment is a run of ink SEGMENT_SHARE of the image long at least, within a band three pixels
high that may step a pixel at a time, its gaps bridged (faint print breaks up), as thin as
PRINT_THICKNESS and straight to a pixel or two along its whole length (a hand's bar wanders more).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digitlens.prepare.primitives import EIGHT_NEIGHBOURS, ink_box, max_along, min_along, opening

LINE_CONTRAST = 0.03        # print this far above the paper (of full scale) is looked at for lines
NOISE_FLOOR = 3             # ... and this many times the paper's usual grain
SEGMENT_SHARE = 0.2         # a segment is at least this share of the image's extent along it long, ...
MIN_SEGMENT = 12            # ... and this many pixels
PRINT_THICKNESS = 0.06      # printed lines are at most this share of the longer side thick (3 px at least)
STRAIGHT = 1.5              # a segment's centre keeps within this many pixels of a straight line (plus 1 % of its length)
SLANT = 0.12                # a line climbs at most this much along its length (a photo turned by 7 degrees)
GAP_SHARE = 0.03            # gaps in a faint line up to this share of the longer side are bridged
ON_LINE = 0.5               # of a segment's thin columns, this share at least lie on its straight line


@dataclass(frozen=True, eq=False)
class Segment:
    axis: int                   # 1: runs along the rows (horizontal), 0: along the columns (vertical)
    mask: np.ndarray            # the band it covers, as a full-size boolean image
    start: int                  # where it begins and ends along its axis
    end: int
    first: float                # where it lies across its axis at its start and its end
    last: float
    thickness: int              # its ink's usual thickness across it, in pixels
    box: tuple[slice, slice]    # the rows and columns its mask lies in

    def across_at(self, position: float) -> float:
        share = (position - self.start) / max(1, self.end - self.start)
        return self.first + share * (self.last - self.first)

    def around(self, margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
        """Its box grown by ``margin`` pixels each way, within an image of ``shape``: what a
        filter of that reach needs to see to give the same answer on its mask as on the image."""
        return tuple(slice(max(0, part.start - margin), min(size, part.stop + margin))
                     for part, size in zip(self.box, shape))


def ink_and_print(ink: np.ndarray, light_ink: np.ndarray) -> np.ndarray:
    """The ink, and what stands out of ``light_ink``'s paper nearby by LINE_CONTRAST and by
    NOISE_FLOOR times the paper's grain: faint print too. Measured against the paper within
    twice print's thickness (a white top-hat), not the whole image's: its shading is no line."""
    standing = light_ink - opening(light_ink, 2 * print_thickness(ink.shape) + 1)
    return (ink > 0) | (standing > print_floor(standing))


def print_floor(standing: np.ndarray) -> float:
    """LINE_CONTRAST, or NOISE_FLOOR times the median of ``standing`` where that is higher. Where
    most of it lies below LINE_CONTRAST / NOISE_FLOOR, so does the median: the partition of the
    whole image it costs (a photo's paper is flat, most of it 0) is spared."""
    if np.count_nonzero(standing < LINE_CONTRAST / NOISE_FLOOR) > standing.size // 2:
        return LINE_CONTRAST
    return max(LINE_CONTRAST, NOISE_FLOOR * float(np.median(standing)))


def print_thickness(shape: tuple[int, int]) -> int:
    return max(3, round(PRINT_THICKNESS * max(shape)))


def thick_runs(present: np.ndarray, thickness: int, axis: int) -> np.ndarray:
    """The pixels of ``present`` in a run along ``axis`` longer than ``thickness``."""
    length = thickness + 1
    return max_along(min_along(present, length, axis), length, axis)


def straight_segments(present: np.ndarray, axis: int) -> list[Segment]:
    """The straight thin segments of ``present`` along ``axis`` (see the module's description)."""
    image = present if axis == 1 else present.T          # worked along the rows
    length = max(MIN_SEGMENT, round(SEGMENT_SHARE * image.shape[1]))
    if image.shape[1] < length:
        return []
    thickness = print_thickness(image.shape)
    if not holds_thin_ink(image, thickness, length):
        return []
    band = max_along(image, 3, axis=0)
    gap = max(3, round(GAP_SHARE * max(image.shape)))    # a faint line breaks up: its pieces joined
    band = min_along(max_along(band, gap, axis=1), gap, axis=1)
    runs = thick_runs(band, length - 1, axis=1)
    if not runs.any():
        return []
    box_top, box_left, box_bottom, box_right = ink_box(runs)     # labelled within the runs' box: a third of a photo's time
    labels, _ = ndimage.label(runs[box_top:box_bottom, box_left:box_right], EIGHT_NEIGHBOURS)
    segments = []
    for index, part in enumerate(ndimage.find_objects(labels)):
        component = labels[part] == index + 1
        found = (slice(part[0].start + box_top, part[0].stop + box_top),
                 slice(part[1].start + box_left, part[1].stop + box_left))
        fitted = fit_line(component & image[found], thickness, length)
        if fitted is None:
            continue
        first, last, slope, offset, thick = fitted
        rows = np.arange(component.shape[0])[:, None]
        columns = np.arange(component.shape[1])
        near = component & (np.abs(rows - (slope * columns + offset)) <= thick / 2 + 1.5)
        on_line = np.flatnonzero((near & image[found]).any(axis=0))      # the line beyond the columns fitted
        first, last = min(first, int(on_line[0])), max(last, int(on_line[-1]))
        mask = np.zeros_like(image)
        mask[found] = near
        top, left = found[0].start, found[1].start
        segments.append(Segment(axis, mask if axis == 1 else mask.T, left + first, left + last + 1,
                                top + offset + slope * first, top + offset + slope * last, thick,
                                found if axis == 1 else found[::-1]))
    return segments


def holds_thin_ink(image: np.ndarray, thickness: int, length: int) -> bool:
    """Whether some band of ``image``'s rows, as high as a line turned by SLANT can be, holds thin
    ink in a third of ``length`` columns: a quick test that spares the search where every stroke
    is thicker than print (a canvas's, a marker's; the ends of their strokes are few columns)."""
    thin = image & ~thick_runs(image, thickness, axis=0)
    reach = 3 + thickness + math.ceil(SLANT * image.shape[1])
    return int(max_along(thin, reach, axis=0).sum(axis=1).max()) >= length / 3


def fit_line(ink: np.ndarray, thickness: int, length: int) -> tuple[int, int, float, float, int] | None:
    """The straight thin line along the rows of ``ink`` (a run's pixels): its first and last
    columns, the row of its centre (slope, offset), and its thickness; None where it is no such
    line. Columns where the ink is thicker (a stroke crossing it) or wanders off the line (a
    stroke beside it) are left out of the fit; the rest must be most of it, and LENGTH long."""
    counts = ink.sum(axis=0)
    thin = np.flatnonzero((counts > 0) & (counts <= thickness))
    if len(thin) < length / 2:
        return None
    centres = (ink[:, thin] * np.arange(ink.shape[0])[:, None]).sum(axis=0) / counts[thin]
    on_line = np.ones(len(thin), bool)
    for _ in range(2):
        slope, offset = least_squares_line(thin[on_line], centres[on_line])
        on_line = np.abs(centres - (slope * thin + offset)) <= STRAIGHT + 0.01 * len(thin)
        if on_line.sum() < 2:
            return None
    kept = thin[on_line]
    if kept[-1] + 1 - kept[0] < length or on_line.mean() < ON_LINE:
        return None
    return int(kept[0]), int(kept[-1]), float(slope), float(offset), int(np.median(counts[kept]))


def least_squares_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The slope and offset of the least-squares line through points at two distinct ``x`` at least
    (np.polyfit's line, without its general machinery: a third of a photo's segment search was spent there)."""
    x_mean, y_mean = x.mean(), y.mean()
    slope = float(((x - x_mean) * (y - y_mean)).sum() / np.square(x - x_mean).sum())
    return slope, float(y_mean - slope * x_mean)
