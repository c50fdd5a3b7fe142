"""What one request asks of the model once its image is prepared, and what the model made of it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitlens.prepare import NumberDigit, PreparedImage


@dataclass(frozen=True)
class Job:
    """One digit (or garment) to read."""
    image: PreparedImage
    explain: bool               # attributions, not only a prediction
    target: int | None          # the class to explain; None: the predicted one
    charts: bool                # PNG charts in the answer

    @property
    def images(self) -> tuple[PreparedImage, ...]:
        return (self.image,)


@dataclass(frozen=True)
class NumberJob:
    """A whole number to read (the header ``X-Read: number``): one image per digit, left to right."""
    digits: tuple[NumberDigit, ...]
    charts: bool
    explain = False             # explanations are asked of one digit at a time

    @property
    def images(self) -> tuple[PreparedImage, ...]:
        return tuple(digit.image for digit in self.digits)


@dataclass(frozen=True)
class Reading:
    """What the model made of one job: a row per image (one, or one per digit of a number)."""
    probabilities: np.ndarray                   # (rows, classes), calibrated
    outlier_scores: np.ndarray | None           # (rows,) where the model has an outlier scorer
    activations: dict[str, np.ndarray]         # layer -> (rows, C, H, W); empty unless charts were asked
    explanation: tuple[int, np.ndarray, float] | None = None    # target, attributions (H, W), convergence delta
