"""A third classifier is a network file, weights, a YAML and one archive command: this one has
three classes, 32x32 inputs and two hooked layers, and the same handler serves it on a running
TorchServe exactly as the core computes it, charts and errors included."""
import json
import shutil

import numpy as np
import pytest
import requests
import torch
import yaml
from PIL import Image

from digitlens.config import ModelSpec
from digitlens.engine import InferenceEngine, load_network
from digitlens.prepare import prepare
from ops.archive import build_archive
from training.presentations import encode

NETWORK = '''
from torch import nn


class ShapeNet(nn.Module):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.head(self.conv2(self.conv1(x)))
'''
DESCRIPTION = {
    "minWorkers": 1, "maxWorkers": 1, "batchSize": 4, "maxBatchDelay": 1, "responseTimeout": 30,
    "handler": {"network": "ShapeNet", "network_file": "shapenet.py", "preprocess": "photo",
                "labels": ["circle", "square", "triangle"], "input_size": 32, "mean": 0.5, "std": 0.25,
                "ink": "light", "visualise_layers": ["conv1", "conv2"], "max_pixels": 4000000, "threads": 1},
    "page": {"title": "Shapes", "prompt": "Upload a drawn shape.", "input_caption": "32 px, light on black"},
}
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """model/-style files for the third model, and its archive in a store of its own."""
    folder = tmp_path_factory.mktemp("third_model")
    (folder / "shapenet.py").write_text(NETWORK)
    (folder / "shapes.yaml").write_text(yaml.safe_dump(DESCRIPTION))
    torch.manual_seed(0)
    network = load_network(folder / "shapenet.py", "ShapeNet", 3)
    torch.save(network.state_dict(), folder / "shapes.pt")
    archive = build_archive("shapes", "1.0", folder / "shapes.pt", folder / "shapes.yaml", folder / "shapenet.py",
                            folder / "store")
    return folder, archive


def a_square() -> bytes:
    page = Image.new("RGB", (120, 90), "white")
    page.paste((30, 30, 30), (35, 20, 85, 70))
    return encode(page, "PNG")


def test_a_third_model_is_served_by_the_same_handler_as_the_core_computes_it(torchserve, shapes):
    folder, archive = shapes
    shutil.copy(archive, torchserve.model_store / archive.name)
    registered = requests.post(f"{torchserve.management_url}/models", timeout=120,
                               params={"url": archive.name, "initial_workers": 1, "synchronous": "true"})
    assert registered.ok, registered.text
    try:
        response = requests.post(f"{torchserve.inference_url}/predictions/shapes", data=a_square(),
                                 headers={**OCTET, "X-Charts": "1"}, timeout=60)
        assert response.status_code == 200, response.text
        result = response.json()
        spec = ModelSpec.from_yaml(folder / "shapes.yaml")
        engine = InferenceEngine.for_model(load_network(folder / "shapenet.py", "ShapeNet", 3, folder / "shapes.pt"),
                                          spec, torch.device("cpu"))
        expected = engine.predict(prepare(a_square(), spec).tensor[None]).probabilities[0]
        assert np.allclose(result["probabilities"], expected, atol=1e-5)
        assert result["label"] == spec.labels[int(expected.argmax())] and result["model"] == {"name": "shapes", "version": "1.0"}
        assert set(result["charts"]["activations"]) == {"conv1", "conv2"}
        blank = requests.post(f"{torchserve.inference_url}/predictions/shapes", data=encode(Image.new("L", (64, 64), 255), "PNG"),
                              headers=OCTET, timeout=60)
        assert blank.status_code == 422 and blank.json()["type"] == "blank"
        unexplained = requests.post(f"{torchserve.inference_url}/explanations/shapes", data=a_square(), headers=OCTET, timeout=60)
        assert unexplained.status_code == 400 and unexplained.json()["type"] == "no_explanations"
    finally:
        requests.delete(f"{torchserve.management_url}/models/shapes/1.0", timeout=60)


def test_the_archive_command_lists_the_third_model_for_the_page(shapes):
    folder, archive = shapes
    catalogue = json.loads((archive.parent / "models.json").read_text())["models"]
    assert [entry["name"] for entry in catalogue] == ["shapes"]
    assert catalogue[0]["labels"] == ["circle", "square", "triangle"] and catalogue[0]["title"] == "Shapes"
    assert catalogue[0]["input_size"] == 32 and catalogue[0]["explanations"] is False
