"""The API's contract, docs/openapi.yaml: every answer the test suite receives from a prediction or
an explanation of a server that serves the API (a TorchServe or an nginx front the tests started,
each registered with serving_the_api) is checked against it (conftest.py hooks `requests`), and so
are the reading service's answers in process."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from ops.archive import REPO_ROOT

DOCUMENT = REPO_ROOT / "docs" / "openapi.yaml"
CONTRACT_PATHS = re.compile(r"^/(predictions|explanations)/[^/]+(/[^/]+)?$")
SERVER = "http://127.0.0.1:8080"        # the document's first server: the tests' servers listen elsewhere


API_BASES: set[str] = set()            # the base URLs of the servers that serve the API


class BrokenContract(AssertionError):
    pass


def serving_the_api(base_url: str) -> str:
    """Register a server whose answers are checked against the document; returns ``base_url``."""
    API_BASES.add(base_url.rstrip("/"))
    return base_url


@lru_cache(maxsize=1)
def api() -> OpenAPI:
    return OpenAPI.from_file_path(str(DOCUMENT))


def check_answer(method: str, path: str, status: int, headers: dict, body: bytes, content_type: str) -> None:
    """Raise BrokenContract where an answer to ``method path`` does not conform to the document."""
    request = MockRequest(SERVER, method.lower(), path, headers={"Content-Type": "application/octet-stream"},
                          data=b"", content_type="application/octet-stream")
    response = MockResponse(body, status_code=status, headers=headers, content_type=content_type)
    try:
        api().validate_response(request, response)
    except Exception as error:       # openapi-core's errors name what is wrong in their causes
        causes = [str(error)] + [str(cause) for cause in getattr(error, "schema_errors", [])]
        raise BrokenContract(f"{method} {path} -> {status}: {'; '.join(causes)[:2000]}") from error


def check_response(response: requests.Response) -> None:
    """Check one HTTP answer, where it is an answer the document describes."""
    url = urlsplit(response.request.url)
    if (response.request.method != "POST" or not CONTRACT_PATHS.match(url.path)
            or f"{url.scheme}://{url.netloc}" not in API_BASES):
        return
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    check_answer("POST", url.path, response.status_code, dict(response.headers), response.content, content_type)


def check_service_answer(path: str, status: int, answer: dict, request_id: str = "in-process") -> None:
    """Check an answer of the reading service as the handler would send it."""
    check_answer("POST", path, status, {"X-Request-ID": request_id}, json.dumps(answer).encode(), "application/json")
