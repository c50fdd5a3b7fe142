import shutil
from pathlib import Path

import pytest

from digitlens.config import ModelSpec
from ops.archive import build_archive
from ops.serve import REPO_ROOT, TorchServe, free_port

MODEL_DIR = REPO_ROOT / "model"


def require_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make system-deps`")
    return path


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return ModelSpec.from_yaml(MODEL_DIR / "mnist.yaml")


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("model_store")
    build_archive("mnist", "1.0", MODEL_DIR / "mnist.pt", MODEL_DIR / "mnist.yaml", MODEL_DIR / "network.py", store)
    return store


PAGE_PORT = free_port()


def start_torchserve(store: Path, work_dir: Path, models: dict[str, str]) -> TorchServe:
    return TorchServe(store, models, work_dir, inference_port=free_port(), management_port=free_port(),
                      metrics_port=free_port(), grpc_ports=(free_port(), free_port()), page_origin=f"http://127.0.0.1:{PAGE_PORT}", quiet=True).start()


@pytest.fixture(scope="session")
def torchserve(model_store, tmp_path_factory):
    """A real TorchServe serving the committed model as `mnist`, shared by the tests that only predict."""
    server = start_torchserve(model_store, tmp_path_factory.mktemp("torchserve"), {"mnist": "mnist-1.0.mar"})
    yield server
    server.stop()
