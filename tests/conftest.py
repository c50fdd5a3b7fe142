import shutil
from pathlib import Path

import pytest
import requests

from digitlens.config import ModelSpec
from ops.archive import MODEL_DIR, build_archive, model_files
from ops.serve import TorchServe, free_port
from tests.contract import check_response, serving_the_api


def require_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make system-deps`")
    return path


@pytest.fixture(scope="session", autouse=True)
def answers_keep_the_contract():
    """Every prediction or explanation answer any test receives over HTTP (the client's included)
    is checked against docs/openapi.yaml as it arrives."""
    send = requests.Session.send

    def checked(session, request, **kwargs):
        response = send(session, request, **kwargs)
        check_response(response)
        return response

    requests.Session.send = checked
    yield
    requests.Session.send = send


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return ModelSpec.from_yaml(MODEL_DIR / "mnist.yaml")


@pytest.fixture(scope="session")
def fashion_spec() -> ModelSpec:
    return ModelSpec.from_yaml(MODEL_DIR / "fashion.yaml")


MODELS = ("mnist", "fashion")


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> Path:
    """Version 1.0 of every model, archived as `make mar` does (and its models.json)."""
    store = tmp_path_factory.mktemp("model_store")
    for name in MODELS:
        config, weights, network_file = model_files(name)
        build_archive(name, "1.0", weights, config, network_file, store)
    return store


PAGE_PORT = free_port()


def start_torchserve(store: Path, work_dir: Path, models: dict[str, str]) -> TorchServe:
    server = TorchServe(store, models, work_dir, inference_port=free_port(), management_port=free_port(),
                        metrics_port=free_port(), grpc_ports=(free_port(), free_port()),
                        page_origin=f"http://127.0.0.1:{PAGE_PORT}", quiet=True)
    serving_the_api(server.inference_url)
    return server.start()


@pytest.fixture(scope="session")
def torchserve(model_store, tmp_path_factory):
    """A real TorchServe serving the committed models as `make serve` does, shared by the tests that only predict."""
    server = start_torchserve(model_store, tmp_path_factory.mktemp("torchserve"),
                              {name: f"{name}-1.0.mar" for name in MODELS})
    yield server
    server.stop()
