"""The compose stack's pieces, checked without a Docker engine: structure, validators, and the
real nginx and Prometheus binaries running the same configs against a real TorchServe."""
import os
import subprocess
import time
from string import Template

import pytest
import requests
import yaml

from ops.serve import REPO_ROOT, free_port
from tests.conftest import require_binary
from tests.images import SEVEN, draw_strokes, encode

DOCKER = REPO_ROOT / "docker"
NGINX_TEMPLATE = DOCKER / "nginx" / "digit-lens.conf.template"
PROMETHEUS_CONFIG = DOCKER / "prometheus" / "prometheus.yml"


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!reset", lambda loader, node: "!reset")


def load_compose(name):
    return yaml.load((REPO_ROOT / name).read_text(), Loader=ComposeLoader)


def test_compose_file_reserves_a_gpu_and_publishes_only_the_front():
    services = load_compose("docker-compose.yml")["services"]
    assert set(services) == {"torchserve", "web", "prometheus"}
    torchserve = services["torchserve"]
    devices = torchserve["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert torchserve["build"]["dockerfile"] == "docker/Dockerfile"
    assert all(port.startswith("127.0.0.1:") for port in torchserve["ports"])
    assert any(port.endswith(":8081") for port in torchserve["ports"])
    assert not any(port.endswith((":8080", ":8082")) for port in torchserve["ports"])
    assert "/ping" in " ".join(torchserve["healthcheck"]["test"])
    assert "./model_store:/home/model-server/model-store:ro" in torchserve["volumes"]
    assert services["web"]["image"].startswith("nginx:")
    assert services["web"]["depends_on"]["torchserve"]["condition"] == "service_healthy"
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert all(port.startswith("127.0.0.1:") for port in services["prometheus"]["ports"])
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=pytorch/torchserve:0.12.0-gpu" in dockerfile


def test_cpu_override_swaps_the_image_and_drops_the_gpu():
    override = load_compose("docker-compose.cpu.yml")["services"]["torchserve"]
    assert override["build"]["args"]["BASE_IMAGE"] == "pytorch/torchserve:0.12.0-cpu"
    assert override["deploy"] == "!reset"


def test_compose_file_passes_docker_compose_config():
    result = subprocess.run([require_binary("docker-compose"), "-f", "docker-compose.yml", "config", "--quiet"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def render_nginx(tmp_path, listen_port: int, upstream: str):
    """The nginx image's entrypoint does this envsubst; here it is done by hand, then wrapped in a main config."""
    site = Template(NGINX_TEMPLATE.read_text()).safe_substitute(
        LISTEN_PORT=f"127.0.0.1:{listen_port}", WEB_ROOT=str(REPO_ROOT / "web"), TORCHSERVE_INFERENCE=upstream)
    (tmp_path / "site.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "") +
        f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n include /etc/nginx/mime.types;\n access_log {tmp_path}/access.log;\n"
        f" client_body_temp_path {tmp_path}/body;\n proxy_temp_path {tmp_path}/proxy;\n"
        f" include {tmp_path}/site.conf;\n}}\n")
    return main


def test_nginx_config_passes_nginx_t(tmp_path):
    config = render_nginx(tmp_path, free_port(), "127.0.0.1:8080")
    result = subprocess.run([require_binary("nginx"), "-t", "-c", str(config), "-p", str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_prometheus_config_passes_promtool():
    result = subprocess.run([require_binary("promtool"), "check", "config", str(PROMETHEUS_CONFIG)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def nginx_front(torchserve, tmp_path):
    port = free_port()
    config = render_nginx(tmp_path, port, torchserve.inference_url.removeprefix("http://"))
    process = subprocess.Popen([require_binary("nginx"), "-c", str(config), "-p", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/ping", timeout=2).ok, 30, "nginx")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_predictions_pass_through_nginx_and_management_does_not(nginx_front, torchserve):
    seven = encode(draw_strokes(SEVEN), "PNG")
    response = requests.post(f"{nginx_front}/predictions/mnist", data=seven,
                             headers={"Content-Type": "image/png", "X-Charts": "1"}, timeout=60)
    assert response.status_code == 200 and response.json()["digit"] == 7
    assert response.json()["charts"]["probabilities"].startswith("data:image/png")
    page = requests.get(f"{nginx_front}/", timeout=10)
    assert page.ok and 'data-testid="canvas"' in page.text
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    # The management API answers on its own port, but nothing of it is reachable through the front.
    assert requests.get(f"{torchserve.management_url}/models", timeout=10).ok
    for method, path in [("GET", "/models"), ("GET", "/models/mnist"), ("POST", "/models?url=x.mar"),
                         ("DELETE", "/models/mnist/1.0"), ("PUT", "/models/mnist?min_worker=0"),
                         ("GET", "/api-description"), ("OPTIONS", "/"), ("GET", "/predictions/mnist"),
                         ("GET", "/predictions/../models")]:
        response = requests.request(method, f"{nginx_front}{path}", timeout=10)
        assert response.status_code in (403, 404, 405), (method, path, response.status_code)
        assert "modelName" not in response.text
    too_big = requests.post(f"{nginx_front}/predictions/mnist", data=bytes(17 * 1024 * 1024),
                            headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert too_big.status_code == 413


def test_prometheus_scrapes_torchserve_metrics(torchserve, tmp_path):
    requests.post(f"{torchserve.inference_url}/predictions/mnist", data=encode(draw_strokes(SEVEN), "PNG"),
                  headers={"Content-Type": "image/png"}, timeout=60)
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [torchserve.metrics_url.removeprefix("http://")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen([require_binary("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    query = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        wait_until(lambda: requests.get(query, params={"query": 'ts_inference_requests_total{model_name="mnist"}'},
                                        timeout=2).json()["data"]["result"], 60, "Prometheus to ingest TorchServe metrics")
        per_digit = requests.get(query, params={"query": "PredictionsPerDigit"}, timeout=5).json()["data"]["result"]
        assert any(series["metric"].get("Digit") == "7" for series in per_digit)
    finally:
        process.terminate()
        process.wait(20)
