"""Turn whatever a person uploads into the small square image a network expects.

A model's YAML names one of two ways (`preprocess:`), each following how its training set
was made; `prepare` picks it:

- ``digit`` (MNIST): the ink is size-normalised to fit a 20x20 box keeping its aspect
  ratio, then placed in the 28x28 frame so that its centre of mass sits at the centre.
  Before that, real images need work MNIST never needed: EXIF rotation, transparency,
  a low-resolution source blown up into blocks, dark ink on light paper, an uneven or
  grey background.
- ``photo`` (Fashion-MNIST, made from catalogue photos): the product is trimmed from its
  ground, its longer side scaled to the input size, the shorter padded to a square with
  the ground, and the levels set so the ground is black (a light ground is negated). No
  ink, no centre of mass.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from PIL import Image, ImageChops, ImageOps
from pywuffs import ImageDecoderQuirks, ImageDecoderType, PixelFormat, aux as wuffs

from digitlens.config import ModelSpec
from digitlens.marks import digit_groups, ink_marks, line_like, looks_like_number

ACCEPTED_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "TIFF")
JPEG_FORMATS = ("JPEG", "MPO")      # decoded at a reduced scale (open_image)
WORKING_SIDE = 140          # longer side the image is reduced to before the pixel steps (ink 20 px wide needs no more;
                            # the page's 280 px canvas halves exactly)
DETAIL_SIDE = 24            # ink whose longer side is shorter in the working copy is read again from the upload's own
                            # pixels (a small digit on a big page; see digit_ink) ...
CLOSE_SIDE = 96             # ... cut out with a margin and reduced so the ink's longer side is at most this ...
CROP_MARGIN = 0.6           # ... the margin: this share of the ink's longer side on every side (paper to judge it by),
FAINT_REACH = 3             # ... and at least this many pixels of the copy the ink was found on (see closer_look)
CLOSER_LOOKS = 3            # regions one closer look cuts out at most, wider or round a smaller part of the ink
MAX_WIDTH = 2               # no digit is this many times wider than tall
FRAMED_MASS = 0.1           # a mark enclosing this share of its own ink is a frame (see digit_candidates)
MAX_CANDIDATES = 5          # marks apart on a page looked at as the digit, at most (see digit_candidates)
LOCATE_SIDE = 560           # a working copy with no ink found in it is searched again at this longer side
STRAY_PIXELS = 2            # the darkest and lightest pixels of an image this many are strays (see extremes)
BLANK_CONTRAST = 0.08       # ink must differ from the background by this fraction of full scale
NOISE_FLOOR = 0.2           # after contrast stretching, levels below this are background, ...
PAPER_SHADING = 0.04        # ... and so are levels less than this (of full scale) above it
INK_PERCENTILE = 90         # the ink's level: this percentile of the pixels brighter than the background
LIGHT_RISE = 0.3            # the most of the range the light's crests rise above the opening (estimate_background)
BACKGROUND_THUMBNAIL = 48   # longer side of the thumbnail the background is estimated on
TRIM_TOLERANCE = 0.05      # photo: rows and columns within this of the ground's shade are trimmed ...
FILLS_FRAME = 0.9          # ... unless the object already spans this share of the image's longer side
MIN_PAPER_BRIGHTNESS = 0.1  # darker paper is not brightened further (noise would become ink)
UNEVEN_BORDER = 0.04        # flatten when the page's border varies more than this (see background_is_uneven)
INK_EDGE_SHARE = 0.7        # ... unless this share of the change happens within an eighth of a side: ink, not light
                            # (light on the presentation sets: at most 0.52; frame-filling 8x8 digits: 0.61-1)
SHADOW_SHARE = 0.25         # a hard-edged shadow: the border steps once between two flat levels, each this share of it
SHADOW_FLAT = 0.05          # ... its pixels that far at most (std, a share of the step) from a median along it
SHADOW_WINDOW = 28          # ... under which the paper is an opening a 28th of the longer side wide (see flatten_background)
BLOCK_EDGE = 0.15           # a step between neighbouring pixels this share of the image's range may be a block's edge
MIN_BLOCK_SIDE = 3          # smaller blocks are left as they are: a shrink to 20 px averages them away
SHARP_STEP = 0.25           # blocks step by at least this share of the image's range somewhere (a blur never does)
ON_LATTICE = 0.9            # the share of the steps' energy within a pixel of the block edges (see block_period)
SPECK_GAP = 0.5             # marks this far apart at most (a share of the longer side of the group so far) are pieces of one digit
EDGE_BAND = 0.04            # a scanner lid's dark edge is at most this share of the image across ...
EDGE_CONTRAST = 0.3         # ... and this far from the paper's shade (see paint_out_edge_bands)
DATA_URL = re.compile(rb"^\s*data:([\w/+.-]*)(;[\w=.-]+)*?;base64,", re.IGNORECASE)


class InputError(ValueError):
    """The request cannot be turned into an image of a digit. ``status`` is the HTTP code,
    ``reason`` a short stable name for metrics and clients."""

    def __init__(self, message: str, status: int, reason: str):
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class PreparedImage:
    tensor: np.ndarray      # (1, size, size) float32, normalised as in training
    pixels: np.ndarray      # (size, size) uint8, what the network sees before normalisation
    looks_like_number: bool = False     # the upload holds several digits in a row (read it with numbers.read_number)


def body_bytes(body) -> bytes:
    """The image bytes in a request body: raw bytes, or a ``data:image/...;base64,`` URL."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    if not isinstance(body, (bytes, bytearray)) or not body:
        raise InputError("the request has no image: send the image bytes as the body or as the form field 'data'",
                         400, "empty")
    match = DATA_URL.match(body[:200])
    if match is None:
        return bytes(body)
    if match.group(1) and not match.group(1).lower().startswith(b"image/"):
        raise InputError(f"the data URL holds {match.group(1).decode()}, not an image", 415, "unsupported_type")
    try:
        return base64.b64decode(body[match.end():], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"the data URL's base64 payload is malformed: {exc}", 400, "not_an_image") from exc


