"""Request bodies to decoded images: data URLs, the accepted formats, pixel limits checked from
the header, EXIF orientation, JPEGs decoded at a reduced scale, 8-bit PNGs decoded by Wuffs;
then greyscale in [0, 1] with transparency composited.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import re
import warnings

import numpy as np
from PIL import Image, ImageChops, ImageOps
from pywuffs import ImageDecoderQuirks, ImageDecoderType, PixelFormat, aux as wuffs

from digitlens.prepare.errors import InputError
from digitlens.prepare.primitives import shrink

ACCEPTED_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "TIFF")
JPEG_FORMATS = ("JPEG", "MPO")      # decoded at a reduced scale (open_image)
WORKING_SIDE = 140          # longer side the image is reduced to before the pixel steps (ink 20 px wide needs no more;
                            # the page's 280 px canvas halves exactly)
ORIENTATION, SIDES_SWAPPED = 0x0112, (5, 6, 7, 8)     # the EXIF tag, and its values that turn by 90 degrees
UPRIGHT_SIZE = "digitlens.upright_size"             # open_image's note in a JPEG's info
DATA_URL = re.compile(rb"^\s*data:([\w/+.-]*)(;[\w=.-]+)*?;base64,", re.IGNORECASE)


def body_bytes(body) -> bytes:
    """The image bytes in a request body: raw bytes, or a ``data:image/...;base64,`` URL."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    if not isinstance(body, (bytes, bytearray)) or not body:
        raise InputError("the request has no image: send the image bytes as the body or as the form field 'data'", "empty")
    match = DATA_URL.match(body[:200])
    if match is None:
        return body if isinstance(body, bytes) else bytes(body)
    if match.group(1) and not match.group(1).lower().startswith(b"image/"):
        raise InputError(f"the data URL holds {match.group(1).decode()}, not an image", "unsupported_type")
    try:
        return base64.b64decode(body[match.end():], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"the data URL's base64 payload is malformed: {exc}", "corrupt_image") from exc


def open_image(data: bytes, max_pixels: int, longest: int | None = WORKING_SIDE) -> Image.Image:
    """Open and decode an image, refusing oversized ones from the header alone. A JPEG is
    decoded at the smallest of its DCT scales (1/8 to 1) whose longer side is at least
    ``longest`` (None: at full size); other formats at full size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"the image has too many pixels: {exc}", "too_many_pixels") from exc
    except Exception as exc:
        raise InputError("the body is not an image Digit Lens can read "
                         f"(accepted: {', '.join(ACCEPTED_FORMATS)})", "not_an_image") from exc
    if image.format not in ACCEPTED_FORMATS:
        raise InputError(f"{image.format} images are not supported (accepted: {', '.join(ACCEPTED_FORMATS)})",
                         "unsupported_type")
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}",
                         "too_many_pixels")
    if image.format in JPEG_FORMATS:
        # The upload's upright size, known before a reduced decode and the EXIF turn (upright_size).
        image.info[UPRIGHT_SIZE] = (height, width) if image.getexif().get(ORIENTATION, 1) in SIDES_SWAPPED else (width, height)
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
        raise InputError(f"the image data is truncated or corrupt: {exc}", "corrupt_image") from exc


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
    if not has_alpha(image):
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


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)


def drawn_on_nothing(image: Image.Image) -> bool:
    """Whether ``image`` is strokes on a transparent ground (a canvas drawing): its outermost
    pixels all fully transparent. Such an image holds no printed paper (lines.remove_printed_lines)."""
    if not has_alpha(image):
        return False
    opaque = (image if image.mode in ("RGBA", "LA") else image.convert("RGBA")).getbbox()   # of the alpha alone
    return opaque is None or (opaque[0] > 0 and opaque[1] > 0 and opaque[2] < image.width and opaque[3] < image.height)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """The upright size of the upload ``image`` was opened from (open_image may have decoded a
    JPEG at a reduced scale, and an EXIF orientation of 5 to 8 swaps the sides)."""
    return image.info.get(UPRIGHT_SIZE, image.size)
