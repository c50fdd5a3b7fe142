"""Test images presented the way people and devices send them, as encoded image files.

Each kind turns a test image (uint8 28x28, light on black) into the bytes of an upload:
`KINDS` are MNIST digits drawn, photographed and scanned, `GARMENT_KINDS` Fashion-MNIST
products photographed or cut out. `presentation_set` builds 1,000 of one kind (300 of the
`PAGE_KINDS`, small digits on a large page, whose ink sizes `ink_sizes` gives) from a
seeded choice of test images and caches them under `.cache/presentations/` (git-ignored),
so the report, the tests and the benchmarks read the same files. One set is not MNIST's:
`other-writers`, every optdigits digit (43 other writers, 8x8) enlarged as a viewer would.
"""
from __future__ import annotations

import io
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from skimage.morphology import skeletonize

from training.augment import brush_along
from training.data import DEFAULT_CACHE, fetch_dataset, fetch_optdigits, load_optdigits, load_split

CACHE = DEFAULT_CACHE.parent / "presentations"
SET_SIZE = 1000            # uploads per kind; the MNIST test set itself is used whole
SET_SEED = 2026
SETS_VERSION = 2           # bump when a kind's generator changes, so cached sets are made anew

# Pen strokes in a unit box (x right, y down), as a person draws them on a canvas.
SEVEN = [[(0.18, 0.12), (0.82, 0.12), (0.62, 0.45), (0.42, 0.9)]]
FORTY_TWO = [[(0.22, 0.24), (0.1, 0.6), (0.42, 0.6)], [(0.33, 0.3), (0.33, 0.78)],     # a number: "42"
             [(0.56, 0.36), (0.65, 0.27), (0.77, 0.27), (0.84, 0.37), (0.79, 0.5), (0.58, 0.76), (0.88, 0.76)]]
STAR = [[(0.5, 0.12), (0.74, 0.84), (0.12, 0.4), (0.88, 0.4), (0.26, 0.84), (0.5, 0.12)]]    # not a digit: one stroke
THREE = [[(0.22, 0.2), (0.4, 0.1), (0.62, 0.1), (0.76, 0.22), (0.72, 0.38), (0.5, 0.48),
          (0.74, 0.58), (0.8, 0.74), (0.66, 0.88), (0.42, 0.9), (0.22, 0.8)]]


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def draw_strokes(strokes, size: int = 280, pen: float = 0.07, ink=(20, 20, 30, 255),
                 ground=(0, 0, 0, 0)) -> Image.Image:
    """A canvas drawing: round-capped strokes of width ``pen`` (fraction of the side)."""
    image = Image.new("RGBA", (size, size), ground)
    draw = ImageDraw.Draw(image)
    width = max(1, round(pen * size))
    for stroke in strokes:
        points = [(x * size, y * size) for x, y in stroke]
        draw.line(points, fill=ink, width=width, joint="curve")
        for x, y in points:
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=ink)
    return image


def enlarge(ink: np.ndarray, side: int, resample=Image.Resampling.BICUBIC) -> np.ndarray:
    return np.asarray(Image.fromarray(ink).resize((side, side), resample), dtype=np.float32) / 255


