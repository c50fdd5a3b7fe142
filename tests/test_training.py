import json

import torch

from training import train
from training.augment import augment_batch
from training.data import DEFAULT_CACHE, load_split


def test_augmentation_keeps_shape_and_range_and_changes_the_images():
    images, _ = load_split(DEFAULT_CACHE, "t10k")
    batch = images[:64].float().unsqueeze(1) / 255
    augmented = augment_batch(batch, torch.Generator().manual_seed(0))
    assert augmented.shape == batch.shape
    assert augmented.min() >= 0 and augmented.max() <= 1
    assert (augmented - batch).abs().mean() > 0.02
    # the digit is still there: most of the ink survives
    assert augmented.sum(dim=(1, 2, 3)).min() > 0.3 * batch.sum(dim=(1, 2, 3)).min()


def test_a_short_training_run_learns_and_writes_weights_and_report(tmp_path):
    assert train.main(["--epochs", "2", "--limit", "3000", "--validation", "1000", "--ema-decay", "0.9",
                       "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "mnist-report.json").read_text())
    assert (tmp_path / "mnist.pt").exists()
    assert report["epochs"] == 2 and report["training_images"] == 3000
    assert report["test_images"] == 10000
    assert report["test_accuracy"] > 0.6, "two epochs on 3,000 images should already beat chance by far"
    assert len(report["confusion_matrix"]) == 10
