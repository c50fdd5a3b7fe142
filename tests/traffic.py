"""Closed-loop clients for the tests that change a server while it is under load.

Each of ``clients`` threads keeps one keep-alive session and posts the next of its requests as
soon as the last is answered, until stopped or ``limit_s`` passes. A request is a body and
what it must come back as: a digit (status 200) or an error status with its `type`. Every
answer that is not what was expected is kept in ``failures``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
import requests


@dataclass(frozen=True)
class Expected:
    body: bytes
    digit: int | None = None            # a good request: 200 and this digit
    status: int | None = None           # a bad one: this status and error type
    type: str | None = None


class Traffic:
    def __init__(self, url: str, requests_: list[Expected], clients: int = 1, headers: dict | None = None,
                 limit_s: float = 300):
        self.url = url
        self.requests = requests_
        self.clients = clients
        self.headers = {"Content-Type": "application/octet-stream", **(headers or {})}
        self.limit_s = limit_s
        self.versions: list[str] = []
        self.failures: list[str] = []
        self.answered = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _check(self, expected: Expected, response: requests.Response) -> str | None:
        if expected.digit is not None:
            if response.status_code != 200:
                return f"{response.status_code} {response.text[:200]}"
            result = response.json()
            with self._lock:
                self.versions.append(result["model"]["version"])
            return None if result["digit"] == expected.digit else f"read {result['digit']}, not {expected.digit}"
        if response.status_code != expected.status or response.json().get("type") != expected.type:
            return f"{response.status_code} {response.text[:200]}, not {expected.status} {expected.type}"
        return None

    def _client(self, index: int):
        session = requests.Session()
        deadline = time.monotonic() + self.limit_s
        position = index
        while not self._stop.is_set() and time.monotonic() < deadline:
            expected = self.requests[position % len(self.requests)]
            position += self.clients
            try:
                failure = self._check(expected, session.post(self.url, data=expected.body, headers=self.headers,
                                                             timeout=60))
            except (requests.RequestException, ValueError) as error:
                failure = repr(error)
            with self._lock:
                self.answered += 1
                if failure:
                    self.failures.append(failure)

    def __enter__(self) -> "Traffic":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for(self, answered: int, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while self.answered < answered and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.answered >= answered, f"only {self.answered} of {answered} answers in {timeout:.0f} s"

    def wait_for_version(self, version: str, timeout: float = 30):
        seen = len(self.versions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if version in self.versions[seen:]:
                return
            time.sleep(0.05)
        pytest.fail(f"traffic never reached version {version}")


def metric_total(server, prefix: str) -> float:
    """The sum of the samples on the server's metrics page whose line starts with ``prefix``."""
    text = requests.get(f"{server.metrics_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))
