"""Each preprocessing step on real images, then the whole pipeline on awkward uploads."""
import io
import math
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitlens.prepare import InputError, prepare
from digitlens.prepare.artefacts import block_side, smooth_blocks
from digitlens.prepare.decode import body_bytes, decode_png, drawn_on_nothing, open_image, to_greyscale
from digitlens.prepare.light import (BACKGROUND_THUMBNAIL, background_is_uneven, flatten_background, isolate_ink,
                                     make_ink_light, shadow_levels)
from digitlens.prepare.marks import digit_candidates
from digitlens.prepare.normalise import center_by_mass, fit_longer_side
from digitlens.prepare.primitives import (border, border_median, box_blur, crop_to_ink, ink_box, max_along, min_along,
                                         opening, reduce_to)
from digitlens.service import STATUS
from training.data import fetch_optdigits, load_optdigits
from training.presentations import KINDS, other_writer_upload
from tests.images import (SEVEN, as_canvas_png, as_photo_jpeg, as_scan, as_shadowed_photo_jpeg, draw_strokes,
                          encode, mnist_digit, off_centre_small, on_paper)

LIMIT = 40_000_000


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(pixels.shape)
    total = pixels.sum()
    return (rows * pixels).sum() / total, (cols * pixels).sum() / total


def test_dark_ink_on_light_paper_is_inverted_and_light_ink_is_kept():
    ink, _ = mnist_digit(0)
    light_on_dark = ink.astype(np.float32) / 255
    assert np.array_equal(make_ink_light(light_on_dark), light_on_dark)
    assert np.allclose(make_ink_light(1 - light_on_dark), light_on_dark)


def as_phone_jpeg(page: np.ndarray) -> bytes:
    return encode(Image.fromarray(page.astype(np.uint8)), "JPEG", quality=88)


def prepared_photo(page: np.ndarray, spec) -> np.ndarray:
    """What the network sees of ``page`` (an RGB array) uploaded as a phone's JPEG, in [0, 1]."""
    return prepare(as_phone_jpeg(page), spec).pixels / 255


@pytest.mark.parametrize("exposure", [0.45, 0.25])
def test_an_underexposed_photo_has_its_dark_ink_made_light(exposure, spec):
    """Paper darker than mid-grey is still paper when the ink is darker still: an underexposed
    photo is prepared as the well-exposed one is (it was refused as blank, or read inverted)."""
    for index in range(5):
        ink, _ = mnist_digit(index)
        photo = np.asarray(on_paper(ink, seed=index), dtype=np.float32)
        dim = photo * exposure
        grey = to_greyscale(open_image(as_phone_jpeg(dim), LIMIT))
        assert border_median(grey) < 0.5
        assert np.array_equal(make_ink_light(grey), 1 - grey)
        # (a pixel's shift of the centre of mass gives up to 0.05; another digit 0.12-0.19)
        assert np.abs(prepared_photo(dim, spec) - prepared_photo(photo, spec)).mean() < 0.06


def test_transparent_canvas_strokes_are_composited_onto_a_contrasting_ground():
    dark_strokes = Image.open(io.BytesIO(encode(draw_strokes(SEVEN), "PNG")))
    grey = to_greyscale(dark_strokes)
    assert np.median(grey) == pytest.approx(1.0)          # transparent became white paper
    assert grey.min() < 0.2                               # strokes stay dark
    light_strokes = Image.open(io.BytesIO(encode(draw_strokes(SEVEN, ink=(255, 255, 255, 255)), "PNG")))
    assert np.median(to_greyscale(light_strokes)) == pytest.approx(0.0)


def test_only_strokes_on_a_transparent_ground_are_drawn_on_nothing():
    """A canvas drawing holds no printed paper, so its printed lines are not looked for."""
    drawing = Image.open(io.BytesIO(encode(draw_strokes(SEVEN), "PNG")))
    assert drawing.mode == "RGBA" and drawn_on_nothing(drawing)
    opaque_ground = drawing.copy()
    opaque_ground.putalpha(Image.new("L", drawing.size, 255))
    assert not drawn_on_nothing(opaque_ground)          # a photo saved with an alpha channel
    assert not drawn_on_nothing(drawing.convert("RGB")) and not drawn_on_nothing(drawing.convert("L"))


