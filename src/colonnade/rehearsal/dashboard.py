"""What a rehearsal shows in the terminal: a live dashboard while it runs (rich's Live, one
refresh per timeline point), the summary once it is over, and the capacity plan.

Without a terminal (CI, a pipe) the dashboard is a line every ten seconds instead.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from colonnade.rehearsal.capacity import Plan
from colonnade.rehearsal.findings import Point
from colonnade.rehearsal.load import Crowd
from colonnade.rehearsal.profile import Profile, clock
from colonnade.rehearsal.report import SLOS, summary_rows

# The dashboard's SLO column judges the last this many seconds.
RECENT_SECONDS = 10.0
PLAIN_EVERY_SECONDS = 10.0


def _value(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _recent_slos(points: list[Point]) -> str:
    if not points:
        return ""
    recent = [p for p in points if p.at > points[-1].at - RECENT_SECONDS]
    judged = []
    for objective in SLOS:
        good = sum(p.slo_events.get(objective.name, (0, 0))[0] for p in recent)
        total = sum(p.slo_events.get(objective.name, (0, 0))[1] for p in recent)
        share = good / total if total else None
        ok = share is None or share >= objective.target
        judged.append(
            f"{objective.name} {'ok' if ok else 'BROKEN'} ({_value(share and share * 100, 2)}%)"
        )
    return ", ".join(judged)


class Dashboard:
    def __init__(self, console: Console, live: bool) -> None:
        self._console = console
        self._live = Live(console=console, auto_refresh=False) if live else None
        self._points: list[Point] = []
        self._printed_at = 0.0

    def __enter__(self) -> Dashboard:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live is not None:
            self._live.stop()

    def show(self, point: Point, crowd: Crowd, profile: Profile) -> None:
        self._points.append(point)
        if self._live is not None:
            self._live.update(self._view(point, crowd, profile), refresh=True)
        elif point.at - self._printed_at >= PLAIN_EVERY_SECONDS:
            self._printed_at = point.at
            self._console.print(
                f"{clock(point.at)} {profile.phase(point.at)}: offered"
                f" {point.offered:.1f}/s, paid {point.purchases / point.seconds:.1f}/s,"
                f" checkout p99 {_value(point.checkout_p99 and point.checkout_p99 * 1000, 0)} ms,"
                f" {crowd.in_flight} visitors in flight; {_recent_slos(self._points)}"
            )

    def _view(self, point: Point, crowd: Crowd, profile: Profile) -> Group:
        tally = crowd.tally
        faults = ", ".join(point.faults) or "none"
        heading = Text.assemble(
            (f" {clock(point.at)} / {clock(profile.seconds)} ", "bold reverse"),
            f"  {profile.phase(point.at)}   faults: ",
            (faults, "bold red" if point.faults else "green"),
        )
        now = Table(show_header=True, box=None, padding=(0, 2))
        for column in (
            "offered/s",
            "paid/s",
            "answered/s",
            "checkout p99 ms",
            "5xx/s",
            "server CPU",
            "DB CPU",
            "pool",
            "outbox lag s",
            "waiting room",
            "in flight",
            "turned away",
        ):
            now.add_column(column, justify="right")
        pool = (
            f"{point.pool_in_use:g}/{point.pool_size:g}"
            if point.pool_in_use is not None and point.pool_size
            else "—"
        )
        now.add_row(
            _value(point.offered),
            _value(point.purchases / point.seconds),
            _value(point.answered / point.seconds),
            _value(point.checkout_p99 and point.checkout_p99 * 1000, 0),
            _value(point.server_errors / point.seconds),
            _value(point.server_cpu, 2),
            _value(point.database_cpu, 2),
            pool,
            _value(point.outbox_lag),
            _value(point.queue_waiting, 0),
            str(point.in_flight),
            str(tally.turned_away_total),
        )
        answers = ", ".join(f"{k}: {v:,}" for k, v in tally.outcomes.most_common(6))
        return Group(
            heading,
            now,
            Text(f"SLOs over the last {RECENT_SECONDS:g}s: {_recent_slos(self._points)}"),
            Text(f"checkouts answered: {answers or 'none yet'}"),
            Text(
                f"flash sale: {tally.flash_sold} sold, {tally.flash_sold_out} told sold out"
                if profile.flash
                else "no flash sale"
            ),
        )


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title="Rehearsal summary", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    for figure, value in summary_rows(report):
        table.add_row(figure, value)
    return table


def plan_table(plan: Plan) -> Table:
    table = Table(
        title=f"Capacity for {plan.peak_per_second * 60:,.0f} orders per minute"
        f" ({plan.peak_per_second:,.1f}/s) with {plan.headroom:g}x headroom"
    )
    for column in ("component", "sized as", "capacity/s", "over peak", "from"):
        table.add_column(
            column, justify="right" if column in ("capacity/s", "over peak") else "left"
        )
    for component in plan.components:
        floor = "≥ " if component.floor else ""
        table.add_row(
            component.name,
            component.sized_as,
            "—" if component.capacity is None else f"{floor}{component.capacity:,.0f}",
            "—" if component.headroom is None else f"{floor}{component.headroom:.2f}x",
            component.basis,
        )
    return table
