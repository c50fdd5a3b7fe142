"""The API as a contract (docs/openapi.yaml): a valid document whose enums are the code's, answers
checked against it, a request id in every answer and in the log, and fuzzing with no 5xx."""
import os
import time
import uuid

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from digitlens.config import EXPLAIN_METHODS
from digitlens.service import READ_MODES, STATUS
from ops.archive import MODEL_DIR
from tests.contract import DOCUMENT, BrokenContract, check_answer

FUZZ_EXAMPLES = int(os.environ.get("DIGITLENS_FUZZ_EXAMPLES", 25))    # per operation; `make fuzz` asks for 300
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_headers_conformance,
          schemathesis.checks.response_schema_conformance]
SERVED = {"model": "mnist", "version": "1.0"}
OCTET = {"Content-Type": "application/octet-stream"}


def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text())


def test_the_document_is_valid_openapi():
    spec, _ = read_from_filename(str(DOCUMENT))
    validate(spec)


def test_the_documents_enums_are_the_codes():
    """A refusal reason, a read mode, a label or an explanation method the code adds and the
    document lacks (or the reverse) fails here."""
    components = document()["components"]
    assert set(components["schemas"]["ErrorType"]["enum"]) == set(STATUS)
    for status, reasons in ((400, "empty"), (413, "too_many_pixels"), (415, "not_an_image"), (422, "blank")):
        assert f"{status} `{reasons}`" in components["schemas"]["ErrorType"]["description"]
    assert tuple(components["parameters"]["Read"]["schema"]["enum"]) == READ_MODES
    labels = {str(label) for path in MODEL_DIR.glob("*.yaml") for label in yaml.safe_load(path.read_text())["handler"]["labels"]}
    assert set(components["schemas"]["Label"]["examples"]) <= labels and "enum" not in components["schemas"]["Label"]
    explanation = components["schemas"]["Explanation"]["allOf"][1]["properties"]
    assert tuple(explanation["method"]["enum"]) == EXPLAIN_METHODS


def test_an_answer_that_breaks_the_contract_is_caught():
    good = b'{"code": 415, "type": "not_an_image", "message": "no"}'
    check_answer("POST", "/predictions/mnist", 415, {}, good, "application/json")
    for status, body in ((415, b'{"code": 415, "type": "no_such_type", "message": "no"}'),
                         (200, b'{"digit": 7, "label": "7"}'),
                         (200, b'{"number": "42", "confidence": 2, "digits": [], "model": {"name": "mnist", "version": null}}')):
        with pytest.raises(BrokenContract):
            check_answer("POST", "/predictions/mnist", status, {"X-Request-ID": "1"}, body, "application/json")


def logged(server, text: str, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(text in path.read_text(errors="replace") for path in server.log_dir.glob("model_log*.log")):
            return True
        time.sleep(0.25)
    return False


def test_a_refused_upload_carries_a_request_id_that_the_server_log_names(torchserve):
    """The caller's id where it sent a plain one; else TorchServe's own, which its header carries."""
    theirs = f"client-{uuid.uuid4()}"
    refused = requests.post(f"{torchserve.inference_url}/predictions/mnist", data=b"not an image",
                            headers={**OCTET, "X-Request-ID": theirs}, timeout=30)
    assert refused.status_code == 415 and refused.json()["request_id"] == theirs
    assert logged(torchserve, f"request {theirs} refused: 415 not_an_image")
    made = requests.post(f"{torchserve.inference_url}/predictions/mnist", data=b"",
                         headers={**OCTET, "X-Request-ID": "not a token: spaces"}, timeout=30)
    assert made.status_code == 400 and made.json()["request_id"] == made.headers["X-Request-ID"]
    assert logged(torchserve, f"request {made.json()['request_id']} refused: 400 empty")
    read = requests.post(f"{torchserve.inference_url}/predictions/mnist", headers={**OCTET, "X-Request-ID": theirs},
                         data=(MODEL_DIR.parent / "samples" / "seven-canvas.png").read_bytes(), timeout=30)
    assert read.json()["label"] == "7" and read.json()["request_id"] == theirs


def fuzz(schema, base_url: str, server, examples: int = FUZZ_EXAMPLES) -> None:
    """Every operation, ``examples`` generated requests each (bodies, headers, versions), against
    ``base_url``: no 5xx, every answer as documented, and no worker of ``server`` restarted."""
    workers = server.worker_pids("mnist")
    for operation in schema.get_all_operations():
        operation, calls = operation.ok(), []

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case):
            if case.path_parameters:
                case.path_parameters = {name: SERVED[name] for name in case.path_parameters}
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60)
            calls.append(case)

        call()
        print(f"{operation.label}: {len(calls)} generated requests, every answer as documented")
    assert server.worker_pids("mnist") == workers


def test_generated_requests_get_no_5xx_and_conforming_answers(torchserve):
    fuzz(schemathesis.openapi.from_path(DOCUMENT), torchserve.inference_url, torchserve)
