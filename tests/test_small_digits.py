"""A small digit on a large page: found on the working copy, read from the upload's own pixels."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlens.prepare import prepare
from digitlens.prepare.artefacts import paint_out_edge_bands
from digitlens.prepare.locate import find_ink
from digitlens.prepare.marks import digit_candidates
from digitlens.prepare.primitives import ink_box
from tests.images import mnist_digit
from tests.test_inference_core import engine_for
from training.presentations import OTHER_WRITERS, encode, enlarge, presentation_set, rubber_stamp, scanned_page, sheet_photo

# Measured on these digits 0-11 at 40 and 60 px: mean |difference| 0.0003 of full scale at most, 0 for most.
SAME_AS_TIGHT_CROP = 0.01


@pytest.fixture(scope="module")
def engine(spec):
    return engine_for("mnist", spec)


def read(body: bytes, engine, spec) -> int:
    return int(engine.predict(prepare(body, spec).tensor[None], with_activations=False).probabilities.argmax())


def test_a_30_px_digit_on_an_a4_page_at_300_dpi_is_read_right(engine, spec):
    """2480x3508 pixels, the ink 30 of them: 0.1 % of the page, 1.7 px on the working copy."""
    rng = np.random.default_rng(30)
    for index in range(10):
        ink, label = mnist_digit(index)
        page, _ = scanned_page(ink, rng, ink_px=30, dpi=300)
        assert page.size == (2480, 3508)
        body = encode(page, "PNG") if index % 2 else encode(page, "JPEG", quality=85)
        assert read(body, engine, spec) == label, index


def test_a_small_scanned_digit_prepares_as_its_tight_crop_does(spec):
    """What the network sees of a digit on a page is what it sees of the same scan cut tight."""
    rng = np.random.default_rng(40)
    for index in range(12):
        ink, _ = mnist_digit(index)
        page, (left, top, right, bottom) = scanned_page(ink, rng, ink_px=(40, 60)[index % 2], dpi=300)
        pad = (right - left) // 10
        tight = page.crop((left - pad, top - pad, right + pad, bottom + pad))
        on_page, alone = (prepare(encode(image, "PNG"), spec).pixels.astype(np.float32) / 255 for image in (page, tight))
        assert np.abs(on_page - alone).mean() <= SAME_AS_TIGHT_CROP, index


@pytest.mark.parametrize("seed", [1, 27, 30, 42, 54, 210, 409])
def test_a_small_digit_in_a_sheet_photo_is_read_where_the_light_falls_off(engine, spec, seed):
    """Phone photos of a sheet, the ink 40-56 px. In the first five the background's opening
    cut the fall-off of light (a crest, a darker corner) and left it as ink; in 210 and 409 the
    polarity was judged against a quadratic trend, whose misfit round the crest stood out more
    than the digit's few dark pixels, so the light was taken for the ink (a four read as 9, a
    two as 1). Each was read as another digit."""
    rng = np.random.default_rng(seed)
    ink, label = mnist_digit(seed % 12)
    assert read(sheet_photo(ink, rng, 40 + seed % 3 * 8), engine, spec) == label


# Other writers' digits that fill the frame, a two's bar along its bottom edge: the background's
# running medians stood on the bar (read as 7 or 1) until a rise that large was taken for ink.
BAR_ALONG_THE_EDGE = [310, 851, 889, 917, 1143, 1211, 1344, 1400, 1403, 1576]


def test_a_digit_that_fills_the_frame_keeps_the_stroke_along_its_edge(engine, spec):
    bodies, labels = presentation_set(OTHER_WRITERS)
    assert [read(bodies[i], engine, spec) for i in BAR_ALONG_THE_EDGE] == [labels[i] for i in BAR_ALONG_THE_EDGE]


def page_with(marks: dict[tuple[int, int], np.ndarray], size=(900, 700)) -> np.ndarray:
    """A light page (greyscale 0-1) with dark marks of the given coverage at their top-left corners."""
    page = np.full((size[1], size[0]), 0.92, np.float32)
    for (x, y), coverage in marks.items():
        page[y:y + coverage.shape[0], x:x + coverage.shape[1]] *= 1 - 0.8 * coverage
    return page


def test_a_stamp_beside_the_digit_is_not_taken_for_it():
    """The stamp is larger and heavier than the digit; its ring encloses its text."""
    digit = enlarge(mnist_digit(0)[0], 84)
    page = page_with({(80, 300): digit, (450, 150): rubber_stamp(np.random.default_rng(1), 320)})
    candidates = digit_candidates(find_ink(page))
    top, left, bottom, right = ink_box(candidates[0])
    assert 300 <= top and bottom <= 384 and 80 <= left and right <= 164
    assert len(candidates) == 1


def test_a_ruled_line_across_the_page_is_not_taken_for_the_digit():
    digit = enlarge(mnist_digit(1)[0], 84)
    line = np.ones((3, 800), np.float32)
    top, left, bottom, right = ink_box(digit_candidates(find_ink(page_with({(300, 200): digit, (50, 500): line})))[0])
    assert 200 <= top and bottom <= 284 and 300 <= left and right <= 384


def test_a_scanner_edge_is_painted_out_and_a_shadow_or_a_stroke_at_the_side_is_not():
    paper = np.full((140, 99), 0.9, np.float32)
    edge = paper.copy()
    edge[:, :3] = 0.25
    assert np.array_equal(paint_out_edge_bands(edge), paper)
    bottom_edge = paper.copy()
    bottom_edge[-4:] = 0.2
    assert np.array_equal(paint_out_edge_bands(bottom_edge), paper)
    shadow = paper * np.minimum(1, np.linspace(0.45, 1.6, 99, dtype=np.float32))[None, :]
    assert paint_out_edge_bands(shadow) is shadow
    stroke = Image.fromarray(np.full((140, 99), 230, np.uint8))
    ImageDraw.Draw(stroke).line([(2, 40), (2, 95)], fill=20, width=5)      # a "1" written against the side
    grey = np.asarray(stroke, np.float32) / 255
    assert paint_out_edge_bands(grey) is grey
