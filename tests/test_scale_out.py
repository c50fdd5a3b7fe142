"""Two real TorchServe replicas behind the real nginx front (the compose stack's template):
one is killed, process group and all, under load, and no client sees a failure."""
import os
import signal

import pytest
import requests

from ops.front import UNLIMITED, NginxFront
from ops.serve import free_port
from tests.contract import serving_the_api
from tests.conftest import start_torchserve
from tests.test_reliability import good_requests
from tests.traffic import Traffic

CLIENTS = 8


def requests_served(server) -> float:
    """TorchServe's own count of inference requests, from its Prometheus endpoint."""
    text = requests.get(f"{server.metrics_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ts_inference_requests_total{"))


@pytest.fixture
def two_replicas(model_store, tmp_path):
    replicas = [start_torchserve(model_store, tmp_path / f"replica-{i}", {"mnist": "mnist-1.0.mar"}) for i in range(2)]
    yield replicas
    for replica in replicas:
        replica.stop()


@pytest.fixture
def front(two_replicas, model_store, tmp_path):
    addresses = [replica.inference_url.removeprefix("http://") for replica in two_replicas]
    front = NginxFront(tmp_path / "nginx", free_port(), addresses, model_store / "models.json", UNLIMITED).start()
    serving_the_api(front.url)
    yield front
    front.stop()


def test_killing_one_of_two_replicas_under_load_fails_no_request(two_replicas, front):
    victim, survivor = two_replicas
    with Traffic(f"{front.url}/predictions/mnist", good_requests(), clients=CLIENTS, limit_s=180) as traffic:
        traffic.wait_for(300)
        assert requests_served(victim) > 0 and requests_served(survivor) > 0, "nginx must spread the load"
        os.killpg(victim.process.pid, signal.SIGKILL)       # wrapper, Java frontend and Python workers at once
        at_kill = traffic.answered
        traffic.wait_for(at_kill + 600)
    assert traffic.failures == [], traffic.failures[:5]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{victim.inference_url}/ping", timeout=5)
    assert requests.get(f"{front.url}/ping", timeout=5).ok
