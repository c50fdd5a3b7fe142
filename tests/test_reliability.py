"""A real TorchServe under load: many clients with hostile inputs, a killed worker, a long soak.

Sized to prove the point in a few minutes on two cores; `make bench` measures speed.
"""
import os
import signal
import time

import psutil
import pytest

from ops.serve import REPO_ROOT
from tests.conftest import start_torchserve
from tests.images import SEVEN, THREE, as_canvas_png, as_photo_jpeg, bad_inputs, draw_strokes, encode, mnist_digit
from tests.test_serving import handler_description
from tests.traffic import Expected, Traffic

SOAK_REQUESTS = 5000
SOAK_WARM_UP = 500
SOAK_RSS_GROWTH = 0.05


def good_requests() -> list[Expected]:
    samples = [Expected((REPO_ROOT / "samples" / name).read_bytes(), digit=7)
               for name in ("seven-canvas.png", "seven-photo.jpg", "seven-scan.png")]
    drawn = [Expected(encode(draw_strokes(SEVEN), "PNG"), digit=7), Expected(encode(draw_strokes(THREE), "PNG"), digit=3)]
    digits = [mnist_digit(i) for i in range(20, 30)]
    canvases = [Expected(as_canvas_png(ink), digit=label) for ink, label in digits[:5]]
    photos = [Expected(as_photo_jpeg(ink, seed=i), digit=label) for i, (ink, label) in enumerate(digits[5:])]
    return samples + drawn + canvases + photos


def hostile_requests() -> list[Expected]:
    return [Expected(body, status=status, type=reason) for body, status, reason in bad_inputs().values()]


def interleave(good: list[Expected], bad: list[Expected]) -> list[Expected]:
    mixed = []
    for index in range(max(len(good), len(bad))):
        mixed += [good[index % len(good)], bad[index % len(bad)]]
    return mixed


def test_32_clients_with_good_and_hostile_inputs_get_exactly_their_answers(torchserve):
    pids = torchserve.worker_pids("mnist")
    mixed = interleave(good_requests(), hostile_requests())
    with Traffic(f"{torchserve.inference_url}/predictions/mnist", mixed, clients=32) as traffic:
        traffic.wait_for(3 * len(mixed))
    assert traffic.failures == [], traffic.failures[:5]
    assert torchserve.worker_pids("mnist") == pids


@pytest.fixture
def own_server(model_store, tmp_path):
    server = start_torchserve(model_store, tmp_path / "ts", {"mnist": "mnist-1.0.mar"})
    yield server
    server.stop()


def test_a_killed_worker_costs_only_what_it_was_inferring_and_comes_back(own_server):
    clients = 8
    (pid,) = own_server.worker_pids("mnist")
    with Traffic(f"{own_server.inference_url}/predictions/mnist", good_requests(), clients=clients) as traffic:
        traffic.wait_for(100)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 30:
            if own_server.workers_ready("mnist") and own_server.worker_pids("mnist") != [pid]:
                break
            time.sleep(0.2)
        back_after = time.monotonic() - killed_at
        answered = traffic.answered
        traffic.wait_for(answered + 100)
    assert back_after < 30, "the worker was not READY again within 30 s"
    # At most one batch was inside the worker: the requests of the 8 clients.
    assert len(traffic.failures) <= clients, traffic.failures
    assert own_server.worker_pids("mnist") != [pid]


def test_a_soak_of_charted_requests_grows_neither_memory_nor_hooks(torchserve, spec):
    worker = psutil.Process(torchserve.worker_pids("mnist")[0])
    good = good_requests()
    with Traffic(f"{torchserve.inference_url}/predictions/mnist", good, clients=4, headers={"X-Charts": "1"}) as traffic:
        traffic.wait_for(SOAK_WARM_UP)
        before = worker.memory_info().rss
        traffic.wait_for(SOAK_WARM_UP + SOAK_REQUESTS, timeout=600)
        after = worker.memory_info().rss
    assert traffic.failures == []
    assert handler_description(torchserve)["forward_hooks"] == len(spec.visualise_layers) + 1   # + the outlier score's
    growth = (after - before) / before
    assert growth < SOAK_RSS_GROWTH, f"worker RSS grew {growth:.1%} ({before / 2**20:.0f} -> {after / 2**20:.0f} MiB)"
