"""The operators' side: the Prometheus rules unit-tested with promtool, the Alertmanager config
checked with amtool, the Grafana dashboard built from the recording rules, every alert with a
runbook section. (The real Prometheus evaluating the rules against TorchServe: test_deploy.)"""
import re
import subprocess

import pytest
import yaml

from ops.dashboard import DASHBOARD, dashboard_json
from ops.serve import REPO_ROOT
from tests.conftest import require_binary

MONITORING = REPO_ROOT / "monitoring"
RULES = yaml.safe_load((MONITORING / "rules.yml").read_text())
RECORDED = {rule["record"] for group in RULES["groups"] for rule in group["rules"] if "record" in rule}
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"] if "alert" in rule]
RULE_TESTS = yaml.safe_load((MONITORING / "rules.test.yml").read_text())["tests"]
OPERATIONS = (REPO_ROOT / "docs" / "operations.md").read_text()


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary(command[0]), *command[1:]], cwd=MONITORING, capture_output=True,
                          text=True, timeout=120)


def test_the_rules_pass_promtool_check_and_their_unit_tests():
    checked = run("promtool", "check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run("promtool", "test", "rules", "rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path):
    """The unit tests bite: an outlier alert that needs twice the share stays silent where it must fire."""
    broken = (MONITORING / "rules.yml").read_text().replace("model:digitlens_outliers:share5m > 0.25",
                                                             "model:digitlens_outliers:share5m > 0.5")
    (tmp_path / "rules.yml").write_text(broken)
    (tmp_path / "rules.test.yml").write_text((MONITORING / "rules.test.yml").read_text())
    result = subprocess.run([require_binary("promtool"), "test", "rules", "rules.test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "DigitLensOutlierFlood" in result.stdout + result.stderr


@pytest.mark.parametrize("alert", ALERTS, ids=lambda alert: alert["alert"])
def test_every_alert_says_what_happened_and_has_a_runbook_and_both_cases_tested(alert):
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    page, anchor = annotations["runbook"].split("#")
    assert page == "docs/operations.md" and f'<a id="{anchor}"></a>' in OPERATIONS
    cases = [case for test in RULE_TESTS for case in test.get("alert_rule_test", []) if case["alertname"] == alert["alert"]]
    assert any(case["exp_alerts"] for case in cases), "no case where it fires"
    assert any(not case["exp_alerts"] for case in cases), "no case where it stays silent"


def test_the_alertmanager_config_passes_amtool():
    result = run("amtool", "check-config", "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_is_what_ops_dashboard_builds_and_reads_only_recorded_series():
    assert DASHBOARD.read_text() == dashboard_json(), "run: python -m ops.dashboard"
    expressions = re.findall(r'"expr": "([^"]+)"', DASHBOARD.read_text())
    assert expressions and set(expressions) <= RECORDED
    provisioned = yaml.safe_load((MONITORING / "grafana" / "datasource.yml").read_text())["datasources"][0]
    assert f'"uid": "{provisioned["uid"]}"' in DASHBOARD.read_text()
