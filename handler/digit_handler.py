"""TorchServe adapter for Digit Lens: requests in, JSON out; the work is in `digitlens`.

Each stage takes and returns a whole batch. A request that cannot be used (not an image,
too big, blank) becomes an error entry for that request alone, answered with its own 4xx
status and JSON body, while the rest of the batch is predicted as usual.
"""
import importlib.util
import json
import logging
import os
import time

import numpy as np
import torch
from ts.metrics.dimension import Dimension
from ts.torch_handler.base_handler import BaseHandler

from digitlens.config import ModelSpec
from digitlens.engine import InferenceEngine
from digitlens.preprocess import InputError, body_bytes, prepare
from digitlens.render import ProbabilityChart, render_activation_grid, render_input

logger = logging.getLogger(__name__)
CHARTS_HEADER = "x-charts"


class DigitLensHandler(BaseHandler):
    def initialize(self, context):
        properties = context.system_properties
        model_dir = properties["model_dir"]
        manifest = context.manifest["model"]
        self.spec = ModelSpec.from_mapping(context.model_yaml_config["handler"])
        if torch.cuda.is_available() and properties.get("gpu_id") is not None:
            self.device = torch.device(f"cuda:{properties['gpu_id']}")
        else:
            self.device = torch.device("cpu")
        network = self._load_network(os.path.join(model_dir, manifest["modelFile"]),
                                     os.path.join(model_dir, manifest["serializedFile"]))
        self.engine = InferenceEngine(network, self.spec.visualise_layers, self.device)
        self.chart = ProbabilityChart(self.spec.labels)
        self.model_info = {"name": context.model_name, "version": manifest.get("modelVersion")}
        self.initialized = True
        logger.info("Digit Lens model %s loaded on %s", self.model_info, self.device)

    def _load_network(self, model_file: str, weights_file: str) -> torch.nn.Module:
        module_spec = importlib.util.spec_from_file_location("digitlens_network", model_file)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        network = getattr(module, self.spec.network)(num_classes=len(self.spec.labels))
        network.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
        return network

    def preprocess(self, requests):
        """Each request's image prepared for the network, or the InputError it raised."""
        started = time.perf_counter()
        prepared = []
        for row in requests:
            try:
                prepared.append(prepare(body_bytes(row.get("data", row.get("body"))), self.spec))
            except InputError as error:
                prepared.append(error)
        self.context.metrics.add_time("PreprocessTime", round((time.perf_counter() - started) * 1000, 3), None, "ms")
        return prepared

    def inference(self, prepared):
        images = [item for item in prepared if not isinstance(item, InputError)]
        result = self.engine.predict(np.stack([item.tensor for item in images])) if images else None
        return prepared, result

    def postprocess(self, data):
        prepared, result = data
        responses, position, rendering = [], 0, 0.0
        for index, item in enumerate(prepared):
            if isinstance(item, InputError):
                responses.append(self._error_response(index, item))
                continue
            probabilities = result.probabilities[position]
            response = self._prediction(probabilities)
            if self._wants_charts(index):
                started = time.perf_counter()
                response["charts"] = self._charts(probabilities, result, position, item.pixels)
                rendering += time.perf_counter() - started
            self.context.set_response_content_type(index, "application/json")
            self.context.metrics.add_counter("PredictionsPerDigit", 1, None,
                                             [Dimension("Digit", self.spec.labels[response["digit"]])])
            responses.append(response)
            position += 1
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

    def describe_handle(self):
        """Answers `GET /models/<name>?customized=true` on the management API."""
        return json.dumps({"device": str(self.device), "visualised_layers": list(self.engine.layer_names),
                           "forward_hooks": self.engine.hook_count, "labels": list(self.spec.labels)})

    def _prediction(self, probabilities: np.ndarray) -> dict:
        top = int(np.argmax(probabilities))
        return {
            "digit": top,
            "label": self.spec.labels[top],
            "confidence": round(float(probabilities[top]), 6),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "model": self.model_info,
        }

    def _wants_charts(self, index: int) -> bool:
        headers = self.context.get_all_request_header(index)
        value = next((v for k, v in headers.items() if k.lower() == CHARTS_HEADER), "")
        return str(value).strip().lower() in ("1", "true", "yes")

    def _error_response(self, index: int, error: InputError) -> str:
        self.context.set_response_status(error.status, error.reason, index)
        self.context.set_response_content_type(index, "application/json")
        self.context.metrics.add_counter("RejectedInputs", 1, None, [Dimension("Reason", error.reason)])
        return json.dumps({"code": error.status, "type": error.reason, "message": str(error)})
