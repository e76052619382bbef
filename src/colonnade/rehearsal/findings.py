"""What a rehearsal found, worked out from its timeline: whether each SLO held and when it
broke, the highest purchase rate held within every SLO, where saturation began, and the
figures a capacity plan is drawn from. Pure: points in, verdicts out.

The timeline is one point per scrape of the shop's metrics (about a second): the shop's own
counters as deltas over the interval, the machine's CPU where the rehearsal could read it,
and what the load generator did. Verdicts are over sliding windows of `window` seconds,
short enough to say when something broke, long enough to hold more than a handful of
checkouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

# A component is saturated once its condition holds this long, not on a single bad scrape.
SUSTAIN_SECONDS = 3.0
# Busy share of the cores a component may use from which it counts as saturated.
BUSY = 0.9
# Events waiting longer than this mean the outbox relay no longer keeps up.
OUTBOX_LAG_SATURATED = 5.0
# Visitors who spend longer than this in the shop on average (a visit is a few requests)
# are queuing for answers (Little's law: visitors in flight over visitors arriving).
QUEUING_SECONDS = 5.0


@dataclass(frozen=True)
class Point:
    """One interval of the rehearsal, ending `at` seconds after its start."""

    at: float
    seconds: float
    offered: float  # purchases per second the profile offered (flash buyers included)
    arriving: float  # visitors per second the profile let in
    purchases: float  # checkouts the shop counted as paid in the interval
    answered: float  # purchases the shoppers were answered 201 in the interval
    requests: float
    server_errors: float
    # Per objective: good and total events in the interval, by the shop's metrics.
    slo_events: dict[str, tuple[float, float]]
    checkout_p99: float | None  # seconds, from the shop's histogram over the interval
    events_published: float
    server_cpu: float | None = None  # cores busy
    database_cpu: float | None = None
    generator_cpu: float | None = None
    machine_cpu: float | None = None  # busy share of all the machine's cores
    pool_in_use: float | None = None
    pool_size: float | None = None
    outbox_lag: float | None = None
    outbox_backlog: float | None = None
    queue_waiting: float | None = None  # the checkout waiting room's ticket holders
    in_flight: int = 0  # visits the load generator had under way
    turned_away: int = 0  # visitors the generator could not start, at its limit
    # Faults held then, or whose aftermath lasted into the interval.
    faults: tuple[str, ...] = ()
    flash_sale: bool = False  # its buyers were rushing in


@dataclass(frozen=True)
class Objective:
    name: str
    title: str
    target: float


@dataclass(frozen=True)
class Broken:
    """From when to when (seconds since the start) the window ending then fell below target,
    and the faults in those windows (none: the load alone broke it)."""

    start: float
    end: float
    faults: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    objective: Objective
    held: bool
    broken: list[Broken]
    worst: float | None  # the lowest good share of any window with events


@dataclass(frozen=True)
class Saturation:
    component: str  # server CPU, database, outbox, queue
    at: float
    purchases_per_second: float  # held over the window ending then
    offered: float
    detail: str
    faults: tuple[str, ...] = ()  # held (or in their aftermath) when it began


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    points: Sequence[Point]

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.points)

    def rate(self, value: Callable[[Point], float]) -> float:
        return sum(value(p) for p in self.points) / max(self.seconds, 1e-9)

    def events(self, objective: str) -> tuple[float, float]:
        pairs = [p.slo_events.get(objective, (0.0, 0.0)) for p in self.points]
        return sum(g for g, _ in pairs), sum(t for _, t in pairs)


def windows(points: Sequence[Point], seconds: float, *, partial: bool = False) -> Iterator[Window]:
    """Each window of `seconds` ending at a point, once the rehearsal is that old; with
    `partial`, also those of the first seconds, from the start."""
    first = 0
    for last, point in enumerate(points):
        while points[first].at - points[first].seconds < point.at - seconds - 1e-9:
            first += 1
        if partial or point.at >= seconds - 1e-9:
            yield Window(max(0.0, point.at - seconds), point.at, points[first : last + 1])


def verdicts(
    points: Sequence[Point], objectives: Sequence[Objective], window: float
) -> list[Verdict]:
    found = []
    for objective in objectives:
        broken: list[Broken] = []
        worst: float | None = None
        previous_end: float | None = None
        # The first seconds are judged too: a fault early on breaks the SLO from then.
        for w in windows(points, window, partial=True):
            good, total = w.events(objective.name)
            if total <= 0:
                continue
            share = good / total
            worst = share if worst is None else min(worst, share)
            if share < objective.target:
                faults = {f for p in w.points for f in p.faults}
                # A stretch the load alone broke stays apart from one a fault had a hand in.
                if (
                    broken
                    and broken[-1].end == previous_end
                    and bool(broken[-1].faults) == bool(faults)
                ):
                    last = broken[-1]
                    broken[-1] = Broken(last.start, w.end, tuple(sorted({*last.faults, *faults})))
                else:
                    broken.append(Broken(w.end, w.end, tuple(sorted(faults))))
            previous_end = w.end
        found.append(Verdict(objective, not broken, broken, worst))
    return found


def highest_held(
    points: Sequence[Point],
    objectives: Sequence[Objective],
    window: float,
    *,
    steady: bool = False,
) -> tuple[float, float | None]:
    """The highest purchases per second over a window in which every objective held, and
    when that window ended (0 and None when none held). With `steady`, only windows of the
    mix alone count: a flash sale's buyers skip browsing and make purchases cheaper."""
    best, when = 0.0, None
    for w in windows(points, window):
        if steady and any(p.flash_sale for p in w.points):
            continue
        held = True
        for objective in objectives:
            good, total = w.events(objective.name)
            held = held and (total <= 0 or good / total >= objective.target)
        rate = w.rate(lambda p: p.purchases)
        if held and rate > best:
            best, when = rate, w.end
    return best, when


