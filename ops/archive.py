"""Package trained weights into a TorchServe .mar with the Digit Lens handler.

    python -m ops.archive --version 1.0            # model_store/mnist-1.0.mar from model/
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STORE = REPO_ROOT / "model_store"
DEFAULT_HANDLER = REPO_ROOT / "handler" / "digit_handler.py"


def archive_name(name: str, version: str) -> str:
    return f"{name}-{version}.mar"


def build_archive(name: str, version: str, weights: Path, config: Path, model_file: Path,
                  store: Path = DEFAULT_STORE, handler: Path = DEFAULT_HANDLER) -> Path:
    """Build ``store/<name>-<version>.mar`` and return its path; an existing one is replaced."""
    for path in (weights, config, model_file, handler):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
    store.mkdir(parents=True, exist_ok=True)
    target = store / archive_name(name, version)
    with tempfile.TemporaryDirectory() as staging:
        # The archiver copies a folder's contents to the archive root, so stage the package one level down.
        shutil.copytree(REPO_ROOT / "digitlens", Path(staging) / "digitlens",
                        ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([
            str(Path(sys.executable).with_name("torch-model-archiver")),
            "--model-name", name, "--version", version,
            "--model-file", str(model_file), "--serialized-file", str(weights),
            "--handler", str(handler),
            "--extra-files", staging, "--config-file", str(config),
            "--export-path", staging, "--force",
        ], check=True)
        shutil.move(Path(staging) / f"{name}.mar", target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="mnist")
    parser.add_argument("--version", required=True)
    parser.add_argument("--weights", type=Path, default=REPO_ROOT / "model" / "mnist.pt")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "model" / "mnist.yaml")
    parser.add_argument("--model-file", type=Path, default=REPO_ROOT / "model" / "network.py")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    args = parser.parse_args(argv)
    print(build_archive(args.name, args.version, args.weights, args.config, args.model_file, args.store))
    return 0


if __name__ == "__main__":
    sys.exit(main())
