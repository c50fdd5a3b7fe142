"""Inference engine and renderers, in process: hooks stay put, activations follow the batch."""
import base64
import io
import json

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from digitlens.engine import SECOND_LOOK_SHIFTS, InferenceEngine, shifted
from digitlens.prepare import prepare
from digitlens.render import TOP_COLOUR, ProbabilityChart, png_bytes, render_activation_grid, render_input
from tests.images import mnist_digit, off_centre_small
from training.common import MODEL_DIR, load_model
from training.evaluate import expected_calibration_error
from training.presentations import GARMENT_KINDS, KINDS, OTHER_WRITERS, PAGE_KINDS, presentation_set


def engine_for(name, spec) -> InferenceEngine:
    return InferenceEngine.for_model(load_model(MODEL_DIR / f"{name}.pt", spec), spec, torch.device("cpu"))


@pytest.fixture(scope="module")
def engine(spec):
    return engine_for("mnist", spec)


@pytest.fixture(scope="module")
def fashion_engine(fashion_spec):
    return engine_for("fashion", fashion_spec)


def decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_hooks_are_registered_once_and_activations_are_per_item(engine, spec):
    hooks = engine.hook_count
    assert hooks == len(spec.visualise_layers)
    batch = np.stack([prepare(off_centre_small(mnist_digit(i)[0]), spec).tensor for i in range(5)])
    for _ in range(20):
        result = engine.predict(batch)
    assert engine.hook_count == hooks
    assert result.probabilities.shape == (5, 10)
    assert np.allclose(result.probabilities.sum(1), 1, atol=1e-5)
    for name in spec.visualise_layers:
        assert result.activations[name].shape[0] == 5
    single = engine.predict(batch[2:3])
    assert np.allclose(single.activations["conv1"][0], result.activations["conv1"][2], atol=1e-5)
    plain = engine.predict(batch, with_activations=False)
    assert plain.activations == {}
    assert np.allclose(plain.probabilities, result.probabilities, atol=1e-6)


def test_the_engine_computes_the_trained_network_with_batch_norms_folded(engine, spec):
    trained = load_model(MODEL_DIR / "mnist.pt", spec)
    batch = np.stack([prepare(off_centre_small(mnist_digit(i)[0]), spec).tensor for i in range(8)])
    with torch.inference_mode():
        logits = trained(torch.from_numpy(batch))
    expected = torch.softmax(logits / spec.temperature, dim=1).numpy()
    assert np.allclose(engine.predict(batch).probabilities, expected, atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in engine.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in trained.modules())     # the caller's copy is left alone


def test_shifted_moves_whole_pixels_and_fills_the_uncovered_edge():
    batch = np.zeros((2, 1, 4, 5), np.float32)
    batch[:, 0, 1, 2] = 1.0
    batch[1, 0, 3, 4] = 2.0                                # on the edge: moved out of the frame
    moved = shifted(batch, 1, -1, fill=-0.5)
    assert moved[0, 0, 2, 1] == 1.0 and moved[1, 0, 2, 1] == 1.0
    assert (moved[:, 0, 0, :] == -0.5).all() and (moved[:, 0, :, -1] == -0.5).all()
    assert np.count_nonzero(moved > 0) == 2


def test_a_doubtful_reading_gets_a_second_look_and_a_confident_one_does_not(spec):
    model = load_model(MODEL_DIR / "mnist.pt", spec)
    plain = InferenceEngine(model, spec.visualise_layers, torch.device("cpu"), spec.temperature)
    looking = InferenceEngine.for_model(model, spec, torch.device("cpu"))
    bodies, _ = presentation_set("low-resolution", size=SUBSET)
    batch = np.stack([prepare(body, spec).tensor for body in bodies])
    first, second = plain.predict(batch), looking.predict(batch)
    doubtful = first.probabilities.max(1) < spec.second_look_below
    assert 0 < doubtful.sum() < 0.2 * len(batch)
    assert np.allclose(second.probabilities[~doubtful], first.probabilities[~doubtful], atol=1e-6)
    readings = [np.log(first.probabilities[doubtful])] + [
        np.log(plain.predict(shifted(batch[doubtful], rows, columns, spec.blank_value)).probabilities)
        for rows, columns in SECOND_LOOK_SHIFTS]
    mean = np.exp(np.mean(readings, axis=0))
    assert np.allclose(second.probabilities[doubtful], mean / mean.sum(1, keepdims=True), atol=1e-5)
    assert not np.allclose(second.probabilities[doubtful], first.probabilities[doubtful], atol=1e-3)
    for name in spec.visualise_layers:                      # the charts show the first reading
        assert np.allclose(second.activations[name], first.activations[name], atol=1e-6)


