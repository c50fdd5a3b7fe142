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

CONVERGENCE_TOLERANCE = 0.1     # |convergence delta| allowed, as a share of the logit difference explained
MAX_STEP_DOUBLINGS = 2          # so at most 4x the configured steps, for the images that need them


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
        explain for each image. An image whose attributions miss the logit difference they explain
        by more than CONVERGENCE_TOLERANCE of it is integrated again with twice the steps, up to
        MAX_STEP_DOUBLINGS times: most images converge in the configured steps, a few need more."""
        inputs = torch.from_numpy(batch).to(self.device)
        targets = torch.tensor(targets, device=self.device)
        attributions, delta = self._attribute(inputs, targets, self.steps)
        for doubling in range(1, MAX_STEP_DOUBLINGS + 1):
            explained = attributions.flatten(1).sum(1) - delta          # logit(input) - logit(blank)
            unconverged = delta.abs() > CONVERGENCE_TOLERANCE * explained.abs()
            if not unconverged.any():
                break
            attributions[unconverged], delta[unconverged] = self._attribute(
                inputs[unconverged], targets[unconverged], self.steps * 2 ** doubling)
        return Explanation(attributions=attributions[:, 0].float().cpu().numpy(),
                           convergence_delta=delta.float().cpu().numpy())

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        attributions, delta = self._integrated_gradients.attribute(
            inputs, torch.full_like(inputs, self.blank_value), target=targets, n_steps=steps,
            return_convergence_delta=True)
        return attributions.detach(), delta.detach()