def on_paper(ink: np.ndarray, size: tuple[int, int] = (1600, 1200), box: tuple[float, float, float] = (0.35, 0.3, 0.45),
             seed: int = 0, shadow: float = 0.0, ink_rgb: tuple[float, float, float] = (0.8, 0.8, 0.8),
             light_angle: float = 0.0, penumbra: float = 0.6) -> Image.Image:
    """Dark ink (a light-on-dark uint8 digit) photographed on cream paper with uneven light and noise;
    ``shadow`` darkens the page towards one side by up to that fraction, as a hand or phone would,
    its edge blurred over ``penumbra`` of the page (a hand close to the page casts a sharp one);
    ``ink_rgb`` is how much the ink absorbs of each channel (blue ballpoint absorbs less blue)."""
    rng = np.random.default_rng(seed)
    width, height = size
    side = int(box[2] * height)
    digit = enlarge(ink, side)
    yy, xx = np.mgrid[0:height, 0:width]
    light = 0.85 + 0.1 * np.sin(xx / width * math.pi + light_angle) * np.cos(yy / height * math.pi / 2)
    if shadow:
        direction = (math.cos(light_angle), math.sin(light_angle))
        reach = (xx / width - 0.5) * direction[0] + (yy / height - 0.5) * direction[1]
        light *= 1 - shadow * np.clip(reach + 0.1, 0, penumbra) / penumbra
    paper = np.stack([light * 235, light * 228, light * 210], axis=-1)
    top, left = int(box[1] * height), int(box[0] * width)
    region = paper[top:top + side, left:left + side]
    region *= 1 - digit[..., None] * np.asarray(ink_rgb, dtype=np.float32)
    paper += rng.normal(0, 6, paper.shape)
    photo = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    return photo.filter(ImageFilter.GaussianBlur(1.2))


def as_photo_jpeg(ink: np.ndarray, exif_rotate: bool = False, seed: int = 0) -> bytes:
    """A phone photo: JPEG, optionally stored rotated with an EXIF orientation tag to undo it."""
    photo = on_paper(ink, seed=seed)
    if not exif_rotate:
        return encode(photo, "JPEG", quality=88)
    exif = Image.Exif()
    exif[0x0112] = 6      # viewer must rotate 90 degrees clockwise
    return encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=88, exif=exif)


def as_shadowed_photo_jpeg(ink: np.ndarray, seed: int = 0) -> bytes:
    """A phone photo with a strong shadow across part of the page."""
    return encode(on_paper(ink, seed=seed, shadow=0.6, light_angle=0.8), "JPEG", quality=85)


def as_canvas_png(ink: np.ndarray, size: int = 280) -> bytes:
    """A browser canvas: black strokes whose alpha is the ink, on a transparent ground."""
    alpha = Image.fromarray(ink).resize((size, size), Image.Resampling.BICUBIC)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.putalpha(alpha)
    return encode(canvas, "PNG")


def as_scan(ink: np.ndarray, fmt: str = "TIFF") -> bytes:
    """A flatbed scan: grey paper, dark ink, off-centre in a larger page, greyscale."""
    page = on_paper(ink, size=(900, 1200), box=(0.6, 0.1, 0.25)).convert("L")
    return encode(page, fmt)


def off_centre_small(ink: np.ndarray) -> bytes:
    """Light ink on black, small, in a corner of a large frame."""
    frame = Image.new("L", (200, 160), 0)
    frame.paste(Image.fromarray(ink), (150, 110))
    return encode(frame, "PNG")


def as_mnist_png(ink: np.ndarray) -> bytes:
    """The test digit itself, 28x28, as a PNG file."""
    return encode(Image.fromarray(ink), "PNG")


