"""Package a trained model into a TorchServe .mar with the Digit Lens handler, and list it
in the model store's catalogue for the page.

    python -m ops.archive --model mnist --version 1.0      # model_store/mnist-1.0.mar from model/mnist.*
    python -m ops.archive --model fashion --version 1.0    # model_store/fashion-1.0.mar

A model is three files in model/: <name>.yaml (its one description), <name>.pt (weights)
and the network file the YAML names (`handler: network_file:`). Every archive has the same
handler. `model_store/models.json` lists the archived models for the page (name, version,
labels, texts from the YAML's `page` section): read-only facts, so the browser never needs
the management API.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from digitlens.config import ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO_ROOT / "model"
DEFAULT_STORE = REPO_ROOT / "model_store"
DEFAULT_HANDLER = REPO_ROOT / "handler" / "digit_handler.py"
CATALOGUE = "models.json"


def archive_name(name: str, version: str) -> str:
    return f"{name}-{version}.mar"


def model_files(name: str, model_dir: Path = MODEL_DIR) -> tuple[Path, Path, Path]:
    """The YAML, weights and network file of model ``name`` in ``model_dir``."""
    config = model_dir / f"{name}.yaml"
    if not config.is_file():
        known = sorted(path.stem for path in model_dir.glob("*.yaml"))
        raise FileNotFoundError(f"{config} does not exist; models here: {', '.join(known)}")
    return config, model_dir / f"{name}.pt", model_dir / ModelSpec.from_yaml(config).network_file


def build_archive(name: str, version: str, weights: Path, config: Path, model_file: Path,
                  store: Path = DEFAULT_STORE, handler: Path = DEFAULT_HANDLER) -> Path:
    """Build ``store/<name>-<version>.mar``, list it in the store's catalogue and return its
    path; an existing archive is replaced."""
    for path in (weights, config, model_file, handler):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
    store.mkdir(parents=True, exist_ok=True)
    target = store / archive_name(name, version)
    with tempfile.TemporaryDirectory() as staging, tempfile.TemporaryDirectory() as scratch:
        # The archiver copies a folder's contents to the archive root, so stage the package one level down.
        shutil.copytree(REPO_ROOT / "digitlens", Path(staging) / "digitlens",
                        ignore=shutil.ignore_patterns("__pycache__"))
        spec = ModelSpec.from_yaml(config)
        for extra in filter(None, (spec.outlier_scorer, spec.string_reader)):
            shutil.copy(model_file.parent / extra, Path(staging) / extra)      # model/, beside the network file
        subprocess.run([
            str(Path(sys.executable).with_name("torch-model-archiver")),
            "--model-name", name, "--version", version,
            "--model-file", str(model_file), "--serialized-file", str(weights),
            "--handler", str(handler),
            "--extra-files", staging, "--config-file", str(config),
            "--export-path", staging, "--force",
        ], check=True, env=dict(os.environ, TMPDIR=scratch))   # it works in $TMPDIR/<name>: two builds at once collide there
        shutil.move(Path(staging) / f"{name}.mar", target)
    list_in_catalogue(store, name, version, config)
    return target


def catalogue_entry(name: str, version: str, config: Path) -> dict:
    with open(config) as f:
        description = yaml.safe_load(f)
    spec = ModelSpec.from_mapping(description["handler"])
    page = description.get("page", {})
    return {"name": name, "version": version, "title": page.get("title", name),
            "prompt": page.get("prompt", ""), "input_caption": page.get("input_caption", ""),
            "outlier_message": page.get("outlier_message", ""),
            "labels": list(spec.labels), "preprocess": spec.preprocess, "input_size": spec.input_size,
            "explanations": bool(spec.explain_methods)}


def list_in_catalogue(store: Path, name: str, version: str, config: Path) -> None:
    """Add or update ``name`` in ``store/models.json``; the others keep their place."""
    path = store / CATALOGUE
    models = json.loads(path.read_text())["models"] if path.exists() else []
    entry = catalogue_entry(name, version, config)
    models = [entry if model["name"] == name else model for model in models]
    if entry not in models:
        models.append(entry)
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps({"models": models}, indent=2) + "\n")
    os.replace(staged, path)     # a page reading it meanwhile sees the old or the new list, never half


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist", help="name of the model: model/<name>.yaml and model/<name>.pt")
    parser.add_argument("--version", required=True)
    parser.add_argument("--weights", type=Path, help="instead of model/<name>.pt")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    args = parser.parse_args(argv)
    try:
        config, weights, model_file = model_files(args.model)
        print(build_archive(args.model, args.version, args.weights or weights, config, model_file, args.store))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
