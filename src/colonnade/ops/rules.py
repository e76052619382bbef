"""The shop's alerts (SLO burn rates and conditions) as a Prometheus rules file, written from
the same definitions the shop uses.

deploy/prometheus/alerts.yml is this module's output (`python -m colonnade.ops.rules`); a
test keeps the committed file equal to it. The file is plain YAML written by hand here, its
strings JSON-quoted (which YAML reads as double-quoted scalars), so nothing extra is needed.
"""

from __future__ import annotations

import json

from colonnade.ops.slo import (
    BURN_RULES,
    CONDITIONS,
    OBJECTIVES,
    QUEUED_OUTCOMES,
    AnsweredWithin,
    AnsweredWithoutServerError,
    BurnRule,
    Objective,
    alert_name,
)

_REQUESTS = "colonnade_http_requests_total"
_DURATION = "colonnade_http_request_duration_seconds"
_QUEUE = "colonnade_checkout_queue_total"


def duration(seconds: float) -> str:
    """A PromQL duration: 300 -> 5m, 259200 -> 3d."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def windows() -> list[float]:
    return sorted({w for r in BURN_RULES for w in (r.long_window, r.short_window)})


def record_name(window: float) -> str:
    return f"colonnade:slo_error_ratio:rate{duration(window)}"


def error_ratio(objective: Objective, window: float) -> str:
    """PromQL for the share of bad events of `objective` over `window`."""
    span = duration(window)
    indicator = objective.indicator
    if isinstance(indicator, AnsweredWithoutServerError):
        queued = f'{_QUEUE}{{outcome=~"{"|".join(QUEUED_OUTCOMES)}"}}'
        # A shop without a waiting room has no such series: `or vector(0)` keeps the ratio.
        return (
            f'(sum(rate({_REQUESTS}{{status=~"5.."}}[{span}]))'
            f" - (sum(rate({queued}[{span}])) or vector(0)))"
            f" / sum(rate({_REQUESTS}[{span}]))"
        )
    assert isinstance(indicator, AnsweredWithin)
    route = f'method="{indicator.method}",route="{indicator.route}"'
    # prometheus_client writes bucket bounds as floats: le="1.0".
    return (
        f'1 - sum(rate({_DURATION}_bucket{{{route},le="{indicator.seconds!r}"}}[{span}]))'
        f" / sum(rate({_DURATION}_count{{{route}}}[{span}]))"
    )


def _alert_expression(objective: Objective, rule: BurnRule) -> str:
    limit = f"({rule.burn_rate!r} * {objective.error_budget:.6g})"
    selector = f'{{slo="{objective.name}"}}'
    return (
        f"{record_name(rule.long_window)}{selector} > {limit}"
        f" and {record_name(rule.short_window)}{selector} > {limit}"
    )


def _quoted(text: str) -> str:
    return json.dumps(text)


def render() -> str:
    lines = [
        "# Generated from colonnade.ops.slo by `python -m colonnade.ops.rules`; do not edit.",
        "# Multi-window, multi-burn-rate SLO alerts (Google SRE workbook, 'Alerting on SLOs').",
        "groups:",
        "  - name: colonnade-slo-recordings",
        "    rules:",
    ]
    for objective in OBJECTIVES:
        for window in windows():
            lines += [
                f"      - record: {record_name(window)}",
                f"        expr: {_quoted(error_ratio(objective, window))}",
                "        labels:",
                f"          slo: {objective.name}",
            ]
    lines += ["  - name: colonnade-slo-alerts", "    rules:"]
    for objective in OBJECTIVES:
        for rule in BURN_RULES:
            summary = (
                f"{objective.title}: the error budget burns {rule.burn_rate:g}x too fast "
                f"over {duration(rule.long_window)} and {duration(rule.short_window)}"
            )
            lines += [
                f"      - alert: {alert_name(objective, rule)}",
                f"        expr: {_quoted(_alert_expression(objective, rule))}",
                "        labels:",
                f"          severity: {rule.severity}",
                f"          slo: {objective.name}",
                "        annotations:",
                f"          summary: {_quoted(summary)}",
                f"          objective: {_quoted(f'{objective.target:.4g}')}",
            ]
    lines += ["  - name: colonnade-condition-alerts", "    rules:"]
    for condition in CONDITIONS:
        lines += [
            f"      - alert: {condition.alert}",
            f"        expr: {_quoted(f'max({condition.metric}) > {condition.above:g}')}",
            "        labels:",
            f"          severity: {condition.severity}",
            "        annotations:",
            f"          summary: {_quoted(condition.summary)}",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
