"""Inference engine and renderers, in process: hooks stay put, activations follow the batch."""
import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from digitlens.engine import InferenceEngine
from digitlens.preprocess import prepare
from digitlens.render import ProbabilityChart, render_activation_grid, render_input
from tests.images import (as_canvas_png, as_photo_jpeg, as_scan, as_shadowed_photo_jpeg, mnist_digit,
                          off_centre_small)
from training.evaluate import MODEL_DIR, load_model


@pytest.fixture(scope="module")
def engine(spec):
    return InferenceEngine(load_model(MODEL_DIR / "mnist.pt", spec), spec.visualise_layers, torch.device("cpu"))


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


@pytest.mark.parametrize("make", [as_photo_jpeg, as_shadowed_photo_jpeg, as_canvas_png, as_scan, off_centre_small],
                         ids=["photo", "shadowed-photo", "canvas", "scan", "off-centre"])
def test_real_world_presentations_are_recognised_like_mnist(make, engine, spec):
    """MNIST test digits 5000-5199 shown as people send them: accuracy near the test-set figure."""
    indices = range(5000, 5200)
    batch = np.stack([prepare(make(mnist_digit(i)[0]), spec).tensor for i in indices])
    predicted = engine.predict(batch).probabilities.argmax(1)
    truth = np.array([mnist_digit(i)[1] for i in indices])
    assert (predicted == truth).mean() >= 0.98


def test_probability_chart_and_maps_are_pngs_of_the_right_size(engine, spec):
    chart = ProbabilityChart(spec.labels)
    probabilities = np.array([0.01] * 7 + [0.91] + [0.0] * 2)
    first = decode_data_url(chart.render(probabilities))
    second = decode_data_url(chart.render(np.roll(probabilities, 3)))
    assert first.size == second.size == (420, 220)
    assert np.asarray(first).tobytes() != np.asarray(second).tobytes()     # the bars really moved
    grid = decode_data_url(render_activation_grid(np.random.default_rng(0).random((32, 28, 28), np.float32)))
    assert grid.size == (8 * 28 + 7 * 2, 4 * 28 + 3 * 2)
    big = decode_data_url(render_input(np.zeros((28, 28), np.uint8)))
    assert big.size == (224, 224)