def open_image(data: bytes, max_pixels: int, longest: int | None = WORKING_SIDE) -> Image.Image:
    """Open and decode an image, refusing oversized ones from the header alone. A JPEG is
    decoded at the smallest of its DCT scales (1/8 to 1) whose longer side is at least
    ``longest`` (None: at full size); other formats at full size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InputError(f"the image has too many pixels: {exc}", 413, "too_many_pixels") from exc
    except Image.DecompressionBombWarning as exc:
        raise InputError(f"the image has too many pixels: {exc}", 413, "too_many_pixels") from exc
    except Exception as exc:
        raise InputError("the body is not an image Digit Lens can read "
                         f"(accepted: {', '.join(ACCEPTED_FORMATS)})", 415, "not_an_image") from exc
    if image.format not in ACCEPTED_FORMATS:
        raise InputError(f"{image.format} images are not supported (accepted: {', '.join(ACCEPTED_FORMATS)})",
                         415, "unsupported_type")
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}",
                         413, "too_many_pixels")
    if image.format in JPEG_FORMATS and longest is not None:
        # Let the JPEG decoder give greyscale and scale by 1/2..1/8 while decoding.
        scale = longest / max(width, height)
        image.draft("L", (math.ceil(width * scale), math.ceil(height * scale)))
    if image.format == "PNG" and (decoded := decode_png(image, data)) is not None:
        return decoded
    try:
        image.seek(0)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)     # in place: a copy of every upload costs more
        return image
    except Exception as exc:
        raise InputError(f"the image data is truncated or corrupt: {exc}", 400, "corrupt_image") from exc


def wuffs_png_config(pixel_format: PixelFormat) -> wuffs.ImageDecoderConfig:
    config = wuffs.ImageDecoderConfig()
    config.enabled_decoders = [ImageDecoderType.PNG]
    config.pixel_format = pixel_format
    config.quirks = {ImageDecoderQuirks.IGNORE_CHECKSUM: 0}     # Wuffs' default skips them: a corrupt file is refused
    config.flags = [wuffs.ImageDecoderFlags.REPORT_METADATA_EXIF]  # (searching the bytes for the chunk costs 3 ms)
    return config


WUFFS_CONFIGS = {"L": wuffs_png_config(PixelFormat.Y), "RGB": wuffs_png_config(PixelFormat.RGB),
                 "RGBA": wuffs_png_config(PixelFormat.RGBA_NONPREMUL)}      # the modes decode_png decodes


def decode_png(image: Image.Image, data: bytes) -> Image.Image | None:
    """The pixels of opened 8-bit PNG ``image`` decoded by Wuffs, a decoder written in a
    memory-safe language, in two-thirds of Pillow's time (a 300 dpi A4 scan of 2480x3508: 38 ms
    against 58 in one run; libspng was 0.93 of Pillow); None where Pillow is left to decode, because Wuffs would not give
    the same image: samples other than 8 bits, palettes, a transparency chunk, an animation or
    EXIF data (an orientation to apply)."""
    if (image.mode not in WUFFS_CONFIGS or image.tile[0].args != image.mode or "transparency" in image.info
            or getattr(image, "is_animated", False)):
        return None
    decoded = wuffs.ImageDecoder(WUFFS_CONFIGS[image.mode]).decode(data)
    if decoded.error_message or decoded.reported_metadata:
        return None                 # corrupt or truncated (Pillow's decoder says what is wrong), or EXIF to apply
    # Pillow reads an L or RGBA buffer in place (a copy of an A4 scan costs 4 ms) and copies an
    # RGB one; rows are packed, channels interleaved in the mode's order.
    return Image.frombuffer(image.mode, image.size, decoded.pixbuf, "raw", image.mode, 0, 1)


def to_greyscale(image: Image.Image, longest: int = WORKING_SIDE, ground: int | None = None) -> np.ndarray:
    """Float greyscale in [0, 1], shrunk so the longer side is at most ``longest`` (in Pillow,
    before any float work), transparency composited onto ``ground`` (0-255) or, if None,
    onto the shade that contrasts with the strokes."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = shrink(image.convert("F"), longest)
        peak = 65535.0 if np.asarray(image.getextrema()).max() > 255 else 255.0
        return np.clip(np.asarray(grey, dtype=np.float32) / peak, 0, 1)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        grey = image if image.mode == "L" else image.convert("L")      # convert would copy an L image (1 ms an A4 page)
        return np.asarray(shrink(grey, longest), dtype=np.float32) / 255.0
    if image.mode not in ("RGBA", "LA"):                  # PA, P, RGBa, La go through RGBA
        image = image.convert("RGBA")
    # Compositing is linear, so it commutes with the box shrink: shrink the alpha-weighted grey and
    # the alpha, and composite the small images (RGBA to L and one band out are Pillow's fast paths).
    alpha = image.getchannel("A")
    weighted = ImageChops.multiply(image.convert("L"), alpha)
    weighted = np.asarray(shrink(weighted, longest), dtype=np.float32) / 255.0
    alpha = np.asarray(shrink(alpha, longest), dtype=np.float32) / 255.0
    if ground is None:
        # A canvas drawing is opaque strokes on a transparent ground: put them on the opposite shade.
        stroke_level = float(weighted.sum() / max(alpha.sum(), 1e-6))
        ground = 255 if stroke_level < 0.5 else 0
    return weighted + (ground / 255.0) * (1.0 - alpha)


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