def test_exif_orientation_is_honoured():
    ink, _ = mnist_digit(0)
    image = open_image(as_photo_jpeg(ink, exif_rotate=True), LIMIT)
    assert image.width > image.height                     # stored portrait, shown landscape


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    ink, _ = mnist_digit(0)
    image = Image.fromarray(ink.astype(np.uint16) * 257)
    assert image.mode.startswith("I;16")
    grey = to_greyscale(Image.open(io.BytesIO(encode(image, "PNG"))))
    assert grey.max() == pytest.approx(1.0) and 0 < grey.mean() < 0.5


def test_shadows_are_flattened_and_bold_ink_is_kept():
    ink, _ = mnist_digit(5)
    shadowed = make_ink_light(to_greyscale(open_image(as_shadowed_photo_jpeg(ink), LIMIT)))
    spread = lambda image: np.percentile(image, 95) - np.percentile(image, 5)
    assert spread(shadowed) > 0.3
    isolated = isolate_ink(flatten_background(shadowed))
    rows, cols = np.flatnonzero(isolated.any(axis=1)), np.flatnonzero(isolated.any(axis=0))
    # only the digit is left: on this page it covers a box about 0.3 of the page high
    assert rows[-1] - rows[0] < 0.45 * shadowed.shape[0] and cols[-1] - cols[0] < 0.45 * shadowed.shape[1]
    bold = make_ink_light(to_greyscale(draw_strokes(SEVEN, pen=0.2)))    # a fat marker, edge to edge
    assert flatten_background(bold).sum() > 0.9 * bold.sum()


@pytest.mark.parametrize("kind,uneven", [("shadowed-photo", True), ("ballpoint-photo", True), ("photo", True),
                                         ("bold-marker-tight", False), ("canvas", False), ("heavy-blur", False),
                                         ("low-resolution", False), ("touch-drawing", False)])
def test_only_unevenly_lit_paper_is_flattened(kind, uneven):
    """Light changes gradually along the border; a bold digit in a tight crop steps up sharply."""
    rng = np.random.default_rng(1)
    for index in range(20):
        ink, _ = mnist_digit(index)
        body = KINDS[kind](ink, rng)
        grey = make_ink_light(to_greyscale(open_image(body, LIMIT)))
        assert background_is_uneven(reduce_to(grey, BACKGROUND_THUMBNAIL)) == uneven, f"{kind} {index}"
        assert (flatten_background(grey) is not grey) == uneven, f"{kind} {index}: the even-margin shortcut disagrees"


def hard_shadowed_photo(ink: np.ndarray, index: int) -> bytes:
    """A phone photo with a shadow whose edge is blurred over 3 % of the page, from one of eight
    directions, 30-60 % darker."""
    return as_phone_jpeg(np.asarray(on_paper(ink, seed=index, shadow=0.3 + 0.04 * (index % 8), penumbra=0.03,
                                             light_angle=index * math.pi / 4)))


def test_a_hard_edged_shadow_is_found_and_ink_along_the_border_is_not():
    """A shadow leaves the border at two flat levels with a sharp step between them; bold ink in a
    tight crop, frame-filling digits and gradual light do not."""
    grey_of = lambda body: to_greyscale(open_image(body, LIMIT))
    for index in range(16):
        levels = shadow_levels(grey_of(hard_shadowed_photo(mnist_digit(index)[0], index)))
        assert levels is not None and levels[1] - levels[0] > 0.15, index
    rng = np.random.default_rng(3)
    optdigits, _ = load_optdigits(fetch_optdigits())
    for index in range(20):
        ink, _ = mnist_digit(index)
        uploads = {kind: KINDS[kind](ink, rng) for kind in ("bold-marker-tight", "shadowed-photo", "ballpoint-photo",
                                                          "photo", "low-resolution", "touch-drawing")}
        uploads["other writers"] = other_writer_upload(optdigits[index], rng)
        for kind, body in uploads.items():
            assert shadow_levels(grey_of(body)) is None, f"{kind} {index}"


