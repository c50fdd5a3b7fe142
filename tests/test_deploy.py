"""The compose stack's pieces, checked without a Docker engine: structure, validators, and the
real nginx and Prometheus binaries running the same configs against a real TorchServe."""
import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import time

import pytest
import requests
import schemathesis
import yaml

from ops.front import COMPOSE_RATE_LIMIT, Nginx, NginxFront, upstream_lines
from ops.serve import REPO_ROOT, config_properties, free_port
from tests.conftest import MODELS, require_binary
from tests.contract import DOCUMENT, serving_the_api
from tests.test_contract import FUZZ_EXAMPLES, fuzz
from tests.images import SEVEN, draw_strokes, encode

DOCKER = REPO_ROOT / "docker"
MONITORING = REPO_ROOT / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!reset", lambda loader, node: "!reset")


def load_compose(name):
    return yaml.load((REPO_ROOT / name).read_text(), Loader=ComposeLoader)


def test_compose_file_reserves_a_gpu_and_publishes_only_the_front():
    services = load_compose("docker-compose.yml")["services"]
    assert set(services) == {"torchserve", "web", "prometheus", "alertmanager", "grafana"}
    torchserve = services["torchserve"]
    devices = torchserve["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert torchserve["build"]["dockerfile"] == "docker/Dockerfile" and torchserve["build"]["target"] == "serving"
    assert all(port.startswith("127.0.0.1:") for port in torchserve["ports"])
    assert any(port.endswith(":8081") for port in torchserve["ports"])
    assert not any(port.endswith((":8080", ":8082")) for port in torchserve["ports"])
    assert "/ping" in " ".join(torchserve["healthcheck"]["test"])
    assert "./model_store:/home/model-server/model-store:ro" in torchserve["volumes"]
    assert torchserve["environment"]["TS_DEFAULT_WORKERS_PER_MODEL"] == "4"      # GPU: the worker's CPU is the bottleneck
    assert services["web"]["image"].startswith("nginx:")
    assert services["web"]["depends_on"]["torchserve"]["condition"] == "service_healthy"
    assert services["web"]["environment"]["PREDICT_RATE_LIMIT"] == COMPOSE_RATE_LIMIT
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    for name in ("prometheus", "alertmanager", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=pytorch/torchserve:0.12.0-gpu" in dockerfile


BASE_IMAGE_MODULES = {"torch", "torchvision", "numpy", "ts"}    # what pytorch/torchserve:0.12.0 brings


def served_imports(path, seen):
    """The top-level modules ``path`` imports, following this repository's own modules."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        for name in names:
            own = REPO_ROOT / (name.replace(".", "/") + ".py")
            package = REPO_ROOT / name.replace(".", "/") / "__init__.py"
            for module in (own, package):
                if module.exists() and module not in seen:
                    seen.add(module)
                    found |= served_imports(module, seen)
            found.add(name.split(".")[0])
    return found


def test_the_serving_image_installs_every_package_the_handler_imports():
    imported = served_imports(REPO_ROOT / "handler" / "digit_handler.py", set())
    third_party = imported - set(sys.stdlib_module_names) - {"digitlens", "handler"} - BASE_IMAGE_MODULES
    distributions = importlib.metadata.packages_distributions()
    pinned = {re.split(r"[=<>]", line)[0].strip().lower().replace("_", "-")
              for line in (DOCKER / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {"cv2", "scipy", "skimage", "PIL", "captum"} <= third_party       # the walk reaches the preparation
    missing = {module for module in third_party
               if not {name.lower().replace("_", "-") for name in distributions.get(module, [module])} & pinned}
    assert not missing, f"docker/requirements.txt does not install {sorted(missing)}"


def test_cpu_override_swaps_the_image_and_drops_the_gpu():
    override = load_compose("docker-compose.cpu.yml")["services"]["torchserve"]
    assert override["build"]["args"]["BASE_IMAGE"] == "pytorch/torchserve:0.12.0-cpu"
    assert override["deploy"] == "!reset"
    assert override["environment"]["TS_DEFAULT_WORKERS_PER_MODEL"] == "1"


def test_the_archives_leave_the_worker_count_to_the_deployment():
    assert config_properties()["default_workers_per_model"] == "1"
    for name in ("mnist", "fashion"):
        description = yaml.safe_load((REPO_ROOT / "model" / f"{name}.yaml").read_text())
        assert "minWorkers" not in description and "maxWorkers" not in description


def test_compose_file_passes_docker_compose_config():
    command = [require_binary("docker-compose"), "-f", "docker-compose.yml", "config", "--quiet"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "GRAFANA_ADMIN_PASSWORD": "chosen-by-the-operator"})
    assert result.returncode == 0, result.stderr
    unset = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in os.environ.items() if k != "GRAFANA_ADMIN_PASSWORD"})
    assert unset.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in unset.stderr      # no default admin password


def test_nginx_config_passes_nginx_t(tmp_path):
    front = NginxFront(tmp_path, free_port(), ["127.0.0.1:8080", "127.0.0.1:8090"], tmp_path / "models.json")
    result = front.check()
    assert result.returncode == 0, result.stderr


def test_the_committed_upstream_list_has_the_format_the_front_expects():
    lines = [line for line in (DOCKER / "nginx" / "upstreams.conf").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines == upstream_lines(["torchserve:8080"]).splitlines()


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
def nginx_front(torchserve, model_store, tmp_path):
    front = NginxFront(tmp_path, free_port(), [torchserve.inference_url.removeprefix("http://")],
                       model_store / "models.json").start()
    try:
        wait_until(lambda: requests.get(f"{front.url}/ping", timeout=2).ok, 30, "nginx")
        yield serving_the_api(front.url)
    finally:
        front.stop()


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
    catalogue = requests.get(f"{nginx_front}/models.json", timeout=10)
    assert [model["name"] for model in catalogue.json()["models"]] == list(MODELS)
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
    assert too_big.status_code == 413 and too_big.json()["type"] == "RequestEntityTooLarge"


def test_generated_requests_through_the_front_get_no_5xx_and_conforming_answers(nginx_front, torchserve):
    """The contract holds through nginx too (a request id made at the front, its own errors in JSON)."""
    fuzz(schemathesis.openapi.from_path(DOCUMENT), nginx_front, torchserve, FUZZ_EXAMPLES // 3)
    document = requests.get(f"{nginx_front}/openapi.yaml", timeout=10)
    assert document.ok and document.content == DOCUMENT.read_bytes()
    for _ in range(20):                 # the fuzzing may have spent this address's burst: its 429s conform too
        answer = requests.post(f"{nginx_front}/predictions/mnist", data=b"", headers={"Content-Type": "image/png"}, timeout=30)
        if answer.status_code != 429:
            break
        time.sleep(0.5)
    assert answer.status_code == 400 and re.fullmatch("[0-9a-f]{32}", answer.json()["request_id"])     # nginx's $request_id
    given = requests.post(f"{nginx_front}/predictions/mnist", data=b"", timeout=30,
                          headers={"Content-Type": "image/png", "X-Request-ID": "from-the-client-1"})
    assert given.json()["request_id"] == "from-the-client-1"


def test_the_front_limits_each_client_address(nginx_front):
    """30 req/s with bursts of 60 per address (compose's PREDICT_RATE_LIMIT): a flood gets 429s."""
    session = requests.Session()
    answers = [session.post(f"{nginx_front}/predictions/mnist", data=b"", timeout=30,
                            headers={"Content-Type": "application/octet-stream"}) for _ in range(150)]
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {400, 429} and statuses[:30] == [400] * 30
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert limited.json()["type"] == "TooManyRequests" and limited.json()["request_id"]


def test_prometheus_scrapes_torchserve_metrics(torchserve, tmp_path):
    requests.post(f"{torchserve.inference_url}/predictions/mnist", data=encode(draw_strokes(SEVEN), "PNG"),
                  headers={"Content-Type": "image/png"}, timeout=60)
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    assert config["rule_files"] == ["rules.yml"]
    config["rule_files"] = [str(MONITORING / "rules.yml")]     # the same rules, from this checkout
    del config["alerting"]                                      # no Alertmanager here
    job = config["scrape_configs"][0]
    assert job["dns_sd_configs"] == [{"names": ["torchserve"], "type": "A", "port": 8082, "refresh_interval": "30s"}]
    del job["dns_sd_configs"]          # no Docker DNS here: the same job, pointed at the local replica
    job["static_configs"] = [{"targets": [torchserve.metrics_url.removeprefix("http://")]}]
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
        for _ in range(3):          # traffic between scrapes, so the recorded rates are above 0
            requests.post(f"{torchserve.inference_url}/predictions/mnist", data=encode(draw_strokes(SEVEN), "PNG"),
                          headers={"Content-Type": "image/png"}, timeout=60)
            time.sleep(1.2)
        recorded = lambda name: requests.get(query, params={"query": name}, timeout=2).json()["data"]["result"]
        wait_until(lambda: any(float(s["value"][1]) > 0 for s in recorded("model_version:ts_inference_requests:rate5m")),
                   60, "the recording rules to give a request rate")
        assert float(recorded('model_digit:digitlens_predictions:share5m{Digit="7"}')[0]["value"][1]) > 0
        assert 0 <= float(recorded("job:digitlens_http_errors:ratio5m")[0]["value"][1]) <= 1
    finally:
        process.terminate()
        process.wait(20)


def test_the_kubernetes_page_server_serves_only_static_files_with_the_security_headers(tmp_path):
    port = free_port()
    site = ((DOCKER / "nginx" / "page.conf").read_text().replace("listen 8080;", f"listen 127.0.0.1:{port};")
            .replace("root /usr/share/nginx/html;", f"root {REPO_ROOT / 'web'};"))
    assert "listen 127.0.0.1" in site and str(REPO_ROOT / "web") in site
    page = Nginx(tmp_path, port, site).start()
    try:
        response = requests.get(f"{page.url}/", timeout=10)
        assert response.ok and 'data-testid="canvas"' in response.text
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert requests.get(f"{page.url}/app.js", timeout=10).ok
        for method, path in [("POST", "/predictions/mnist"), ("GET", "/models"), ("GET", "/ping")]:
            assert requests.request(method, f"{page.url}{path}", timeout=10).status_code in (403, 404, 405), path
    finally:
        page.stop()