SUBSET = 150        # uploads per kind: a seeded subset of the 1,000 the report uses
PAGE_SUBSET = 60    # of a page kind's 300: each upload is a page of megapixels, a second to make
# The committed model scores 98.8-99.9 % on the full 1,000 of each kind (model/mnist-report.json,
# "served"): at most 4 errors in 150 are allowed. Of the 300 pages of each page kind it reads
# 99.7 % (scans) and 98.3 % (photos of a sheet): at most 2 errors in 60 (58 of 60 photos now).
KINDS_CHECKED = [kind for kind in KINDS if kind != "mnist-png"]
MIN_ACCURACY = 0.97
MIN_PAGE_ACCURACY = 0.96


@pytest.mark.parametrize("kind", KINDS_CHECKED)
def test_presentations_are_recognised_through_prepare(kind, engine, spec):
    """MNIST test digits shown as people and devices send them (training.presentations)."""
    bodies, labels = presentation_set(kind, size=PAGE_SUBSET if kind in PAGE_KINDS else SUBSET)
    batch = np.stack([prepare(body, spec).tensor for body in bodies])
    predicted = engine.predict(batch).probabilities.argmax(1)
    assert (predicted == labels).mean() >= (MIN_PAGE_ACCURACY if kind in PAGE_KINDS else MIN_ACCURACY)


def test_all_10000_test_digits_posted_as_pngs_are_read_as_reported_and_calibrated(engine, spec):
    """What the endpoint answers for MNIST itself: the report's served figure, not the raw-array one,
    with a confidence that means what it says."""
    bodies, labels = presentation_set("mnist-png")
    probabilities = engine.predict(np.stack([prepare(body, spec).tensor for body in bodies])).probabilities
    accuracy = (probabilities.argmax(1) == labels).mean()
    reported = json.loads((MODEL_DIR / "mnist-report.json").read_text())["served"]["mnist-png"]["accuracy"]
    assert accuracy == pytest.approx(reported, abs=3e-4)
    assert expected_calibration_error(torch.from_numpy(probabilities), torch.from_numpy(labels).long()) <= 0.015


# Issue 9 asks for 97 % on other writers' digits; the committed model reads 98.22 % of these
# (model/mnist-report.json, README "Every hand"), 97.05 % while prepare still flattened half of them.
OTHER_WRITERS_FLOOR = 0.97


def test_other_writers_digits_are_read_as_reported_and_calibrated(engine, spec):
    """Every optdigits digit (43 writers who are not MNIST's, 8x8, enlarged) through prepare."""
    bodies, labels = presentation_set(OTHER_WRITERS)
    probabilities = engine.predict(np.stack([prepare(body, spec).tensor for body in bodies])).probabilities
    accuracy = (probabilities.argmax(1) == labels).mean()
    reported = json.loads((MODEL_DIR / "mnist-report.json").read_text())["served"][OTHER_WRITERS]["accuracy"]
    assert len(labels) == 1797 and accuracy == pytest.approx(reported, abs=3e-4)
    assert accuracy >= OTHER_WRITERS_FLOOR
    assert expected_calibration_error(torch.from_numpy(probabilities), torch.from_numpy(labels).long()) <= 0.025


