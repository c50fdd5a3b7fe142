"""Image primitives every stage uses, written once: shrinking, borders, extremes, openings and
running extremes, running medians, smooth enlargement, boxes round the ink.

Images are float32 greyscale arrays in [0, 1] unless said otherwise; nothing here knows what a
digit is.
"""
from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from scipy import ndimage

from digitlens.prepare.errors import InputError

EIGHT_NEIGHBOURS = np.ones((3, 3), bool)   # marks and lines are labelled with diagonal neighbours joined
STRAY_PIXELS = 2            # the darkest and lightest pixels of an image this many are strays (see extremes)

cv2.setNumThreads(1)        # a worker is one thread (torch's too), and these images are too small to share out


def shrink(image: Image.Image, longest: int) -> Image.Image:
    """Average down so the longer side is at most ``longest``; smaller images are kept. The bulk
    is an integer reduction (a plain mean of k x k blocks, several times cheaper than a box
    resize of the whole image), the remainder a box resize of the already small image."""
    factor = max(image.size) // longest
    if factor >= 2:
        image = image.reduce(factor)
    scale = longest / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def reduce_to(grey: np.ndarray, longest: int) -> np.ndarray:
    """Shrink (never enlarge) so the longer side is at most ``longest``, averaging pixels."""
    if max(grey.shape) <= longest:
        return grey
    return np.asarray(shrink(Image.fromarray(grey), longest))


