"""The reading service in process: what an answer is, without a server (milliseconds a test).
The HTTP tests check that TorchServe delivers these same answers."""
import dataclasses
import math

import numpy as np
import pytest

from digitlens.prepare import REASONS
from digitlens.service import REQUEST_REASONS, STATUS, ReadingService, tally
from tests.contract import check_service_answer
from tests.images import SEVEN, STAR, bad_inputs, draw_strokes, encode
from training.common import MODEL_DIR, load_model, reading_service
from training.presentations import FORTY_TWO

CHARTS = {"X-Charts": "1"}
EXPLAIN = {"explain": "True"}
NUMBER = {"X-Read": "number"}


@pytest.fixture(scope="module")
def service(spec) -> ReadingService:
    return reading_service(load_model(MODEL_DIR / "mnist.pt", spec), spec, "mnist")


@pytest.fixture(scope="module")
def seven() -> bytes:
    return encode(draw_strokes(SEVEN), "PNG")


def answer(service, body, headers=None) -> tuple[int, dict]:
    """The service's answer, checked against the API's contract as the handler would send it."""
    status, result = service.answer([(body, headers)])[0]
    path = "/explanations/mnist" if (headers or {}).get("explain") == "True" else "/predictions/mnist"
    check_service_answer(path, status, result)
    return status, result


def test_every_refusal_reason_has_a_4xx_status():
    assert set(STATUS) == set(REASONS) | set(REQUEST_REASONS)
    assert all(400 <= status < 500 for status in STATUS.values())


def test_a_prediction_answers_the_contract(service, seven, spec):
    status, result = answer(service, seven)
    assert status == 200
    assert (result["digit"], result["label"]) == (7, "7")
    assert len(result["probabilities"]) == len(spec.labels) and math.isclose(sum(result["probabilities"]), 1, abs_tol=1e-4)
    assert result["confidence"] == max(result["probabilities"])
    assert result["model"] == {"name": "mnist", "version": None}
    assert result["outlier"] is False and 0 <= result["outlier_score"] <= spec.outlier_above
    assert result["looks_like_number"] is False and "charts" not in result and "attributions" not in result


def test_charts_come_only_when_asked(service, seven, spec):
    _, charted = answer(service, seven, CHARTS)
    assert set(charted["charts"]) == {"probabilities", "activations", "input"}
    assert set(charted["charts"]["activations"]) == set(spec.visualise_layers)
    assert all(png.startswith("data:image/png;base64,") for png in
               (charted["charts"]["probabilities"], charted["charts"]["input"]))


def test_a_drawn_star_is_flagged_as_an_outlier_with_its_closest_digit_named(service, spec):
    status, result = answer(service, encode(draw_strokes(STAR), "PNG"))
    assert status == 200 and result["outlier"] is True and result["outlier_score"] > spec.outlier_above
    assert result["label"] in spec.labels


def test_an_explanation_explains_the_digit_read_unless_another_is_named(service, seven):
    _, explained = answer(service, seven, EXPLAIN)
    assert explained["target"] == explained["digit"] == 7
    assert np.asarray(explained["attributions"]).shape == (28, 28) == np.asarray(explained["input"]).shape
    _, of_one = answer(service, seven, {**EXPLAIN, "X-Target": "1"})
    assert of_one["target"] == 1 and of_one["digit"] == 7
    assert of_one["attributions"] != explained["attributions"]


def test_a_numbers_confidence_is_the_product_of_its_digits(service):
    status, result = answer(service, encode(draw_strokes(FORTY_TWO), "PNG"), NUMBER)
    assert status == 200 and result["number"] == "42"
    assert result["confidence"] == pytest.approx(math.prod(digit["confidence"] for digit in result["digits"]), abs=1e-6)
    assert [len(digit["box"]) for digit in result["digits"]] == [4, 4] and "model" not in result["digits"][0]


@pytest.mark.parametrize("name", list(bad_inputs()))
def test_bad_uploads_are_refused_with_their_status_and_type(service, name):
    body, status, reason = bad_inputs()[name]
    got, result = answer(service, body)
    assert (got, result["code"], result["type"]) == (status, status, reason) and result["message"]


@pytest.mark.parametrize("headers, reason", [
    ({"X-Read": "everything"}, "bad_read"),
    ({**EXPLAIN, **NUMBER}, "explain_number"),
    ({**EXPLAIN, "X-Target": "seven"}, "bad_target"),
    ({**EXPLAIN, "X-Target": "10"}, "bad_target"),
])
def test_what_a_request_asks_that_cannot_be_done_is_refused(service, seven, headers, reason):
    status, result = answer(service, seven, headers)
    assert (status, result["type"]) == (STATUS[reason], reason) and result["message"]


def test_a_model_without_explanations_or_numbers_refuses_them(service, seven, fashion_spec):
    plain = dataclasses.replace(service.spec, explain_methods=())
    quiet = ReadingService(plain, load_model(MODEL_DIR / "mnist.pt", plain), service.device, service.model_info)
    assert answer(quiet, seven, EXPLAIN)[1]["type"] == "no_explanations"
    garments = reading_service(load_model(MODEL_DIR / "fashion.pt", fashion_spec), fashion_spec, "fashion")
    assert answer(garments, seven, NUMBER)[1]["type"] == "no_numbers"


def test_a_batch_mixing_readings_numbers_explanations_and_refusals_answers_each_as_asked(service, seven):
    number = encode(draw_strokes(FORTY_TWO), "PNG")
    requests = [(seven, None), (b"not an image", None), (number, NUMBER), (seven, EXPLAIN), (seven, CHARTS)]
    answers = service.answer(requests)
    assert [status for status, _ in answers] == [200, 415, 200, 200, 200]
    assert answers[0][1]["digit"] == 7 and answers[2][1]["number"] == "42"
    assert "attributions" in answers[3][1] and "charts" in answers[4][1] and "charts" not in answers[3][1]
    one_by_one = [answer(service, body, headers) for body, headers in requests]
    assert [a[1].get("probabilities") for a in answers] == [a[1].get("probabilities") for a in one_by_one]


def test_the_tally_counts_outliers_apart_from_digits_and_refusals_by_type(service, seven):
    star = encode(draw_strokes(STAR), "PNG")
    number = encode(draw_strokes(FORTY_TWO), "PNG")
    counts = tally(service.answer([(seven, None), (star, None), (b"", None), (number, NUMBER)]))
    assert counts == {("label", "7"): 1, "outliers": 1, ("refused", "empty"): 1, "numbers": 1, "number digits": 2,
                      ("label", "4"): 1, ("label", "2"): 1}
