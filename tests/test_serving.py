"""A real TorchServe from the built .mar, real HTTP, real images of every accepted kind."""
import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from ops.serve import REPO_ROOT
from tests.images import (SEVEN, STAR, as_canvas_png, as_photo_jpeg, bad_inputs, draw_strokes, encode, mnist_digit,
                          on_paper)
from tests.traffic import metric_total

OCTET = {"Content-Type": "application/octet-stream"}


def predict(server, body: bytes, headers=None, **kwargs) -> requests.Response:
    return requests.post(f"{server.inference_url}/predictions/mnist", data=body,
                         headers={**OCTET, **(headers or {})}, timeout=60, **kwargs)


SAMPLES = {  # the committed samples a new user would try first (see README)
    "photo": ("seven-photo.jpg", "image/jpeg"),
    "canvas": ("seven-canvas.png", "image/png"),
    "scan": ("seven-scan.png", "image/png"),
}


@pytest.mark.parametrize("kind", ["photo", "canvas", "scan"])
def test_a_seven_is_a_seven_however_it_was_made(torchserve, kind):
    file_name, content_type = SAMPLES[kind]
    body = (REPO_ROOT / "samples" / file_name).read_bytes()
    for headers in (OCTET, {"Content-Type": content_type}):
        response = predict(torchserve, body, headers)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["digit"] == 7, result
        assert result["model"] == {"name": "mnist", "version": "1.0"}
        assert sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert result["confidence"] == max(result["probabilities"])


def test_multipart_form_and_data_url_bodies(torchserve):
    png = encode(draw_strokes(SEVEN), "PNG")
    form = requests.post(f"{torchserve.inference_url}/predictions/mnist", files={"data": ("seven.png", png)}, timeout=60)
    assert form.status_code == 200 and form.json()["digit"] == 7
    url = b"data:image/png;base64," + base64.b64encode(png)
    text = predict(torchserve, url, {"Content-Type": "text/plain"})
    assert text.status_code == 200 and text.json()["digit"] == 7


@pytest.mark.parametrize("fmt,mode", [("PNG", "L"), ("PNG", "RGBA"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"),
                                      ("WEBP", "RGB"), ("TIFF", "CMYK"), ("PNG", "I;16")])
def test_every_accepted_format_is_predicted(torchserve, fmt, mode):
    ink, label = mnist_digit(11)
    image = Image.fromarray(255 - ink).resize((140, 140))
    image = Image.fromarray(np.asarray(image, np.uint16) * 257) if mode == "I;16" else image.convert(mode)
    response = predict(torchserve, encode(image, fmt))
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == label


def test_charts_come_with_the_header(torchserve, spec):
    body = as_canvas_png(mnist_digit(0)[0])
    plain = predict(torchserve, body).json()
    assert "charts" not in plain
    charted = predict(torchserve, body, {"X-Charts": "1"}).json()
    charts = charted["charts"]
    assert set(charts["activations"]) == set(spec.visualise_layers)
    for url in [charts["probabilities"], charts["input"], *charts["activations"].values()]:
        assert url.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).verify()
    model_input = Image.open(io.BytesIO(base64.b64decode(charts["input"].split(",", 1)[1])))
    assert model_input.size == (28, 28)                  # one pixel per input pixel; the page enlarges it


def test_concurrent_requests_are_all_answered_correctly(torchserve):
    indices = list(range(100, 164))
    bodies = [as_photo_jpeg(mnist_digit(i)[0], seed=i) for i in indices]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda body: predict(torchserve, body), bodies))
    assert all(r.status_code == 200 for r in responses)
    correct = sum(r.json()["digit"] == mnist_digit(i)[1] for r, i in zip(responses, indices))
    assert correct >= 62


