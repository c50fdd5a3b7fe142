import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from training import train
from training.typefaces import (NOT_HANDS, TYPEFACE_PACKAGES, TypefaceError, has_distinct_digits, typeface_digits,
                                typeface_files)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_make_system_deps_installs_every_typeface_package():
    makefile = (REPO_ROOT / "Makefile").read_text()
    line = re.search(r"^SYSTEM_PACKAGES := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE).group(1)
    packages = line.replace("\\\n", " ").split()
    assert "chromium" in packages
    assert set(TYPEFACE_PACKAGES) <= set(packages)


def test_every_face_gives_ten_digits_drawn_as_mnist_draws_them():
    images, labels = typeface_digits()
    faces = len(images) // 10
    assert faces >= 60 and images.dtype == torch.uint8 and images.shape[1:] == (28, 28)
    assert np.bincount(labels.numpy()).tolist() == [faces] * 10
    ink = images.float() / 255
    rows, cols = (ink.amax(2) > 0.05), (ink.amax(1) > 0.05)
    spans = torch.maximum(rows.sum(1), cols.sum(1))
    assert spans.min() >= 19 and spans.max() <= 21            # longer side 20 px, as in MNIST
    grid = torch.arange(28, dtype=torch.float32)
    mass = ink.sum((1, 2))
    centre_row = (ink.sum(2) * grid).sum(1) / mass
    centre_col = (ink.sum(1) * grid).sum(1) / mass
    assert (centre_row - 13.5).abs().max() <= 1 and (centre_col - 13.5).abs().max() <= 1
    assert images.amax((1, 2)).min() >= 200                   # solid ink, not a faint outline


def test_symbol_and_ornamented_faces_and_missing_packages_are_refused():
    names = [file.name for file in typeface_files()]
    assert "NimbusRoman-Regular.otf" in names and "BecauseWeLearn-Regular.otf" in names
    assert not [name for name in names if any(Path(name).match(pattern) for pattern in NOT_HANDS)]
    tofu = np.ones((28, 28), np.float32)
    assert not has_distinct_digits([tofu] * 10)
    with pytest.raises(TypefaceError, match="make system-deps"):
        typeface_files(("no-such-font-package",))


def test_typefaces_are_mixed_into_the_training_images_at_the_share_asked(tmp_path):
    images, labels = torch.zeros(9000, 28, 28, dtype=torch.uint8), torch.zeros(9000, dtype=torch.int64)
    mixed, mixed_labels = train.with_typefaces(images, labels, 0.1)
    added = len(mixed) - len(images)
    assert added == 1000 and len(mixed_labels) == len(mixed)
    assert np.bincount(mixed_labels[len(images):].numpy()).tolist() == [added // 10] * 10
    assert train.with_typefaces(images, labels, 0.0)[0] is images
    assert train.main(["--epochs", "1", "--limit", "2000", "--validation", "500", "--typeface-share", "0.1",
                       "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "mnist-report.json").read_text())
    assert report["typeface_share"] == 0.1 and report["training_images"] == 2222
    with pytest.raises(ValueError, match="between 0 and 1"):
        train.with_typefaces(images, labels, 1.5)
    with pytest.raises(SystemExit, match="does not apply to fashion-mnist"):
        train.main(["--config", str(REPO_ROOT / "model" / "fashion.yaml"), "--typeface-share", "0.1"])