def test_a_hard_edged_shadow_leaves_the_digit_as_it_was(spec):
    """Across the page or across the digit, the shadow's edge is followed: the network sees what it
    sees without the shadow (before: the edge passed for ink running along the border, the page
    was not flattened, and where the lit paper was the lighter extreme it was taken for light
    ink; 216 of 300 such photos were misread)."""
    offs = []
    for index in range(16):
        ink, _ = mnist_digit(index)
        plain = prepared_photo(np.asarray(on_paper(ink, seed=index)), spec)
        offs.append(np.abs(prepare(hard_shadowed_photo(ink, index), spec).pixels / 255 - plain).mean())
    assert max(offs) < 0.1 and np.mean(offs) < 0.05      # before: up to 0.21, on average 0.11


def test_specks_and_marks_far_from_the_digit_are_left_out_and_its_own_pieces_kept():
    ink = np.zeros((100, 100), np.float32)
    ink[30:70, 40:44] = 1                   # a stroke, 40 px long
    ink[74:80, 40:44] = 1                   # a piece of it past a 4-px break: near, kept
    ink[2, 2] = 0.5                         # a speck in a corner: far, left out
    ink[90:98, 88:98] = 1                   # a lighter mark far away: another candidate, looked at after the digit
    digit, other, speck = digit_candidates(ink)
    expected = np.zeros_like(ink)
    expected[30:80, 40:44] = ink[30:80, 40:44]
    assert np.array_equal(digit, expected)
    assert ink_box(other) == (90, 88, 98, 98) and ink_box(speck) == (2, 2, 3, 3)
    [pieces] = digit_candidates(expected)
    assert np.array_equal(pieces, expected)
    stroke = np.where(expected > 0, 1, 0).astype(np.float32)
    stroke[70:74, 40:44] = 1
    assert digit_candidates(stroke)[0] is stroke            # one mark: the ink itself


def test_a_photo_on_grid_paper_is_prepared_as_on_plain_paper(spec):
    """A squared page's faint lines are below the noise floor, but where they cross they are not:
    those specks stretched the crop over the whole page, and the digit shrank to a corner of it."""
    for index in range(5):
        ink, _ = mnist_digit(index)
        photo = np.asarray(on_paper(ink, seed=index), dtype=np.float32)
        squared = photo.copy()
        for line in range(50, 1200, 100):
            squared[line:line + 3] *= (0.75, 0.8, 0.95)          # blue lines, every 100 px both ways
            squared[:, line:line + 3] *= (0.75, 0.8, 0.95)
        assert np.abs(prepared_photo(squared, spec) - prepared_photo(photo, spec)).mean() < 0.06, index


def test_a_low_resolution_digit_filling_its_frame_is_not_flattened():
    """An 8x8 digit enlarged to fill the frame has ink all along the border, rising over one
    source pixel: steeper than light, though not sharp. Flattening it took the ink's core away
    (other writers' digits: 53 errors of 1,797 instead of 32)."""
    rng = np.random.default_rng(2)
    images, _ = load_optdigits(fetch_optdigits())
    for index in range(40):
        body = other_writer_upload(images[index], rng)
        grey = make_ink_light(smooth_blocks(to_greyscale(open_image(body, LIMIT))))
        assert not background_is_uneven(reduce_to(grey, BACKGROUND_THUMBNAIL)), index
        assert flatten_background(grey) is grey, index


