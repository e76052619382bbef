"""What GET /ops/data answers: the sampler's state in the shape the page's charts draw."""

from __future__ import annotations

from pydantic import BaseModel, Field

from colonnade.ops.sampler import Sampler, Snapshot
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
    queue_waiting: list[float | None] = Field(
        description="Buyers holding a checkout waiting room's ticket not called yet (null "
        "where the waiting room was off)."
    )
    queue_in_flight: list[float | None] = Field(
        description="Checkouts the waiting room had let in that had not ended."
    )
    queue_limit: list[float | None] = Field(
        description="How many checkouts the waiting room let run at once."
    )
    queue_admitted_per_second: list[float | None] = Field(
        description="Ticket holders the waiting room let in, per second."
    )
    queue_wait_seconds: dict[str, list[float | None]] = Field(
        description="p50 and p99 of how long ticket holders waited, of those let in over the "
        "last 30 s at each point."
    )


class QueueOut(BaseModel):
    """The checkout waiting room now, and its answers since the process started."""

    limit: float
    in_flight: float
    waiting: float
    ticketed: float = Field(description="Buyers queued with a new ticket.")
    held: float = Field(description="Ticket holders told to wait again.")
    admitted: float = Field(description="Ticket holders let in.")
    refused: float = Field(description="Forged, expired or used tickets refused.")


class TotalsOut(BaseModel):
    requests: float
    server_errors: float
    checkouts: dict[str, float] = Field(description="Since the process started, by outcome.")
    stockouts: float
    promotions_running: float | None = Field(description="Promotions whose window is open now.")
    checkout_queue: QueueOut | None = Field(
        description="The checkout waiting room; null when it is off (no "
        "COLONNADE_CHECKOUT_CONCURRENCY), so every checkout starts at once."
    )


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
            checkout_queue=_queue(latest),
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
            queue_waiting=series.queue_waiting,
            queue_in_flight=series.queue_in_flight,
            queue_limit=series.queue_limit,
            queue_admitted_per_second=series.queue_admitted_per_second,
            queue_wait_seconds=series.queue_wait_seconds,
        ),
    )


def _queue(latest: Snapshot | None) -> QueueOut | None:
    if latest is None or not latest.waiting_room:
        return None
    return QueueOut(
        limit=latest.queue_limit or 0.0,
        in_flight=latest.queue_in_flight or 0.0,
        waiting=latest.queue_waiting or 0.0,
        ticketed=latest.queue_answers.get("ticketed", 0.0),
        held=latest.queue_answers.get("held", 0.0),
        admitted=latest.queue_answers.get("admitted", 0.0),
        refused=latest.queue_answers.get("refused", 0.0),
    )
