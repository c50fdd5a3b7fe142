"""What one request asks of the model, once its image is prepared."""
from __future__ import annotations

from dataclasses import dataclass

from digitlens.numbers import NumberDigit
from digitlens.preprocess import PreparedImage


@dataclass(frozen=True)
class Job:
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
