"""How unlike anything the model was trained to read an image is: the outlier score.

The score reads the features the network's last layer is given (the same forward pass, caught
by a forward pre-hook) through a small network fitted offline (``training.outliers``) to tell
the model's own kind of image from generated non-examples: letters, scribbles, shapes and
patterns for the digit model, and digits and letters too for the garment model. The score is
in [0, 1]; ``outlier_above`` in the model's YAML, fitted by ``make evaluate``, says where an
image stops being one the model can name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class OutlierScorer:
    """A small network (one hidden layer of ReLUs) on the standardised features."""
    mean: np.ndarray        # (D,) the features' mean and scale over the model's own images
    scale: np.ndarray
    hidden: np.ndarray      # (D, H)
    hidden_bias: np.ndarray  # (H,)
    output: np.ndarray      # (H,)
    output_bias: float

    def as_module(self) -> "ScoringModule":
        """The scorer as a torch module, run where the network runs and on its threads (numpy's
        own BLAS threads, woken for one small product per request, cost several times the product)."""
        return ScoringModule(self)

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, scale=self.scale, hidden=self.hidden, hidden_bias=self.hidden_bias,
                 output=self.output, output_bias=np.float32(self.output_bias))

    @classmethod
    def load(cls, path: Path) -> "OutlierScorer":
        with np.load(path) as stored:
            arrays = {name: stored[name].astype(np.float32) for name in ("mean", "scale", "hidden", "hidden_bias", "output")}
            return cls(**arrays, output_bias=float(stored["output_bias"]))


class ScoringModule(nn.Module):
    """(N, D) features -> (N,) scores in [0, 1], higher the less like the model's images; the
    standardisation folded into the first layer's weights."""

    def __init__(self, scorer: OutlierScorer):
        super().__init__()
        self.register_buffer("hidden", torch.from_numpy((scorer.hidden / scorer.scale[:, None]).T.copy()))
        self.register_buffer("hidden_bias", torch.from_numpy(scorer.hidden_bias - (scorer.mean / scorer.scale) @ scorer.hidden))
        self.register_buffer("output", torch.from_numpy(scorer.output[None].copy()))
        self.register_buffer("output_bias", torch.tensor([scorer.output_bias], dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(F.linear(features, self.hidden, self.hidden_bias))
        return torch.sigmoid(F.linear(hidden, self.output, self.output_bias))[:, 0]


def feature_layer(model: nn.Module) -> nn.Linear:
    """The network's last linear layer: its input is what the outlier score reads."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError("the model has no linear layer whose input could be scored")
    return linears[-1]
