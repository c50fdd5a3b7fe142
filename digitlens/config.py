"""The model description shared by training, serving and tests (the `handler` section of the model YAML)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

EXPLAIN_METHODS = ("integrated_gradients",)
PREPROCESS_KINDS = ("digit", "photo")   # digitlens.prepare.PREPARERS implements each


@dataclass(frozen=True)
class ModelSpec:
    network: str                    # class name in network_file
    network_file: str               # beside the YAML in model/, the --model-file of the archive
    preprocess: str                 # how an upload becomes the network's input: one of PREPROCESS_KINDS
    labels: tuple[str, ...]
    input_size: int
    content_size: int               # digit: the ink's longer side is scaled to this
    mean: float
    std: float
    ink: str
    visualise_layers: tuple[str, ...]
    max_pixels: int
    temperature: float = 1.0        # logits are divided by it before the softmax (calibration)
    second_look_below: float = 0.0  # a less confident reading is averaged with four shifted ones (engine.InferenceEngine)
    threads: int = 0                # torch threads per worker; 0 leaves torch's default
    explain_methods: tuple[str, ...] = ()   # attribution methods `/explanations` offers
    explain_steps: int = 32         # integration steps of Integrated Gradients
    outlier_scorer: str = ""        # in model/, beside network_file: the fitted outlier score (digitlens.outliers); none if empty
    string_reader: str = ""         # in model/: the weights of the reader that splits touching digits (digitlens.strings)
    outlier_above: float = 1.0      # a score above this is an outlier: not something the model can name

    def __post_init__(self):
        if self.preprocess not in PREPROCESS_KINDS:
            raise ValueError(f"preprocess must be one of {list(PREPROCESS_KINDS)}, not {self.preprocess!r}")
        if self.ink not in ("light", "dark"):
            raise ValueError(f"ink must be 'light' or 'dark', not {self.ink!r}")
        if not 0 < self.content_size <= self.input_size:
            raise ValueError("content_size must be positive and at most input_size")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, not {self.temperature}")
        if not 0 <= self.second_look_below <= 1:
            raise ValueError(f"second_look_below is a confidence from 0 to 1, not {self.second_look_below}")
        if not 0 <= self.outlier_above <= 1:
            raise ValueError(f"outlier_above is a score from 0 to 1, not {self.outlier_above}")
        unknown = set(self.explain_methods) - set(EXPLAIN_METHODS)
        if unknown:
            raise ValueError(f"unknown explain methods {sorted(unknown)}; known: {list(EXPLAIN_METHODS)}")

    def normalise(self, pixels):
        """Pixel values in [0, 1] (a numpy array or a tensor) to what the network takes."""
        return (pixels - self.mean) / self.std

    @property
    def blank_value(self) -> float:
        """What an empty input (only background) is after normalisation."""
        return float(self.normalise(0.0 if self.ink == "light" else 1.0))

    def label_index(self, name: str) -> int:
        """The class a client names, by label or by index; ValueError if there is none."""
        if name in self.labels:
            return self.labels.index(name)
        if name.isdigit() and int(name) < len(self.labels):
            return int(name)
        raise ValueError(f"{name!r} is not a class of this model (labels: {', '.join(self.labels)})")

    @classmethod
    def from_mapping(cls, section: dict) -> "ModelSpec":
        return cls(
            network=section["network"],
            network_file=section["network_file"],
            preprocess=section["preprocess"],
            labels=tuple(str(label) for label in section["labels"]),
            input_size=int(section["input_size"]),
            content_size=int(section.get("content_size", section["input_size"])),
            mean=float(section["mean"]),
            std=float(section["std"]),
            ink=section["ink"],
            visualise_layers=tuple(section["visualise_layers"]),
            max_pixels=int(section["max_pixels"]),
            temperature=float(section.get("temperature", 1.0)),
            second_look_below=float(section.get("second_look_below", 0.0)),
            threads=int(section.get("threads", 0)),
            explain_methods=tuple(section.get("explain", {}).get("methods", ())),
            explain_steps=int(section.get("explain", {}).get("steps", 32)),
            outlier_scorer=str(section.get("outlier_scorer", "")),
            string_reader=str(section.get("string_reader", "")),
            outlier_above=float(section.get("outlier_above", 1.0)),
        )

    @classmethod
    def from_yaml(cls, path: Path) -> "ModelSpec":
        with open(path) as f:
            return cls.from_mapping(yaml.safe_load(f)["handler"])
