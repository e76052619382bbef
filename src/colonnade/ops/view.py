"""What GET /ops/data answers: the sampler's state in the shape the page's charts draw."""

from __future__ import annotations

from pydantic import BaseModel, Field

from colonnade.ops.sampler import Sampler
from colonnade.ops.slo import OBJECTIVES


class ObjectiveOut(BaseModel):
    name: str
    title: str
    target: float = Field(description="Share of good events promised over 30 days.")


class AlertOut(BaseModel):
    alert: str
    firing: bool
    severity: str | None = Field(description="page or ticket; None for alerts others report.")
    objective: str | None
    threshold: float | None = Field(
        description="The burn rate both windows must exceed, or the value a condition's gauge "
        "must exceed."
    )
    long_burn_rate: float | None
    short_burn_rate: float | None
    value: float | None = Field(
        default=None, description="A condition's gauge now (at its highest across processes)."
    )
    summary: str | None = None


class SeriesOut(BaseModel):
    at: list[float] = Field(description="Unix time of each point.")
    requests_per_second: list[float | None]
    server_errors_per_second: list[float | None]
    latency_seconds: dict[str, list[float | None]] = Field(
        description="p50, p95 and p99 of every request over the last 30 s at each point."
    )
    checkouts_per_minute: dict[str, list[float | None]] = Field(description="By outcome.")
    stockouts_per_minute: list[float | None]
    outbox_backlog: list[float | None]
    outbox_lag_seconds: list[float | None]
    promotion_uses_per_minute: dict[str, list[float | None]] = Field(
        description="Uses of promotions' codes held by checkouts, by code."
    )


class TotalsOut(BaseModel):
    requests: float
    server_errors: float
    checkouts: dict[str, float] = Field(description="Since the process started, by outcome.")
    stockouts: float
    promotions_running: float | None = Field(description="Promotions whose window is open now.")


class OpsData(BaseModel):
    sampled_every_seconds: float
    window_scale: float = Field(description="Every SLO window is shortened by this factor.")
    objectives: list[ObjectiveOut]
    alerts: list[AlertOut]
    totals: TotalsOut
    series: SeriesOut


def ops_data(sampler: Sampler) -> OpsData:
    series = sampler.series()
    latest = sampler.latest
    own = {state.alert: state for state in sampler.alerts}
    conditions = {c.condition.alert: c for c in sampler.conditions}
    alerts = []
    for name, firing in sorted(sampler.firing_alerts().items()):
        state = own.get(name)
        condition = conditions.get(name)
        if condition is not None:
            alerts.append(
                AlertOut(
                    alert=name,
                    firing=firing,
                    severity=condition.condition.severity,
                    objective=None,
                    threshold=condition.condition.above,
                    long_burn_rate=None,
                    short_burn_rate=None,
                    value=condition.value,
                    summary=condition.condition.summary,
                )
            )
            continue
        alerts.append(
            AlertOut(
                alert=name,
                firing=firing,
                severity=state.severity if state else None,
                objective=state.objective if state else None,
                threshold=state.threshold if state else None,
                long_burn_rate=state.long_burn_rate if state else None,
                short_burn_rate=state.short_burn_rate if state else None,
            )
        )
    return OpsData(
        sampled_every_seconds=sampler.every_seconds,
        window_scale=sampler.window_scale,
        objectives=[ObjectiveOut(name=o.name, title=o.title, target=o.target) for o in OBJECTIVES],
        alerts=alerts,
        totals=TotalsOut(
            requests=latest.requests if latest else 0.0,
            server_errors=latest.server_errors if latest else 0.0,
            checkouts=dict(latest.checkouts) if latest else {},
            stockouts=latest.stockouts if latest else 0.0,
            promotions_running=latest.promotions_running if latest else None,
        ),
        series=SeriesOut(
            at=series.at,
            requests_per_second=series.requests_per_second,
            server_errors_per_second=series.server_errors_per_second,
            latency_seconds=series.latency_seconds,
            checkouts_per_minute=series.checkouts_per_minute,
            stockouts_per_minute=series.stockouts_per_minute,
            outbox_backlog=series.outbox_backlog,
            outbox_lag_seconds=series.outbox_lag_seconds,
            promotion_uses_per_minute=series.promotion_uses_per_minute,
        ),
    )
