"""The capacity plan: a rehearsal's measured figures turned into workers, pods and a database
for an expected peak, with headroom. Pure arithmetic.

The model, each figure from the rehearsal's report:

- **Web workers.** One `colonnade serve` worker process serves `per process` purchases per
  second: the highest rate the rehearsal held within every SLO divided by its processes, when
  the rehearsal pushed the server to its limit (saturated its CPU, or broke an SLO with no
  fault to blame). Otherwise that rate is only a floor, and the estimate is one core per
  process over the server CPU seconds a purchase costs (its browsing and abandoned carts
  included, as the mix brought them). Workers = peak * headroom / per process, rounded up.
- **Pods.** One worker per core: pods of `pod_cores` cores each run that many workers.
- **Database.** Cores = peak * headroom * the database CPU seconds a purchase costs, rounded
  up to a size databases come in. Not measured when the shop ran on SQLite (its database is
  the server's own process) or the rehearsal could not see the database's processes.
- **Database connections.** Every worker keeps its pool open: workers * pool size against the
  server's `max_connections`.
- **Outbox relay.** One relay publishes at a time, however many processes run, so it does
  not grow with the plan: its capacity is the most events per second it published, over the
  events a purchase makes. A floor unless the outbox lagged in the rehearsal.

Headroom (default 1.5x) is spare capacity at the peak: a sale that beats its forecast, a
slow dependency, a node lost. The first component to saturate is the one with the least
capacity over the peak once the plan is built: rounding gives some more than asked, and the
relay and connections do not scale with workers at all. A component known only by a floor
(the rehearsal never pushed it) is not named first; the plan lists it as unproven when even
that floor is below the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from colonnade.rehearsal.findings import Figures

DEFAULT_HEADROOM = 1.5
DEFAULT_POD_CORES = 2
# PostgreSQL's default max_connections.
DEFAULT_MAX_CONNECTIONS = 100
DATABASE_SIZES = (2, 4, 8, 16, 32, 48, 64, 96, 128, 192)


@dataclass(frozen=True)
class Component:
    name: str
    sized_as: str
    capacity: float | None  # purchases per second at the planned size (None: unknown)
    headroom: float | None  # capacity over the peak
    basis: str
    floor: bool = False  # capacity is at least this; the rehearsal did not find the limit


@dataclass(frozen=True)
class Plan:
    peak_per_second: float
    headroom: float
    workers: int
    pods: int
    pod_cores: int
    database_cores: int | None
    connections: int | None
    components: list[Component]

    @property
    def first_to_saturate(self) -> Component | None:
        """Of the components whose limit the rehearsal found, the least room over the peak."""
        known = [c for c in self.components if c.headroom is not None and not c.floor]
        return min(known, key=lambda c: c.headroom or 0.0, default=None)

    @property
    def unproven(self) -> list[Component]:
        """Components the rehearsal did not push to their limit and whose floor is below the
        peak: they may saturate first, and only a rehearsal at a higher rate can tell."""
        return [c for c in self.components if c.floor and (c.headroom or 0.0) < 1]


def _database_size(cores: float) -> int:
    return next((size for size in DATABASE_SIZES if size >= cores), math.ceil(cores))


def plan(
    figures: Figures,
    peak_orders_per_minute: float,
    *,
    headroom: float = DEFAULT_HEADROOM,
    pod_cores: int = DEFAULT_POD_CORES,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> Plan:
    if peak_orders_per_minute <= 0 or headroom < 1 or pod_cores < 1:
        raise ValueError("a peak above zero, headroom of at least 1 and pods of a core or more")
    peak = peak_orders_per_minute / 60
    wanted = peak * headroom
    components = []

    per_process, basis = _per_process(figures)
    if per_process is None:
        raise ValueError(
            "the report holds no rate within the SLOs and no server CPU per purchase:"
            " rehearse longer, or against a shop whose server process the rehearsal can see"
        )
    workers = max(1, math.ceil(wanted / per_process))
    pods = math.ceil(workers / pod_cores)
    components.append(
        Component(
            "web workers",
            f"{workers} workers in {pods} pods of {pod_cores} cores",
            workers * per_process,
            workers * per_process / peak,
            basis,
        )
    )

    database_cores = None
    if figures.database_cpu_per_purchase:
        cost = figures.database_cpu_per_purchase
        database_cores = _database_size(wanted * cost)
        components.append(
            Component(
                "database CPU",
                f"{database_cores} cores",
                database_cores / cost,
                database_cores / cost / peak,
                f"{cost * 1000:.2f} ms of database CPU per purchase",
            )
        )
    else:
        components.append(
            Component(
                "database CPU",
                "not measured",
                None,
                None,
                "the rehearsal saw no database processes (SQLite runs inside the server)",
            )
        )

    connections = None
    if figures.pool_per_process:
        connections = math.ceil(workers * figures.pool_per_process)
        components.append(
            Component(
                "database connections",
                f"{connections} of max_connections {max_connections}",
                None,
                max_connections / connections,
                f"{figures.pool_per_process:g} pooled connections per worker",
            )
        )

    if figures.events_per_purchase and figures.outbox_events_per_second:
        relay = figures.outbox_events_per_second / figures.events_per_purchase
        components.append(
            Component(
                "outbox relay",
                "one relay publishing at a time",
                relay,
                relay / peak,
                f"{figures.outbox_events_per_second:,.0f} events/s published,"
                f" {figures.events_per_purchase:.1f} per purchase",
                floor=not figures.outbox_limit_reached,
            )
        )
    return Plan(peak, headroom, workers, pods, pod_cores, database_cores, connections, components)


def _per_process(figures: Figures) -> tuple[float | None, str]:
    """Purchases per second one worker serves within the SLOs, and how that was found."""
    measured = figures.highest_held / figures.processes if figures.highest_held else None
    if measured and figures.server_limit_reached:
        return measured, (
            f"{measured:.1f} purchases/s per process held within the SLOs at the server's limit"
        )
    if figures.server_cpu_per_purchase:
        estimate = 1 / figures.server_cpu_per_purchase
        if measured and measured > estimate:
            return measured, f"{measured:.1f} purchases/s per process held, beyond the estimate"
        return estimate, (
            f"one core over {figures.server_cpu_per_purchase * 1000:.2f} ms of server CPU per"
            " purchase (the rehearsal did not reach the server's limit)"
        )
    if measured:
        return measured, f"{measured:.1f} purchases/s per process held: a floor, not the limit"
    return None, ""