@pytest.mark.parametrize("source,factor", [(8, 14), (11, 13), (16, 14), (10, 5)])
def test_a_blocky_enlargement_is_read_like_a_smooth_one(source, factor, spec):
    """A low-resolution digit blown up with nearest neighbours: its blocks are found at the
    working size (a 224 px image is shrunk to 140, its 14 px blocks to 8.75), and smoothed,
    it gives the network nearly what the smooth enlargement of the same source gives."""
    offs = []
    for index in range(5):
        ink, _ = mnist_digit(source + index)
        small = Image.fromarray(ink).resize((source, source), Image.Resampling.BOX)
        blocky, smooth = (encode(small.resize((source * factor,) * 2, resample), "PNG")
                          for resample in (Image.Resampling.NEAREST, Image.Resampling.BILINEAR))
        side = block_side(to_greyscale(open_image(blocky, LIMIT)))
        assert abs(side - factor * min(1, 140 / (source * factor))) <= 1
        assert block_side(to_greyscale(open_image(smooth, LIMIT))) == 1
        offs.append(np.abs(prepare(blocky, spec).pixels / 255 - prepare(smooth, spec).pixels / 255).mean())
    assert np.mean(offs) < 0.025          # unsmoothed: 0.04 to 0.06


@pytest.mark.parametrize("side,quality", [(96, 85), (120, 80), (160, 70), (240, 80)])
def test_a_blocky_enlargement_saved_as_jpeg_has_its_blocks_found(side, quality, spec):
    """JPEG rings beside each block's edge, so steps appear between the edges; they are faint,
    and the blocks are still found (before, none of these was: other writers' digits enlarged so
    and saved at quality 85 were misread 49 times of 1,797, as PNGs 30)."""
    images, _ = load_optdigits(fetch_optdigits())
    working_block = side / 8 * min(1, 140 / side)
    for index in range(10):
        blocky = Image.fromarray(255 - images[index]).resize((side, side), Image.Resampling.NEAREST)
        as_jpeg, as_png = encode(blocky, "JPEG", quality=quality), encode(blocky, "PNG")
        assert abs(block_side(to_greyscale(open_image(as_jpeg, LIMIT))) - working_block) <= 1, index
        assert np.abs(prepare(as_jpeg, spec).pixels / 255 - prepare(as_png, spec).pixels / 255).mean() < 0.02, index


@pytest.mark.parametrize("width,first,last", [(3, 9, 11), (4, 8, 11), (1, 10, 10)])
def test_box_blur_spreads_a_point_evenly_over_its_window(width, first, last):
    point = np.zeros((20, 30), np.float32)
    point[10, 10] = 1.0
    blurred = box_blur(point, width)
    window = np.zeros_like(point)
    window[first:last + 1, first:last + 1] = 1.0 / width ** 2
    assert np.allclose(blurred, window, atol=1e-6)


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "low-resolution"])
def test_nothing_but_a_blocky_enlargement_is_smoothed(kind):
    """Strokes, blur, noise and JPEG's faint 8-px blocks are not a low-resolution source's blocks."""
    rng = np.random.default_rng(2)
    for index in range(20):
        ink, _ = mnist_digit(index)
        assert block_side(to_greyscale(open_image(KINDS[kind](ink, rng), LIMIT))) == 1, f"{kind} {index}"


@pytest.mark.parametrize("shape", [(3, 3), (28, 28), (140, 93), (2, 50)])
def test_border_median_is_numpys_median_of_the_border(shape):
    grey = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
    assert border_median(grey) == pytest.approx(float(np.median(border(grey))), abs=1e-7)


@pytest.mark.parametrize("shape", [(105, 140), (7, 40), (40, 7)])
@pytest.mark.parametrize("width", [1, 2, 3, 8, 17, 29, 60])
def test_running_extremes_and_openings_are_scipys(shape, width):
    rng = np.random.default_rng(width)
    present = rng.random(shape) < 0.3
    grey = rng.random(shape, dtype=np.float32)
    for axis in (0, 1):
        for image in (present, present.T):          # a transposed view too, as the segment search passes one
            assert np.array_equal(max_along(image, width, axis), ndimage.maximum_filter1d(image, width, axis=axis))
            assert np.array_equal(min_along(image, width, axis), ndimage.minimum_filter1d(image, width, axis=axis))
        assert np.array_equal(max_along(grey, width, axis), ndimage.maximum_filter1d(grey, width, axis=axis))
    if width % 2:
        scipys = ndimage.maximum_filter(ndimage.minimum_filter(grey, width, mode="nearest"), width, mode="nearest")
        assert np.array_equal(opening(grey, width), scipys)


