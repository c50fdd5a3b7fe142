"""Real test images: MNIST test digits and pen-drawn digits, presented as people send them."""
from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.data import DEFAULT_CACHE, fetch_mnist, load_split

# Pen strokes in a unit box (x right, y down), as a person draws them on a canvas.
SEVEN = [[(0.18, 0.12), (0.82, 0.12), (0.62, 0.45), (0.42, 0.9)]]
THREE = [[(0.22, 0.2), (0.4, 0.1), (0.62, 0.1), (0.76, 0.22), (0.72, 0.38), (0.5, 0.48),
          (0.74, 0.58), (0.8, 0.74), (0.66, 0.88), (0.42, 0.9), (0.22, 0.8)]]


@lru_cache(maxsize=1)
def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_split(fetch_mnist(DEFAULT_CACHE), "t10k")
    return images.numpy(), labels.numpy()


def mnist_digit(index: int) -> tuple[np.ndarray, int]:
    images, labels = mnist_test_set()
    return images[index], int(labels[index])


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


def on_paper(ink: np.ndarray, size: tuple[int, int] = (1600, 1200), box: tuple[float, float, float] = (0.35, 0.3, 0.45),
             seed: int = 0, shadow: float = 0.0) -> Image.Image:
    """Dark ink (a light-on-dark uint8 digit) photographed on cream paper with uneven light and noise;
    ``shadow`` darkens the page towards one corner by up to that fraction, as a hand or phone would."""
    rng = np.random.default_rng(seed)
    width, height = size
    side = int(box[2] * height)
    digit = np.asarray(Image.fromarray(ink).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    yy, xx = np.mgrid[0:height, 0:width]
    light = 0.85 + 0.1 * np.sin(xx / width * math.pi) * np.cos(yy / height * math.pi / 2)
    light *= 1 - shadow * np.clip((xx / width + yy / height) - 0.6, 0, 1.4) / 1.4
    paper = np.stack([light * 235, light * 228, light * 210], axis=-1)
    top, left = int(box[1] * height), int(box[0] * width)
    region = paper[top:top + side, left:left + side]
    region *= (1 - 0.8 * digit[..., None])
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
    return encode(on_paper(ink, seed=seed, shadow=0.6), "JPEG", quality=85)


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
