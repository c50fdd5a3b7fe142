"""Release, promote, roll back and retire versions on a real TorchServe under live traffic."""
import time

import pytest
import requests

from ops import models as ops_models
from ops.serve import REPO_ROOT
from tests.conftest import start_torchserve
from tests.traffic import Expected, Traffic

SEVENS = [Expected((REPO_ROOT / "samples" / name).read_bytes(), digit=7)
          for name in ("seven-canvas.png", "seven-photo.jpg", "seven-scan.png")]


@pytest.fixture
def versioned_server(model_store, tmp_path):
    server = start_torchserve(model_store, tmp_path / "ts", {"mnist": "mnist-1.0.mar"})
    yield server
    server.stop()


def cli(server, *args) -> int:
    return ops_models.main(["--management", server.management_url, "--inference", server.inference_url,
                            "--store", str(server.model_store), *args])


def test_release_promote_rollback_retire_without_a_failed_request(versioned_server, capsys):
    server = versioned_server
    versions = ops_models.ModelVersions(server.management_url, server.inference_url)
    with Traffic(f"{server.inference_url}/predictions/mnist", SEVENS) as traffic:
        traffic.wait_for_version("1.0")
        assert cli(server, "release", "2.0") == 0
        assert (server.model_store / "mnist-2.0.mar").exists()
        assert versions.versions() == ["1.0", "2.0"] and versions.default() == "2.0"
        traffic.wait_for_version("2.0")

        assert cli(server, "rollback") == 0
        assert versions.default() == "1.0"
        traffic.wait_for_version("1.0")

        assert cli(server, "promote", "2.0") == 0
        traffic.wait_for_version("2.0")
        assert cli(server, "rollback", "--to", "1.0") == 0
        traffic.wait_for_version("1.0")

        assert cli(server, "retire", "1.0") == 1                     # the default cannot be retired
        assert "is the default version" in capsys.readouterr().err
        assert cli(server, "retire", "2.0") == 0
        assert versions.versions() == ["1.0"]
        time.sleep(1)
    assert traffic.failures == []
    assert traffic.answered > 20
    assert cli(server, "list") == 0
    assert capsys.readouterr().out.strip().endswith("1.0  (default)")


def test_register_and_smoke_leave_the_default_alone(versioned_server):
    server = versioned_server
    versions = ops_models.ModelVersions(server.management_url, server.inference_url)
    assert cli(server, "register", "1.1") == 0
    assert versions.default() == "1.0"
    assert versions.smoke("1.1")["model"]["version"] == "1.1"
    assert cli(server, "register", "1.1") == 1                       # registering twice is refused


def test_models_come_only_from_the_model_store(versioned_server):
    response = requests.post(f"{versioned_server.management_url}/models",
                             params={"url": "http://127.0.0.1:9/evil.mar"}, timeout=30)
    assert response.status_code >= 400
    assert ops_models.ModelVersions(versioned_server.management_url, versioned_server.inference_url).versions() == ["1.0"]


def test_three_release_rollback_retire_cycles_under_load_lose_nothing(versioned_server):
    """Retire drains the old version first: TorchServe's unregister would kill what it is still inferring."""
    server = versioned_server
    with Traffic(f"{server.inference_url}/predictions/mnist", SEVENS, clients=8) as traffic:
        traffic.wait_for(50)
        for version in ("2.0", "2.1", "2.2"):
            assert cli(server, "release", version) == 0
            traffic.wait_for_version(version)
            assert cli(server, "rollback", "--to", "1.0") == 0
            assert cli(server, "retire", version) == 0
        traffic.wait_for(traffic.answered + 50)
    assert traffic.failures == []
    assert ops_models.ModelVersions(server.management_url, server.inference_url).versions() == ["1.0"]


def test_with_several_workers_a_release_gets_as_many_and_loses_no_request(model_store, tmp_path, monkeypatch):
    """The archives name no worker count: TorchServe's default_workers_per_model decides, which the
    GPU compose stack raises through TS_DEFAULT_WORKERS_PER_MODEL. A released version gets as many
    workers, and retiring one drains every worker's batches, not only the queue: with charted
    requests from 8 clients, a retire without MULTI_WORKER_SETTLE_S lost requests in 3 of 4 runs
    (500s, and answers that never came)."""
    monkeypatch.setenv("TS_DEFAULT_WORKERS_PER_MODEL", "2")
    server = start_torchserve(model_store, tmp_path / "ts", {"mnist": "mnist-1.0.mar"})
    versions = ops_models.ModelVersions(server.management_url, server.inference_url)
    try:
        assert versions.workers("1.0") == 2
        with Traffic(f"{server.inference_url}/predictions/mnist", SEVENS, clients=8, headers={"X-Charts": "1"}) as traffic:
            assert cli(server, "release", "2.0") == 0
            assert versions.workers("2.0") == 2
            traffic.wait_for_version("2.0")
            assert cli(server, "rollback") == 0 and cli(server, "retire", "2.0") == 0
            time.sleep(1)
        assert traffic.failures == []
        assert set(traffic.versions) == {"1.0", "2.0"}
    finally:
        server.stop()
