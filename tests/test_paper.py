"""Digits written where people write them: printed boxes, squared and ruled paper, underlines
(digitlens.prepare.lines, training.paper)."""
import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw

from digitlens.prepare import prepare
from digitlens.prepare.errors import InputError
from digitlens.prepare.lines import divider_beside, remove_printed_lines
from digitlens.prepare.segments import Segment
from digitlens.service import ReadingService
from training.common import MODEL_DIR, load_model, prepared_batch, reading_service
from training.evaluate import served_readings
from training.paper import EMPTY_KINDS, HELD_OUT, PAPER_KINDS, number_on_paper, paper_set
from training.presentations import load_test_set

OCTET = {"Content-Type": "application/octet-stream"}
# Read right of each kind's 400 (make evaluate, docs/models.md), less a margin for the set's 100.
READ_RIGHT = {"form-box": 0.93, "squared-paper": 0.95, "ruled-paper": 0.95, "underlined": 0.91}
HELD_OUT_READ_RIGHT = {"form-box": 0.78, "squared-paper": 0.95, "ruled-paper": 0.95, "underlined": 0.78}
FLAGGED_AT_MOST = 0.1       # of the kinds tuned on; the issue asks for 3 %, not reached yet
EMPTY_CAUGHT = 0.9          # the issue asks for every one; not reached yet (docs/models.md)


@pytest.fixture(scope="module")
def service(spec) -> ReadingService:
    return reading_service(load_model(MODEL_DIR / "mnist.pt", spec), spec, "mnist")


def ruled_page(lines_at=(30, 70, 110), side: int = 140) -> np.ndarray:
    page = np.zeros((side, side), np.float32)
    for row in lines_at:
        page[row:row + 2] = 0.6
    return page


def test_a_stroke_crossing_ruled_lines_stays_and_the_lines_go():
    page = ruled_page()
    page[20:120, 66:74] = 1.0                         # a one's stroke, eight pixels wide, across all three lines
    cleaned = remove_printed_lines(page, page)
    assert (cleaned[20:120, 66:74] == 1.0).all()       # where it crosses the lines too
    assert not cleaned[:, :60].any() and not cleaned[:, 80:].any()


def test_a_lone_straight_stroke_is_a_one_not_a_line():
    page = np.zeros((140, 140), np.float32)
    page[5:135, 68:71] = 1.0
    assert (remove_printed_lines(page, page) == page).all()


def test_one_ruled_line_alone_is_no_digit():
    with pytest.raises(InputError) as refusal:
        remove_printed_lines(*[ruled_page(lines_at=(70,))] * 2)
    assert refusal.value.reason == "blank"


def test_paper_with_nothing_written_on_it_is_refused_as_blank():
    grid = ruled_page(range(10, 140, 28))
    grid[:, 10:12] = grid[:, 38:40] = grid[:, 66:68] = grid[:, 94:96] = grid[:, 122:124] = 0.6
    with pytest.raises(InputError) as refusal:
        remove_printed_lines(grid, grid)
    assert refusal.value.reason == "blank"


def drawn(lines: list[tuple[tuple[int, int], tuple[int, int], int]], ring=None) -> np.ndarray:
    page = Image.new("L", (140, 140), 0)
    pen = ImageDraw.Draw(page)
    for start, end, width in lines:
        pen.line([start, end], fill=255, width=width)
    if ring:
        pen.ellipse(ring, outline=255, width=6)
    return np.asarray(page, np.float32) / 255


def test_a_twos_long_base_is_no_underline():
    two = drawn([((90, 40), (40, 100), 6), ((40, 100), (115, 100), 6)])     # its stroke lands on the base's end
    assert (remove_printed_lines(two, two) == two).all()


def test_a_thin_line_a_digit_touches_within_is_an_underline():
    nought = drawn([((20, 103), (120, 103), 2)], ring=(45, 30, 95, 104))
    cleaned = remove_printed_lines(nought, nought)
    assert not cleaned[100:106, :40].any() and not cleaned[100:106, 100:].any()     # the line is gone
    assert cleaned[30:98].sum() == nought[30:98].sum()                             # the nought is whole


def test_a_one_standing_near_an_underlines_end_leaves_the_line_behind():
    one = drawn([((30, 103), (130, 103), 3), ((35, 30), (35, 101), 6)])     # lands within the line's end
    cleaned = remove_printed_lines(one, one)
    assert not cleaned[98:108, 50:].any()                                    # the line is gone
    assert cleaned[30:98].sum() == one[30:98].sum()                         # the one is whole


def test_a_thin_line_a_digit_lands_on_near_its_end_is_an_underline():
    # The nought comes down onto the line within its last few pixels, and the line is not twice
    # as wide as the nought: a printed line still, being a third as thick as the pen's strokes.
    nought = drawn([((40, 103), (92, 103), 2)], ring=(60, 40, 100, 104))
    cleaned = remove_printed_lines(nought, nought)
    assert not cleaned[100:106, :58].any()                                         # the line is gone
    assert cleaned[40:98].sum() == nought[40:98].sum()                             # the nought is whole


