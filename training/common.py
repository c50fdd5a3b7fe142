"""What training, fitting and evaluation share: where the models live, the validation split,
loading a model, and uploads prepared as the reading service prepares them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from digitlens.config import ModelSpec
from digitlens.engine import load_network
from digitlens.service import ReadingService, Refusal
from ops.archive import MODEL_DIR
from training.data import load_split

__all__ = ["MODEL_DIR", "dataset_of", "load_model", "prepared_batch", "reading_service", "validation_split",
           "validation_split_index"]


def validation_split_index(count: int, validation: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the training images held out for validation, and of the rest."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[:validation], order[validation:]


def validation_split(data_dir: Path, validation: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images held out for validation: the same split training draws."""
    images, labels = load_split(data_dir, "train")
    index, _ = validation_split_index(len(images), validation, seed)
    return images[index], labels[index]


def load_model(weights: Path, spec: ModelSpec, model_dir: Path = MODEL_DIR) -> torch.nn.Module:
    return load_network(model_dir / spec.network_file, spec.network, len(spec.labels), weights).eval()


def dataset_of(config: Path) -> str:
    with open(config) as f:
        return yaml.safe_load(f).get("training", {}).get("data", "mnist")


def reading_service(model: torch.nn.Module, spec: ModelSpec, name: str, model_dir: Path = MODEL_DIR) -> ReadingService:
    """The service that serves ``model`` as the endpoint does, on the CPU (its outlier scorer read
    from ``model_dir`` where the spec names one)."""
    return ReadingService(spec, model, torch.device("cpu"), {"name": name, "version": None}, model_dir)


def prepared_batch(service: ReadingService, bodies: list[bytes]) -> tuple[np.ndarray, list[int]]:
    """Uploads prepared exactly as the endpoint prepares them, as one (N, 1, H, W) batch, and the
    indices of those it refuses (a blank input stands in for each)."""
    items = [service.decode_request(body) for body in bodies]
    blank = np.zeros((1, service.spec.input_size, service.spec.input_size), np.float32)
    refused = [index for index, item in enumerate(items) if isinstance(item, Refusal)]
    return np.stack([blank if isinstance(item, Refusal) else item.image.tensor for item in items]), refused