def saturation(
    points: Sequence[Point], server_cores: float, database_cores: float | None
) -> list[Saturation]:
    """Per component, the first moment its condition held for SUSTAIN_SECONDS, earliest
    first: the server's CPU near all the cores its processes may use (or, on a machine it
    shares with the database and the load generator, every core of it busy); the database's
    CPU likewise, or every pooled connection in use; the outbox lagging; buyers queuing (the
    waiting room's tickets, visitors kept far longer than a visit takes, or visitors the
    generator could not even start)."""

    def server(p: Point) -> str | None:
        if p.server_cpu is not None and p.server_cpu >= BUSY * server_cores:
            return f"{p.server_cpu:.2f} of {server_cores:g} cores busy"
        if p.machine_cpu is not None and p.machine_cpu >= BUSY:
            return (
                f"the machine's cores {p.machine_cpu:.0%} busy (server {p.server_cpu or 0:.2f},"
                f" database {p.database_cpu or 0:.2f}, load generator"
                f" {p.generator_cpu or 0:.2f} cores)"
            )
        return None

    def database(p: Point) -> str | None:
        cores = database_cores
        if p.database_cpu is not None and cores and p.database_cpu >= BUSY * cores:
            return f"{p.database_cpu:.2f} of {cores:g} cores busy"
        if p.pool_size and p.pool_in_use is not None and p.pool_in_use >= p.pool_size:
            return f"all {p.pool_size:g} pooled connections in use"
        return None

    def outbox(p: Point) -> str | None:
        if p.outbox_lag is not None and p.outbox_lag >= OUTBOX_LAG_SATURATED:
            return f"events wait {p.outbox_lag:.1f}s to be published"
        return None

    def queue(p: Point) -> str | None:
        if p.queue_waiting:
            return f"{p.queue_waiting:g} buyers hold waiting-room tickets"
        if p.turned_away:
            return f"{p.turned_away} visitors could not start: the shop answered too slowly"
        if p.arriving > 0 and p.in_flight >= QUEUING_SECONDS * p.arriving:
            return (
                f"{p.in_flight} visitors under way, {p.in_flight / p.arriving:.0f}s of"
                " arrivals: they wait for answers"
            )
        return None

    found = []
    checks = {"server CPU": server, "database": database, "outbox": outbox, "queue": queue}
    for component, check in checks.items():
        since: float | None = None
        faults: tuple[str, ...] = ()
        for i, point in enumerate(points):
            detail = check(point)
            if detail is None:
                since = None
                continue
            if since is None:
                since, faults = point.at - point.seconds, point.faults
            if point.at - since >= SUSTAIN_SECONDS:
                recent = [p for p in points[: i + 1] if p.at > point.at - 10]
                w = Window(point.at - 10, point.at, recent)
                found.append(
                    Saturation(
                        component,
                        since,
                        w.rate(lambda p: p.purchases),
                        w.rate(lambda p: p.offered * p.seconds),
                        detail,
                        faults,
                    )
                )
                break
    return sorted(found, key=lambda s: s.at)


@dataclass(frozen=True)
class Figures:
    """What a capacity plan is drawn from, measured over the intervals with purchases and
    no fault held."""

    processes: int
    purchases: float
    server_cpu_per_purchase: float | None  # CPU seconds, browsing and carts included
    database_cpu_per_purchase: float | None
    events_per_purchase: float | None
    highest_held: float  # purchases per second of the mix alone, every SLO held
    # Whether the rehearsal pushed the server to its limit (saturated, or an SLO broke with no
    # fault to blame): only then is highest_held a ceiling rather than a floor.
    server_limit_reached: bool
    outbox_events_per_second: float  # the most the relay published over a window
    outbox_limit_reached: bool
    pool_per_process: float | None


def figures(
    points: Sequence[Point],
    verdicts_found: Sequence[Verdict],
    saturated: Sequence[Saturation],
    *,
    processes: int,
    highest: float,
    window: float,
) -> Figures:
    calm = [p for p in points if p.purchases > 0 and not p.faults]
    bought = sum(p.purchases for p in calm)

    def per_purchase(value: Callable[[Point], float | None]) -> float | None:
        """Over the calm intervals where the value was read (a meter's first is not)."""
        measured = [(v, p) for p in calm if (v := value(p)) is not None]
        purchases = sum(p.purchases for _, p in measured)
        return sum(v * p.seconds for v, p in measured) / purchases if purchases else None

    # Only the load's own doing shows a limit: what a fault caused says nothing of capacity.
    components = {s.component for s in saturated if not s.faults}
    broke_unprovoked = any(not b.faults for v in verdicts_found for b in v.broken)
    # Before any fault: a killed worker's pool is still counted after its successor opens one.
    sizes = [p.pool_size for p in points if p.pool_size]
    return Figures(
        processes=processes,
        purchases=sum(p.purchases for p in points),
        server_cpu_per_purchase=per_purchase(lambda p: p.server_cpu),
        database_cpu_per_purchase=per_purchase(lambda p: p.database_cpu),
        events_per_purchase=(sum(p.events_published for p in calm) / bought if bought else None),
        highest_held=highest,
        server_limit_reached="server CPU" in components or broke_unprovoked,
        outbox_events_per_second=max(
            (w.rate(lambda p: p.events_published) for w in windows(points, window)),
            default=0.0,
        ),
        outbox_limit_reached="outbox" in components,
        pool_per_process=sizes[0] / processes if sizes else None,
    )
