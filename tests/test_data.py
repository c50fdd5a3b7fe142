import shutil

import numpy as np
import pytest

from training.data import (DEFAULT_CACHE, MNIST_SHA256, OPTDIGITS_SHA256, DataError, fetch_mnist, fetch_optdigits,
                           load_optdigits, load_split, read_idx, verify)


def test_the_full_mnist_set_is_verified_and_read():
    cache = fetch_mnist(DEFAULT_CACHE)
    train_images, train_labels = load_split(cache, "train")
    test_images, test_labels = load_split(cache, "t10k")
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert sorted(np.unique(test_labels.numpy())) == list(range(10))
    assert len(train_labels) == 60000 and len(test_labels) == 10000


def test_a_corrupted_file_is_rejected_by_its_hash(tmp_path):
    name = "t10k-labels-idx1-ubyte"
    copy = tmp_path / name
    shutil.copy(DEFAULT_CACHE / name, copy)
    data = bytearray(copy.read_bytes())
    data[100] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupted"):
        verify(copy, MNIST_SHA256[name])


def test_a_truncated_idx_file_is_rejected(tmp_path):
    truncated = tmp_path / "t10k-images-idx3-ubyte"
    truncated.write_bytes((DEFAULT_CACHE / "t10k-images-idx3-ubyte").read_bytes()[:5000])
    with pytest.raises(DataError, match="header promises"):
        read_idx(truncated)


def test_a_file_that_is_not_idx_is_rejected(tmp_path):
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        read_idx(bogus)


def test_the_other_writers_digits_are_verified_and_read():
    path = fetch_optdigits()
    verify(path, OPTDIGITS_SHA256)
    images, labels = load_optdigits(path)
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
