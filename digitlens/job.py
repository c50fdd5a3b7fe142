"""What one request asks of the model once its image is prepared, and what the model made of it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from digitlens.prepare import NumberDigit, NumberPart, PreparedImage


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
    """A whole number to read (the header ``X-Read: number``): its groups of ink, left to right;
    which are several touching digits the string reader says when the job is read."""
    parts: tuple[NumberPart, ...]
    charts: bool
    explain = False             # explanations are asked of one digit at a time


@dataclass(frozen=True)
class Reading:
    """What the model made of one job: a row per image (one, or one per digit of a number)."""
    probabilities: np.ndarray                   # (rows, classes), calibrated
    outlier_scores: np.ndarray | None           # (rows,) where the model has an outlier scorer
    activations: dict[str, np.ndarray]         # layer -> (rows, C, H, W); empty unless charts were asked
    explanation: tuple[int, np.ndarray, float] | None = None    # target, attributions (H, W), convergence delta
    digits: tuple[NumberDigit, ...] = ()        # a number's digits, a row each, as its runs were split
    network_probabilities: np.ndarray | None = None     # a number's (rows, classes) as the network alone read them
    several_digits: bool = False                # one digit's ink the string reader reads as several touching


def number_reading(reading: Reading, digits: list[tuple[NumberDigit, np.ndarray | None]]) -> Reading:
    """A number's reading of its ``digits`` (each with the string reader's probabilities, or
    None where the network alone read it): the string reader's probabilities where it read the
    digit, the network's for the rest, and the network's own kept beside them."""
    by_strings = np.asarray([probabilities is not None for _, probabilities in digits])
    probabilities = reading.probabilities.copy()
    if by_strings.any():
        probabilities[by_strings] = np.stack([p for _, p in digits if p is not None])
    return dataclasses.replace(reading, probabilities=probabilities, digits=tuple(digit for digit, _ in digits),
                               network_probabilities=reading.probabilities)
