"""TorchServe adapter for Digit Lens: requests in, JSON out; the work is in `digitlens`.

Every model is served by this handler unchanged: what differs (network, labels,
preprocessing, normalisation, hooked layers) comes from the model's YAML in its archive.

Each stage takes and returns a whole batch, and each request is answered as it asked: a
prediction (`/predictions/...`), or an explanation (`/explanations/...`, which TorchServe
marks with the header `explain: True`), with charts if it sent `X-Charts: 1`. A batch may
mix them. With the header `X-Read: number` a request is read as a whole number: each digit
found, boxed and read in the same batch (`digitlens.numbers`). A request that cannot be used
(not an image, too big, blank, an unknown `X-Target`) becomes an error entry for that request
alone, answered with its own 4xx status and JSON body, while the rest of the batch is answered
as usual.
"""
import json
import logging
import math
import os
import time
from collections import Counter

import numpy as np
import torch
from ts.metrics.dimension import Dimension
from ts.torch_handler.base_handler import BaseHandler

from digitlens.config import ModelSpec
from digitlens.engine import InferenceEngine, load_network
from digitlens.explain import Explainer
from digitlens.job import Job, NumberJob
from digitlens.numbers import read_number
from digitlens.preprocess import InputError, body_bytes, prepare
from digitlens.render import ProbabilityChart, render_activation_grid, render_attribution_overlay, render_input

logger = logging.getLogger(__name__)
CHARTS_HEADER = "x-charts"
TARGET_HEADER = "x-target"
READ_HEADER = "x-read"
READ_MODES = ("digit", "number")


