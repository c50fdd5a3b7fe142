"""The second model through the same handler: POST /predictions/fashion on a real TorchServe,
every accepted input kind, the same response shape and charts, the page's model list."""
import base64
import io
import json
import zipfile

import numpy as np
import pytest
import requests
from PIL import Image

from ops.serve import REPO_ROOT
from tests.conftest import MODELS
from training.presentations import encode, load_test_set, product_cutout, product_photo

OCTET = {"Content-Type": "application/octet-stream"}
RESPONSE_KEYS = {"digit", "label", "confidence", "probabilities", "model", "outlier_score", "outlier", "looks_like_number",
                 "request_id"}


def predict_fashion(server, body, headers=None, **kwargs) -> requests.Response:
    return requests.post(f"{server.inference_url}/predictions/fashion", data=body,
                         headers={**OCTET, **(headers or {})}, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def garment():
    images, labels = load_test_set("fashion-mnist")
    index = int(np.flatnonzero(labels == 1)[0])         # a trouser: unmistakable in any presentation
    return images[index], int(labels[index])


@pytest.mark.parametrize("file_name,label", [("trouser-photo.jpg", "Trouser"), ("sneaker-cutout.png", "Sneaker"),
                                             ("ankle-boot-photo.jpg", "Ankle boot")])
def test_the_committed_product_samples_are_recognised(torchserve, file_name, label, fashion_spec):
    response = predict_fashion(torchserve, (REPO_ROOT / "samples" / file_name).read_bytes(), {"X-Charts": "1"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == RESPONSE_KEYS | {"charts"}
    assert result["label"] == label and fashion_spec.labels[result["digit"]] == label and result["outlier"] is False
    assert result["model"] == {"name": "fashion", "version": "1.0"}
    assert len(result["probabilities"]) == 10 and sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
    charts = result["charts"]
    assert set(charts) == {"probabilities", "activations", "input"}
    assert set(charts["activations"]) == set(fashion_spec.visualise_layers)
    for url in [charts["probabilities"], charts["input"], *charts["activations"].values()]:
        Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).verify()


def accepted_inputs(product: np.ndarray) -> dict[str, tuple[bytes, dict]]:
    """One product in every way the endpoint accepts an image."""
    rng = np.random.default_rng(3)
    on_white = Image.fromarray(255 - product).resize((168, 168), Image.Resampling.BICUBIC)
    png = encode(on_white, "PNG")
    sixteen_bit = Image.fromarray(np.asarray(on_white, np.uint16) * 257)
    return {
        "fashion-mnist png": (encode(Image.fromarray(product), "PNG"), {"Content-Type": "image/png"}),
        "catalogue jpeg": (product_photo(product, rng), {"Content-Type": "image/jpeg"}),
        "cut-out png": (product_cutout(product, rng), {}),
        "gif": (encode(on_white.convert("P"), "GIF"), {}),
        "bmp": (encode(on_white.convert("RGB"), "BMP"), {}),
        "webp": (encode(on_white.convert("RGB"), "WEBP"), {}),
        "cmyk tiff": (encode(on_white.convert("CMYK"), "TIFF"), {}),
        "16-bit png": (encode(sixteen_bit, "PNG"), {}),
        "data url": (b"data:image/png;base64," + base64.b64encode(png), {"Content-Type": "text/plain"}),
    }


def test_every_accepted_input_kind_is_answered_with_the_same_shape(torchserve, garment):
    product, label = garment
    for name, (body, headers) in accepted_inputs(product).items():
        response = predict_fashion(torchserve, body, headers)
        assert response.status_code == 200, (name, response.text)
        assert set(response.json()) == RESPONSE_KEYS and response.json()["digit"] == label, name
    form = requests.post(f"{torchserve.inference_url}/predictions/fashion",
                         files={"data": ("trouser.png", encode(Image.fromarray(product), "PNG"))}, timeout=60)
    assert form.status_code == 200 and form.json()["digit"] == label


def test_bad_input_to_the_second_model_gets_the_same_json_errors(torchserve):
    pids = torchserve.worker_pids("fashion")
    for body, status, reason in [(b"", 400, "empty"), (b"plain text", 415, "not_an_image"),
                                 (encode(Image.new("RGB", (400, 300), (250, 250, 250)), "JPEG"), 422, "blank")]:
        response = predict_fashion(torchserve, body)
        assert response.status_code == status and response.json()["type"] == reason, response.text
    target = requests.post(f"{torchserve.inference_url}/explanations/fashion", data=b"x",
                           headers={**OCTET, "X-Target": "Sandals"}, timeout=60)
    assert target.status_code == 400 and "Sandal" in target.json()["message"]
    assert torchserve.worker_pids("fashion") == pids


def test_the_second_model_explains_by_label(torchserve, garment):
    product, label = garment
    response = requests.post(f"{torchserve.inference_url}/explanations/fashion", data=encode(Image.fromarray(product), "PNG"),
                             headers={**OCTET, "X-Target": "Trouser", "X-Charts": "1"}, timeout=60)
    assert response.status_code == 200, response.text
    explanation = response.json()
    assert explanation["target"] == label and np.asarray(explanation["attributions"]).shape == (28, 28)
    assert explanation["charts"]["attributions"].startswith("data:image/png;base64,")


def archived_file(store, name: str, member: str) -> bytes:
    with zipfile.ZipFile(store / f"{name}-1.0.mar") as archive:
        return archive.read(member)


def test_one_handler_serves_both_models_unchanged(torchserve, model_store):
    handlers = {archived_file(model_store, name, "digit_handler.py") for name in MODELS}
    assert handlers == {(REPO_ROOT / "handler" / "digit_handler.py").read_bytes()}
    described = {}
    for name in MODELS:
        response = requests.get(f"{torchserve.management_url}/models/{name}", params={"customized": "true"}, timeout=30)
        described[name] = response.json()[0]["customizedMetadata"]
    assert described["mnist"]["labels"][0] == "0" and described["fashion"]["labels"][0] == "T-shirt/top"
    assert described["fashion"]["visualised_layers"] == ["conv2", "conv4", "conv6"]


def test_the_catalogue_lists_every_archived_model_for_the_page(model_store):
    catalogue = json.loads((model_store / "models.json").read_text())["models"]
    assert [entry["name"] for entry in catalogue] == list(MODELS)
    fashion = catalogue[1]
    assert fashion["version"] == "1.0" and fashion["preprocess"] == "photo" and fashion["labels"][9] == "Ankle boot"
    assert fashion["title"] and fashion["prompt"] and fashion["input_caption"] and fashion["explanations"]


def test_a_handwritten_digit_sent_to_the_garment_model_is_an_outlier_there(torchserve):
    # Only the drawn seven is caught: its scan scores 0.53 and its phone photo 0.48 against the
    # threshold 0.55. The garment model's scorer is the weaker one (README, Not a digit).
    for name in ("seven-canvas.png",):
        result = predict_fashion(torchserve, (REPO_ROOT / "samples" / name).read_bytes()).json()
        assert result["outlier"] is True, (name, result["outlier_score"])
