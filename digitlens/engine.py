"""Batched inference that also records what the chosen layers saw."""
from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from digitlens.config import ModelSpec
from digitlens.outliers import OutlierScorer, feature_layer


def load_network(network_file: Path, class_name: str, num_classes: int, weights: Path | None = None) -> nn.Module:
    """An instance of ``class_name`` from the Python file ``network_file`` (not an installed
    module: an archive carries it as its --model-file), with ``weights`` loaded if given."""
    module_spec = importlib.util.spec_from_file_location(f"network_{Path(network_file).stem}", network_file)
    if module_spec is None:
        raise FileNotFoundError(f"{network_file} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    network = getattr(module, class_name)(num_classes=num_classes)
    if weights is not None:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return network


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """An evaluation copy of ``model`` in which each BatchNorm2d that directly follows a Conv2d
    inside a Sequential is folded into that convolution; its parameters need no gradients, and
    it has no forward hooks or pre-hooks of ``model``'s (those hold on to the engine that made them)."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for index in range(len(module) - 1):
            conv, norm = module[index], module[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module[index], module[index + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
    for module in folded.modules():         # a copy carries none of the original's hooks, pre-hooks included
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    return folded.requires_grad_(False)


SECOND_LOOK_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))     # (rows, columns): one pixel each way


def shifted(batch: np.ndarray, rows: int, columns: int, fill: float) -> np.ndarray:
    """``batch`` (N, C, H, W) moved by whole pixels, the edge it uncovers filled with ``fill``."""
    height, width = batch.shape[2:]
    moved = np.full_like(batch, fill)
    moved[..., max(rows, 0):height + min(rows, 0), max(columns, 0):width + min(columns, 0)] = \
        batch[..., max(-rows, 0):height + min(-rows, 0), max(-columns, 0):width + min(-columns, 0)]
    return moved


@dataclass(frozen=True)
class BatchResult:
    probabilities: np.ndarray               # (N, classes), rows sum to 1
    activations: dict[str, np.ndarray]      # layer name -> (N, channels, H, W)
    outlier_scores: np.ndarray | None = None    # (N,) in [0, 1] where the model has an outlier scorer


class InferenceEngine:
    """Runs a model on batches and captures the outputs of named layers.

    The forward hooks are registered once, here, and overwrite one slot per layer on every
    forward pass, so repeated requests neither add hooks nor keep old activations alive.

    A second look: an image the network reads with a calibrated confidence under
    ``second_look_below`` is read four more times, moved by one pixel each way, and the five
    readings' log-probabilities are averaged. Centring by mass rounds the digit's place to a
    whole pixel; the doubtful cases (one or two uploads in a hundred) should not hang on that.
    """

    def __init__(self, model: nn.Module, layer_names: tuple[str, ...], device: torch.device,
                 temperature: float = 1.0, second_look_below: float = 0.0, background: float = 0.0,
                 scorer: OutlierScorer | None = None):
        # Batch norms folded and channels-last tensors: the same function, about half the time of
        # the network as trained (bench/RESULTS.md). The caller's model is left as it is.
        self.model = fold_batch_norms(model).to(device, memory_format=torch.channels_last)
        self.device = device
        self.temperature = temperature
        self.second_look_below = second_look_below
        self.background = background          # the normalised value of an empty pixel, for shifted copies
        modules = dict(self.model.named_modules())
        unknown = [name for name in layer_names if name not in modules]
        if unknown:
            raise ValueError(f"layers {unknown} are not in the model; it has {[n for n in modules if n]}")
        self.layer_names = tuple(layer_names)
        self._captured: dict[str, torch.Tensor] = {}
        self._hooks = [modules[name].register_forward_hook(self._recorder(name)) for name in layer_names]
        self.scorer = None if scorer is None else scorer.as_module().to(device)
        if scorer is not None:
            self._hooks.append(feature_layer(self.model).register_forward_pre_hook(self._feature_recorder))

    @classmethod
    def for_model(cls, model: nn.Module, spec: ModelSpec, device: torch.device,
                  model_dir: Path | None = None) -> "InferenceEngine":
        """The engine a model's description asks for: its hooked layers, temperature, second look
        and outlier scorer (read from ``model_dir``, where the YAML names one)."""
        scorer = OutlierScorer.load(Path(model_dir) / spec.outlier_scorer) if model_dir and spec.outlier_scorer else None
        return cls(model, spec.visualise_layers, device, spec.temperature, spec.second_look_below, spec.blank_value,
                   scorer)

    def _feature_recorder(self, _module, inputs):
        self._features = inputs[0].detach()

    def _recorder(self, name: str):
        def record(_module, _inputs, output):
            self._captured[name] = output.detach()
        return record

    @property
    def hook_count(self) -> int:
        return sum(len(module._forward_hooks) + len(module._forward_pre_hooks) for module in self.model.modules())

    def predict(self, batch: np.ndarray, with_activations: bool = True) -> BatchResult:
        """``batch`` is (N, 1, H, W) float32, already normalised. Probabilities are calibrated:
        the softmax of the logits divided by the temperature (then the second look, if any).
        Without ``with_activations`` the captured layers are not copied out (from a GPU, that
        copy is most of the answer's bytes)."""
        with torch.inference_mode():
            log_probabilities = self._log_probabilities(batch)
            activations = {name: self._captured[name].float().contiguous().cpu().numpy() for name in self.layer_names
                           if with_activations}
            outlier_scores = None
            if self.scorer is not None:
                outlier_scores = self.scorer(self._features.float().flatten(1)).cpu().numpy()
            confidence = log_probabilities.max(1).values.exp().cpu().numpy()
            doubtful = np.flatnonzero(confidence < self.second_look_below)
            if doubtful.size:
                rows = torch.from_numpy(doubtful).to(self.device)
                log_probabilities[rows] = self._second_look(batch[doubtful], log_probabilities[rows])
            probabilities = log_probabilities.exp().cpu().numpy()
        self._captured.clear()
        self._features = None
        return BatchResult(probabilities=probabilities, activations=activations, outlier_scores=outlier_scores)

    def _log_probabilities(self, batch: np.ndarray) -> torch.Tensor:
        inputs = torch.from_numpy(batch).to(self.device, non_blocking=True)
        logits = self.model(inputs.contiguous(memory_format=torch.channels_last))
        return torch.log_softmax(logits.float() / self.temperature, dim=1)

    def _second_look(self, images: np.ndarray, first: torch.Tensor) -> torch.Tensor:
        moved = np.concatenate([shifted(images, rows, columns, self.background) for rows, columns in SECOND_LOOK_SHIFTS])
        readings = self._log_probabilities(moved).view(len(SECOND_LOOK_SHIFTS), len(images), -1)
        return torch.log_softmax((first + readings.sum(0)) / (len(SECOND_LOOK_SHIFTS) + 1), dim=1)
