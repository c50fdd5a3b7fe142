"""The model description shared by training, serving and tests (the `handler` section of the model YAML)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class ModelSpec:
    network: str
    labels: tuple[str, ...]
    input_size: int
    content_size: int
    mean: float
    std: float
    ink: str
    visualise_layers: tuple[str, ...]
    max_pixels: int

    def __post_init__(self):
        if self.ink not in ("light", "dark"):
            raise ValueError(f"ink must be 'light' or 'dark', not {self.ink!r}")
        if not 0 < self.content_size <= self.input_size:
            raise ValueError("content_size must be positive and at most input_size")

    def normalise(self, pixels):
        """Pixel values in [0, 1] (a numpy array or a tensor) to what the network takes."""
        return (pixels - self.mean) / self.std

    @classmethod
    def from_mapping(cls, section: dict) -> "ModelSpec":
        return cls(
            network=section["network"],
            labels=tuple(str(label) for label in section["labels"]),
            input_size=int(section["input_size"]),
            content_size=int(section["content_size"]),
            mean=float(section["mean"]),
            std=float(section["std"]),
            ink=section["ink"],
            visualise_layers=tuple(section["visualise_layers"]),
            max_pixels=int(section["max_pixels"]),
        )

    @classmethod
    def from_yaml(cls, path: Path) -> "ModelSpec":
        with open(path) as f:
            return cls.from_mapping(yaml.safe_load(f)["handler"])
