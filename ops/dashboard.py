"""The Grafana dashboard of the compose stack, built from the recording rules in
monitoring/rules.yml with Grafana's own SDK (grafana-foundation-sdk) rather than edited as JSON.

    python -m ops.dashboard            # writes monitoring/grafana/digit-lens.json
    python -m ops.dashboard --check    # exit 1 if the committed JSON is not what this builds
"""
from __future__ import annotations

import argparse
import sys

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from ops.serve import REPO_ROOT

DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "digit-lens.json"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")    # the provisioned data source's uid

# (row, [(panel title, unit, [(recorded series expression, legend)])]): only recorded series, so the
# dashboard and the alerts read the same numbers.
ROWS = [
    ("Traffic", [
        ("Inference requests per model version", "reqps",
         [("model_version:ts_inference_requests:rate5m", "{{model_name}} {{model_version}}")]),
        ("HTTP requests (all answers)", "reqps", [("job:digitlens_http_requests:rate5m", "{{job}}")]),
    ]),
    ("Errors", [
        ("Share of requests answered 5xx", "percentunit", [("job:digitlens_http_errors:ratio5m", "{{job}}")]),
        ("Uploads refused, by reason", "reqps",
         [("model_reason:digitlens_rejected_inputs:rate5m", "{{ModelName}} {{Reason}}")]),
    ]),
    ("Latency", [
        ("Handler time per batch (p50, p95)", "ms",
         [("model:digitlens_handler_time_ms:p50_5m", "{{ModelName}} p50"),
          ("model:digitlens_handler_time_ms:p95_5m", "{{ModelName}} p95")]),
        ("Mean inference and queue latency per model version", "ms",
         [("model_version:ts_inference_latency_ms:mean5m", "{{model_name}} {{model_version}} inference"),
          ("model_version:ts_queue_latency_ms:mean5m", "{{model_name}} {{model_version}} queue")]),
    ]),
    ("What was read", [
        ("Share of readings per class", "percentunit",
         [("model_digit:digitlens_predictions:share5m", "{{ModelName}} {{Digit}}")]),
        ("Share of readings that are not digits (outliers)", "percentunit",
         [("model:digitlens_outliers:share5m", "{{ModelName}}")]),
        ("Whole numbers read, and digits per number", "short",
         [("model:digitlens_numbers:rate5m", "{{ModelName}} numbers/s"),
          ("model:digitlens_digits_per_number:mean5m", "{{ModelName}} digits per number")]),
    ]),
]


def build() -> Dashboard:
    dashboard = (Dashboard("Digit Lens").uid("digit-lens").tags(["digit-lens", "torchserve"])
                 .refresh("30s").time("now-6h", "now"))
    ids = iter(range(1, 100))
    for row, panels in ROWS:
        dashboard = dashboard.with_row(Row(row).id(next(ids)))
        for title, unit, queries in panels:
            panel = Panel().id(next(ids)).title(title).unit(unit).min(0).datasource(PROMETHEUS).height(8).span(12)
            for ref, (expr, legend) in zip("ABCDEFGH", queries):
                panel = panel.with_target(Dataquery().ref_id(ref).expr(expr).legend_format(legend).datasource(PROMETHEUS))
            dashboard = dashboard.with_panel(panel)
    return dashboard


def dashboard_json() -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed JSON instead of writing it")
    args = parser.parse_args(argv)
    if args.check:
        if not DASHBOARD.exists() or DASHBOARD.read_text() != dashboard_json():
            print(f"{DASHBOARD} is not what ops/dashboard.py builds: run python -m ops.dashboard", file=sys.stderr)
            return 1
        return 0
    DASHBOARD.write_text(dashboard_json())
    print(f"wrote {DASHBOARD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