def test_ink_under_a_shadow_gets_its_contrast_back():
    paper = np.full((120, 240), 0.9, np.float32)
    paper *= np.interp(np.arange(240), [60, 180], [1.0, 0.4]).astype(np.float32)   # a shadow with a soft edge
    page = paper.copy()
    for left in (40, 160):
        page[40:80, left:left + 8] *= 0.3                  # the same stroke in light and in shadow
    flat = flatten_background(1 - page)
    lit, shaded = flat[45:75, 42:46].mean(), flat[45:75, 162:166].mean()
    assert shaded == pytest.approx(lit, rel=0.15)
    isolated = isolate_ink(flat)
    isolated[40:80, 40:48] = isolated[40:80, 160:168] = 0
    assert isolated.max() == 0                             # nothing but the strokes is left as ink


def test_background_is_removed_and_contrast_stretched():
    ink, _ = mnist_digit(3)
    faded = 0.4 + 0.2 * ink.astype(np.float32) / 255     # grey ground, faint ink
    isolated = isolate_ink(faded)
    assert isolated.max() == pytest.approx(1.0)
    assert (isolated[ink == 0] == 0).all()


def test_blank_images_are_refused():
    with pytest.raises(InputError, match="no digit found") as error:
        isolate_ink(np.full((50, 50), 0.7, np.float32))
    assert error.value.reason == "blank"


def test_crop_scale_and_centre_like_mnist():
    frame = np.zeros((300, 200), np.float32)
    frame[40:240, 150:190] = 1.0                          # a tall bar off to the right
    cropped = crop_to_ink(frame)
    assert cropped.shape == (200, 40)
    fitted = fit_longer_side(cropped, 20)
    assert fitted.shape == (20, 4)                        # aspect ratio kept
    placed = center_by_mass(fitted, 28)
    row, col = centre_of_mass(placed)
    assert abs(row - 13.5) <= 0.5 and abs(col - 13.5) <= 0.5


@pytest.mark.parametrize("make", [as_photo_jpeg, as_canvas_png, as_scan, off_centre_small],
                         ids=["photo", "canvas", "scan", "off-centre"])
def test_whole_pipeline_gives_an_mnist_like_input(make, spec):
    ink, _ = mnist_digit(7)
    prepared = prepare(make(ink), spec)
    assert prepared.tensor.shape == (1, 28, 28) and prepared.tensor.dtype == np.float32
    pixels = prepared.pixels.astype(np.float32)
    rows = np.flatnonzero(pixels.any(axis=1))
    cols = np.flatnonzero(pixels.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (19, 20, 21)
    row, col = centre_of_mass(pixels)
    assert abs(row - 13.5) <= 1 and abs(col - 13.5) <= 1
    assert pixels[:2].sum() == 0 and pixels[-2:].sum() == 0 # the border stays empty, as in MNIST


def test_a_huge_phone_photo_and_a_tiny_thumbnail_work(spec):
    ink, _ = mnist_digit(1)
    huge = Image.fromarray(255 - np.asarray(Image.fromarray(ink).resize((4000, 4000)))).resize((5000, 4000))
    assert prepare(encode(huge.convert("RGB"), "JPEG", quality=80), spec).pixels.max() >= 200
    thumbnail = Image.fromarray(ink).resize((8, 8), Image.Resampling.BOX)
    assert prepare(encode(thumbnail, "PNG"), spec).pixels.max() >= 200


@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 1), (1, 5), (5, 1), (2, 2), (3, 40)])
def test_an_image_a_pixel_or_two_wide_is_refused_as_blank_or_read(size, spec):
    """Too few pixels for a digit is the client's problem, told as such, never a server error."""
    image = Image.new("L", size, 255)
    image.putpixel((0, 0), 0)
    try:
        prepare(encode(image, "PNG"), spec)
    except InputError as error:
        assert error.reason == "blank"


