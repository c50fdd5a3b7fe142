"""The reading service: a request in, an answer out, knowing no server (LitServe's `LitAPI` shape).

    decode_request(body, headers)  -> a Job, a NumberJob, or a Refusal (the upload cannot be used)
    predict(items)                 -> a Reading per item, one forward pass for the whole batch
    explain(items, readings)       -> the readings with attributions for the jobs that asked
    encode_response(item, reading) -> (HTTP status, the answer as a dict)

It owns what an answer is: its fields, the outlier flag, a number's confidence, the class an
explanation explains by default, and the status that answers each refusal. A server adapter
(`handler/digit_handler.py` for TorchServe) only moves bodies, headers and metrics; `make
evaluate`, the outlier fitting, `bench/` and the tests call this same service.

Headers (names case-insensitive): ``explain: True`` asks for attributions (TorchServe sets it
on `/explanations`), ``X-Charts: 1`` for PNG charts, ``X-Target`` names the class to explain,
``X-Read: number`` reads every digit of a written number; ``X-Request-ID`` names the request in
the log and the answer (see request_id). docs/openapi.yaml describes every answer.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Union

import numpy as np
import torch

from digitlens.config import ModelSpec
from digitlens.engine import InferenceEngine, load_network
from digitlens.explain import Explainer
from digitlens.job import Job, NumberJob, Reading, number_reading
from digitlens.prepare import InputError, prepare, prepare_number
from digitlens.strings import StringReader, several_digits, split_numbers
from digitlens.render import ProbabilityChart, render_activation_grid, render_attribution_overlay, render_input

CHARTS_HEADER = "x-charts"
TARGET_HEADER = "x-target"
READ_HEADER = "x-read"
EXPLAIN_HEADER = "explain"
REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")   # a caller's id is kept if it is this; else the server makes one
READ_MODES = ("digit", "number")
REQUEST_REASONS = {         # refusals of what a request asks, beside image preparation's (digitlens.prepare.REASONS)
    "bad_target": "an X-Target that is no class of the model",
    "no_explanations": "an explanation asked of a model that offers none",
    "bad_read": "an X-Read other than the read modes",
    "no_numbers": "a number sent to a model that reads no digits",
    "explain_number": "an explanation asked of a whole number",
}
STATUS = {"empty": 400, "corrupt_image": 400, "not_an_image": 415, "unsupported_type": 415, "too_many_pixels": 413,
          "blank": 422, "not_a_number": 422, "bad_target": 400, "no_explanations": 400, "bad_read": 400,
          "no_numbers": 400, "explain_number": 400}     # every refusal reason's HTTP status


@dataclass(frozen=True)
class Refusal:
    """A request that cannot be answered with a reading: its status, reason and message."""
    status: int
    reason: str
    message: str

    @classmethod
    def of(cls, reason: str, message: str) -> "Refusal":
        return cls(STATUS[reason], reason, message)


Item = Union[Job, NumberJob, Refusal]


class ReadingService:
    def __init__(self, spec: ModelSpec, network: torch.nn.Module, device: torch.device, model_info: dict,
                 model_dir: Path | None = None):
        self.spec = spec
        self.device = device
        self.model_info = model_info
        self.engine = InferenceEngine.for_model(network, spec, device, model_dir)
        self.explainer = Explainer(network, spec.blank_value, spec.explain_steps, device)
        self.chart = ProbabilityChart(spec.labels)
        self.string_reader = StringReader.load(Path(model_dir) / spec.string_reader, device) \
            if model_dir and spec.string_reader else None

    @classmethod
    def from_model_dir(cls, model_dir: Path, spec: ModelSpec, network_file: str, weights: str,
                       device: torch.device = torch.device("cpu"), model_info: dict | None = None) -> "ReadingService":
        """The service of the model whose files lie in ``model_dir`` (an unpacked archive, or model/)."""
        network = load_network(os.path.join(model_dir, network_file), spec.network, len(spec.labels),
                               os.path.join(model_dir, weights))
        return cls(spec, network.eval(), device, model_info or {"name": Path(weights).stem, "version": None}, model_dir)

    # decode_request ------------------------------------------------------------------------------

    def decode_request(self, body, headers: Mapping[str, str] | None = None) -> Item:
        """The job a request asks for, or why it cannot be done."""
        headers = {str(name).lower(): str(value) for name, value in (headers or {}).items()}
        try:
            return self._job(body, headers)
        except InputError as error:
            return Refusal.of(error.reason, str(error))
        except RequestRefused as refused:
            return refused.refusal

    def _job(self, body, headers: dict[str, str]) -> Job | NumberJob:
        explain = headers.get(EXPLAIN_HEADER, "") == "True"
        charts = headers.get(CHARTS_HEADER, "").strip().lower() in ("1", "true", "yes")
        if self._read_mode(headers) == "number":
            if explain:
                raise RequestRefused("explain_number",
                                     "explanations are of one digit: send the digit's box, cut out, to /explanations")
            return NumberJob(tuple(prepare_number(body, self.spec)), charts)
        if explain and not self.spec.explain_methods:
            raise RequestRefused("no_explanations", f"model {self.model_info['name']} offers no explanations")
        target = headers.get(TARGET_HEADER, "").strip()
        try:
            target = self.spec.label_index(target) if explain and target else None
        except ValueError as error:
            raise RequestRefused("bad_target", f"X-Target: {error}") from error
        return Job(prepare(body, self.spec), explain, target, charts)

    def _read_mode(self, headers: dict[str, str]) -> str:
        mode = headers.get(READ_HEADER, "").strip().lower() or "digit"
        if mode not in READ_MODES:
            raise RequestRefused("bad_read", f"X-Read: {mode!r} is not a way to read an upload "
                                             f"(one of: {', '.join(READ_MODES)})")
        if mode == "number" and self.spec.preprocess != "digit":
            raise RequestRefused("no_numbers", f"model {self.model_info['name']} reads one {self.spec.preprocess} "
                                               "at a time, not numbers")
        return mode

    # predict -------------------------------------------------------------------------------------

    def predict(self, items: list[Item]) -> list[Reading | None]:
        """A Reading for every job (None for a refusal): one forward pass for all their images (a row
        each digit of a number), once the string reader has split runs of touching digits (strings)."""
        jobs = [(index, item) for index, item in enumerate(items) if not isinstance(item, Refusal)]
        readings: list[Reading | None] = [None] * len(items)
        if not jobs:
            return readings
        numbers = split_numbers([job.parts for _, job in jobs if isinstance(job, NumberJob)], self.string_reader,
                                self.spec)
        several = several_digits(self.string_reader, [None if isinstance(job, NumberJob) else job.image.strip
                                                      for _, job in jobs])
        splits = [numbers.pop(0) if isinstance(job, NumberJob) else None for _, job in jobs]
        images = [[digit.image for digit, _ in split] if split is not None else [job.image]
                  for (_, job), split in zip(jobs, splits)]
        result = self.engine.predict(np.stack([image.tensor for row in images for image in row]),
                                     with_activations=any(job.charts and not job.explain for _, job in jobs))
        first = 0
        for (index, job), row, split, wide in zip(jobs, images, splits, several):
            rows = slice(first, first + len(row))
            reading = Reading(result.probabilities[rows],
                              None if result.outlier_scores is None else result.outlier_scores[rows],
                              {name: values[rows] for name, values in result.activations.items()})
            readings[index] = number_reading(reading, split) if split is not None else \
                dataclasses.replace(reading, several_digits=wide)
            first = rows.stop
        return readings

    def explain(self, items: list[Item], readings: list[Reading | None]) -> list[Reading | None]:
        """``readings`` with attributions added for the jobs that asked, in one pass; the class
        explained is the one the job names, else the one read."""
        explained = [index for index, item in enumerate(items) if isinstance(item, Job) and item.explain]
        if not explained:
            return readings
        targets = [items[index].target if items[index].target is not None
                   else int(readings[index].probabilities[0].argmax()) for index in explained]
        explanation = self.explainer.explain(np.stack([items[index].image.tensor for index in explained]), targets)
        readings = list(readings)
        for i, (index, target) in enumerate(zip(explained, targets)):
            readings[index] = dataclasses.replace(
                readings[index], explanation=(target, explanation.attributions[i], float(explanation.convergence_delta[i])))
        return readings

    # encode_response -----------------------------------------------------------------------------

    def encode_response(self, item: Item, reading: Reading | None) -> tuple[int, dict]:
        """The HTTP status and the JSON answer of one request."""
        if isinstance(item, Refusal):
            return item.status, {"code": item.status, "type": item.reason, "message": item.message}
        if isinstance(item, NumberJob):
            return 200, self._number(item, reading)
        answer = self._prediction(reading, 0)
        answer["model"] = self.model_info
        answer["looks_like_number"] = item.image.looks_like_number or reading.several_digits
        if item.explain:
            answer.update(self._explanation(item, *reading.explanation))
        elif item.charts:
            answer["charts"] = self._charts(reading, 0, item.image.pixels)
        return 200, answer

    def _prediction(self, reading: Reading, row: int) -> dict:
        probabilities = reading.probabilities[row]
        top = int(np.argmax(probabilities))
        prediction = {
            "digit": top,
            "label": self.spec.labels[top],
            "confidence": round(float(probabilities[top]), 6),
            "probabilities": [round(float(p), 6) for p in probabilities],
        }
        if reading.outlier_scores is not None:
            score = float(reading.outlier_scores[row])
            prediction["outlier_score"] = round(score, 6)
            prediction["outlier"] = score > self.spec.outlier_above
        return prediction

    def _number(self, job: NumberJob, reading: Reading) -> dict:
        """A number's confidence is the product of its digits': it is read right only if every
        digit is. Where the network reads a digit the string reader read otherwise, the number
        as the network reads it is the ``alternative``, and each reading's confidence is its
        product times that product's share of the two."""
        digits = []
        for row, digit in enumerate(reading.digits):
            answer = self._prediction(reading, row)
            answer["box"] = list(digit.box)
            if job.charts:
                answer["charts"] = self._charts(reading, row, digit.image.pixels)
            digits.append(answer)
        confidence = math.prod(answer["confidence"] for answer in digits) if digits else 0.0
        number = {"number": "".join(answer["label"] for answer in digits) or None, "confidence": round(confidence, 6),
                  "digits": digits, "model": self.model_info}
        if reading.network_probabilities is not None:      # the rows the network alone read agree with it
            other = reading.network_probabilities.argmax(1)
            chosen = reading.probabilities.argmax(1)
            if (other != chosen).any():
                alternative = float(np.prod(reading.network_probabilities[np.arange(len(other)), other]))
                total = max(confidence + alternative, 1e-12)
                number["confidence"] = round(confidence * confidence / total, 6)
                number["alternative"] = {"number": "".join(self.spec.labels[k] for k in other),
                                         "confidence": round(alternative * alternative / total, 6)}
        return number

    def _charts(self, reading: Reading, row: int, pixels: np.ndarray) -> dict:
        return {
            "probabilities": self.chart.render(reading.probabilities[row]),
            "activations": {name: render_activation_grid(reading.activations[name][row])
                            for name in self.engine.layer_names},
            "input": render_input(pixels),
        }

    def _explanation(self, job: Job, target: int, attributions: np.ndarray, delta: float) -> dict:
        explanation = {
            "target": target,
            "method": self.spec.explain_methods[0],
            "convergence_delta": round(delta, 6),
            "input": job.image.pixels.tolist(),
            "attributions": np.round(attributions.astype(np.float64), 6).tolist(),
        }
        if job.charts:
            explanation["charts"] = {"attributions": render_attribution_overlay(job.image.pixels, attributions)}
        return explanation

    # the three together --------------------------------------------------------------------------

    def answer(self, requests: list[tuple[object, Mapping[str, str] | None]]) -> list[tuple[int, dict]]:
        """Each (body, headers) request answered as a server would: (status, answer)."""
        items = [self.decode_request(body, headers) for body, headers in requests]
        readings = self.explain(items, self.predict(items))
        return [self.encode_response(item, reading) for item, reading in zip(items, readings)]

    @staticmethod
    def request_id(headers: Mapping[str, str] | None, made: str) -> str:
        """The request's id: the caller's ``X-Request-ID`` where it is a plain token (REQUEST_ID),
        else ``made`` (one the server made)."""
        given = next((str(value) for name, value in (headers or {}).items() if str(name).lower() == REQUEST_ID_HEADER), "")
        return given if REQUEST_ID.fullmatch(given) else made

    def describe(self) -> dict:
        return {"device": str(self.device), "visualised_layers": list(self.engine.layer_names),
                "forward_hooks": self.engine.hook_count, "labels": list(self.spec.labels),
                "explain_methods": list(self.spec.explain_methods)}


class RequestRefused(Exception):
    """Raised inside decode_request for what a request asks that cannot be done."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.refusal = Refusal.of(reason, message)


def tally(answers: list[tuple[int, dict]]) -> Counter:
    """What a batch's answers count for monitoring: readings by label, outliers (a reading flagged
    as one counts as an outlier, not as the label it is closest to: a cat is not a 4), numbers
    and their digits, and refusals by reason."""
    counts = Counter()
    for status, answer in answers:
        if status != 200:
            counts[("refused", answer["type"])] += 1
            continue
        readings = answer.get("digits", [answer])
        if "digits" in answer:
            counts["numbers"] += 1
            counts["number digits"] += len(readings)
        for reading in readings:
            counts["outliers" if reading.get("outlier", False) else ("label", reading["label"])] += 1
    return counts

