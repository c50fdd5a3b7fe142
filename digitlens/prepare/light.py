"""The light on the paper: which side the ink is on, shadows and uneven light followed and taken
out, and the ink's levels stretched to full scale on a black ground.
"""
from __future__ import annotations

import math

import numpy as np

from digitlens.prepare.errors import InputError
from digitlens.prepare.primitives import (border, border_loop, border_median, enlarge_smoothly, extremes, opening,
                                          reduce_to, running_median, steepest_change)

BLANK_CONTRAST = 0.08       # ink must differ from the background by this fraction of full scale
NOISE_FLOOR = 0.2           # after contrast stretching, levels below this are background, ...
PAPER_SHADING = 0.04        # ... and so are levels less than this (of full scale) above it
INK_PERCENTILE = 90         # the ink's level: this percentile of the pixels brighter than the background
LIGHT_RISE = 0.3            # the most of the range the light's crests rise above the opening (estimate_background)
BACKGROUND_THUMBNAIL = 48   # longer side of the thumbnail the background is estimated on
MIN_PAPER_BRIGHTNESS = 0.1  # darker paper is not brightened further (noise would become ink)
UNEVEN_BORDER = 0.04        # flatten when the page's border varies more than this (see background_is_uneven)
INK_EDGE_SHARE = 0.7        # ... unless this share of the change happens within an eighth of a side: ink, not light
                            # (light on the presentation sets: at most 0.52; frame-filling 8x8 digits: 0.61-1)
SHADOW_SHARE = 0.25         # a hard-edged shadow: the border steps once between two flat levels, each this share of it
SHADOW_FLAT = 0.05          # ... its pixels that far at most (std, a share of the step) from a median along it
SHADOW_WINDOW = 28          # ... under which the paper is an opening a 28th of the longer side wide (see flatten_background)


def make_ink_light(grey: np.ndarray) -> np.ndarray:
    """Invert dark ink on lighter paper so the ink is the bright part, as in MNIST. The ink is
    what lies furthest from the paper (the border's median), below it or above it: paper
    brighter than mid-grey is not the test, since an underexposed photo's paper is darker.
    Under a hard-edged shadow the paper has two levels, and the ink lies beyond both; under
    light that falls off gradually, the paper may span a range as wide as a small digit's
    contrast: where the two sides are that close, the ink is what lies furthest from the
    light's trend."""
    dark_paper = light_paper = border_median(grey)
    varies = border_varies(grey)
    if varies and (levels := shadow_levels(grey)) is not None:
        dark_paper, light_paper = levels
    darkest, lightest = extremes(grey)
    dark_ink = dark_paper - darkest > lightest - light_paper
    if varies and levels is None and abs((dark_paper - darkest) - (lightest - light_paper)) < BLANK_CONTRAST:
        thumbnail = reduce_to(grey, BACKGROUND_THUMBNAIL)
        if background_is_uneven(1 - thumbnail if dark_ink else thumbnail):
            darkest, lightest = extremes(grey - light_trend(thumbnail, grey.shape))   # the ink stands out from the light's trend
            dark_ink = -darkest > lightest
    return 1.0 - grey if dark_ink else grey


