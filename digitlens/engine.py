"""Batched inference that also records what the chosen layers saw."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class BatchResult:
    probabilities: np.ndarray               # (N, classes), rows sum to 1
    activations: dict[str, np.ndarray]      # layer name -> (N, channels, H, W)


class InferenceEngine:
    """Runs a model on batches and captures the outputs of named layers.

    The forward hooks are registered once, here, and overwrite one slot per layer on every
    forward pass, so repeated requests neither add hooks nor keep old activations alive.
    """

    def __init__(self, model: nn.Module, layer_names: tuple[str, ...], device: torch.device,
                 temperature: float = 1.0):
        self.model = model.to(device).eval()
        self.device = device
        self.temperature = temperature
        modules = dict(model.named_modules())
        unknown = [name for name in layer_names if name not in modules]
        if unknown:
            raise ValueError(f"layers {unknown} are not in the model; it has {[n for n in modules if n]}")
        self.layer_names = tuple(layer_names)
        self._captured: dict[str, torch.Tensor] = {}
        self._hooks = [modules[name].register_forward_hook(self._recorder(name)) for name in layer_names]

    def _recorder(self, name: str):
        def record(_module, _inputs, output):
            self._captured[name] = output.detach()
        return record

    @property
    def hook_count(self) -> int:
        return sum(len(module._forward_hooks) for module in self.model.modules())

    def predict(self, batch: np.ndarray) -> BatchResult:
        """``batch`` is (N, 1, H, W) float32, already normalised. Probabilities are calibrated:
        the softmax of the logits divided by the temperature."""
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(batch).to(self.device, non_blocking=True))
            probabilities = torch.softmax(logits.float() / self.temperature, dim=1).cpu().numpy()
            activations = {name: self._captured[name].float().cpu().numpy() for name in self.layer_names}
        self._captured.clear()
        return BatchResult(probabilities=probabilities, activations=activations)
