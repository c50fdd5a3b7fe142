import json

import torch

import pytest
from skimage.morphology import skeletonize

from digitlens.config import ModelSpec
from digitlens.engine import load_network
from training import evaluate, train
from training.augment import augment_batch, augment_garments, augmenter, restroke, widen_to_box
from training.data import DEFAULT_CACHE, fetch_dataset, load_split
from training.common import MODEL_DIR
from training.presentations import presentation_set


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


def ink_extent(images: torch.Tensor, dim: int) -> torch.Tensor:
    """How many rows (dim 2) or columns (dim 1) of each (N, 1, H, W) image hold ink."""
    return (images[:, 0] > 0.2).any(dim).sum(1)


def test_narrow_digits_are_widened_to_a_box_and_wide_ones_left_alone():
    images, labels = load_split(DEFAULT_CACHE, "t10k")
    ones, zeros = images[labels == 1][:50], images[labels == 0][:50]
    batch = torch.cat([ones, zeros]).float().unsqueeze(1) / 255
    widened = widen_to_box(batch, torch.Generator().manual_seed(0), share=1.0)
    width, height = ink_extent(batch, 1), ink_extent(batch, 2)
    new_width, new_height = ink_extent(widened, 1), ink_extent(widened, 2)
    assert (new_height - height).abs().max() <= 1                        # only stretched across
    assert (new_width[:50] >= 0.5 * height[:50]).all() and new_width[:50].float().mean() > 2 * width[:50].float().mean()
    already_wide = width >= 0.85 * height
    assert already_wide[50:].sum() > 25 and torch.equal(widened[already_wide], batch[already_wide])
    assert torch.equal(widen_to_box(batch, torch.Generator().manual_seed(0), share=0.0), batch)


def test_restroked_digits_have_strokes_of_one_width_along_the_same_lines():
    images, _ = load_split(DEFAULT_CACHE, "t10k")
    batch = images[:40].float().unsqueeze(1) / 255
    drawn = restroke(batch, torch.Generator().manual_seed(0), share=1.0, width=(2.0, 2.0))
    assert drawn.shape == batch.shape and drawn.min() >= 0 and drawn.max() <= 1
    ink, redrawn = batch[:, 0] > 0.5, drawn[:, 0] > 0.5
    overlap = (ink & redrawn).sum((1, 2)) / redrawn.sum((1, 2))
    assert overlap.mean() > 0.9 and overlap.min() > 0.6            # the same digit, along its own strokes
    # one width: a 2-px brush covers about the same ink per pixel of centre line in every digit (2.4,
    # spread 0.15), where MNIST's own pens cover 1.4 to 5.9 (spread 0.8) in these forty
    def area_per_length(digits):
        return digits.sum((1, 2)) / torch.tensor([skeletonize(d.numpy() > 0.5).sum() for d in digits]).clamp(min=1)
    assert area_per_length(drawn[:, 0]).std() < 0.5 * area_per_length(batch[:, 0]).std()
    assert torch.equal(restroke(batch, torch.Generator().manual_seed(0), share=0.0), batch)


def test_keeping_some_of_the_starting_weights_interpolates_every_float_tensor(tmp_path):
    spec = ModelSpec.from_yaml(MODEL_DIR / "mnist.yaml")
    start = load_network(MODEL_DIR / spec.network_file, spec.network, len(spec.labels), MODEL_DIR / "mnist.pt")
    torch.save(start.state_dict(), tmp_path / "start.pt")
    trained = load_network(MODEL_DIR / spec.network_file, spec.network, len(spec.labels))      # fresh weights
    before = {name: tensor.clone() for name, tensor in trained.state_dict().items()}
    train.keep_some_of(trained, tmp_path / "start.pt", 0.3)
    after, wanted = trained.state_dict(), start.state_dict()
    for name, tensor in after.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, 0.7 * before[name] + 0.3 * wanted[name], atol=1e-6), name
        else:
            assert torch.equal(tensor, before[name]), name
    with pytest.raises(SystemExit, match="needs --init"):
        train.main(["--keep-init-share", "0.3"])


def test_garment_augmentation_mirrors_shifts_and_hides_patches():
    images, _ = load_split(fetch_dataset("fashion-mnist"), "t10k")
    batch = images[:256].float().unsqueeze(1) / 255
    augmented = augment_garments(batch, torch.Generator().manual_seed(0))
    assert augmented.shape == batch.shape and augmented.min() >= 0 and augmented.max() <= 1
    mirrored = (augmented - batch.flip(3)).abs().mean((1, 2, 3)) < (augmented - batch).abs().mean((1, 2, 3))
    assert 0.3 < mirrored.float().mean() < 0.7                       # about half are mirror images
    assert (augmented.sum((1, 2, 3)) < 0.95 * batch.sum((1, 2, 3))).float().mean() > 0.2    # patches erased
    with pytest.raises(ValueError, match="handwriting only"):
        augmenter("garments", degraded_share=0.4)


def test_the_yaml_chooses_network_data_and_augmentation_for_the_same_program(tmp_path):
    assert train.main(["--config", str(MODEL_DIR / "fashion.yaml"), "--epochs", "2", "--limit", "3000",
                       "--validation", "1000", "--ema-decay", "0.9", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "fashion-report.json").read_text())
    assert (tmp_path / "fashion.pt").exists() and not (tmp_path / "mnist.pt").exists()
    assert report["model"] == "FashionNet" and report["data"] == "fashion-mnist" and report["augment"] == "garments"
    assert report["label_smoothing"] == 0.1                           # from model/fashion.yaml
    assert report["test_images"] == 10000 and len(report["per_class_accuracy"]) == 10
    assert report["test_accuracy"] > 0.5, "two epochs on 3,000 images should already beat chance by far"


def test_another_draw_reads_other_uploads_and_writes_nothing(capsys):
    config, report = MODEL_DIR / "mnist.yaml", MODEL_DIR / "mnist-report.json"
    before = config.read_bytes(), report.read_bytes()
    assert evaluate.main(["--model", "mnist", "--draw", "11", "--size", "30", "--kinds", "canvas,low-resolution"]) == 0
    assert (config.read_bytes(), report.read_bytes()) == before
    table = capsys.readouterr().out
    assert "draw 11, 30 uploads" in table and "canvas" in table and "low-resolution" in table and "scan" not in table
    usual, other = presentation_set("canvas", 30), presentation_set("canvas", 30, seed=11)
    assert usual[0] != other[0] and len(other[0]) == 30
    with pytest.raises(SystemExit):
        evaluate.main(["--model", "mnist", "--kinds", "canvas"])      # the report always has every kind