def enlarge_smoothly(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``small`` enlarged bilinearly to ``shape`` (rows, columns)."""
    return np.asarray(Image.fromarray(small).resize(shape[::-1], Image.Resampling.BILINEAR))


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


def _rank_filter(grey: np.ndarray, size: int, pick) -> np.ndarray:
    """A size x size min or max filter (``pick`` is np.minimum or np.maximum), as size // 2
    rounds of 3-wide passes along each axis; on a thumbnail this beats any windowed view."""
    grey = grey.copy()
    for _ in range(size // 2):
        for near, far in (((slice(1, None),), (slice(None, -1),)), ((slice(None), slice(1, None)), (slice(None), slice(None, -1)))):
            before = grey.copy()
            pick(grey[near], before[far], out=grey[near])
            pick(grey[far], before[near], out=grey[far])
    return grey


def border_loop(image: np.ndarray) -> np.ndarray:
    """The 1-pixel border walked round once, clockwise from the top left corner."""
    return np.concatenate([image[0, :-1], image[:-1, -1], image[-1, :0:-1], image[:0:-1, 0]])


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
    reach = max(1, max(thumbnail.shape) // 6)
    wrapped = np.concatenate([loop[-reach:], loop, loop[:reach]])
    level = np.partition(sliding_window_view(wrapped, 2 * reach + 1), reach, axis=1)[:, reach]     # a running median
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
    loop = border_loop(thumbnail)
    reach = max(1, max(thumbnail.shape) // 6)
    wrapped = np.concatenate([loop[-2 * reach:], loop, loop[:2 * reach]])
    eroded = sliding_window_view(wrapped, 2 * reach + 1).min(axis=1)
    opened = sliding_window_view(eroded, 2 * reach + 1).max(axis=1)
    spread = float(opened.max() - opened.min())
    return (spread > UNEVEN_BORDER and steepest_change(opened, 2) < spread / 2
            and steepest_change(opened, eighth_of_side(thumbnail)) < INK_EDGE_SHARE * spread)


def steepest_change(profile: np.ndarray, span: int) -> float:
    """The largest change of ``profile`` over ``span`` steps; 0 if it is no longer than that."""
    if profile.size <= span:
        return 0.0
    return float(np.abs(profile[span:] - profile[:-span]).max())


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
    opened = _rank_filter(_rank_filter(thumbnail, window, np.minimum), window, np.maximum)
    opened = continue_to_border(opened, window // 2)
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


def running_median(grey: np.ndarray, window: int, axis: int) -> np.ndarray:
    """The median of each ``window`` (odd) pixels along ``axis``, the edge pixels repeated
    beyond the image (so a slope keeps its value at the edge)."""
    padding = [(0, 0)] * grey.ndim
    padding[axis] = (window // 2, window // 2)
    windows = sliding_window_view(np.pad(grey, padding, mode="edge"), window, axis=axis)
    return np.partition(windows, window // 2, axis=-1)[..., window // 2]


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
        paper = _rank_filter(_rank_filter(grey, window, np.minimum), window, np.maximum)
        ink = extremes(grey)[1]
        background = np.where(paper < shadow + max(ink - shadow, 0) / 2, paper, background)
    # Light multiplies: under a shadow the ink's contrast shrinks with the paper's brightness, so
    # divide by that brightness (1 - background, for ink made light) to give it back.
    return np.clip((grey - background) / np.maximum(1 - background, MIN_PAPER_BRIGHTNESS), 0, 1)


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


def mostly_below(line: np.ndarray, level: float) -> bool:
    """Whether half of ``line`` or more lies below ``level`` (as its median must, to be below it)."""
    return 2 * np.count_nonzero(line < level) >= line.size


def smooth_blocks(grey: np.ndarray) -> np.ndarray:
    """Undo a blocky (nearest-neighbour) enlargement: the network reads a smoothly enlarged
    low-resolution digit far better than the same pixels as sharp-edged squares."""
    side = block_side(grey)
    return box_blur(grey, side) if side > 1 else grey


def isolate_ink(grey: np.ndarray) -> np.ndarray:
    """Remove the background level, stretch the ink to full scale and zero faint noise."""
    background = border_median(grey)
    candidates = grey[grey > background + BLANK_CONTRAST]
    if candidates.size == 0:
        raise InputError("no digit found: the image is blank or has too little contrast", 422, "blank")
    # A typical level of the ink rather than its maximum, so a few hot pixels do not set the scale.
    rank = (candidates.size - 1) * INK_PERCENTILE // 100
    ink = float(np.partition(candidates, rank)[rank])
    stretched = (grey - background) * (1 / (ink - background))
    # Paper's own shading (a few hundredths) stays background even where faint ink sets the scale.
    stretched[stretched < max(NOISE_FLOOR, PAPER_SHADING / (ink - background))] = 0
    return np.minimum(stretched, 1, out=stretched)


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


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """The rows and columns the ink spans, as (top, left, bottom, right), the last two exclusive."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise InputError("no digit found: the image is blank", 422, "blank")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    top, left, bottom, right = ink_box(ink)
    return ink[top:bottom, left:right]


def find_ink(grey: np.ndarray) -> np.ndarray:
    """The ink of greyscale ``grey``, light on black at full scale, specks far from it cleared."""
    return isolate_ink(flatten_background(make_ink_light(smooth_blocks(paint_out_edge_bands(grey)))))


def digit_ink(image: Image.Image, data: bytes, max_pixels: int) -> tuple[np.ndarray, bool]:
    """The digit's ink in ``image`` (opened from ``data``), cropped to it, and whether the
    working copy's marks look like the digits of a number (marks.looks_like_number).

    The ink is found on the working copy (WORKING_SIDE). Where it is large there (DETAIL_SIDE)
    and one mark, that is the digit. Otherwise, where the upload has more pixels, a digit on a
    big page was reduced to a few pixels: each mark that may be the digit (digit_candidates),
    the heaviest first, is looked at closer (closer_look: cut out of the upload's own pixels, a
    JPEG decoded again at the scale it needs) until one is a digit at that resolution (a stamp
    is not, once its text shows). Where none is, or the working copy shows no ink, the marks of
    a larger copy (LOCATE_SIDE) are looked at so: a digit too faint to show on the working copy."""
    grey = to_greyscale(image)
    try:
        ink = find_ink(grey)
        candidates = digit_candidates(ink) or [ink]
    except InputError as refusal:
        ink, candidates, blank = None, [], refusal
    if candidates and candidates[0] is ink:
        top, left, bottom, right = ink_box(ink)
        if max(bottom - top, right - left) >= DETAIL_SIDE:
            return ink[top:bottom, left:right], False
    several = ink is not None and looks_like_number(digit_groups(ink)[1])
    one_mark = ink if candidates and candidates[0] is ink else None
    source = full_resolution(image, data, max_pixels, one_mark, max(grey.shape))
    if max(source.size) <= max(grey.shape):
        if not candidates:
            raise blank
        return crop_to_ink(candidates[0]), several
    if (closer := closest_digit(source, ink, candidates, max(source.size) / max(grey.shape))) is not None:
        return closer, several
    if max(grey.shape) < LOCATE_SIDE:
        source = full_resolution(image, data, max_pixels, None, max(grey.shape))
        located = to_greyscale(source, LOCATE_SIDE)
        try:
            located_ink = find_ink(located)
            found = digit_candidates(located_ink) or [located_ink]
        except InputError:
            located_ink, found = None, []
        if (closer := closest_digit(source, located_ink, found, max(source.size) / max(located.shape))) is not None:
            return closer, several
        candidates = candidates or found
    if not candidates:
        raise blank
    return crop_to_ink(candidates[0]), several


def closest_digit(source: Image.Image, ink: np.ndarray, candidates: list[np.ndarray], scale: float) -> np.ndarray | None:
    """The first of ``candidates`` (marks of ``ink``, found on a copy ``scale`` times smaller
    than ``source``) that a closer look finds a digit, as that look's ink; None where none is.
    A candidate already DETAIL_SIDE on the copy that the look finds whole is taken as the copy
    shows it, within the box the look found (pieces of a thin stroke that the copy broke off
    included): more pixels would show a squared page's lines, not more of the digit."""
    for candidate in candidates[:MAX_CANDIDATES]:
        if (closer := closer_look(source, ink_box(candidate), scale)) is None:
            continue
        closer_ink, box = closer
        if box is None or ink_side(candidate) < DETAIL_SIDE:
            return closer_ink
        top, left, bottom, right = (math.floor(box[0] / scale), math.floor(box[1] / scale),
                                    math.ceil(box[2] / scale), math.ceil(box[3] / scale))
        within = ink[top:bottom, left:right]
        return crop_to_ink(within) if within.any() else closer_ink
    return None


def ink_side(ink: np.ndarray) -> int:
    top, left, bottom, right = ink_box(ink)
    return max(bottom - top, right - left)


def closer_look(source: Image.Image, box: tuple[int, int, int, int],
                scale: float) -> tuple[np.ndarray, tuple[int, int, int, int] | None] | None:
    """The ink in ``box`` (of a copy ``scale`` times smaller than ``source``) found again on the
    region round it cut out of ``source``, cropped, and its box in ``source`` where it is the
    whole of the box's ink (None where it is a part); None if it is no digit there. The region is
    reduced so the box's longer side is at most CLOSE_SIDE; its margin is CROP_MARGIN of that
    side and FAINT_REACH copy pixels at least (a digit's faint parts were lost on the copy).
    Where the digit found there runs into the region's edge, the margin is doubled; where it is
    a small part of the box (a digit beside a stamp), it is looked at again on its own."""
    top, left, bottom, right = (round(edge * scale) for edge in box)
    margin, whole = None, True
    for _ in range(CLOSER_LOOKS):
        side = max(bottom - top, right - left, 1)
        margin = margin or round(max(CROP_MARGIN * side, FAINT_REACH * scale))
        region = (max(0, left - margin), max(0, top - margin), min(source.width, right + margin),
                  min(source.height, bottom + margin))
        crop = source.crop(region)
        reduction = min(1.0, CLOSE_SIDE / side)
        try:
            candidates = digit_candidates(find_ink(to_greyscale(crop, max(1, round(max(crop.size) * reduction)))))
        except InputError:
            return None
        aimed = [round((edge - offset) * reduction) for edge, offset in
                 zip((top, left, bottom, right), (region[1], region[0], region[1], region[0]))]
        ink = next((candidate for candidate in candidates if overlaps(ink_box(candidate), aimed)), None)
        if ink is None:
            return None             # only other marks near it are digits: they get their own look
        if runs_into_edge(ink, region, source.size):
            margin *= 2
        elif reduction < 1 and ink_side(ink) < side * reduction / 2:
            found = ink_box(ink)
            top, left, bottom, right = (round(edge / reduction) + offset for edge, offset in
                                        zip(found, (region[1], region[0], region[1], region[0])))
            margin, whole = None, False
        else:
            break
    found = ink_box(ink)
    in_source = tuple(round(edge / reduction) + offset for edge, offset in
                      zip(found, (region[1], region[0], region[1], region[0])))
    return crop_to_ink(ink), in_source if whole else None


def overlaps(box: tuple[int, int, int, int], other: list[int]) -> bool:
    return box[0] <= other[2] and other[0] <= box[2] and box[1] <= other[3] and other[1] <= box[3]


def runs_into_edge(ink: np.ndarray, region: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    """Whether ``ink`` (found in ``region`` of an image of ``size``) reaches an edge of the
    region that is not the image's own."""
    top, left, bottom, right = ink_box(ink)
    return ((top == 0 and region[1] > 0) or (left == 0 and region[0] > 0) or
            (bottom == ink.shape[0] and region[3] < size[1]) or (right == ink.shape[1] and region[2] < size[0]))


def full_resolution(image: Image.Image, data: bytes, max_pixels: int, mark: np.ndarray | None,
                    working_side: int) -> Image.Image:
    """``image`` with the pixels a closer look needs: other formats are decoded whole already; a
    JPEG is decoded again, at the DCT scale that gives the ink of ``mark`` (the working copy's
    one mark, in a copy of longer side ``working_side``) CLOSE_SIDE pixels, or at full size
    where there is no one mark (none found, or several: a small digit may hide among them)."""
    if image.format not in JPEG_FORMATS:
        return image
    if mark is None:
        return open_image(data, max_pixels, longest=None)
    return open_image(data, max_pixels, longest=math.ceil(working_side * CLOSE_SIDE / ink_side(mark)))


def fit_longer_side(ink: np.ndarray, side: int) -> np.ndarray:
    """Scale so the longer side is ``side`` pixels, keeping the aspect ratio."""
    height, width = ink.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.clip(np.asarray(Image.fromarray(ink).resize(size, resample)), 0, 1)


def center_by_mass(ink: np.ndarray, size: int) -> np.ndarray:
    """Place ``ink`` in a size x size frame with its centre of mass at the frame's centre."""
    height, width = ink.shape
    total = float(ink.sum())
    com_row = float(ink.sum(axis=1) @ np.arange(height)) / total if total > 0 else (height - 1) / 2
    com_col = float(ink.sum(axis=0) @ np.arange(width)) / total if total > 0 else (width - 1) / 2
    top = min(max(round((size - 1) / 2 - com_row), 0), size - height)
    left = min(max(round((size - 1) / 2 - com_col), 0), size - width)
    frame = np.zeros((size, size), dtype=np.float32)
    frame[top:top + height, left:left + width] = ink
    return frame


def trim_to_content(grey: np.ndarray, ground: float) -> np.ndarray:
    """Cut off the rows and columns at the edges that are all within TRIM_TOLERANCE of ``ground``.
    An object that (nearly) fills the frame is left as it is: trimming a pixel or two would only
    shift and rescale it (a Fashion-MNIST image itself stays exactly as it is)."""
    content = np.abs(grey - ground) > TRIM_TOLERANCE
    rows = np.flatnonzero(content.any(axis=1))
    cols = np.flatnonzero(content.any(axis=0))
    if rows.size == 0:
        raise InputError("nothing found: the image is one flat shade", 422, "blank")
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    if extent >= FILLS_FRAME * max(grey.shape):
        return grey
    return grey[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def pad_to_square(grey: np.ndarray, side: int, ground: float) -> np.ndarray:
    """Centre ``grey`` in a side x side square filled with ``ground``."""
    height, width = grey.shape
    top, left = (side - height) // 2, (side - width) // 2
    square = np.full((side, side), ground, dtype=np.float32)
    square[top:top + height, left:left + width] = grey
    return square


def prepare_digit(data: bytes, spec: ModelSpec) -> PreparedImage:
    """A drawn, photographed or scanned digit as MNIST presents one."""
    ink, several = digit_ink(open_image(data, spec.max_pixels), data, spec.max_pixels)
    frame = center_by_mass(fit_longer_side(ink, spec.content_size), spec.input_size)
    prepared = as_network_input(frame, spec)
    return dataclasses.replace(prepared, looks_like_number=True) if several else prepared


def prepare_photo(data: bytes, spec: ModelSpec) -> PreparedImage:
    """A photo of one object as Fashion-MNIST presents one. A transparent ground (a cut-out)
    is white, as in a catalogue."""
    grey = to_greyscale(open_image(data, spec.max_pixels), ground=255)
    ground = border_median(grey)
    square = pad_to_square(fit_longer_side(trim_to_content(grey, ground), spec.input_size), spec.input_size, ground)
    return as_network_input(ground_to_black(square, ground), spec)


def ground_to_black(grey: np.ndarray, ground: float) -> np.ndarray:
    """Levels that take the ground to 0 and the shade farthest from it to 1: a product on white
    is negated, one on black kept, and a grey or tinted ground becomes the training set's black."""
    if ground > 0.5:
        return np.clip((ground - grey) / ground, 0, 1)
    return np.clip((grey - ground) / (1 - ground), 0, 1)


def as_network_input(light_on_dark: np.ndarray, spec: ModelSpec) -> PreparedImage:
    network_input = light_on_dark if spec.ink == "light" else 1.0 - light_on_dark
    pixels = np.round(network_input * 255).astype(np.uint8)
    tensor = spec.normalise(network_input).astype(np.float32)[None]
    return PreparedImage(tensor=tensor, pixels=pixels)


PREPARERS = {"digit": prepare_digit, "photo": prepare_photo}    # the names of config.PREPROCESS_KINDS


def prepare(data: bytes, spec: ModelSpec) -> PreparedImage:
    """Image bytes in, the network's input out, the way the model's YAML names (`preprocess:`);
    raises InputError for anything unusable."""
    return PREPARERS[spec.preprocess](data, spec)