@pytest.mark.parametrize("name", list(bad_inputs()))
def test_bad_input_gets_a_json_4xx_and_the_worker_survives(torchserve, name):
    body, status, reason = bad_inputs()[name]
    pids = torchserve.worker_pids("mnist")
    response = predict(torchserve, body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["type"] == reason and error["message"]
    assert torchserve.worker_pids("mnist") == pids
    assert predict(torchserve, encode(draw_strokes(SEVEN), "PNG")).json()["digit"] == 7


def test_a_body_over_the_request_limit_is_refused(torchserve):
    response = predict(torchserve, b"\xff\xd8" + bytes(17 * 1024 * 1024))
    assert response.status_code == 413


def test_a_12_megabyte_24_megapixel_photo_is_accepted(torchserve):
    rng = np.random.default_rng(0)
    ink = np.asarray(draw_strokes(SEVEN, ink=(255, 255, 255, 255), ground=(0, 0, 0, 255)).convert("L"))
    photo = np.asarray(on_paper(ink, size=(6000, 4000)), dtype=np.int16)
    noisy = np.clip(photo + rng.integers(-20, 21, photo.shape), 0, 255).astype(np.uint8)  # sensor grain
    body = encode(Image.fromarray(noisy), "JPEG", quality=94)
    assert 8 * 1024 * 1024 < len(body) < 16 * 1024 * 1024
    response = predict(torchserve, body)
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 7


def test_a_mixed_batch_answers_each_request_on_its_own(torchserve):
    good = encode(draw_strokes(SEVEN), "PNG")
    bodies = [good, b"not an image"] * 8
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda body: predict(torchserve, body), bodies))
    assert [r.status_code for r in responses] == [200, 415] * 8
    assert all(r.json()["digit"] == 7 for r in responses[::2])


def handler_description(server) -> dict:
    response = requests.get(f"{server.management_url}/models/mnist", params={"customized": "true"}, timeout=30)
    response.raise_for_status()
    return response.json()[0]["customizedMetadata"]


def test_every_answer_says_whether_it_is_an_outlier_and_a_drawn_star_is_one(torchserve, spec):
    """A seven and a star, each as a prediction and as an explanation; the star's closest
    digit is still named, with its probabilities, so clients that read only those keep working."""
    seven, star = encode(draw_strokes(SEVEN), "PNG"), encode(draw_strokes(STAR), "PNG")
    for path in ("predictions", "explanations"):
        answers = [requests.post(f"{torchserve.inference_url}/{path}/mnist", data=body, headers=OCTET, timeout=60).json()
                   for body in (seven, star)]
        for answer in answers:
            assert 0 <= answer["outlier_score"] <= 1 and isinstance(answer["outlier"], bool)
            assert answer["label"] in spec.labels and len(answer["probabilities"]) == 10
        assert answers[0]["outlier"] is False and answers[0]["label"] == "7"
        assert answers[1]["outlier"] is True and answers[1]["outlier_score"] > spec.outlier_above


def test_outliers_are_counted_apart_from_the_digits(torchserve):
    outliers, digits = 'Outliers{ModelName="mnist"', "PredictionsPerDigit{"
    before = metric_total(torchserve, outliers), metric_total(torchserve, digits)
    for _ in range(3):
        assert predict(torchserve, encode(draw_strokes(STAR), "PNG")).json()["outlier"]
    assert metric_total(torchserve, outliers) - before[0] == 3
    assert metric_total(torchserve, digits) == before[1]


def test_custom_metrics_reach_prometheus(torchserve):
    predict(torchserve, encode(draw_strokes(SEVEN), "PNG"), {"X-Charts": "1"})
    predict(torchserve, b"nope")
    text = requests.get(f"{torchserve.metrics_url}/metrics", timeout=10).text
    assert 'PredictionsPerDigit{Digit="7",ModelName="mnist"' in text
    assert 'RejectedInputs{Reason="not_an_image",ModelName="mnist"' in text
    assert "PreprocessTime{" in text and "RenderTime{" in text
    assert 'ts_inference_requests_total{model_name="mnist"' in text
