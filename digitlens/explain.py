"""Which input pixels made the network choose a class: attributions for a batch.

Integrated Gradients (Captum) integrates the gradient of the explained class's logit along
the straight path from a baseline to the input. The baseline is the blank input (the
training images' background after normalisation), so the attributions of an image add up
to logit(input) - logit(blank) for that class; `convergence_delta` is how far the numerical
integral is from that sum. Gradients are needed, so none of this runs under
``torch.inference_mode()``.

Attribution runs on its own copy of the network with every batch norm folded into the
convolution before it: the same function (to float rounding), a quarter less work for the
steps x images forward and backward passes, and none of the serving copy's forward hooks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients
from torch import nn

from digitlens.engine import fold_batch_norms

@dataclass(frozen=True)
class Explanation:
    attributions: np.ndarray        # (N, H, W) float32, signed: positive pixels argue for the target
    convergence_delta: np.ndarray   # (N,) sum of attributions minus the logit difference they explain


class Explainer:
    def __init__(self, model: nn.Module, blank_value: float, steps: int, device: torch.device):
        self.model = fold_batch_norms(model).to(device, memory_format=torch.contiguous_format)
        self.blank_value = blank_value
        self.steps = steps
        self.device = device
        self._integrated_gradients = IntegratedGradients(self.model)

    def explain(self, batch: np.ndarray, targets: list[int]) -> Explanation:
        """``batch`` is (N, 1, H, W) float32, normalised as the network takes it; ``targets`` the class to
        explain for each image."""
        inputs = torch.from_numpy(batch).to(self.device)
        baselines = torch.full_like(inputs, self.blank_value)
        attributions, delta = self._integrated_gradients.attribute(
            inputs, baselines, target=torch.tensor(targets, device=self.device), n_steps=self.steps,
            return_convergence_delta=True)
        return Explanation(attributions=attributions[:, 0].float().cpu().numpy(),
                           convergence_delta=delta.float().cpu().numpy())