@pytest.mark.parametrize("fmt,mode", [("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("TIFF", "CMYK"),
                                      ("PNG", "LA"), ("PNG", "P")])
def test_formats_and_modes_are_read(fmt, mode, spec):
    ink, _ = mnist_digit(2)
    image = Image.fromarray(255 - ink).resize((112, 112)).convert(mode)
    assert prepare(encode(image, fmt), spec).pixels.max() >= 200


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_wuffs_decodes_eight_bit_pngs_exactly_as_pillow(mode):
    ink, _ = mnist_digit(6)
    image = Image.fromarray(255 - ink).resize((90, 70)).convert(mode)
    if mode == "RGBA":
        image.putalpha(Image.fromarray(ink).resize((90, 70)))
    data = encode(image, "PNG")
    decoded = decode_png(Image.open(io.BytesIO(data)), data)
    assert decoded is not None and decoded.mode == mode
    assert np.array_equal(np.asarray(decoded), np.asarray(Image.open(io.BytesIO(data))))


def png_with_exif_orientation() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6                                      # shown rotated 90 degrees clockwise
    return encode(Image.new("L", (60, 40), 255), "PNG", exif=exif)


@pytest.mark.parametrize("data", [
    encode(Image.new("P", (30, 20)), "PNG"),
    encode(Image.new("LA", (30, 20)), "PNG"),
    encode(Image.new("I;16", (30, 20)), "PNG"),
    encode(Image.new("RGB", (30, 20)), "PNG", transparency=(0, 0, 0)),
    png_with_exif_orientation(),
], ids=["palette", "grey and alpha", "16 bit", "transparency chunk", "EXIF orientation"])
def test_pngs_wuffs_would_read_differently_are_left_to_pillow(data):
    assert decode_png(Image.open(io.BytesIO(data)), data) is None


def test_a_png_whose_checksum_fails_is_refused_as_corrupt():
    ink, _ = mnist_digit(6)
    data = bytearray(encode(Image.fromarray(255 - ink).resize((200, 200)), "PNG"))
    start = data.index(b"IDAT") + 4
    end = start + int.from_bytes(data[start - 8:start - 4], "big")
    data[end - 1] ^= 0x01                               # the Adler-32 of the inflated pixels, the chunk's CRC made to match
    data[end:end + 4] = zlib.crc32(data[start - 4:end]).to_bytes(4, "big")
    assert decode_png(Image.open(io.BytesIO(data)), bytes(data)) is None
    with pytest.raises(InputError, match="truncated or corrupt") as refusal:
        open_image(bytes(data), LIMIT)
    assert refusal.value.reason == "corrupt_image"


def test_a_png_with_an_exif_orientation_is_turned():
    assert open_image(png_with_exif_orientation(), LIMIT).size == (40, 60)


def test_data_urls_are_decoded():
    png = encode(draw_strokes(SEVEN), "PNG")
    import base64
    url = b"data:image/png;base64," + base64.b64encode(png)
    assert body_bytes(url) == png
    assert body_bytes(url.decode()) == png
    with pytest.raises(InputError, match="not an image"):
        body_bytes(b"data:text/plain;base64,aGVsbG8=")


@pytest.mark.parametrize("data,status,reason", [
    (b"", 400, "empty"),
    (b"this is text, not a picture", 415, "not_an_image"),
    (b"%PDF-1.4 fake", 415, "not_an_image"),
])
def test_bad_bodies_get_clear_errors(data, status, reason, spec):
    with pytest.raises(InputError) as error:
        prepare(data, spec)
    assert (STATUS[error.value.reason], error.value.reason) == (status, reason)


def test_too_many_pixels_are_refused_from_the_header(spec):
    big = encode(Image.new("L", (12000, 12000), 255), "PNG")   # 144 megapixels, a few hundred KB
    with pytest.raises(InputError) as error:
        prepare(big, spec)
    assert (STATUS[error.value.reason], error.value.reason) == (413, "too_many_pixels")


@pytest.mark.parametrize("make", [as_photo_jpeg, as_canvas_png], ids=["JPEG", "PNG"])
def test_truncated_image_is_refused(make, spec):
    ink, _ = mnist_digit(4)
    data = make(ink)
    with pytest.raises(InputError) as error:
        prepare(data[:len(data) // 3], spec)
    assert (STATUS[error.value.reason], error.value.reason) == (400, "corrupt_image")
