"""Numbers whose digits touch: the string reader's decoding, the cuts, its training, and the
served answers (over real TorchServe) on touching numbers never seen."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from digitlens.prepare import cuts
from digitlens.prepare.cuts import pieces_between
from digitlens.strings import StringReader, is_several, read_columns
from tests.test_numbers import HELD_OUT_SEED, read, read_exactly
from training import strings
from training.numbers import HELD_OUT_SETS, number_set

SERVED = {                      # set -> (numbers of 2-5 digits over HTTP, fewest read exactly); these samples read
    "touching-number-canvas": (40, 0.85),           # 36 of 40
    "touching-number-brush": (40, 0.8),             # held out: 34
    "touching-narrow-number-canvas": (40, 0.85),    # held out: 36
    "touching-number-photo": (15, 0.8),             # 15
    "close-number-canvas": (40, 0.95),              # 40
}


def columns(*labels: int) -> np.ndarray:
    """(11, columns) log-probabilities whose likeliest class in each column is ``labels``' entry."""
    log_probabilities = np.full((11, len(labels)), np.log(0.01))
    log_probabilities[list(labels), np.arange(len(labels))] = np.log(0.9)
    return log_probabilities


def test_the_string_reader_merges_repeats_and_parts_a_digit_from_itself_at_a_blank():
    reading = read_columns(columns(0, 2, 2, 0, 2, 8, 8, 0))       # class k + 1 is digit k; 0 is blank
    assert reading.digits == (1, 1, 7)
    assert reading.spans == ((2, 6), (8, 10), (10, 14))          # strip columns: two for each of the reader's
    assert reading.probabilities.shape == (3, 10) and np.allclose(reading.probabilities.sum(1), 1)
    assert reading.probabilities[2].argmax() == 7
    assert read_columns(columns(0, 0, 0)).digits == ()


def test_a_run_is_several_digits_only_where_the_reader_is_sure_of_the_gap_between_them():
    clear = read_columns(columns(0, 1, 1, 0, 0, 1, 1, 0))          # two zeros, two blank columns between
    doubtful = columns(0, 1, 1, 0, 1, 1, 0)
    doubtful[0, 3], doubtful[1, 3] = np.log(0.5), np.log(0.41)      # a broad 0: its middle column hardly blank
    broad = read_columns(doubtful)
    assert clear.digits == broad.digits == (0, 0)                    # the likeliest columns spell "00" in both
    assert clear.odds > 4 and is_several(clear)
    assert abs(broad.odds) < 1 and not is_several(broad)            # a single 0 is about as likely
    assert read_columns(columns(0, 1, 1, 1, 0)).odds == 0 and not is_several(read_columns(columns(0, 1, 1, 1, 0)))


def test_a_cut_parts_a_ring_from_the_stroke_it_touches_and_keeps_each_whole():
    ink = np.zeros((60, 70), np.float32)
    rows, cols = np.mgrid[0:60, 0:70]
    ring = np.abs(np.hypot(rows - 30, cols - 22) - 18) < 3
    bar = (np.abs(cols - 45) < 3) & (rows > 8) & (rows < 56)
    ink[ring | bar] = 1.0
    assert ndimage.label(ink > 0, np.ones((3, 3)))[1] == 1         # they touch: one mark
    left, right = pieces_between(ink, [(30.0, 45.0)])      # where a reader saw the ring, and the stroke
    assert (left > 0).sum() >= 0.95 * ring.sum() and (right > 0).sum() >= 0.8 * bar.sum()
    assert not (left > 0)[bar & ~ring].any() and (right > 0)[ring & ~bar].sum() <= 0.05 * ring.sum()


def test_a_cut_leaves_a_leaning_one_some_ink_where_the_reader_read_it_at_its_left_edge():
    rows, columns = np.mgrid[0:48, 0:40]
    ink = np.zeros((48, 40), np.float32)
    for left in (0, 5):                                     # two ones leaning right, touching
        ink[(np.abs(columns - left - 3 - 0.2 * (47 - rows)) <= 3) & (rows >= 2) & (rows < 46)] = 1.0
    seven = (np.abs(columns - 34 + 0.35 * (rows - 2)) < 2.5) & (rows >= 2) & (rows < 46)
    ink[2:6, 12:34] = ink[seven] = 1.0
    ink = ink[:, :np.flatnonzero(ink.max(0))[-1] + 1]
    pieces = pieces_between(ink, [(0.0, 5.0), (9.0, 17.0)])  # the reader's columns: left of the first one's middle
    assert all(piece.sum() >= cuts.LEAST_PIECE * ink.sum() / 3 for piece in pieces)
    assert (pieces[2] > 0)[(seven & (rows > 30))[:, :ink.shape[1]]].all()


def test_a_short_string_reader_training_run_writes_weights_the_service_loads(tmp_path):
    assert strings.main(["--strips", "256", "--epochs", "1", "--threads", "1", "--out", str(tmp_path)]) == 0
    reader = StringReader.load(tmp_path / "mnist-strings.pt", torch.device("cpu"))
    strip, _ = strings.make_strip(*strings.training_digits(), np.asarray([0]), np.random.default_rng(0))
    assert isinstance(reader.read([strip])[0].digits, tuple)
    assert (tmp_path / "mnist-strings-report.json").exists()


@pytest.mark.parametrize("kind", list(SERVED))
def test_touching_numbers_never_seen_are_read_exactly_over_http(torchserve, kind):
    size, floor = SERVED[kind]
    made = number_set(kind, size, seed=HELD_OUT_SEED, lengths=(2, 5))
    exact = read_exactly(torchserve, made)
    assert exact / len(made) >= floor, f"{kind}{' (held out)' if kind in HELD_OUT_SETS else ''}: {exact} of {len(made)}"


def test_a_split_number_says_when_the_network_reads_its_digits_otherwise(torchserve):
    """Where the digit network reads a split digit otherwise than the string reader, the answer
    names that reading as the alternative and is less sure than its digits' product."""
    seen = 0
    for body, _, _ in number_set("touching-number-canvas", 25, seed=HELD_OUT_SEED, lengths=(3, 5)):
        answer = read(torchserve, body).json()
        product = math.prod(digit["confidence"] for digit in answer["digits"])
        if "alternative" in answer:
            seen += 1
            assert answer["alternative"]["number"] != answer["number"]
            assert len(answer["alternative"]["number"]) == len(answer["number"])
            assert answer["confidence"] < product
        else:
            assert answer["confidence"] == pytest.approx(product, abs=2e-6)
    assert seen, "no split number was in doubt: the test tried nothing"


def test_each_digit_of_a_touching_number_has_its_own_charts(torchserve):
    body, truth, _ = number_set("touching-number-canvas", 1, seed=HELD_OUT_SEED, lengths=(3, 3))[0]
    answer = read(torchserve, body, {"X-Charts": "1"}).json()
    assert len(answer["digits"]) == 3
    for digit in answer["digits"]:
        assert set(digit["charts"]) == {"probabilities", "activations", "input"}
        assert digit["probabilities"][digit["digit"]] == digit["confidence"]