def enlarge_smoothly(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``small`` enlarged bilinearly to ``shape`` (rows, columns)."""
    return np.asarray(Image.fromarray(small).resize(shape[::-1], Image.Resampling.BILINEAR))


def border(grey: np.ndarray, width: int = 1) -> np.ndarray:
    """The pixels within ``width`` of the image's edge, each once."""
    return np.concatenate([grey[:width].ravel(), grey[-width:].ravel(),
                           grey[width:-width, :width].ravel(), grey[width:-width, -width:].ravel()])


def border_median(grey: np.ndarray) -> float:
    """The median of the border pixels (np.median's value, by one partition: a third of its time)."""
    values = border(grey)
    half = values.size // 2
    if values.size % 2:
        return float(np.partition(values, half)[half])
    low, high = np.partition(values, (half - 1, half))[half - 1:half + 1]
    return (float(low) + float(high)) / 2


def border_loop(image: np.ndarray) -> np.ndarray:
    """The 1-pixel border walked round once, clockwise from the top left corner."""
    return np.concatenate([image[0, :-1], image[:-1, -1], image[-1, :0:-1], image[:0:-1, 0]])


def extremes(grey: np.ndarray) -> tuple[float, float]:
    """The darkest and the lightest level that more than STRAY_PIXELS reach. Not a percentile:
    a small digit on a page or a sheet is a few pixels of the working copy, and under uneven
    light the paper's own range would pass for its ink."""
    values = grey.ravel()
    rank = min(STRAY_PIXELS, values.size // 2)
    darkest, lightest = values.min(), values.max()
    # A drawing's ground and strokes each fill many pixels at one level: then no partition is needed.
    if np.count_nonzero(values == darkest) <= rank or np.count_nonzero(values == lightest) <= rank:
        darkest, lightest = np.partition(values, (rank, -1 - rank))[[rank, -1 - rank]]
    return float(darkest), float(lightest)


def opening(values: np.ndarray, width: int, wrap: bool = False) -> np.ndarray:
    """A morphological opening (a min, then a max filter) with an odd ``width`` window along every
    axis: what remains of ``values`` once every bright structure narrower than the window is
    taken down. At an edge the window is cut off, or, with ``wrap``, continued round (a loop;
    scipy's filters, for the one-dimensional border loop)."""
    if wrap:
        return ndimage.maximum_filter(ndimage.minimum_filter(values, size=width, mode="wrap"), size=width, mode="wrap")
    return filtered(cv2.morphologyEx, values, np.ones((width, width), np.uint8), cv2.MORPH_OPEN)


def max_along(values: np.ndarray, width: int, axis: int) -> np.ndarray:
    """The largest of each ``width`` values along ``axis``, the window cut off at the edges and,
    for an even width, reaching one further back than forward: ndimage.maximum_filter1d's answer
    (its reflected edges add no value the cut window lacks), from OpenCV in a quarter of its time
    and less. A boolean image stays boolean."""
    return filtered(cv2.dilate, values, line_kernel(width, axis))


def min_along(values: np.ndarray, width: int, axis: int) -> np.ndarray:
    """The smallest of each ``width`` values along ``axis``: ndimage.minimum_filter1d's answer (see max_along)."""
    return filtered(cv2.erode, values, line_kernel(width, axis))


def line_kernel(width: int, axis: int) -> np.ndarray:
    return np.ones((width, 1) if axis == 0 else (1, width), np.uint8)


def filtered(operation, values: np.ndarray, kernel: np.ndarray, *args) -> np.ndarray:
    """OpenCV's morphological ``operation`` with ``kernel`` on ``values``, a boolean image as
    0 and 1. Its default border never wins a min or a max: the window is cut off at the edges."""
    if values.dtype == bool:
        return operation(values.view(np.uint8), *args, kernel).view(bool)
    return operation(values, *args, kernel)


def running_median(values: np.ndarray, width: int, axis: int = -1, wrap: bool = False) -> np.ndarray:
    """The median of each odd ``width`` values along ``axis``, the edge values repeated beyond the
    ends (so a slope keeps its value at the edge), or, with ``wrap``, continued round (a loop).
    One partition of a windowed view: ndimage.median_filter took two to four times as long on a
    thumbnail."""
    padding = [(0, 0)] * values.ndim
    padding[axis] = (width // 2, width // 2)
    windows = sliding_window_view(np.pad(values, padding, mode="wrap" if wrap else "edge"), width, axis=axis)
    return np.partition(windows, width // 2, axis=-1)[..., width // 2]


def steepest_change(profile: np.ndarray, span: int) -> float:
    """The largest change of ``profile`` over ``span`` steps; 0 if it is no longer than that."""
    if profile.size <= span:
        return 0.0
    return float(np.abs(profile[span:] - profile[:-span]).max())


def mostly_below(line: np.ndarray, level: float) -> bool:
    """Whether half of ``line`` or more lies below ``level`` (as its median must, to be below it)."""
    return 2 * np.count_nonzero(line < level) >= line.size


def box_blur(grey: np.ndarray, width: int) -> np.ndarray:
    """Mean over a ``width``-pixel window along each axis (edges repeated). After a
    nearest-neighbour enlargement by ``width`` this is the linear interpolation a smooth
    enlargement would have made."""
    before, after = (width - 1) // 2, width // 2
    for _ in range(2):                      # down the columns, then, transposed, along the rows
        padded = np.pad(grey, ((before + 1, after), (0, 0)), mode="edge")
        padded[0] = 0                       # so that sums[i] is the sum of the first i padded rows
        sums = np.cumsum(padded, axis=0, dtype=np.float64)
        grey = ((sums[width:] - sums[:-width]) / width).astype(np.float32).T
    return grey


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


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """The rows and columns the ink spans, as (top, left, bottom, right), the last two exclusive."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise InputError("no digit found: the image is blank", "blank")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def side_of(box: tuple[int, int, int, int]) -> int:
    """The longer side of a (top, left, bottom, right) box."""
    return max(box[2] - box[0], box[3] - box[1])


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    top, left, bottom, right = ink_box(ink)
    return ink[top:bottom, left:right]


def overlaps(box, other) -> bool:
    """Whether two (top, left, bottom, right) boxes overlap or touch."""
    return box[0] <= other[2] and other[0] <= box[2] and box[1] <= other[3] and other[1] <= box[3]
