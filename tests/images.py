"""Real test images: MNIST test digits and pen-drawn digits, presented as people send them
(the presentations themselves live in `training.presentations`, shared with the report)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from training.presentations import (SEVEN, STAR, THREE, as_canvas_png, as_photo_jpeg, as_scan,  # noqa: F401
                                    as_shadowed_photo_jpeg, draw_strokes, encode, off_centre_small, on_paper)
from training.presentations import load_test_set


@lru_cache(maxsize=1)
def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    return load_test_set("mnist")


def mnist_digit(index: int) -> tuple[np.ndarray, int]:
    images, labels = mnist_test_set()
    return images[index], int(labels[index])


@lru_cache(maxsize=1)
def bad_inputs() -> dict[str, tuple[bytes, int, str]]:
    """Hostile and broken uploads, each with the status and error type it must get."""
    png = encode(draw_strokes(SEVEN), "PNG")
    return {
        "empty body": (b"", 400, "empty"),
        "text": (b"hello, this is not a picture", 415, "not_an_image"),
        "pdf": (b"%PDF-1.7\n1 0 obj << >> endobj", 415, "not_an_image"),
        "truncated png": (png[:len(png) // 2], 400, "corrupt_image"),
        "blank page": (encode(Image.new("RGB", (800, 600), (240, 240, 235)), "JPEG"), 422, "blank"),
        "144 megapixels": (encode(Image.new("L", (12000, 12000), 255), "PNG"), 413, "too_many_pixels"),
        "decompression bomb": (encode(Image.new("1", (30000, 30000), 1), "PNG"), 413, "too_many_pixels"),
        "data url of text": (b"data:text/plain;base64,aGVsbG8=", 415, "unsupported_type"),
    }