def light_trend(thumbnail: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The light across an image of ``shape``, followed on its ``thumbnail`` (follow_light) and
    enlarged smoothly. A quadratic surface was used before: it cannot bend round a crest of the
    light across a sheet, whose rest then outweighed a small digit's few dark pixels and the
    page's light was read as the ink (sheet photos: the polarity wrong in 23 of 213 uploads
    that come here, against 6 so)."""
    return enlarge_smoothly(follow_light(thumbnail), shape)


def border_varies(grey: np.ndarray) -> bool:
    """Whether the image's outer pixels vary by more than UNEVEN_BORDER; if they do not, the
    border of a BACKGROUND_THUMBNAIL thumbnail (each of its pixels averages at most the outer
    2 * ceil(side / thumbnail side) pixels) is even too, and need not be made."""
    margin = border(grey, 2 * math.ceil(max(grey.shape) / BACKGROUND_THUMBNAIL))
    return float(margin.max() - margin.min()) > UNEVEN_BORDER


def shadow_levels(grey: np.ndarray, thumbnail: np.ndarray | None = None) -> tuple[float, float] | None:
    """The paper's two levels, (darker, lighter), if a shadow with a sharp edge (a hand, a
    phone) crosses the page, judged on the border of ``thumbnail`` (``grey`` reduced to
    BACKGROUND_THUMBNAIL, made here unless given) walked round as a loop; else None. If the
    image's own border keeps one level over three fifths of its length, there is no such
    shadow, and no thumbnail is needed (a canvas, a scan).
    A median along the loop a third of a side long removes the strokes that cross it,
    of either polarity. A shadow leaves one stretch at one level and one at the other, each at
    least SHADOW_SHARE of the loop and as flat as paper (within SHADOW_FLAT of the step), and
    steps between them as ink does (INK_EDGE_SHARE of the change within an eighth of a side);
    ink running along the edge is neither so long nor so even (other writers' frame-filling
    digits, bold markers in a tight crop), and light that changes gradually is left to
    background_is_uneven."""
    outline = border_loop(grey)
    fifth, four_fifths = outline.size // 5, outline.size * 4 // 5
    low, high = np.partition(outline, (fifth, four_fifths))[[fifth, four_fifths]]
    if high - low <= UNEVEN_BORDER:
        return None
    if thumbnail is None:
        thumbnail = reduce_to(grey, BACKGROUND_THUMBNAIL)
    loop = border_loop(thumbnail)
    level = running_median(loop, loop_window(thumbnail), wrap=True)
    low, high = float(level.min()), float(level.max())
    if high - low <= UNEVEN_BORDER:
        return None
    lit = level > (low + high) / 2
    if np.count_nonzero(lit & ~np.roll(lit, 1)) != 1 or not SHADOW_SHARE <= lit.mean() <= 1 - SHADOW_SHARE:
        return None
    if steepest_change(level, eighth_of_side(thumbnail)) < INK_EDGE_SHARE * (high - low):
        return None
    wobble = loop - level
    if max(float(wobble[lit].std()), float(wobble[~lit].std())) > SHADOW_FLAT * (high - low):
        return None
    return float(np.median(loop[~lit])), float(np.median(loop[lit]))


def background_is_uneven(thumbnail: np.ndarray) -> bool:
    """Whether the paper around the digit is lit unevenly (a shadow, a vignette), judged on the
    1-pixel border of a light-ink thumbnail walked round as a loop.

    Strokes that run off the edge cross the border in short bright runs: an opening (a min,
    then a max filter along the loop) a third of a side long removes them. What is left
    varies by more than UNEVEN_BORDER either because of light, which changes gradually, or
    because of ink running along the edge, which rises within a stroke's edge: in a sharp step
    for a bold marker in a tight crop or the blocks of a nearest-neighbour enlargement, over
    one source pixel (an eighth of the frame) for an 8x8 digit enlarged smoothly to fill its
    frame. So the border is uneven paper only if no step over two pixels makes half of that
    change and no stretch of an eighth of the thumbnail's longer side makes INK_EDGE_SHARE of it.
    Even paper is left alone, since flattening it could only take ink away.
    """
    opened = opening(border_loop(thumbnail), loop_window(thumbnail), wrap=True)
    spread = float(opened.max() - opened.min())
    return (spread > UNEVEN_BORDER and steepest_change(opened, 2) < spread / 2
            and steepest_change(opened, eighth_of_side(thumbnail)) < INK_EDGE_SHARE * spread)


def loop_window(thumbnail: np.ndarray) -> int:
    """The odd window, two thirds of the thumbnail's longer side and 3 at least, of the medians and
    openings along its border loop."""
    return 2 * max(1, max(thumbnail.shape) // 6) + 1


def eighth_of_side(image: np.ndarray) -> int:
    """An eighth of the longer side, at least 2 pixels: over how far ink's edge rises (INK_EDGE_SHARE)."""
    return max(2, round(max(image.shape) / 8))


