"""kubernetes/: every built-in object valid for Kubernetes 1.32 (kubernetes-validate, strict),
KEDA's ScaledObject checked field by field, both overlays rendered by kustomize where a
renderer is installed, and the management API kept inside the namespace."""
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from ops.serve import REPO_ROOT

KUBERNETES = REPO_ROOT / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAYS = ("gpu", "cpu")
KUBERNETES_VERSION = "1.32"
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}       # no bundled schema: checked field by field below
TORCHSERVE_COUNTERS = ("ts_inference_requests_total", "ts_queue_latency_microseconds", "ts_inference_latency_microseconds")


def base_objects() -> list[dict]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((BASE / name).read_text()) if doc]


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kustomize renderer installed (kubectl): overlays not rendered, base objects still validated")
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def assert_valid(objects: list[dict]) -> None:
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_base_object_is_valid_for_kubernetes_1_32():
    objects = base_objects()
    assert {o["kind"] for o in objects} >= {"Namespace", "Deployment", "Service", "Ingress", "NetworkPolicy",
                                             "PodDisruptionBudget", "ScaledObject"}
    assert_valid(objects)


def test_strict_validation_rejects_a_misspelt_field():
    deployment = of_kind(base_objects(), "Deployment", "torchserve")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_to_valid_objects(overlay):
    objects = render(overlay)
    assert_valid(objects)
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"digit-lens"}
    config = of_kind(objects, "ConfigMap")[0]
    assert config["data"]["config.properties"] == (REPO_ROOT / "config.properties").read_text()
    container = of_kind(objects, "Deployment", "torchserve")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"digit-lens/torchserve-models:1.0-{overlay}"
    gpus = {part: container["resources"][part].get("nvidia.com/gpu") for part in ("requests", "limits")}
    assert gpus == ({"requests": 1, "limits": 1} if overlay == "gpu" else {"requests": None, "limits": None})
    workers = {variable["name"]: variable["value"] for variable in container["env"]}.get("TS_DEFAULT_WORKERS_PER_MODEL")
    assert workers == ("4" if overlay == "gpu" else None)       # else config.properties' 1
    per_replica = of_kind(objects, "ScaledObject")[0]["spec"]["triggers"][0]
    assert per_replica["name"] == "requests-per-replica"
    assert per_replica["metadata"]["threshold"] == ("350" if overlay == "gpu" else "50")   # half a replica's charted req/s


def test_the_cluster_runs_the_repository_torchserve_configuration():
    """kustomize reads no file outside its folder, so the base keeps copies: `make kubernetes-config`."""
    for name in ("config.properties", "metrics.yaml"):
        assert (BASE / name).read_bytes() == (REPO_ROOT / name).read_bytes(), f"run `make kubernetes-config`: {name} differs"


def test_torchserve_is_probed_on_ping_and_sized():
    deployment = of_kind(base_objects(), "Deployment", "torchserve")[0]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": "inference"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8082"
    assert {v["name"]: v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v} == {"config": "torchserve-config"}
    assert "/home/model-server/config/config.properties" in container["command"]


def test_the_scaled_object_scales_the_deployment_on_rates_of_torchserve_counters():
    objects = base_objects()
    scaled = of_kind(objects, "ScaledObject")[0]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod",
                         "idleReplicaCount", "fallback", "advanced", "triggers"}
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment") and of_kind(objects, "Deployment", target["name"])
    assert 2 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    queries = {}
    for trigger in spec["triggers"]:
        assert trigger["type"] == "prometheus" and trigger["metricType"] in ("AverageValue", "Value", "Utilization")
        metadata = trigger["metadata"]
        assert set(metadata) <= {"serverAddress", "query", "threshold", "activationThreshold", "namespace",
                                 "customHeaders", "ignoreNullValues", "unsafeSsl"}
        assert metadata["serverAddress"].startswith("http") and float(metadata["threshold"]) > 0
        queries[trigger["name"]] = metadata["query"]
        for counter in TORCHSERVE_COUNTERS:           # a counter's raw value only ratchets up: always a rate
            for use in re.finditer(counter, metadata["query"]):
                assert metadata["query"][:use.start()].rstrip().endswith("rate("), (counter, metadata["query"])
    assert any("rate(ts_inference_requests_total" in q for q in queries.values())
    assert any("rate(ts_queue_latency_microseconds" in q for q in queries.values())
    budget = of_kind(objects, "PodDisruptionBudget")[0]
    assert budget["spec"]["selector"] == of_kind(objects, "Deployment", "torchserve")[0]["spec"]["selector"]


def test_no_object_exposes_the_management_api_outside_the_namespace():
    objects = base_objects()
    management_ports = {8081, "management"}
    for service in of_kind(objects, "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
    routed = [path for rule in of_kind(objects, "Ingress")[0]["spec"]["rules"] for path in rule["http"]["paths"]]
    assert {p["path"] for p in routed} == {"/predictions/", "/explanations/", "/ping", "/"}
    for path in routed:
        service = of_kind(objects, "Service", path["backend"]["service"]["name"])[0]
        ports = {p["name"] for p in service["spec"]["ports"]} | {p["port"] for p in service["spec"]["ports"]}
        assert not ports & management_ports, path
    policy = of_kind(objects, "NetworkPolicy", "torchserve")[0]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["podSelector"] == of_kind(objects, "Deployment", "torchserve")[0]["spec"]["selector"]
    for rule in policy["ingress"]:
        if any(port["port"] in management_ports for port in rule["ports"]):
            assert rule["from"] == [{"podSelector": {}}], "the management port admits this namespace's pods only"
    assert any(port["port"] == 8081 for rule in policy["ingress"] for port in rule["ports"])
