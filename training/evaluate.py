"""Evaluate trained weights on the full MNIST test set and write or check the report."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from digitlens.config import ModelSpec
from model.network import DigitNet
from training.data import DEFAULT_CACHE, fetch_mnist, load_split

MODEL_DIR = Path(__file__).resolve().parents[1] / "model"


def normalise(images: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 (N, H, W) images to the float (N, 1, H, W) tensor the network takes."""
    return spec.normalise(images.float() / 255.0).unsqueeze(1)


@torch.inference_mode()
def predict_all(model: torch.nn.Module, images: torch.Tensor, spec: ModelSpec, batch_size: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([model(normalise(images[i:i + batch_size], spec)).argmax(1)
                      for i in range(0, len(images), batch_size)])


def evaluate_on_test_set(model: torch.nn.Module, spec: ModelSpec, cache_dir: Path = DEFAULT_CACHE) -> dict:
    images, labels = load_split(fetch_mnist(cache_dir), "t10k")
    predicted = predict_all(model, images, spec)
    classes = len(spec.labels)
    confusion = torch.zeros(classes, classes, dtype=torch.int64)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = confusion.diag().double() / confusion.sum(1).double()
    return {
        "test_images": len(labels),
        "test_accuracy": round((predicted == labels).double().mean().item(), 6),
        "test_errors": int((predicted != labels).sum()),
        "per_class_accuracy": {spec.labels[c]: round(per_class[c].item(), 6) for c in range(classes)},
        "confusion_matrix": confusion.tolist(),
    }


def load_model(weights: Path, spec: ModelSpec) -> DigitNet:
    model = DigitNet(num_classes=len(spec.labels))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, default=MODEL_DIR / "mnist.pt")
    parser.add_argument("--config", type=Path, default=MODEL_DIR / "mnist.yaml")
    parser.add_argument("--report", type=Path, default=MODEL_DIR / "mnist-report.json")
    args = parser.parse_args(argv)
    spec = ModelSpec.from_yaml(args.config)
    metrics = evaluate_on_test_set(load_model(args.weights, spec), spec)
    print(json.dumps({k: metrics[k] for k in ("test_images", "test_accuracy", "test_errors")}))
    report = json.loads(args.report.read_text()) if args.report.exists() else {}
    report.update(metrics)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