def estimate_background(thumbnail: np.ndarray) -> np.ndarray:
    """The background of light-ink ``thumbnail``: a morphological opening (a min
    filter, then a max filter) with a window a third of the thumbnail's longer side, its
    border band replaced by a quadratic surface fitted to the interior.

    An opening is never brighter than the image and removes every bright structure that
    cannot hold the whole window, so strokes up to a third of the image thick (a marker in
    a tight crop) are not mistaken for background, while shadows and uneven light, which
    are wider, are followed. Within half a window of the border the window is cut off and
    the opening of a shadow's slope falls flat, below the real background, leaving a bright
    band that would pass for ink; a quadratic surface fitted to the interior continues it.

    An opening also cuts every crest of the light narrower than the window, where the light
    falls off from a line across the sheet or a corner falls darker than the quadratic
    continues it: the rest of the crest passes for ink as strong as a small digit's few
    pixels (sheet photos of a digit 40-60 px long were read as the crest). A running median
    along the rows, then the columns (follow_light), follows any light that changes one
    way across its window, crests and corners included, and removes ink that fills less than
    half of it; the background is the higher of the two, the image at most. Light changes by a
    fraction of the image's range: where the medians rise anywhere above the opening by more
    than LIGHT_RISE of it, they stand on ink that fills most of a window (a bar along the edge
    of a digit that fills the frame), and the opening alone is kept.
    """
    window = background_window(thumbnail)
    opened = continue_to_border(opening(thumbnail, window), window // 2)
    followed = follow_light(thumbnail)
    if (followed - opened).max() <= LIGHT_RISE * float(thumbnail.max() - thumbnail.min()):
        opened = np.maximum(opened, followed)
    return np.minimum(opened, thumbnail)


def follow_light(thumbnail: np.ndarray) -> np.ndarray:
    """A running median along the rows, then the columns, a third of ``thumbnail``'s longer side
    wide: light that changes one way across the window, crests and corners included, is
    followed; ink filling less than half of the window is not."""
    window = background_window(thumbnail)
    return running_median(running_median(thumbnail, window, axis=1), window, axis=0)


def background_window(thumbnail: np.ndarray) -> int:
    """The odd width, a third of ``thumbnail``'s longer side (3 at least), over which the
    background is followed."""
    return max(3, max(thumbnail.shape) // 3 | 1)


def continue_to_border(surface: np.ndarray, band: int) -> np.ndarray:
    """``surface`` with its outer ``band`` pixels raised to a least-squares quadratic in x and y
    fitted to the rest; unchanged when too little is left to fit."""
    height, width = surface.shape
    if min(height, width) - 2 * band < 4:
        return surface
    y, x = np.mgrid[-1:1:height * 1j, -1:1:width * 1j]
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)
    inside = (slice(band, height - band), slice(band, width - band))
    coefficients, *_ = np.linalg.lstsq(terms[inside].reshape(-1, 6), surface[inside].ravel(), rcond=None)
    # The opening there is low, never high: keep it where the surface falls even lower (a kink in the light).
    continued = np.maximum(terms @ coefficients, surface).astype(surface.dtype)
    continued[inside] = surface[inside]
    return continued


def flatten_background(grey: np.ndarray) -> np.ndarray:
    """Subtract the background (shadows, vignetting, uneven paper) where it is uneven.

    An even background is left alone: there is nothing to flatten, and isolate_ink removes
    its level. Otherwise the estimate is enlarged smoothly to the image and subtracted. Under a
    hard-edged shadow that estimate, made small, would blur the edge into a line of "ink", so
    the paper is followed at full size with a small opening (SHADOW_WINDOW), which keeps a
    straight edge where it is; that opening would also take the core of strokes wider than
    its window, so wherever it rises more than half way from the shadow's level to the ink's
    (light ink: the shadow is the lighter paper), the smooth estimate is kept.
    """
    if not border_varies(grey):
        return grey
    thumbnail = reduce_to(grey, BACKGROUND_THUMBNAIL)
    levels = shadow_levels(grey, thumbnail)
    if levels is None and not background_is_uneven(thumbnail):
        return grey
    background = enlarge_smoothly(estimate_background(thumbnail), grey.shape)
    if levels is not None:
        shadow = levels[1]
        window = max(3, max(grey.shape) // SHADOW_WINDOW | 1)
        paper = opening(grey, window)
        ink = extremes(grey)[1]
        background = np.where(paper < shadow + max(ink - shadow, 0) / 2, paper, background)
    # Light multiplies: under a shadow the ink's contrast shrinks with the paper's brightness, so
    # divide by that brightness (1 - background, for ink made light) to give it back.
    return np.clip((grey - background) / np.maximum(1 - background, MIN_PAPER_BRIGHTNESS), 0, 1)


def isolate_ink(grey: np.ndarray) -> np.ndarray:
    """Remove the background level, stretch the ink to full scale and zero faint noise."""
    background = border_median(grey)
    candidates = grey[grey > background + BLANK_CONTRAST]
    if candidates.size == 0:
        raise InputError("no digit found: the image is blank or has too little contrast", "blank")
    # A typical level of the ink rather than its maximum, so a few hot pixels do not set the scale.
    rank = (candidates.size - 1) * INK_PERCENTILE // 100
    ink = float(np.partition(candidates, rank)[rank])
    stretched = (grey - background) * (1 / (ink - background))
    # Paper's own shading (a few hundredths) stays background even where faint ink sets the scale.
    stretched[stretched < max(NOISE_FLOOR, PAPER_SHADING / (ink - background))] = 0
    return np.minimum(stretched, 1, out=stretched)
