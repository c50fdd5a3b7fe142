"""TorchServe adapter for Digit Lens: requests in, JSON out; the work is in `digitlens`.

Every model is served by this handler unchanged: what differs (network, labels,
preprocessing, normalisation, hooked layers) comes from the model's YAML in its archive.

Each stage takes and returns a whole batch, and each request is answered as it asked: a
prediction (`/predictions/...`), or an explanation (`/explanations/...`, which TorchServe
marks with the header `explain: True`), with charts if it sent `X-Charts: 1`. A batch may
mix them. A request that cannot be used (not an image, too big, blank, an unknown
`X-Target`) becomes an error entry for that request alone, answered with its own 4xx
status and JSON body, while the rest of the batch is answered as usual.
"""
import json
import logging
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
from digitlens.job import Job
from digitlens.preprocess import InputError, body_bytes, prepare
from digitlens.render import ProbabilityChart, render_activation_grid, render_attribution_overlay, render_input

logger = logging.getLogger(__name__)
CHARTS_HEADER = "x-charts"
TARGET_HEADER = "x-target"


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

    def _job(self, index: int, row: dict) -> Job:
        explain = self._header(index, "explain") == "True"
        if explain and not self.spec.explain_methods:
            raise InputError(f"model {self.model_info['name']} offers no explanations", 400, "no_explanations")
        target = self._header(index, TARGET_HEADER).strip()
        try:
            target = self.spec.label_index(target) if explain and target else None
        except ValueError as error:
            raise InputError(f"X-Target: {error}", 400, "bad_target") from error
        image = prepare(body_bytes(row.get("data", row.get("body"))), self.spec)
        return Job(image, explain, target, self._header(index, CHARTS_HEADER).strip().lower() in ("1", "true", "yes"))

    def inference(self, prepared):
        """Probabilities and activations for every usable image; attributions for those that asked."""
        jobs = [item for item in prepared if isinstance(item, Job)]
        if not jobs:
            return prepared, None, {}
        result = self.engine.predict(np.stack([job.image.tensor for job in jobs]),
                                     with_activations=any(job.charts and not job.explain for job in jobs))
        explained = [position for position, job in enumerate(jobs) if job.explain]
        if not explained:
            return prepared, result, {}
        started = time.perf_counter()
        targets = [jobs[p].target if jobs[p].target is not None else int(result.probabilities[p].argmax())
                   for p in explained]
        explanation = self.explainer.explain(np.stack([jobs[p].image.tensor for p in explained]), targets)
        self.context.metrics.add_time("ExplainTime", round((time.perf_counter() - started) * 1000, 3), None, "ms")
        return prepared, result, {p: (target, explanation.attributions[i], float(explanation.convergence_delta[i]))
                                  for i, (p, target) in enumerate(zip(explained, targets))}

    def explain_handle(self, data_preprocess, raw_data):
        """TorchServe calls this instead of inference/postprocess when request 0 is an explanation;
        the stages below answer every request as it asked, whatever request 0 was."""
        return self.postprocess(self.inference(data_preprocess))

    def postprocess(self, data):
        prepared, result, explanations = data
        responses, position, rendering, answered, outliers = [], 0, 0.0, Counter(), 0
        for index, item in enumerate(prepared):
            if isinstance(item, InputError):
                responses.append(self._error_response(index, item))
                continue
            probabilities = result.probabilities[position]
            response = self._prediction(probabilities, None if result.outlier_scores is None
                                        else float(result.outlier_scores[position]))
            if item.explain or item.charts:
                started = time.perf_counter()
                if item.explain:
                    response.update(self._explanation(item, *explanations[position]))
                else:
                    response["charts"] = self._charts(probabilities, result, position, item.image.pixels)
                rendering += time.perf_counter() - started
            self.context.set_response_content_type(index, "application/json")
            outliers += response.get("outlier", False)
            if not response.get("outlier", False):      # a cat is not counted as a 4
                answered[response["label"]] += 1
            responses.append(response)
            position += 1
        for label, count in answered.items():      # one metric update per label and batch, not per request
            self.context.metrics.add_counter("PredictionsPerDigit", count, None, [Dimension("Digit", label)])
        if outliers:
            self.context.metrics.add_counter("Outliers", outliers, None, [])
        if rendering:
            self.context.metrics.add_time("RenderTime", round(rendering * 1000, 3), None, "ms")
        return responses

    def _charts(self, probabilities: np.ndarray, result, position: int, pixels: np.ndarray) -> dict:
        return {
            "probabilities": self.chart.render(probabilities),
            "activations": {name: render_activation_grid(result.activations[name][position])
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

    def _prediction(self, probabilities: np.ndarray, outlier_score: float | None) -> dict:
        top = int(np.argmax(probabilities))
        prediction = {
            "digit": top,
            "label": self.spec.labels[top],
            "confidence": round(float(probabilities[top]), 6),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "model": self.model_info,
        }
        if outlier_score is not None:
            prediction["outlier_score"] = round(outlier_score, 6)
            prediction["outlier"] = outlier_score > self.spec.outlier_above
        return prediction

    def _header(self, index: int, name: str) -> str:
        headers = self.context.get_all_request_header(index)
        return str(next((v for k, v in headers.items() if k.lower() == name), ""))

    def _error_response(self, index: int, error: InputError) -> str:
        self.context.set_response_status(error.status, error.reason, index)
        self.context.set_response_content_type(index, "application/json")
        self.context.metrics.add_counter("RejectedInputs", 1, None, [Dimension("Reason", error.reason)])
        return json.dumps({"code": error.status, "type": error.reason, "message": str(error)})
