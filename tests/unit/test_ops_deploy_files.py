"""The Prometheus rules and the Grafana dashboard in deploy/ stay true to the shop: the rules
are exactly what the SLO definitions generate, the dashboard asks only for metrics the shop
exports (or the rules record), and the scrape configuration reads the shop's metrics port."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import colonnade.app  # noqa: F401 - registers every metric the shop exports
from colonnade.kernel.metrics import HTTP_REQUEST_DURATION
from colonnade.kernel.settings import Settings
from colonnade.ops import rules
from colonnade.ops.slo import CONDITIONS, OBJECTIVES, all_alert_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE_FILE = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "colonnade.json"


def exported_series() -> set[str]:
    """Every series name the metrics port can show, also of labelled metrics not yet used."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_count", "_sum"],
        "gauge": [""],
    }
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("colonnade_")
        for suffix in suffixes.get(family.type, [""])
    }


def recorded_series() -> set[str]:
    loaded = yaml.safe_load(ALERTS_FILE.read_text())
    return {
        rule["record"] for group in loaded["groups"] for rule in group["rules"] if "record" in rule
    }


def test_the_committed_alert_rules_are_the_generated_ones() -> None:
    assert ALERTS_FILE.read_text() == rules.render(), (
        "deploy/prometheus/alerts.yml is stale: python -m colonnade.ops.rules > it"
    )


def test_prometheus_scrapes_the_metrics_port_and_loads_the_alert_rules() -> None:
    loaded = yaml.safe_load(SCRAPE_FILE.read_text())
    fields = Settings.model_fields
    metrics_port = f"{fields['metrics_host'].default}:{fields['metrics_port'].default}"

    targets = [
        target
        for job in loaded["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets == [metrics_port]
    assert loaded["rule_files"] == [ALERTS_FILE.name]


def test_the_alert_rules_are_valid_prometheus_rule_groups() -> None:
    loaded = yaml.safe_load(ALERTS_FILE.read_text())
    alerts = [rule for group in loaded["groups"] for rule in group["rules"] if "alert" in rule]

    assert sorted(a["alert"] for a in alerts) == sorted(all_alert_names())
    assert {a["labels"]["severity"] for a in alerts} == {"page", "ticket"}
    conditions = {c.alert for c in CONDITIONS}
    for alert in alerts:
        if alert["alert"] in conditions:
            # A condition watches one gauge the shop exports, at its highest across processes.
            watched = re.fullmatch(r"max\((colonnade_[a-z_]+)\) > [0-9.]+", alert["expr"])
            assert watched, alert["expr"]
            assert watched.group(1) in exported_series(), alert["alert"]
            continue
        used = set(re.findall(r"colonnade:[a-z_:0-9]+", alert["expr"]))
        assert used, alert["alert"]
        assert used <= recorded_series(), alert["alert"]
    assert len(recorded_series()) * len(OBJECTIVES) == sum(
        1 for group in loaded["groups"] for rule in group["rules"] if "record" in rule
    )


def test_the_checkout_latency_threshold_is_a_bucket_bound_of_the_request_histogram() -> None:
    bound = re.search(r'le="([^"]+)"', rules.error_ratio(OBJECTIVES[1], 300))
    # A labelled histogram shows its buckets once a series exists: make one, look, remove it.
    labels = {"method": "GET", "route": "/bucket-check", "status": "200"}
    HTTP_REQUEST_DURATION.labels(**labels)
    try:
        bounds = {
            sample.labels["le"]
            for family in REGISTRY.collect()
            for sample in family.samples
            if sample.name == "colonnade_http_request_duration_seconds_bucket"
            and sample.labels.get("route") == "/bucket-check"
        }
    finally:
        HTTP_REQUEST_DURATION.remove(*labels.values())

    assert bound is not None
    assert bound.group(1) in bounds


def test_the_dashboard_parses_and_queries_only_metrics_the_shop_exports() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bcolonnade_[a-z_]+", expr)}
    recorded = {name for expr in expressions for name in re.findall(r"colonnade:[a-z_:0-9]+", expr)}

    assert len(dashboard["panels"]) >= 10
    assert sorted(used - exported_series()) == []
    assert sorted(recorded - recorded_series()) == []


def test_the_dashboard_shows_what_the_operators_asked_for() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    queried = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])

    for metric in (
        "colonnade_http_requests_total",
        "colonnade_http_request_duration_seconds_bucket",
        "colonnade_checkouts_total",
        "colonnade_stockouts_total",
        "colonnade_outbox_backlog",
        "colonnade_outbox_lag_seconds",
        "colonnade_consumer_lag_seconds_bucket",
        "colonnade_db_pool_connections",
        "colonnade_maintenance_runs_total",
        "colonnade_payment_circuit_state",
        "colonnade_alerts_firing",
    ):
        assert metric in queried, metric
