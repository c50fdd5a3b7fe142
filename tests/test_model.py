"""The committed weights against the committed reports, on the full 10,000-image test sets."""
import json

import pytest

from digitlens.config import ModelSpec
from digitlens.engine import load_network
from training.data import DATASET_SHA256, fetch_dataset
from training.common import MODEL_DIR, dataset_of, load_model
from training.evaluate import evaluate_on_test_set

FLOORS = {"mnist": 0.9975, "fashion": 0.93}      # the issues' acceptance figures


@pytest.fixture(scope="module", params=sorted(FLOORS))
def evaluated(request):
    name = request.param
    config = MODEL_DIR / f"{name}.yaml"
    spec = ModelSpec.from_yaml(config)
    report = json.loads((MODEL_DIR / f"{name}-report.json").read_text())
    metrics = evaluate_on_test_set(load_model(MODEL_DIR / f"{name}.pt", spec), spec, fetch_dataset(dataset_of(config)))
    return name, spec, report, metrics


def test_committed_weights_reach_the_reported_accuracy_on_all_test_images(evaluated):
    name, _, report, metrics = evaluated
    assert metrics["test_images"] == 10000
    assert metrics["test_accuracy"] == pytest.approx(report["test_accuracy"], abs=2e-4)
    assert metrics["test_accuracy"] >= FLOORS[name]


def test_report_matches_the_evaluation(evaluated):
    name, spec, report, metrics = evaluated
    # Another CPU's kernels may flip a borderline image or two, never more.
    moved = sum(abs(a - b) for row, reported in zip(metrics["confusion_matrix"], report["confusion_matrix"])
                for a, b in zip(row, reported))
    assert moved <= 4
    network = load_network(MODEL_DIR / spec.network_file, spec.network, len(spec.labels))
    assert report["model"] == spec.network
    assert report["parameters"] == sum(p.numel() for p in network.parameters())
    assert report["data_sha256"] == DATASET_SHA256[dataset_of(MODEL_DIR / f"{name}.yaml")]
