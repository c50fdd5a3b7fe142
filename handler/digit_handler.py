"""TorchServe adapter for Digit Lens: the server's context in, metrics out; what an answer is
lives in `digitlens.service` (the reading service), which knows no server.

Every model is served by this handler unchanged: what differs (network, labels, preprocessing,
normalisation, hooked layers) comes from the model's YAML in its archive. Each stage takes and
returns a whole batch; a request that cannot be used gets its own 4xx status and JSON body while
the rest of the batch is answered as usual.
"""
import json
import logging
import time

import torch
from ts.metrics.dimension import Dimension
from ts.torch_handler.base_handler import BaseHandler

from digitlens.config import ModelSpec
from digitlens.service import ReadingService, Refusal, tally

logger = logging.getLogger(__name__)
COUNTERS = {"outliers": "Outliers", "numbers": "NumbersRead", "number digits": "NumberDigits"}


class DigitLensHandler(BaseHandler):
    def initialize(self, context):
        properties = context.system_properties
        manifest = context.manifest["model"]
        spec = ModelSpec.from_mapping(context.model_yaml_config["handler"])
        if spec.threads:
            torch.set_num_threads(spec.threads)
        gpu = torch.cuda.is_available() and properties.get("gpu_id") is not None
        device = torch.device(f"cuda:{properties['gpu_id']}" if gpu else "cpu")
        self.service = ReadingService.from_model_dir(
            properties["model_dir"], spec, manifest["modelFile"], manifest["serializedFile"], device,
            {"name": context.model_name, "version": manifest.get("modelVersion")})
        self.initialized = True
        logger.info("Digit Lens model %s loaded on %s", self.service.model_info, device)

    def preprocess(self, requests):
        started = time.perf_counter()
        items = [self.service.decode_request(row.get("data", row.get("body")), self.context.get_all_request_header(index))
                 for index, row in enumerate(requests)]
        self._time("PreprocessTime", started)
        return items

    def inference(self, items):
        readings = self.service.predict(items)
        if any(getattr(item, "explain", False) for item in items):
            started = time.perf_counter()
            readings = self.service.explain(items, readings)
            self._time("ExplainTime", started)
        return items, readings

    def explain_handle(self, data_preprocess, raw_data):
        """TorchServe calls this instead of inference/postprocess when request 0 is an explanation;
        the service answers every request as it asked, whatever request 0 was."""
        return self.postprocess(self.inference(data_preprocess))

    def postprocess(self, data):
        items, readings = data
        started = time.perf_counter()
        answers = [self.service.encode_response(item, reading) for item, reading in zip(items, readings)]
        if any(getattr(item, "charts", False) or getattr(item, "explain", False) for item in items):
            self._time("RenderTime", started)
        for index, ((status, answer), item) in enumerate(zip(answers, items)):
            self.context.set_response_content_type(index, "application/json")
            request_id = self.service.request_id(self.context.get_all_request_header(index),
                                                 self.context.get_request_id(index))
            answer["request_id"] = request_id
            if isinstance(item, Refusal):
                self.context.set_response_status(status, item.reason, index)
                logger.info("request %s refused: %d %s: %s", request_id, status, item.reason, item.message)
        self._count(tally(answers))
        return [json.dumps(answer) if status != 200 else answer for status, answer in answers]

    def _count(self, counts) -> None:
        """One metric update per name (and label) and batch, not per request."""
        for key, count in counts.items():
            if isinstance(key, tuple):
                name, dimension = ("PredictionsPerDigit", "Digit") if key[0] == "label" else ("RejectedInputs", "Reason")
                self.context.metrics.add_counter(name, count, None, [Dimension(dimension, key[1])])
            else:
                self.context.metrics.add_counter(COUNTERS[key], count, None, [])

    def _time(self, metric: str, started: float) -> None:
        self.context.metrics.add_time(metric, round((time.perf_counter() - started) * 1000, 3), None, "ms")

    def describe_handle(self):
        """Answers `GET /models/<name>?customized=true` on the management API."""
        return json.dumps(self.service.describe())
