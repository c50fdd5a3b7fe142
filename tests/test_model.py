"""The committed weights against the committed report, on the full 10,000-image test set."""
import json

import pytest

from model.network import DigitNet
from training.evaluate import MODEL_DIR, load_model, evaluate_on_test_set

REPORT = json.loads((MODEL_DIR / "mnist-report.json").read_text())


@pytest.fixture(scope="module")
def metrics(spec):
    return evaluate_on_test_set(load_model(MODEL_DIR / "mnist.pt", spec), spec)


def test_committed_weights_reach_the_reported_accuracy_on_all_test_images(metrics):
    assert metrics["test_images"] == 10000
    assert metrics["test_accuracy"] == pytest.approx(REPORT["test_accuracy"], abs=2e-4)
    assert metrics["test_accuracy"] >= 0.9975


def test_report_matches_the_evaluation(metrics):
    # Another CPU's kernels may flip a borderline image or two, never more.
    moved = sum(abs(a - b) for row, reported in zip(metrics["confusion_matrix"], REPORT["confusion_matrix"])
                for a, b in zip(row, reported))
    assert moved <= 4
    assert REPORT["parameters"] == sum(p.numel() for p in DigitNet().parameters())
    assert set(REPORT["data_sha256"]) == {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