def comb_cut_out(digit: list) -> np.ndarray:
    """A closer look at one box of a comb field: its long sides across the image, the divider
    to the next box at its right, and ``digit``'s strokes."""
    return drawn([((0, 15), (139, 15), 2), ((0, 125), (139, 125), 2), ((128, 15), (128, 125), 2), *digit])


def test_a_comb_fields_divider_beside_the_digit_goes_and_the_digit_stays():
    seven = comb_cut_out([((40, 40), (95, 40), 6), ((95, 40), (60, 110), 6)])
    cleaned = remove_printed_lines(seven, seven)
    assert not cleaned[:, 120:].any() and not cleaned[10:20].any() and not cleaned[120:].any()
    assert cleaned[30:118, 30:105].sum() == seven[30:118, 30:105].sum()


def test_a_one_across_its_box_in_a_strip_of_a_comb_field_stays_and_the_dividers_go():
    # Cut out tight round a comb field of four boxes, a one reaching from side to side of its box
    # is as long as a divider; it lies between them, off their pitch (on half of it: not a comb of eight).
    strip = Image.new("L", (140, 60), 0)
    pen = ImageDraw.Draw(strip)
    for row in (17, 46):
        pen.line([(19, row), (116, row)], fill=255, width=2)
    for column in (19, 51, 83, 115):
        pen.line([(column, 17), (column, 46)], fill=255, width=2)
    pen.line([(98, 18), (98, 45)], fill=255, width=3)
    strip = np.asarray(strip, np.float32) / 255
    cleaned = remove_printed_lines(strip, strip)
    assert cleaned[20:44, 96:101].sum() == strip[20:44, 96:101].sum()
    assert not cleaned[:, :90].any() and not cleaned[:, 105:].any()


def test_a_segment_with_no_ink_beside_it_is_no_divider():
    page = np.zeros((140, 140), bool)
    page[15:17] = page[125:127] = True
    lines = [Segment(1, page & (np.arange(140)[:, None] < 70), 0, 140, 15.5, 15.5, 2, (slice(15, 17), slice(0, 140))),
             Segment(1, page & (np.arange(140)[:, None] > 70), 0, 140, 125.5, 125.5, 2, (slice(125, 127), slice(0, 140)))]
    on_a_line = Segment(0, lines[0].mask.copy(), 15, 17, 70.0, 70.0, 2, (slice(15, 17), slice(0, 140)))
    assert not divider_beside(on_a_line, lines, page)       # nothing off the lines at all: no answer, no error


def test_a_one_written_from_one_ruled_line_to_the_next_stays():
    one = drawn([((0, 15), (139, 15), 2), ((0, 125), (139, 125), 2), ((70, 15), (70, 125), 3)])
    cleaned = remove_printed_lines(one, one)
    assert cleaned[20:120, 66:75].sum() == one[20:120, 66:75].sum()
    assert not cleaned[10:20, :60].any()


def test_a_box_whose_opposite_sides_measure_unalike_is_still_a_frame():
    # The left side faint (a pixel), the right one three: the outermost two between the same top
    # and bottom are the box's sides, the seven inside it no side of anything.
    seven = drawn([((30, 20), (110, 20), 2), ((30, 120), (110, 120), 2), ((108, 20), (108, 120), 3),
                   ((50, 45), (90, 45), 6), ((90, 45), (62, 100), 6)])
    seven[20:121, 30] = 1.0
    cleaned = remove_printed_lines(seven, seven)
    assert not cleaned[:, :40].any() and not cleaned[:, 100:].any() and not cleaned[:30].any() and not cleaned[112:].any()
    assert cleaned[38:108, 44:96].sum() == seven[38:108, 44:96].sum()


def test_strokes_of_touching_digits_that_make_a_rectangle_are_no_frame():
    # Unalike sides are a frame's only with paper beside them: here a neighbour touches the left one.
    digits = drawn([((40, 30), (100, 30), 3), ((40, 90), (100, 90), 3), ((40, 30), (40, 90), 3), ((100, 30), (100, 90), 7),
                    ((31, 35), (33, 88), 6)])
    assert (remove_printed_lines(digits, digits) == digits).all()


def test_a_box_whose_side_a_digit_hides_is_still_a_frame():
    # A stroke written over the box's left side makes that side no thin straight segment; the other
    # three, meeting at two corners, their free ends level, ink between them and within, are a frame's.
    seven = drawn([((30, 20), (110, 20), 2), ((30, 120), (110, 120), 2), ((110, 20), (110, 120), 2),
                   ((30, 20), (30, 120), 2), ((31, 26), (31, 114), 11), ((55, 45), (92, 45), 6), ((92, 45), (66, 100), 6)])
    cleaned = remove_printed_lines(seven, seven)
    assert not cleaned[:, 100:].any() and not cleaned[:17, 40:].any() and not cleaned[124:, 40:].any()
    assert cleaned[26:115, 24:100].sum() == seven[26:115, 24:100].sum()