def bold_marker_tight_crop(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A felt marker: strokes a quarter to a third of the digit's height thick, dark on white,
    cropped right to the ink (or a few pixels beyond)."""
    side = 224
    strokes = Image.fromarray((enlarge(ink, side) > 0.35).astype(np.uint8) * 255)
    strokes = strokes.filter(ImageFilter.MaxFilter(int(rng.integers(9, 22)) | 1))
    left, top, right, bottom = strokes.getbbox()
    margin = int(rng.integers(0, 6))
    strokes = strokes.crop((left - margin, top - margin, right + margin, bottom + margin))
    page = Image.fromarray(255 - np.asarray(strokes.filter(ImageFilter.GaussianBlur(1.5))))
    return encode(page.convert("RGB"), "JPEG", quality=90) if rng.random() < 0.5 else encode(page, "PNG")


def heavy_blur(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """Out of focus: dark ink on paper, blurred (Gaussian sigma) by 4-8 % of the side of the digit's
    whole 28x28 image, 1.1-2.2 px at that size."""
    side = int(rng.integers(120, 260))
    page = np.full((int(side * 1.4), int(side * 1.4)), 0.93, np.float32)
    offset = (page.shape[0] - side) // 2
    page[offset:offset + side, offset:offset + side] -= 0.75 * enlarge(ink, side)
    image = Image.fromarray((page * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(side * rng.uniform(0.04, 0.08)))
    return encode(image, "JPEG", quality=85)


def low_resolution(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A digit from an 8x8 to 16x16 source enlarged by a viewer, blockily or smoothly, either polarity."""
    source = int(rng.integers(8, 17))
    small = Image.fromarray(ink).resize((source, source), Image.Resampling.BOX)
    resample = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    big = small.resize((source * 14, source * 14), resample)
    if rng.random() < 0.5:
        big = Image.fromarray(255 - np.asarray(big))
    return encode(big, "PNG")


def thin_pen_large_canvas(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A fine pen on a 1200-px canvas: strokes a few pixels wide, the digit 300-600 px tall,
    dark strokes on a transparent ground as a canvas export."""
    side = int(rng.integers(300, 600))
    core = Image.fromarray((enlarge(ink, side, Image.Resampling.BILINEAR) > 0.5).astype(np.uint8) * 255)
    thinned = core.filter(ImageFilter.MinFilter(max(3, int(side * 0.03)) | 1))
    canvas = Image.new("RGBA", (1200, 1200), (0, 0, 0, 0))
    left, top = (int(v) for v in rng.integers(50, 1150 - side, 2))
    canvas.paste(Image.new("RGBA", (side, side), (10, 10, 10, 255)), (left, top), thinned)
    return encode(canvas, "PNG")


def ballpoint_photo(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A blue ballpoint digit photographed under uneven light, with a shadow from a random side.
    A ballpoint draws an even, thin line: the digit's core at ten times its size, thinned there
    (thinning the 28x28 digit itself would break its strokes apart)."""
    core = Image.fromarray((enlarge(ink, 280, Image.Resampling.BILINEAR) > 0.5).astype(np.uint8) * 255)
    line = np.asarray(core.filter(ImageFilter.MinFilter(int(rng.choice([3, 5, 7])))))
    photo = on_paper(line, size=(1280, 960), box=(rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.4), rng.uniform(0.3, 0.5)),
                     seed=int(rng.integers(1 << 30)), shadow=rng.uniform(0.3, 0.6), ink_rgb=(0.75, 0.6, 0.3),
                     light_angle=rng.uniform(0, 2 * math.pi))
    return encode(photo, "JPEG", quality=int(rng.integers(70, 92)))


def touch_drawing(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A digit drawn with a brush tool on a phone or tablet: the strokes' centre lines drawn again
    with a round brush of one width, 2-12 % of the 200-400 px canvas, in a dark colour, on white
    or on a transparent ground (where MNIST's pen swells and thins, a brush does not)."""
    side = int(rng.integers(200, 400))
    centre_lines = skeletonize(enlarge(ink, side, Image.Resampling.BILINEAR) > 0.5)
    radius = rng.uniform(0.01, 0.06) * side
    coverage = brush_along(centre_lines, radius)
    colour = rng.integers(0, 90, 3)
    if rng.random() < 0.5:
        drawing = np.zeros((side, side, 4), np.uint8)
        drawing[..., :3], drawing[..., 3] = colour, np.round(coverage * 255)
    else:
        drawing = np.round(255 - coverage[..., None] * (255 - colour)).astype(np.uint8)
    return encode(Image.fromarray(drawing), "PNG")


A4_PIXELS = {150: (1240, 1754), 300: (2480, 3508)}    # an A4 page scanned at 150 and 300 dpi
INK_ON_PAGE = (25, 200)         # the ink's longer side on a page or sheet, in the upload's pixels (log-uniform)
INK_OF_BOX = 20 / 28            # MNIST's ink fills 20 of its 28 pixels


def ink_on_page(rng: np.random.Generator, low: float) -> float:
    return float(np.exp(rng.uniform(math.log(low), math.log(INK_ON_PAGE[1]))))


def paper_shading(rng: np.random.Generator, shape: tuple[int, int], amplitude: float) -> np.ndarray:
    """1 plus a smooth variation of the paper of at most ``amplitude``: noise made small and enlarged."""
    small = rng.normal(0, 1, (6, 5)).astype(np.float32)
    field = np.asarray(Image.fromarray(small).resize((shape[1], shape[0]), Image.Resampling.BICUBIC))
    return 1 + amplitude * field / max(1e-6, float(np.abs(field).max()))


def clear_corner(rng: np.random.Generator, size: tuple[int, int], box: tuple[int, int, int, int],
                 extent: int, margin: int, gap: int = 40) -> tuple[int, int] | None:
    """A top-left corner for a square mark of ``extent`` on a page of ``size`` that keeps ``gap``
    clear of ``box`` (left, top, right, bottom); None where 50 tries find none."""
    width, height = size
    for _ in range(50):
        x = int(rng.integers(margin, width - margin - extent))
        y = int(rng.integers(margin, height - margin - extent))
        if x + extent + gap < box[0] or x > box[2] + gap or y + extent + gap < box[1] or y > box[3] + gap:
            return x, y
    return None


def rubber_stamp(rng: np.random.Generator, side: int) -> np.ndarray:
    """A stamp's coverage (0-1): a ring or a frame round three lines of text-like dashes."""
    mark = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mark)
    line = max(2, side // 40)
    if rng.random() < 0.5:
        draw.ellipse([line, line, side - line, side - line], outline=255, width=line)
    else:
        draw.rectangle([line, side // 4, side - line, side * 3 // 4], outline=255, width=line)
    for row in range(3):
        y, x = side * (0.4 + 0.1 * row), side * 0.22
        while x < side * 0.75:
            dash = rng.uniform(0.03, 0.07) * side
            draw.line([(x, y), (x + dash, y - rng.uniform(-0.05, 0.05) * side)], fill=255, width=line)
            x += dash * 1.5
    return np.asarray(mark.filter(ImageFilter.GaussianBlur(1)), np.float32) / 255


def scanned_page(ink: np.ndarray, rng: np.random.Generator, ink_px: float, dpi: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A digit whose ink is ``ink_px`` long on an A4 page scanned at ``dpi``, greyscale, and the
    box (left, top, right, bottom) of its 28x28 frame: slightly shaded paper with scanner noise,
    a margin, and in most pages one other mark away from the digit (a ruled line across the
    page, a rubber stamp, or the scanner lid's dark edge along one side)."""
    width, height = A4_PIXELS[dpi]
    side = max(8, round(ink_px / INK_OF_BOX))
    margin = int(0.06 * width)
    left, top = int(rng.integers(margin, width - margin - side)), int(rng.integers(margin, height - margin - side))
    page = rng.uniform(0.86, 0.97) * paper_shading(rng, (height, width), rng.uniform(0.0, 0.03))
    digit = enlarge(ink, side)
    if dpi == 300 or rng.random() < 0.5:                # the scanner's optics soften fine detail
        softened = Image.fromarray(np.round(digit * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
        digit = np.asarray(softened, np.float32) / 255
    page[top:top + side, left:left + side] *= 1 - rng.uniform(0.6, 0.9) * digit
    box = (left, top, left + side, top + side)
    other = rng.random()
    if other < 0.3:
        rows = [y for y in rng.integers(margin, height - margin, 20) if y < top - 30 or y > top + side + 30]
        if rows:
            page[rows[0]:rows[0] + dpi // 150, margin // 2:width - margin // 2] *= rng.uniform(0.6, 0.85)
    elif other < 0.55:
        stamp_side = int(rng.uniform(0.12, 0.25) * width)
        if corner := clear_corner(rng, (width, height), box, stamp_side, margin // 2):
            x, y = corner
            page[y:y + stamp_side, x:x + stamp_side] *= 1 - rng.uniform(0.3, 0.6) * rubber_stamp(rng, stamp_side)
    elif other < 0.7:
        page[:, :int(rng.uniform(0.005, 0.02) * width)] *= 0.3
    page += rng.normal(0, rng.uniform(0.004, 0.012), page.shape).astype(np.float32)
    return Image.fromarray(np.clip(page * 255, 0, 255).astype(np.uint8)), box


def page_scan(ink: np.ndarray, rng: np.random.Generator, ink_px: float) -> bytes:
    """A digit whose ink is ``ink_px`` long on an A4 page scanned at 150 or 300 dpi, PNG or JPEG."""
    page, _ = scanned_page(ink, rng, ink_px, 150 if rng.random() < 0.5 else 300)
    if rng.random() < 0.4:
        return encode(page, "PNG")
    return encode(page, "JPEG", quality=int(rng.integers(75, 95)))


def sheet_photo(ink: np.ndarray, rng: np.random.Generator, ink_px: float) -> bytes:
    """A phone photo (3-12 megapixels) of a sheet with a digit whose ink is ``ink_px`` long on it,
    light falling off towards one side, slightly out of focus, as JPEG."""
    width, height = ((4032, 3024), (3264, 2448), (2016, 1512))[int(rng.integers(3))]
    side = round(ink_px / INK_OF_BOX)
    margin = int(0.05 * width)
    left, top = int(rng.integers(margin, width - margin - side)), int(rng.integers(margin, height - margin - side))
    small = (width // 16, height // 16)
    yy, xx = np.mgrid[0:small[1], 0:small[0]]
    angle = rng.uniform(0, 2 * math.pi)
    light = 0.8 + 0.12 * np.sin(xx / small[0] * math.pi + angle) * np.cos(yy / small[1] * math.pi / 2)
    reach = (xx / small[0] - 0.5) * math.cos(angle) + (yy / small[1] - 0.5) * math.sin(angle) + 0.2
    light *= 1 - rng.uniform(0, 0.3) * np.clip(reach, 0, 0.7) / 0.7
    page = np.asarray(Image.fromarray(light.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR)) * 0.93
    page[top:top + side, left:left + side] *= 1 - rng.uniform(0.55, 0.85) * enlarge(ink, side)
    page = page + rng.normal(0, 0.015, page.shape).astype(np.float32)
    rgb = np.clip(page[..., None] * np.asarray([1.0, 0.97, 0.9], np.float32) * 255, 0, 255).astype(np.uint8)
    photo = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
    return encode(photo, "JPEG", quality=int(rng.integers(75, 92)))


def _seeded(make):
    return lambda ink, rng: make(ink)


KINDS = {
    "mnist-png": _seeded(as_mnist_png),
    "canvas": _seeded(as_canvas_png),
    "photo": lambda ink, rng: as_photo_jpeg(ink, seed=int(rng.integers(1 << 30))),
    "shadowed-photo": lambda ink, rng: as_shadowed_photo_jpeg(ink, seed=int(rng.integers(1 << 30))),
    "scan": _seeded(as_scan),
    "off-centre": _seeded(off_centre_small),
    "bold-marker-tight": bold_marker_tight_crop,
    "heavy-blur": heavy_blur,
    "low-resolution": low_resolution,
    "thin-pen-large-canvas": thin_pen_large_canvas,
    "ballpoint-photo": ballpoint_photo,
    "touch-drawing": touch_drawing,
}
PAGE_KINDS = {      # large uploads with small ink, drawn between INK_ON_PAGE's sizes: smaller sets, reported by size
    "page-scan": (page_scan, INK_ON_PAGE[0]),
    "sheet-photo": (sheet_photo, 40),
}
KINDS.update({kind: lambda ink, rng, make=make, low=low: make(ink, rng, ink_on_page(rng, low))
              for kind, (make, low) in PAGE_KINDS.items()})
PAGE_SET_SIZE = 300
ADDED_STREAMS = {"page-scan": 12, "sheet-photo": 13}    # kinds added later draw from their own streams, so
                                                        # the sets of the kinds before them stay the same


def product_photo(product: np.ndarray, rng: np.random.Generator) -> bytes:
    """A catalogue photo: the product dark on a white or light grey ground (Fashion-MNIST is its
    negative), 3-10 times larger, with a margin of 5-40 % and an off-square frame, tinted, as JPEG."""
    side = int(rng.integers(84, 280))
    shade = enlarge(255 - product, side)                       # back to a product on white
    ground = rng.uniform(0.93, 1.0)
    margin_x, margin_y = (int(side * rng.uniform(0.05, 0.4)) for _ in range(2))
    page = np.full((side + 2 * margin_y, side + 2 * margin_x), ground, np.float32)
    page[margin_y:margin_y + side, margin_x:margin_x + side] = np.minimum(shade, ground)
    page += rng.normal(0, 0.01, page.shape)
    tint = np.asarray([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.85, 1.0)], np.float32)
    rgb = np.clip(page[..., None] * tint * 255, 0, 255).astype(np.uint8)
    return encode(Image.fromarray(rgb), "JPEG", quality=int(rng.integers(75, 93)))


def product_cutout(product: np.ndarray, rng: np.random.Generator) -> bytes:
    """A cut-out product PNG: the product's shades on a transparent ground, larger, off-square."""
    side = int(rng.integers(56, 200))
    shade = Image.fromarray(255 - product).resize((side, side), Image.Resampling.BICUBIC)
    mask = Image.fromarray(np.where(product > 0, 255, 0).astype(np.uint8)).resize((side, side), Image.Resampling.BILINEAR)
    canvas = Image.new("RGBA", (side + int(rng.integers(0, side // 2)), side), (0, 0, 0, 0))
    canvas.paste(shade.convert("RGBA"), ((canvas.width - side) // 2, 0), mask)
    return encode(canvas, "PNG")


GARMENT_KINDS = {
    "fashion-png": _seeded(as_mnist_png),
    "product-photo": product_photo,
    "product-cutout": product_cutout,
}
KINDS_OF_DATASET = {"mnist": KINDS, "fashion-mnist": GARMENT_KINDS}
OTHER_WRITERS = "other-writers"     # not MNIST's writers: every optdigits digit (training.data), evaluation only
OTHER_WRITERS_STREAM = 11           # its random stream: the count of kinds when it was made, kept so the set stays the same
SETS_OF_DATASET = {"mnist": (*KINDS, OTHER_WRITERS), "fashion-mnist": tuple(GARMENT_KINDS)}
WHOLE_TEST_SETS = ("mnist-png", "fashion-png")    # used whole, 10,000 images


def load_test_set(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_split(fetch_dataset(dataset), "t10k")
    return images.numpy(), labels.numpy()


def other_writer_upload(pixels: np.ndarray, rng: np.random.Generator) -> bytes:
    """An 8x8 digit (light on black) enlarged 12-24 times by a viewer, blockily, smoothly or
    bicubically, either polarity: the ink fills the frame, as these digits were scanned."""
    scale = int(rng.integers(12, 25))
    resample = (Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)[int(rng.integers(3))]
    big = np.asarray(Image.fromarray(pixels).resize((8 * scale, 8 * scale), resample))
    return encode(Image.fromarray(255 - big if rng.random() < 0.5 else big), "PNG")


@lru_cache(maxsize=2)
def other_writers_set(seed: int = SET_SEED) -> tuple[list[bytes], np.ndarray]:
    """All 1,797 optdigits digits as uploads (quick to make, so not cached on disk; made once a
    process) and their labels."""
    images, labels = load_optdigits(fetch_optdigits())
    rng = np.random.default_rng([seed, OTHER_WRITERS_STREAM])
    return [other_writer_upload(image, rng) for image in images], labels


def presentation_set(kind: str, size: int | None = None, cache: Path = CACHE,
                     seed: int = SET_SEED) -> tuple[list[bytes], np.ndarray]:
    """``size`` uploads of one kind (bytes) and their labels; seeded, cached after the first call.
    Another ``seed`` draws other test images and presents them anew: a check that a choice made
    on the usual sets holds beyond them. The other writers' set is always whole (no ``size``)."""
    if kind == OTHER_WRITERS:
        return other_writers_set(seed)
    stored = stored_set(kind, size, cache, seed)
    return uploads_of(stored), stored["labels"]


def ink_sizes(kind: str, size: int | None = None, cache: Path = CACHE, seed: int = SET_SEED) -> np.ndarray:
    """The ink's longer side in each upload of a page kind's set (PAGE_KINDS), in its pixels."""
    return stored_set(kind, size, cache, seed)["ink_px"]


def stored_set(kind: str, size: int | None, cache: Path, seed: int) -> dict[str, np.ndarray]:
    """The cached arrays of a set (the uploads as one blob and their ends, labels, ink sizes
    where the kind states them), made first where missing."""
    size = size or (10000 if kind in WHOLE_TEST_SETS else PAGE_SET_SIZE if kind in PAGE_KINDS else SET_SIZE)

    def build() -> dict:
        dataset, kinds = next((d, k) for d, k in KINDS_OF_DATASET.items() if kind in k)
        images, labels = load_test_set(dataset)
        stream = ADDED_STREAMS.get(kind) or sorted(set(kinds) - set(ADDED_STREAMS)).index(kind)
        rng = np.random.default_rng([seed, stream])
        chosen = rng.choice(len(images), size, replace=False)
        bodies, ink_px = [], np.full(size, np.nan)
        for index, image in enumerate(images[chosen]):
            if kind in PAGE_KINDS:          # as KINDS[kind] does, keeping the size drawn
                make, low = PAGE_KINDS[kind]
                ink_px[index] = ink_on_page(rng, low)
                bodies.append(make(image, rng, ink_px[index]))
            else:
                bodies.append(kinds[kind](image, rng))
        return {"bodies": bodies, "labels": labels[chosen], "ink_px": ink_px}

    return cached_arrays(cache / f"{kind}-{size}-{seed}-v{SETS_VERSION}.npz", build)


def cached_uploads(path: Path, build) -> tuple[list[bytes], np.ndarray]:
    """The uploads and labels stored at ``path`` (see cached_arrays)."""
    stored = cached_arrays(path, build)
    return uploads_of(stored), stored["labels"]


def cached_arrays(path: Path, build) -> dict[str, np.ndarray]:
    """The arrays stored at ``path``; where missing, made by ``build()``, whose uploads ("bodies",
    a list of bytes) are stored as one blob and their ends, and saved."""
    if path.exists():
        return dict(np.load(path))
    stored = build()
    bodies = stored.pop("bodies")
    stored.update(blob=np.frombuffer(b"".join(bodies), np.uint8), ends=np.cumsum([len(b) for b in bodies]))
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")    # two test processes may make the same set at once
    np.savez(staged, **stored)
    os.replace(staged, path)
    return stored


def uploads_of(stored: dict[str, np.ndarray]) -> list[bytes]:
    blob, ends = stored["blob"], stored["ends"]
    return [blob[start:end].tobytes() for start, end in zip(np.r_[0, ends[:-1]], ends)]