class DigitLensHandler(BaseHandler):
    def initialize(self, context):
        properties = context.system_properties
        model_dir = properties["model_dir"]
        manifest = context.manifest["model"]
        self.spec = ModelSpec.from_mapping(context.model_yaml_config["handler"])
        if self.spec.threads:
            torch.set_num_threads(self.spec.threads)
        if torch.cuda.is_available() and properties.get("gpu_id") is not None:
            self.device = torch.device(f"cuda:{properties['gpu_id']}")
        else:
            self.device = torch.device("cpu")
        network = load_network(os.path.join(model_dir, manifest["modelFile"]), self.spec.network,
                               len(self.spec.labels), os.path.join(model_dir, manifest["serializedFile"]))
        self.engine = InferenceEngine.for_model(network, self.spec, self.device, model_dir)
        self.explainer = Explainer(self.engine.model, self.spec.blank_value, self.spec.explain_steps, self.device)
        self.chart = ProbabilityChart(self.spec.labels)
        self.model_info = {"name": context.model_name, "version": manifest.get("modelVersion")}
        self.initialized = True
        logger.info("Digit Lens model %s loaded on %s", self.model_info, self.device)

    def preprocess(self, requests):
        """Each request's image and what it asked for, or the InputError it raised."""
        started = time.perf_counter()
        prepared = []
        for index, row in enumerate(requests):
            try:
                prepared.append(self._job(index, row))
            except InputError as error:
                prepared.append(error)
        self.context.metrics.add_time("PreprocessTime", round((time.perf_counter() - started) * 1000, 3), None, "ms")
        return prepared

    def _job(self, index: int, row: dict) -> Job | NumberJob:
        explain = self._header(index, "explain") == "True"
        charts = self._header(index, CHARTS_HEADER).strip().lower() in ("1", "true", "yes")
        if self._read_mode(index) == "number":
            if explain:
                raise InputError("explanations are of one digit: send the digit's box, cut out, to /explanations",
                                 400, "explain_number")
            return NumberJob(tuple(read_number(body_bytes(row.get("data", row.get("body"))), self.spec)), charts)
        if explain and not self.spec.explain_methods:
            raise InputError(f"model {self.model_info['name']} offers no explanations", 400, "no_explanations")
        target = self._header(index, TARGET_HEADER).strip()
        try:
            target = self.spec.label_index(target) if explain and target else None
        except ValueError as error:
            raise InputError(f"X-Target: {error}", 400, "bad_target") from error
        image = prepare(body_bytes(row.get("data", row.get("body"))), self.spec)
        return Job(image, explain, target, charts)

    def _read_mode(self, index: int) -> str:
        mode = self._header(index, READ_HEADER).strip().lower() or "digit"
        if mode not in READ_MODES:
            raise InputError(f"X-Read: {mode!r} is not a way to read an upload (one of: {', '.join(READ_MODES)})",
                             400, "bad_read")
        if mode == "number" and self.spec.preprocess != "digit":
            raise InputError(f"model {self.model_info['name']} reads one {self.spec.preprocess} at a time, not numbers",
                             400, "no_numbers")
        return mode

    def inference(self, prepared):
        """Probabilities and activations for every usable image (each digit of a number one row of
        the batch); attributions for those that asked."""
        jobs = [item for item in prepared if not isinstance(item, InputError)]
        if not jobs:
            return prepared, None, {}
        images = [image for job in jobs for image in job.images]
        result = self.engine.predict(np.stack([image.tensor for image in images]),
                                     with_activations=any(job.charts and not job.explain for job in jobs))
        rows = np.cumsum([0] + [len(job.images) for job in jobs])[:-1]
        explained = [(int(rows[position]), job) for position, job in enumerate(jobs) if job.explain]
        if not explained:
            return prepared, result, {}
        started = time.perf_counter()
        targets = [job.target if job.target is not None else int(result.probabilities[row].argmax())
                   for row, job in explained]
        explanation = self.explainer.explain(np.stack([job.image.tensor for _, job in explained]), targets)
        self.context.metrics.add_time("ExplainTime", round((time.perf_counter() - started) * 1000, 3), None, "ms")
        return prepared, result, {row: (target, explanation.attributions[i], float(explanation.convergence_delta[i]))
                                  for i, ((row, _), target) in enumerate(zip(explained, targets))}

    def explain_handle(self, data_preprocess, raw_data):
        """TorchServe calls this instead of inference/postprocess when request 0 is an explanation;
        the stages below answer every request as it asked, whatever request 0 was."""
        return self.postprocess(self.inference(data_preprocess))

    def postprocess(self, data):
        prepared, result, explanations = data
        responses, row, rendering, counts = [], 0, 0.0, Counter()
        for index, item in enumerate(prepared):
            if isinstance(item, InputError):
                responses.append(self._error_response(index, item))
                continue
            started = time.perf_counter()
            if isinstance(item, NumberJob):
                response = self._number(item, result, row)
                readings = response["digits"]
                counts["numbers"] += 1
                counts["number digits"] += len(readings)
            else:
                response = self._prediction(result, row)
                response["looks_like_number"] = item.image.looks_like_number
                if item.explain:
                    response.update(self._explanation(item, *explanations[row]))
                elif item.charts:
                    response["charts"] = self._charts(result, row, item.image.pixels)
                readings = [response]
            if item.charts or item.explain:
                rendering += time.perf_counter() - started
            for reading in readings:
                counts["outliers" if reading.get("outlier", False) else ("label", reading["label"])] += 1
            self.context.set_response_content_type(index, "application/json")
            responses.append(response)
            row += len(item.images)
        self._count(counts)
        if rendering:
            self.context.metrics.add_time("RenderTime", round(rendering * 1000, 3), None, "ms")
        return responses

    def _count(self, counts: Counter) -> None:
        """One metric update per name (and label) and batch, not per request. A reading flagged as
        an outlier is counted as one, not as the label it is closest to (a cat is not a 4)."""
        for key, count in counts.items():
            if isinstance(key, tuple):
                self.context.metrics.add_counter("PredictionsPerDigit", count, None, [Dimension("Digit", key[1])])
        for key, metric in (("outliers", "Outliers"), ("numbers", "NumbersRead"), ("number digits", "NumberDigits")):
            if counts[key]:
                self.context.metrics.add_counter(metric, counts[key], None, [])

    def _number(self, job: NumberJob, result, first_row: int) -> dict:
        digits = []
        for row, digit in enumerate(job.digits, start=first_row):
            reading = self._prediction(result, row)
            del reading["model"]
            reading["box"] = list(digit.box)
            if job.charts:
                reading["charts"] = self._charts(result, row, digit.image.pixels)
            digits.append(reading)
        return {
            "number": "".join(reading["label"] for reading in digits) or None,
            "confidence": round(math.prod(reading["confidence"] for reading in digits), 6) if digits else 0.0,
            "digits": digits,
            "model": self.model_info,
        }

    def _charts(self, result, row: int, pixels: np.ndarray) -> dict:
        return {
            "probabilities": self.chart.render(result.probabilities[row]),
            "activations": {name: render_activation_grid(result.activations[name][row])
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

    def describe_handle(self):
        """Answers `GET /models/<name>?customized=true` on the management API."""
        return json.dumps({"device": str(self.device), "visualised_layers": list(self.engine.layer_names),
                           "forward_hooks": self.engine.hook_count, "labels": list(self.spec.labels),
                           "explain_methods": list(self.spec.explain_methods)})

    def _prediction(self, result, row: int) -> dict:
        probabilities = result.probabilities[row]
        top = int(np.argmax(probabilities))
        prediction = {
            "digit": top,
            "label": self.spec.labels[top],
            "confidence": round(float(probabilities[top]), 6),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "model": self.model_info,
        }
        if result.outlier_scores is not None:
            score = float(result.outlier_scores[row])
            prediction["outlier_score"] = round(score, 6)
            prediction["outlier"] = score > self.spec.outlier_above
        return prediction

    def _header(self, index: int, name: str) -> str:
        headers = self.context.get_all_request_header(index)
        return str(next((v for k, v in headers.items() if k.lower() == name), ""))

    def _error_response(self, index: int, error: InputError) -> str:
        self.context.set_response_status(error.status, error.reason, index)
        self.context.set_response_content_type(index, "application/json")
        self.context.metrics.add_counter("RejectedInputs", 1, None, [Dimension("Reason", error.reason)])
        return json.dumps({"code": error.status, "type": error.reason, "message": str(error)})
