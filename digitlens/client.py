"""A Python client for a Digit Lens server (TorchServe, or the nginx front of the compose stack).

    from digitlens.client import Client
    client = Client("http://127.0.0.1:8080")
    reading = client.predict("samples/seven-photo.jpg")            # a path, bytes or a binary file
    print(reading.label, reading.confidence, reading.outlier)
    number = client.predict("samples/number-canvas.png", number=True)
    print(number.number, [digit.box for digit in number.digits])

It needs only `requests` (no torch, none of the server's code). One keep-alive session is
reused; a 503 (no worker ready, a replica starting) is retried with exponential backoff; an
answer that is an error raises DigitLensError with the server's `type` and message, and a
server that cannot be reached raises ServerUnreachable.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import requests

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:8081"
URL_VARIABLE = "DIGITLENS_URL"                  # the server, where no url is given
MANAGEMENT_VARIABLE = "DIGITLENS_MANAGEMENT_URL"
Image = Union[str, os.PathLike, bytes, BinaryIO]


class DigitLensError(Exception):
    """The server answered with an error: ``status`` (HTTP), ``type`` (e.g. ``not_an_image``), and
    ``request_id``, the id the server's log gives the request (None where the server sent none)."""

    def __init__(self, status: int, type_: str, message: str, request_id: str | None = None):
        super().__init__(f"{status} {type_}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status, self.type, self.message, self.request_id = status, type_, message, request_id


class ServerUnreachable(DigitLensError):
    """No answer at all: nothing listens at the URL, or the connection failed or timed out."""

    def __init__(self, url: str, reason: str):
        super().__init__(0, "unreachable", f"cannot reach Digit Lens at {url} ({reason}); start it with "
                                           "`make serve`, or point --url / DIGITLENS_URL at a running server")
        self.url = url


@dataclass(frozen=True)
class Prediction:
    digit: int                      # the class index
    label: str
    confidence: float               # calibrated probability of the class
    probabilities: list[float]
    model: dict                     # {"name", "version"}
    outlier_score: float | None = None
    outlier: bool = False           # not something the model can name: do not trust the label
    looks_like_number: bool = False  # several digits in a row: ask again with number=True
    charts: dict | None = None      # PNG data URLs, with charts=True


@dataclass(frozen=True)
class NumberDigit:
    digit: int
    label: str
    confidence: float
    probabilities: list[float]
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the upload's pixels
    outlier_score: float | None = None
    outlier: bool = False
    charts: dict | None = None


@dataclass(frozen=True)
class NumberReading:
    number: str | None              # the digits left to right, None where no digit was found
    confidence: float               # the chance the whole number is right
    digits: list[NumberDigit]
    model: dict


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    target: int                     # the class explained
    attributions: list[list[float]]  # 28x28, positive pixels argued for the target
    convergence_delta: float
    charts: dict | None = None      # {"attributions": PNG data URL}, with charts=True


def image_bytes(image: Image) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    return image.read()


@dataclass
class Client:
    url: str | None = None          # None: $DIGITLENS_URL, else DEFAULT_URL
    timeout: float = 60.0           # seconds for each attempt
    retries: int = 4                # more attempts after a 503
    backoff: float = 0.5            # seconds before the first retry, doubled each time
    management_url: str | None = None   # None: $DIGITLENS_MANAGEMENT_URL, else DEFAULT_MANAGEMENT_URL

    def __post_init__(self):
        self.url = (self.url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).rstrip("/")
        self.management_url = (self.management_url or os.environ.get(MANAGEMENT_VARIABLE)
                               or DEFAULT_MANAGEMENT_URL).rstrip("/")
        self.session = requests.Session()

    def predict(self, image: Image, model: str = "mnist", charts: bool = False,
                number: bool = False) -> Prediction | NumberReading:
        """The model's reading of one image; with ``number``, of the whole number it holds."""
        headers = {"X-Charts": "1"} if charts else {}
        if number:
            headers["X-Read"] = "number"
        answer = self._post(f"/predictions/{model}", image_bytes(image), headers)
        return number_reading(answer) if number else prediction(answer)

    def explain(self, image: Image, model: str = "mnist", target: str | int | None = None,
                charts: bool = False) -> Explanation:
        """Which pixels made the model choose ``target`` (default: the class it predicts)."""
        headers = {"X-Charts": "1"} if charts else {}
        if target is not None:
            headers["X-Target"] = str(target)
        answer = self._post(f"/explanations/{model}", image_bytes(image), headers)
        return Explanation(prediction(answer), answer["target"], answer["attributions"], answer["convergence_delta"],
                           answer.get("charts"))

    def health(self) -> dict:
        """The server's own health answer (``{"status": "Healthy"}``)."""
        return self._request("GET", self.url, "/ping").json()

    def models(self) -> list[dict]:
        """Every served model version: ``{"name", "version", "default"}``. From the management
        API where it answers, else from the front's catalogue (``/models.json``, the page's list)."""
        try:
            listed = self._request("GET", self.management_url, "/models").json()["models"]
        except ServerUnreachable:
            catalogue = self._request("GET", self.url, "/models.json").json()["models"]
            return [{"name": entry["name"], "version": entry["version"], "default": True} for entry in catalogue]
        versions = []
        for entry in listed:
            name = entry["modelName"]
            default = self._request("GET", self.management_url, f"/models/{name}").json()[0]["modelVersion"]
            for version in self._request("GET", self.management_url, f"/models/{name}/all").json():
                versions.append({"name": name, "version": version["modelVersion"],
                                 "default": version["modelVersion"] == default})
        return versions

    def _post(self, path: str, body: bytes, headers: dict) -> dict:
        return self._request("POST", self.url, path, data=body,
                             headers={"Content-Type": "application/octet-stream", **headers}).json()

    def _request(self, method: str, base: str, path: str, **kwargs) -> requests.Response:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, base + path, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as error:
                raise ServerUnreachable(base, type(error).__name__) from error
            if response.status_code != 503 or attempt == self.retries:
                break
            time.sleep(delay)
            delay *= 2
        if not response.ok:
            raise error_of(response)
        return response

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def error_of(response: requests.Response) -> DigitLensError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") or response.text.strip()[:200] or response.reason
    return DigitLensError(response.status_code, str(body.get("type") or body.get("code") or response.reason), message,
                          response.headers.get("X-Request-ID") or body.get("request_id"))


def prediction(answer: dict) -> Prediction:
    return Prediction(answer["digit"], answer["label"], answer["confidence"], answer["probabilities"], answer["model"],
                      answer.get("outlier_score"), answer.get("outlier", False), answer.get("looks_like_number", False),
                      answer.get("charts"))


def number_reading(answer: dict) -> NumberReading:
    digits = [NumberDigit(d["digit"], d["label"], d["confidence"], d["probabilities"], tuple(d["box"]),
                          d.get("outlier_score"), d.get("outlier", False), d.get("charts")) for d in answer["digits"]]
    return NumberReading(answer["number"], answer["confidence"], digits, answer["model"])
