"""`POST /explanations/mnist` on a real TorchServe: the contract, faithfulness, completeness, mixed batches."""
import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from digitlens.engine import InferenceEngine
from digitlens.explain import Explainer
from ops.serve import REPO_ROOT
from tests.images import as_canvas_png, bad_inputs, mnist_digit
from training.common import MODEL_DIR, load_model

OCTET = {"Content-Type": "application/octet-stream"}
SEVEN = (REPO_ROOT / "samples" / "seven-canvas.png").read_bytes()
DELETION_DIGITS = range(9000, 9120)     # test digits no other test, and no tuning, looked at
DELETED_SHARE = 0.10
# Measured with the committed model over these 120 digits: deleting the most-attributed 10 % of
# ink lowers the explained class's probability by 0.194 on average, a random 10 % by 0.038 (5.1x).
MIN_DELETION_RATIO = 4.0
MIN_TOP_DELETION = 0.16


def explain(server, body: bytes, headers=None) -> requests.Response:
    return requests.post(f"{server.inference_url}/explanations/mnist", data=body,
                         headers={**OCTET, **(headers or {})}, timeout=60)


@pytest.fixture(scope="module")
def engine(spec):
    return InferenceEngine.for_model(load_model(MODEL_DIR / "mnist.pt", spec), spec, torch.device("cpu"))


def test_an_explanation_answers_the_contract(torchserve, spec):
    response = explain(torchserve, SEVEN)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["digit"] == 7 and result["target"] == 7
    assert result["method"] == "integrated_gradients"
    assert sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
    pixels, attributions = np.array(result["input"]), np.array(result["attributions"])
    assert pixels.shape == attributions.shape == (28, 28)
    assert pixels.dtype.kind == "i" and 0 <= pixels.min() and pixels.max() == 255
    assert attributions.dtype.kind == "f" and attributions.max() > 0
    assert isinstance(result["convergence_delta"], float)
    assert "charts" not in result

    charted = explain(torchserve, SEVEN, {"X-Charts": "1", "X-Target": "1"}).json()
    assert charted["target"] == 1 and charted["digit"] == 7
    overlay = Image.open(io.BytesIO(base64.b64decode(charted["charts"]["attributions"].split(",", 1)[1])))
    assert overlay.size == (28, 28) and overlay.mode == "RGB"
    assert not np.allclose(np.array(charted["attributions"]), attributions)


@pytest.mark.parametrize("target", ["10", "seven", "-1"])
def test_an_unknown_target_is_a_clear_400(torchserve, target):
    response = explain(torchserve, SEVEN, {"X-Target": target})
    assert response.status_code == 400
    assert response.json()["type"] == "bad_target" and "labels" in response.json()["message"]


@pytest.mark.parametrize("name", ["text", "truncated png", "blank page"])
def test_bad_input_gets_the_same_4xx_as_a_prediction(torchserve, name):
    body, status, reason = bad_inputs()[name]
    response = explain(torchserve, body)
    assert response.status_code == status and response.json()["type"] == reason


def logits(engine, pixels: np.ndarray, spec) -> np.ndarray:
    batch = spec.normalise(pixels.astype(np.float32) / 255)[:, None].astype(np.float32)
    with torch.inference_mode():
        return engine.model(torch.from_numpy(batch)).numpy()


def test_attributions_add_up_to_the_logit_difference(torchserve, engine, spec):
    """Completeness: sum(attributions) = logit(input) - logit(blank), up to the stated delta."""
    for index in range(9000, 9010):
        result = explain(torchserve, as_canvas_png(mnist_digit(index)[0])).json()
        pixels, target = np.array(result["input"]), result["target"]
        input_logits, blank_logits = logits(engine, np.stack([pixels, np.zeros_like(pixels)]), spec)
        difference = input_logits[target] - blank_logits[target]
        total = float(np.sum(result["attributions"]))
        assert total - difference == pytest.approx(result["convergence_delta"], abs=2e-2)   # "input" is rounded to uint8
        assert abs(result["convergence_delta"]) <= 0.15 * abs(difference)   # the explainer refines any image over 0.1


def test_deleting_the_most_attributed_ink_hurts_far_more_than_deleting_random_ink(torchserve, engine, spec):
    rng = np.random.default_rng(0)
    top_drops, random_drops = [], []
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: explain(torchserve, as_canvas_png(mnist_digit(i)[0])).json(), DELETION_DIGITS))
    for result in results:
        pixels, target = np.array(result["input"]).ravel(), result["target"]
        ink = np.flatnonzero(pixels)
        count = max(1, round(DELETED_SHARE * ink.size))
        most = ink[np.argsort(-np.array(result["attributions"]).ravel()[ink])[:count]]
        candidates = [pixels.copy() for _ in range(4)]
        candidates[0][most] = 0
        for random_copy in candidates[1:]:
            random_copy[rng.choice(ink, count, replace=False)] = 0
        probabilities = torch.softmax(torch.from_numpy(logits(engine, np.stack([pixels, *candidates]).reshape(-1, 28, 28),
                                                              spec)) / spec.temperature, 1)[:, target].numpy()
        assert probabilities[0] == pytest.approx(result["probabilities"][target], abs=5e-3)  # served = local model
        top_drops.append(probabilities[0] - probabilities[1])
        random_drops.append(probabilities[0] - probabilities[2:].mean())
    top, random = float(np.mean(top_drops)), float(np.mean(random_drops))
    assert top >= MIN_TOP_DELETION and top >= MIN_DELETION_RATIO * max(random, 1e-6), f"top {top:.3f} vs random {random:.3f}"


def test_a_batch_mixing_predictions_and_explanations_answers_each_as_asked(torchserve):
    def send(kind: str) -> requests.Response:
        return requests.post(f"{torchserve.inference_url}/{kind}/mnist", data=SEVEN, headers=OCTET, timeout=60)

    kinds = ["explanations", "predictions"] * 8
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(send, kinds))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    for kind, response in zip(kinds, responses):
        result = response.json()
        assert result["digit"] == 7
        assert ("attributions" in result) == (kind == "explanations")


def test_the_explainers_copy_of_the_network_carries_no_hook_of_the_serving_copy(spec):
    """The serving engine hooks its layers and, for the outlier score, the last layer's input (a
    pre-hook tied to the engine): a copy made from it for Integrated Gradients must run neither."""
    engine = InferenceEngine.for_model(load_model(MODEL_DIR / "mnist.pt", spec), spec, torch.device("cpu"), MODEL_DIR)
    assert engine.hook_count == len(spec.visualise_layers) + 1
    explainer = Explainer(engine.model, spec.blank_value, spec.explain_steps, torch.device("cpu"))
    assert [module for module in explainer.model.modules() if module._forward_hooks or module._forward_pre_hooks] == []
    assert engine.hook_count == len(spec.visualise_layers) + 1