def test_all_10000_fashion_test_images_posted_as_pngs_are_read_as_reported_and_calibrated(fashion_engine, fashion_spec):
    """Issue 11's acceptance: served accuracy on the 10,000 Fashion-MNIST test images >= 93 %."""
    bodies, labels = presentation_set("fashion-png")
    probabilities = fashion_engine.predict(np.stack([prepare(body, fashion_spec).tensor for body in bodies])).probabilities
    accuracy = (probabilities.argmax(1) == labels).mean()
    reported = json.loads((MODEL_DIR / "fashion-report.json").read_text())["served"]["fashion-png"]["accuracy"]
    assert accuracy == pytest.approx(reported, abs=3e-4)
    assert accuracy >= 0.93
    assert expected_calibration_error(torch.from_numpy(probabilities), torch.from_numpy(labels).long()) <= 0.015


# On the full 1,000 of each kind (fashion-report.json): photos 92.0 %, cut-outs 86.9 % (their
# anti-aliased masks lighten dark parts of a product), against 93.3 % for the test set itself.
PRODUCT_FLOORS = {"product-photo": 0.88, "product-cutout": 0.82}


@pytest.mark.parametrize("kind", sorted(PRODUCT_FLOORS))
def test_product_photos_and_cutouts_are_recognised_through_prepare(kind, fashion_engine, fashion_spec):
    """Fashion-MNIST products as a shop photographs them (training.presentations)."""
    assert set(PRODUCT_FLOORS) == set(GARMENT_KINDS) - {"fashion-png"}
    bodies, labels = presentation_set(kind, size=SUBSET)
    batch = np.stack([prepare(body, fashion_spec).tensor for body in bodies])
    assert (fashion_engine.predict(batch).probabilities.argmax(1) == labels).mean() >= PRODUCT_FLOORS[kind]


@pytest.mark.parametrize("shape,palette,mode", [((5, 7), None, "L"), ((5, 7), bytes(range(256)) * 3, "P"),
                                                ((5, 7, 3), None, "RGB")])
def test_png_files_are_written_that_a_decoder_verifies_and_reads_back(shape, palette, mode):
    pixels = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    data = png_bytes(pixels, palette)
    Image.open(io.BytesIO(data)).verify()                 # signature, chunk order and every CRC
    image = Image.open(io.BytesIO(data))
    assert image.mode == mode and image.size == (7, 5)
    assert np.array_equal(np.asarray(image), pixels)
    if palette:
        assert bytes(image.getpalette()) == palette


def test_probability_chart_and_maps_are_pngs_of_the_right_size(engine, spec):
    chart = ProbabilityChart(spec.labels)
    probabilities = np.array([0.01] * 7 + [0.91] + [0.0] * 2)
    first = decode_data_url(chart.render(probabilities))
    second = decode_data_url(chart.render(np.roll(probabilities, 3)))
    assert first.size == second.size == (420, 220)
    top = np.array(matplotlib.colors.to_rgb(TOP_COLOUR)) * 255
    for image, column in ((first, 7), (second, 0)):
        highlighted = np.flatnonzero((np.abs(np.asarray(image.convert("RGB"), float) - top).sum(2) < 3).any(0))
        left, right = chart.columns[column]
        assert highlighted.min() >= left - 1 and highlighted.max() <= right, "the top bar is in its column"
    maps = np.random.default_rng(0).random((32, 28, 28), np.float32)
    grid = decode_data_url(render_activation_grid(maps))
    assert grid.size == (8 * 28 + 7, 4 * 28 + 3)                            # one pixel per value, 1-px gaps
    colours = np.asarray(grid.convert("RGB"), float)
    magma = matplotlib.colormaps["magma"]
    for channel, (row, col) in ((0, (0, 0)), (9, (29, 29 + 27))):
        value = (maps[channel] - maps[channel].min()) / (maps[channel].max() - maps[channel].min())
        local = (row % 29, col % 29)
        assert np.allclose(colours[row, col], np.array(magma(value[local])[:3]) * 255, atol=6)
    assert (colours[28, :] == 255).all()                                   # the gap between tile rows
    small = decode_data_url(render_input(np.arange(784, dtype=np.uint32).reshape(28, 28).astype(np.uint8)))
    assert small.size == (28, 28) and np.asarray(small)[1, 0] == 28