def test_a_four_drawn_open_at_the_top_is_no_frame():
    four = drawn([((40, 85), (100, 85), 7), ((40, 30), (40, 85), 7), ((100, 30), (100, 85), 7), ((100, 85), (125, 125), 7)])
    assert (remove_printed_lines(four, four) == four).all()


def read_right(service: ReadingService, kind: str) -> tuple[float, float]:
    bodies, labels = paper_set(kind, 100)
    batch, refused = prepared_batch(service, bodies)
    probabilities, scores = served_readings(service, batch, refused)
    right = probabilities.nan_to_num(-1).argmax(1).numpy() == labels
    return float(right.mean()), float(np.mean(np.isnan(scores) | (scores > service.spec.outlier_above)))


@pytest.mark.parametrize("kind", PAPER_KINDS)
def test_digits_on_paper_are_read(service, kind):
    accuracy, flagged = read_right(service, kind)
    assert accuracy >= READ_RIGHT[kind], f"{kind}: {accuracy:.1%}"
    assert flagged <= FLAGGED_AT_MOST, f"{kind}: {flagged:.1%} flagged or refused"
    held_out, _ = read_right(service, kind + HELD_OUT)
    assert held_out >= HELD_OUT_READ_RIGHT[kind], f"{kind}{HELD_OUT}: {held_out:.1%}"


def test_pieces_of_lines_left_on_an_empty_squared_page_are_no_digit(spec):
    bodies, _ = paper_set("empty-grid", 100)
    for index in (0, 26, 27, 79, 91):       # each a one or a bar to the network before: a line's end, a sliver
        with pytest.raises(InputError, match="no digit found"):
            prepare(bodies[index], spec)


def test_grid_lines_running_through_a_closer_look_are_no_digit(spec):
    bodies, _ = paper_set("empty-grid", 100)
    for index in (8, 67):       # a crossing of the grid, cut out too small to look for print in, read as a four before
        with pytest.raises(InputError, match="no digit found"):
            prepare(bodies[index], spec)


def test_ruled_paper_whose_working_copy_holds_only_print_is_refused(spec):
    bodies, _ = paper_set("empty-ruled", 100)
    with pytest.raises(InputError, match="only printed lines"):     # a piece of a line, seen larger, read as a one
        prepare(bodies[29], spec)


def test_a_piece_of_a_line_alone_on_a_working_copy_print_was_taken_from_is_no_digit(spec):
    bodies, _ = paper_set("empty-box", 100)
    with pytest.raises(InputError, match="only printed lines"):     # a side's piece a pixel thin, read as a one
        prepare(bodies[43], spec)


def test_a_speck_left_by_the_lines_no_closer_look_confirms_is_no_digit(spec):
    bodies, _ = paper_set("empty-grid", 100)
    with pytest.raises(InputError, match="only printed lines"):     # a grid crossing's remnant, read as a one
        prepare(bodies[85], spec)


def test_a_level_bar_alone_on_ruled_paper_is_no_digit(spec):
    bodies, _ = paper_set("empty-ruled", 100)
    with pytest.raises(InputError, match="only printed lines"):     # a piece of a ruled line none was found beside
        prepare(bodies[92], spec)


@pytest.mark.parametrize("kind", EMPTY_KINDS)
def test_empty_forms_are_refused_or_flagged(service, kind):
    _, caught = read_right(service, kind)
    assert caught >= EMPTY_CAUGHT, f"{kind}: {caught:.1%} caught"


@pytest.mark.parametrize("comb, least", [(True, 0.65), (False, 0.4)])
def test_a_number_in_a_comb_field_or_on_ruled_paper_is_read_with_a_box_per_digit(service, comb, least):
    images, labels = load_test_set("mnist")
    rng = np.random.default_rng(5)
    exact = 0
    for _ in range(20):
        chosen = rng.choice(len(images), int(rng.integers(2, 6)), replace=False)
        body, _ = number_on_paper(list(images[chosen]), rng, comb)
        status, answer = service.answer([(body, {"X-Read": "number"})])[0]
        assert status == 200, answer
        if answer["number"] == "".join(str(label) for label in labels[chosen]):
            exact += 1
            lefts = [digit["box"][0] for digit in answer["digits"]]
            assert len(answer["digits"]) == len(chosen) and lefts == sorted(lefts)
    assert exact / 20 >= least, f"{exact} of 20 read exactly"


def test_a_digit_in_a_box_is_answered_over_http_as_the_service_reads_it(torchserve, service):
    bodies, _ = paper_set("form-box", 100)
    for body in bodies[:4]:
        served = requests.post(f"{torchserve.inference_url}/predictions/mnist", data=body, headers=OCTET, timeout=60)
        assert served.status_code == 200, served.text
        status, answer = service.answer([(body, {})])[0]
        assert (served.json()["digit"], served.json()["outlier"]) == (answer["digit"], answer["outlier"])
