"""What one request asks of the model, once its image is prepared."""
from __future__ import annotations

from dataclasses import dataclass

from digitlens.preprocess import PreparedImage


@dataclass(frozen=True)
class Job:
    image: PreparedImage
    explain: bool               # attributions, not only a prediction
    target: int | None          # the class to explain; None: the predicted one
    charts: bool                # PNG charts in the answer
