"""The `colonnade` command: serve the shop, migrate its database, manage staff, load demo data,
write the API contract."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import os
import signal
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar, runtime_checkable

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress
from rich.table import Table

from colonnade import contract, migrations
from colonnade.app import (
    Shop,
    assemble,
    create_app,
    module_of,
    modules_served,
    run_without_http,
)
from colonnade.kernel.crypto import new_master_key
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.metrics import MULTIPROCESS_DIRECTORY
from colonnade.kernel.redaction import configure_logging
from colonnade.kernel.settings import Settings
from colonnade.modules import MODULES
from colonnade.modules.analytics.service import CHECKOUT_ROUTE
from colonnade.ops import cluster
from colonnade.ops.metrics_port import serve_metrics

cli = typer.Typer(
    help="Colonnade: a commerce platform that survives Black Friday.", no_args_is_help=True
)
users = typer.Typer(help="Staff accounts.", no_args_is_help=True)
cli.add_typer(users, name="users")
keys = typer.Typer(help="Field-encryption keys.", no_args_is_help=True)
cli.add_typer(keys, name="keys")
audit = typer.Typer(help="The audit log.", no_args_is_help=True)
cli.add_typer(audit, name="audit")
dead_letters = typer.Typer(
    help="Events the outbox gave up delivering, parked until replayed.", no_args_is_help=True
)
cli.add_typer(dead_letters, name="dead-letters")
promotions = typer.Typer(help="Promotions and their discount codes.", no_args_is_help=True)
cli.add_typer(promotions, name="promotions")
promotion_codes = typer.Typer(help="Batches of single-use codes.", no_args_is_help=True)
promotions.add_typer(promotion_codes, name="codes")
insights = typer.Typer(help="What sold, from the analytics warehouse.", no_args_is_help=True)
cli.add_typer(insights, name="insights")
analytics = typer.Typer(help="The analytics warehouse.", no_args_is_help=True)
cli.add_typer(analytics, name="analytics")
cluster_commands = typer.Typer(
    help="The distributed shape on one machine: web replicas, relay, worker, nginx in front.",
    no_args_is_help=True,
)
cli.add_typer(cluster_commands, name="cluster")
console = Console()

T = TypeVar("T")


def _with_shop(work: Callable[[Shop], Awaitable[T]]) -> T:
    """Run `work` against a migrated shop, then close it; domain errors end the command cleanly."""

    async def run() -> T:
        settings = Settings()
        configure_logging(settings.log_level)
        shop = assemble(settings)
        try:
            await migrations.upgrade(shop.db, MODULES)
            await shop.keyring.load()
            return await work(shop)
        finally:
            # Connected only if the work called a module in another process.
            await shop.links.close()
            await shop.changes.stop()  # other processes hear at once of what the command changed
            if shop.redis is not None:
                await shop.redis.aclose()
            await shop.db.dispose()

    try:
        return asyncio.run(run())
    except ColonnadeError as error:
        console.print(f"[red]{error.title}:[/red] {error.detail}")
        raise typer.Exit(1) from error


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo_data: Annotated[
        bool,
        typer.Option(
            "--demo-data/--no-demo-data", help="Load the demo shop into an empty database."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (PostgreSQL only; with COLONNADE_SECRET_KEY, shared by all).",
        ),
    ] = 1,
    relay: Annotated[
        bool,
        typer.Option(
            "--relay/--no-relay",
            help="Run an outbox relay here too (--no-relay: `colonnade relay` runs apart).",
        ),
    ] = True,
    consumers: Annotated[
        bool,
        typer.Option(
            "--consumers/--no-consumers",
            help="Run the bus consumers here too (--no-consumers: `colonnade worker` runs apart).",
        ),
    ] = True,
    modules: Annotated[
        str | None,
        typer.Option(help="Comma-separated modules whose routes and consumers this serves."),
    ] = None,
) -> None:
    """Serve the embedded shape: every module in this process, migrated on start."""
    # A long-running server: every worker settles its heap once started (kernel/heap.py).
    os.environ.setdefault("COLONNADE_SETTLE_HEAP", "true")
    # Through the environment: with several workers each builds its shop from it.
    if not relay:
        os.environ["COLONNADE_SERVE_RELAY"] = "false"
    if not consumers:
        os.environ["COLONNADE_SERVE_CONSUMERS"] = "false"
    if modules is not None:
        os.environ["COLONNADE_SERVE_MODULES"] = modules
    try:
        settings = Settings()
        modules_served(settings)
    except ValidationError as error:
        console.print(f"[red]{error.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from error
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    if workers > 1 and settings.database_url.startswith("sqlite"):
        console.print("[red]SQLite is served by one worker:[/red] its writers queue in-process")
        raise typer.Exit(2)
    if workers > 1 and settings.secret_key is None:
        console.print(
            "[red]--workers needs COLONNADE_SECRET_KEY:[/red] tokens must verify anywhere"
        )
        raise typer.Exit(2)
    if demo_data:
        from colonnade.demo import load_demo

        _with_shop(lambda shop: load_demo(shop, console))
    base = f"http://{host}:{port}"
    operations = f"http://{settings.metrics_host}:{settings.metrics_port}"
    console.print(
        Panel.fit(
            f"Shop            {base}/  (/en-us/, /de-de/, /ja-jp/ with the demo data)\n"
            f"Storefront API  {base}/store/products?market=US\n"
            f"API docs        {base}/docs\n"
            f"Operations      {base}/ops  (staff with ops:read)\n"
            f"Insights        {base}/ops/insights  (staff with insights:read)\n"
            f"Health          {base}/health/ready\n"
            + (
                f"Metrics         {operations}/metrics"
                if settings.metrics_port
                else "Metrics         off (COLONNADE_METRICS_PORT=0)"
            ),
            title="Colonnade is starting",
        )
    )
    # On SIGTERM uvicorn stops taking connections and lets requests in flight finish for this
    # long; then the app's shutdown publishes the outbox and closes the database.
    grace = settings.shutdown_grace_seconds
    # Rate limits and logs see the client's address: the proxy's word for it only from the
    # proxies named (uvicorn would otherwise believe any caller on loopback).
    trusted = settings.forwarded_allow_ips
    served: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        # The shop writes its own access log line (web/observability.py).
        "access_log": False,
        "timeout_graceful_shutdown": grace,
        "proxy_headers": trusted is not None,
        "forwarded_allow_ips": trusted,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, metrics_listener=True), **served)
        return
    # Each worker builds its own shop from the same environment; migrations take a lock, relays
    # and jobs share the database through leases and conditional updates. Their metrics meet
    # in a fresh directory, which this process's one metrics listener adds up (the workers
    # serve none: they would fight over its port).
    with tempfile.TemporaryDirectory(prefix="colonnade-metrics-") as shared_metrics:
        os.environ.setdefault(MULTIPROCESS_DIRECTORY, shared_metrics)
        listener = serve_metrics(settings)
        try:
            uvicorn.run("colonnade.app:create_app", factory=True, workers=workers, **served)
        finally:
            if listener is not None:
                listener.stop()


@cli.command()
def relay() -> None:
    """Run the outbox relay alone: publish committed events to the bus (COLONNADE_BUS_URL)."""
    settings = _on_a_broker("The relay alone")
    _until_signalled(
        lambda stopping: run_without_http(
            settings, relay=True, consumes=lambda _: False, stopping=stopping
        )
    )


@cli.command()
def worker(
    modules: Annotated[
        str | None,
        typer.Option(help="Comma-separated modules whose consumers run here; all when omitted."),
    ] = None,
) -> None:
    """Run bus consumers alone (COLONNADE_BUS_URL): e-mails, settlements and the rest of what
    follows from events, scaled apart from the HTTP processes."""
    settings = _on_a_broker("A worker")
    chosen = None if modules is None else {m.strip() for m in modules.split(",") if m.strip()}
    unknown = sorted((chosen or set()) - set(MODULES))
    if unknown:
        console.print(f"[red]No such modules:[/red] {', '.join(unknown)}")
        raise typer.Exit(2)
    _until_signalled(
        lambda stopping: run_without_http(
            settings,
            relay=False,
            consumes=lambda consumer: chosen is None or module_of(consumer) in chosen,
            stopping=stopping,
        )
    )


def _on_a_broker(role: str) -> Settings:
    """The settings, when they name a broker; a process role apart from `serve` has no use
    without one (on the in-process bus, events reach their consumers inside colonnade serve)."""
    settings = Settings()
    if settings.bus_url is None:
        console.print(
            f"[red]{role} needs COLONNADE_BUS_URL:[/red] on the in-process bus, events reach"
            " their consumers inside colonnade serve"
        )
        raise typer.Exit(2)
    return settings


def _until_signalled(work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `work` until SIGTERM or SIGINT asks it to stop."""

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stopping.set)
        await work(stopping)

    asyncio.run(run())


@promotion_codes.command("generate")
def generate_codes(
    promotion: Annotated[str, typer.Argument(help="The promotion's id.")],
    count: Annotated[int, typer.Option(help="How many codes to make.")],
    output: Annotated[
        Path, typer.Option(help="The CSV file to write the codes to (one per line, a header).")
    ],
) -> None:
    """Make COUNT single-use codes for a promotion and write them to a CSV file: each takes
    the promotion's discount off one order, within its window and limits."""

    async def generate(shop: Shop) -> list[str]:
        with Progress(console=console) as progress:
            task = progress.add_task("making codes", total=count)
            return await shop.promotions.generate_codes(
                promotion, count, progress=partial(progress.advance, task)
            )

    made = _with_shop(generate)
    with output.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["code"])
        writer.writerows([code] for code in made)
    console.print(f"{len(made):,} codes written to {output}")


WindowStart = Annotated[
    datetime, typer.Option("--from", help="The window's start, ISO 8601 (UTC if no offset).")
]
WindowEnd = Annotated[datetime, typer.Option("--to", help="The window's end (excluded), ISO 8601.")]
OneMarket = Annotated[str | None, typer.Option(help="One market; all without.")]


@insights.command("sales")
def insights_sales(
    start: WindowStart,
    end: WindowEnd,
    market: OneMarket = None,
) -> None:
    """Paid orders placed in [--from, --to): how many, their revenue and what was refunded of
    them, per currency."""
    figures = _with_shop(lambda shop: shop.analytics.sales(_utc(start), _utc(end), market))
    table = Table(title=f"{figures.orders:,} paid orders")
    table.add_column("currency")
    table.add_column("revenue", justify="right")
    table.add_column("refunded", justify="right")
    for revenue, refunded in zip(figures.revenue, figures.refunded, strict=True):
        table.add_row(revenue.currency, f"{revenue.to_decimal():,}", f"{refunded.to_decimal():,}")
    console.print(table)


@insights.command("categories")
def insights_categories(
    start: WindowStart,
    end: WindowEnd,
    market: OneMarket = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many rows.")] = 10,
) -> None:
    """What paid orders placed in [--from, --to) bought per category (with those below it)."""
    sold = _with_shop(
        lambda shop: shop.analytics.top_categories(_utc(start), _utc(end), market, limit)
    )
    table = Table(title="Top categories")
    for column in ("category", "units", "revenue"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for row in sold:
        table.add_row(
            row.category, f"{row.units:,}", f"{row.revenue.to_decimal():,} {row.revenue.currency}"
        )
    console.print(table)


@insights.command("growth")
def insights_growth(
    end: Annotated[
        datetime | None, typer.Option("--to", help="The week's end, ISO 8601; now without.")
    ] = None,
    market: Annotated[str | None, typer.Option(help="One market; all without.")] = None,
) -> None:
    """Week-over-week demand per market and per category in each market."""
    report = _with_shop(lambda shop: shop.analytics.growth(_utc(end) if end else None, market))
    table = Table(
        title=f"Units in the week to {report.to:%Y-%m-%d %H:%M} UTC against the week before"
    )
    for column in ("market", "category", "units", "week before", "change"):
        table.add_column(column, justify="left" if column in ("market", "category") else "right")
    for row in report.rows:
        change = "—" if row.percent is None else f"{row.percent:+}%"
        table.add_row(
            row.market, row.category or "(all)", f"{row.units:,}", f"{row.units_before:,}", change
        )
    console.print(table)


@insights.command("funnel")
def insights_funnel(start: WindowStart, end: WindowEnd, market: OneMarket = None) -> None:
    """Per market: carts that got their first line in [--from, --to), checkouts decided in
    it, orders placed and paid, and why checkouts were refused."""
    funnels = _with_shop(lambda shop: shop.analytics.funnel(_utc(start), _utc(end), market))
    table = Table(title="From cart to paid order")
    for column in ("market", "carts", "checkouts", "orders", "paid", "conversion", "refused"):
        table.add_column(column, justify="left" if column in ("market", "refused") else "right")
    for row in funnels:
        conversion = "—" if row.conversion is None else f"{row.conversion}%"
        refused = ", ".join(f"{code} {count:,}" for code, count in row.refused) or "—"
        table.add_row(
            row.market,
            f"{row.carts:,}",
            f"{row.checkouts:,}",
            f"{row.orders:,}",
            f"{row.paid:,}",
            conversion,
            refused,
        )
    console.print(table)


@insights.command("declines")
def insights_declines(start: WindowStart, end: WindowEnd, market: OneMarket = None) -> None:
    """Payments declined in [--from, --to) by reason, against the checkouts that asked."""
    found = _with_shop(lambda shop: shop.analytics.declines(_utc(start), _utc(end), market))
    table = Table(title=f"{found.declined:,} of {found.asked:,} payments declined")
    for column in ("reason", "declines", "share"):
        table.add_column(column, justify="left" if column == "reason" else "right")
    for row in found.reasons:
        table.add_row(row.reason, f"{row.count:,}", f"{row.percent}%")
    console.print(table)


@insights.command("forecast")
def insights_forecast(
    day: Annotated[
        datetime | None, typer.Option(help="The day to forecast, YYYY-MM-DD; tomorrow without.")
    ] = None,
    market: OneMarket = None,
) -> None:
    """Paid orders per hour of a coming day, per market, from the last four weeks by hour."""
    start, forecasts, too_little = _with_shop(
        lambda shop: shop.analytics.forecast(day.date() if day else None, market)
    )
    table = Table(title=f"Forecast for {start:%Y-%m-%d} (UTC)")
    for column in ("market", "orders", "peak hour", "error on the last day known"):
        table.add_column(column, justify="left" if column == "market" else "right")
    for forecast in forecasts:
        error = forecast.backtest_error
        table.add_row(
            forecast.market,
            f"{forecast.orders}",
            "—" if forecast.peak is None else f"{forecast.peak:%H:%M}",
            "—" if error is None else f"{error}%",
        )
    console.print(table)
    if too_little:
        console.print(f"Too little history to forecast: {', '.join(too_little)}")


@insights.command("routes")
def insights_routes(
    start: WindowStart,
    end: WindowEnd,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many rows.")] = 10,
) -> None:
    """The routes answered in [--from, --to), the slowest by p95 first, with their trend."""
    found = _with_shop(lambda shop: shop.analytics.slowest_routes(_utc(start), _utc(end), limit))
    table = Table(title="Slowest routes (ms)")
    for column in ("route", "requests", "errors", "p50", "p95", "p99", "p95 before"):
        table.add_column(column, justify="left" if column == "route" else "right")

    def ms(seconds: float | None) -> str:
        return "—" if seconds is None else f"{seconds * 1000:,.1f}"

    for row in found:
        table.add_row(
            row.route,
            f"{row.requests:,}",
            f"{row.errors:,}",
            ms(row.p50),
            ms(row.p95),
            ms(row.p99),
            ms(row.p95_before),
        )
    console.print(table)


@insights.command("timeline")
def insights_timeline(
    start: WindowStart,
    end: WindowEnd,
    every: Annotated[
        str, typer.Option(help="minute (a day at most), hour (a week) or day.")
    ] = "minute",
    market: OneMarket = None,
    route: Annotated[str, typer.Option(help="The route to follow.")] = CHECKOUT_ROUTE,
) -> None:
    """Paid orders per market beside the route's p99, checkouts per outcome, the outbox's lag
    and the database connections in use, step by step over [--from, --to)."""
    if every not in ("minute", "hour", "day"):
        raise typer.BadParameter("minute, hour or day", param_hint="--every")
    found = _with_shop(
        lambda shop: shop.analytics.timeline(_utc(start), _utc(end), every, market, route)
    )
    table = Table(title=f"Orders beside {route}")
    for column in ("from", "orders", "requests", "p99 ms", "checkouts", "outbox lag s", "pool"):
        table.add_column(column, justify="left" if column in ("from", "checkouts") else "right")
    for moment in found:
        table.add_row(
            f"{moment.start:%Y-%m-%d %H:%M}",
            ", ".join(f"{m} {n:,}" for m, n in moment.orders) or "—",
            f"{moment.requests:,}",
            "—" if moment.p99 is None else f"{moment.p99 * 1000:,.1f}",
            ", ".join(f"{o} {n:,}" for o, n in moment.checkouts) or "—",
            "—" if moment.outbox_lag is None else f"{moment.outbox_lag:.2f}",
            "—" if moment.pool_in_use is None else f"{moment.pool_in_use}/{moment.pool_size}",
        )
    console.print(table)


@insights.command("customers")
def insights_customers(start: WindowStart, end: WindowEnd, market: OneMarket = None) -> None:
    """Per market, who bought the paid orders placed in [--from, --to)."""
    found = _with_shop(lambda shop: shop.analytics.customers(_utc(start), _utc(end), market))
    table = Table(title="Customers, new and returning")
    for column in ("market", "customers", "new", "returning", "their orders", "guest orders"):
        table.add_column(column, justify="left" if column == "market" else "right")
    for row in found:
        table.add_row(
            row.market,
            f"{row.customers:,}",
            f"{row.new:,}",
            f"{row.returning:,}",
            f"{row.customer_orders:,}",
            f"{row.guest_orders:,}",
        )
    console.print(table)


@insights.command("stock-outs")
def insights_stock_outs(
    start: WindowStart,
    end: WindowEnd,
    market: OneMarket = None,
    hours_before: Annotated[
        int, typer.Option(min=1, max=168, help="Hours before a stock-out its demand is read.")
    ] = 1,
) -> None:
    """SKUs that sold out in [--from, --to), how long, and the sales lost while out."""
    outs = _with_shop(
        lambda shop: shop.analytics.stock_outs(
            _utc(start), _utc(end), market, timedelta(hours=hours_before)
        )
    )
    table = Table(title=f"Sold out, with demand read over the {hours_before} h before")
    for column in ("sku", "sold out", "back", "out for", "units before", "lost", "lost revenue"):
        table.add_column(column, justify="right" if column in ("units before", "lost") else "left")
    for out in outs:
        table.add_row(
            out.sku,
            f"{out.began:%Y-%m-%d %H:%M}",
            "still out" if out.ended is None else f"{out.ended:%Y-%m-%d %H:%M}",
            str(out.out_for).split(".")[0],
            f"{out.units_before:,}",
            f"{out.lost_units}",
            ", ".join(f"{m.to_decimal():,} {m.currency}" for m in out.lost_revenue) or "—",
        )
    console.print(table)


@analytics.command("rebuild")
def analytics_rebuild() -> None:
    """Take the warehouse's order facts again from the orders as they stand (carts started
    and checkouts refused, which only their events told, are kept)."""

    async def rebuild(shop: Shop) -> int:
        with Progress(console=console) as progress:
            task = progress.add_task("reading orders", total=None)
            return await shop.analytics.rebuild(
                lambda limit, offset: shop.orders.search(limit=limit, offset=offset),
                lambda done, total: progress.update(task, completed=done, total=total),
            )

    read = _with_shop(rebuild)
    console.print(f"{read:,} orders read; the warehouse holds their facts again")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@cluster_commands.command("up")
def cluster_up(
    replicas: Annotated[
        int, typer.Option(min=1, help="Web processes behind the edge (per module group).")
    ] = 2,
    group: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=MODULE,MODULE[:REPLICAS]: replicas serving only these modules' routes"
            " (repeatable); the other modules, health and /ops form the group `rest`.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the edge (nginx) listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the edge listens on.")] = 8080,
    demo_data: Annotated[
        bool,
        typer.Option(
            "--demo-data/--no-demo-data", help="Load the demo shop into an empty database."
        ),
    ] = False,
) -> None:
    """Run the distributed shape here until `colonnade cluster down`: web replicas, a relay,
    a worker and nginx, on COLONNADE_DATABASE_URL (PostgreSQL) and COLONNADE_BUS_URL (NATS)."""
    settings = Settings()
    try:
        groups = cluster.module_groups(group or [], replicas)
    except ValueError as error:
        console.print(f"[red]Cannot start the cluster:[/red] {error}")
        raise typer.Exit(2) from error
    problem = cluster.refusal(settings)
    if problem is not None:
        console.print(f"[red]Cannot start the cluster:[/red] {problem}")
        raise typer.Exit(2)
    running = cluster.running_supervisor()
    if running is not None:
        console.print(
            f"[red]A cluster runs already[/red] (pid {running}, state in {cluster.state_dir()});"
            " colonnade cluster down stops it"
        )
        raise typer.Exit(2)
    if not cluster.port_is_free(host, port):
        console.print(f"[red]The edge's port is taken:[/red] {host}:{port} (choose --port)")
        raise typer.Exit(2)
    if demo_data:
        from colonnade.demo import load_demo

        _with_shop(lambda shop: load_demo(shop, console))
    else:
        migrate()
    planned = cluster.plan(settings, console, groups=groups, host=host, port=port)
    raise typer.Exit(planned.run())


@cluster_commands.command("down")
def cluster_down() -> None:
    """Stop the cluster `colonnade cluster up` runs from this directory (or
    COLONNADE_CLUSTER_DIR), and wait until every process of it has ended."""
    pid = cluster.running_supervisor()
    if pid is None:
        console.print(f"[yellow]No cluster runs[/yellow] from {cluster.state_dir()}")
        return
    console.print(f"stopping the cluster (pid {pid}): edge, web, worker, relay")
    # Four stages, each waiting at most this long for its processes.
    if not cluster.bring_down(pid, 4 * cluster.stop_grace_seconds(Settings())):
        console.print(f"[red]The cluster (pid {pid}) has not ended yet[/red]")
        raise typer.Exit(1)
    console.print("[green]the cluster is down[/green]")


@cli.command()
def rehearse(
    staff_email: Annotated[
        str,
        typer.Option(envvar="COLONNADE_REHEARSAL_STAFF_EMAIL", help="A staff login of the shop."),
    ],
    staff_password: Annotated[
        str, typer.Option(envvar="COLONNADE_REHEARSAL_STAFF_PASSWORD", help="Its password.")
    ],
    url: Annotated[str, typer.Option(help="The shop's public URL.")] = "http://127.0.0.1:8000",
    metrics_url: Annotated[
        str | None,
        typer.Option(help="Where the shop's /metrics answers; its host's port 9100 without."),
    ] = None,
    metrics_token: Annotated[
        str | None,
        typer.Option(envvar="COLONNADE_METRICS_TOKEN", help="Bearer token of a public /metrics."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="A host other than this machine the rehearsal may load (repeatable)."),
    ] = None,
    duration: Annotated[str, typer.Option(help="How long: 90s, 3m, 2:30.")] = "3m",
    baseline: Annotated[float, typer.Option(help="Purchases per second at the start.")] = 2.0,
    peak: Annotated[float, typer.Option(help="The peak, as a multiple of the baseline.")] = 10.0,
    ramp: Annotated[
        str | None, typer.Option(help="How long the ramp to the peak takes; a third without.")
    ] = None,
    market: Annotated[str, typer.Option(help="The market the visitors shop in.")] = "US",
    flash_sale: Annotated[
        bool, typer.Option("--flash-sale/--no-flash-sale", help="A flash sale on one SKU.")
    ] = True,
    flash_at: Annotated[
        str | None, typer.Option(help="When it opens; half-way through the peak without.")
    ] = None,
    flash_sku: Annotated[
        str | None, typer.Option(help="The SKU on sale; the catalog's first without.")
    ] = None,
    flash_stock: Annotated[int, typer.Option(min=1, help="Units it puts on sale.")] = 100,
    flash_buyers: Annotated[
        int | None, typer.Option(min=1, help="Buyers who rush in; five per unit without.")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND@AT[+LASTING] (repeatable): slow-provider, failing-provider (held, 30s"
            " without +LASTING), kill-worker, cut-database (struck once; loopback only).",
        ),
    ] = None,
    server_pid: Annotated[
        int | None,
        typer.Option(help="The shop's server process (loopback); found by its port without."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The shop's PostgreSQL (loopback): its CPU is metered, its"
            " connections cut by cut-database."
        ),
    ] = None,
    stock_up: Annotated[
        bool,
        typer.Option(
            "--stock-up/--no-stock-up",
            help="Put enough units on hand first that the crowd never finds a SKU sold out.",
        ),
    ] = True,
    max_visitors: Annotated[
        int, typer.Option(min=1, help="Visitors under way at once; more are turned away.")
    ] = 1000,
    window: Annotated[float, typer.Option(min=1, help="Seconds each SLO verdict spans.")] = 10.0,
    output: Annotated[
        Path | None,
        typer.Option(help="The report's path without suffix (.json and .html are written)."),
    ] = None,
    dashboard: Annotated[
        bool | None,
        typer.Option("--dashboard/--no-dashboard", help="The live dashboard (in a terminal)."),
    ] = None,
) -> None:
    """Rehearse Black Friday against a running shop: a ramp to a peak of purchases, a flash
    sale and faults on a schedule, watched live; then a report (JSON and HTML) of the SLOs,
    the highest rate held within them, where saturation began, orders lost and oversold units.
    Exits 1 when an order was lost or a unit oversold."""
    from colonnade.rehearsal import dashboard as views
    from colonnade.rehearsal import report as reports
    from colonnade.rehearsal.profile import FlashSale, Profile, parse_fault, parse_seconds
    from colonnade.rehearsal.run import Rehearsal
    from colonnade.rehearsal.run import rehearse as run_rehearsal
    from colonnade.rehearsal.staff import StaffRefused
    from colonnade.rehearsal.target import TargetRefused, host_of

    try:
        seconds = parse_seconds(duration)
        ramp_seconds = parse_seconds(ramp) if ramp is not None else seconds / 3
        flash = None
        if flash_sale:
            opens = (
                parse_seconds(flash_at)
                if flash_at is not None
                else ramp_seconds + (seconds - ramp_seconds) / 2
            )
            flash = FlashSale(flash_sku or "", opens, flash_stock, flash_buyers or 5 * flash_stock)
        profile = Profile(
            seconds,
            baseline,
            peak,
            ramp_seconds,
            flash=flash,
            faults=tuple(parse_fault(f) for f in fault or []),
        )
        asked = Rehearsal(
            url=url.rstrip("/"),
            metrics_url=metrics_url or f"http://{host_of(url)}:9100",
            metrics_token=metrics_token,
            staff_email=staff_email,
            staff_password=staff_password,
            profile=profile,
            market=market,
            allowed_hosts=tuple(allow_host or []),
            server_pid=server_pid,
            database_url=database_url,
            stock_up=stock_up,
            max_visitors=max_visitors,
            window=window,
        )
    except ValueError as error:
        console.print(f"[red]Cannot rehearse:[/red] {error}")
        raise typer.Exit(2) from error
    live = console.is_terminal if dashboard is None else dashboard
    try:
        with views.Dashboard(console, live) as shown:
            done = _on_fast_loop(run_rehearsal(asked, shown.show))
    except (TargetRefused, StaffRefused) as error:
        console.print(f"[red]Cannot rehearse:[/red] {error}")
        raise typer.Exit(2) from error
    found = reports.build(done)
    stem = output or Path(f"rehearsal-{done.started_at:%Y%m%dT%H%M%SZ}")
    data, page = reports.write(found, stem)
    console.print(views.summary_table(found))
    console.print(f"report: {data} and {page}")
    if found["summary"]["orders_lost"] or found["summary"]["oversold_units"]:
        raise typer.Exit(1)


def _on_fast_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on uvloop where it is installed (it comes with uvicorn[standard]): the load
    generator's requests cost less CPU there."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


@cli.command()
def capacity(
    report: Annotated[Path, typer.Option(help="A rehearsal's JSON report.")],
    peak_orders_per_minute: Annotated[
        float, typer.Option(min=1, help="The orders per minute expected at the peak.")
    ],
    headroom: Annotated[
        float, typer.Option(min=1, help="Spare capacity at the peak, as a multiple.")
    ] = 1.5,
    pod_cores: Annotated[int, typer.Option(min=1, help="Cores per pod (a worker each).")] = 2,
    max_connections: Annotated[
        int, typer.Option(min=1, help="The database's max_connections.")
    ] = 100,
) -> None:
    """Turn a rehearsal's measured figures into workers, pods and a database for a peak, with
    headroom, and name the first component to saturate."""
    import json

    from colonnade.rehearsal.capacity import plan
    from colonnade.rehearsal.dashboard import plan_table
    from colonnade.rehearsal.findings import Figures

    try:
        figures = Figures(**json.loads(report.read_text(encoding="utf-8"))["figures"])
        planned = plan(
            figures,
            peak_orders_per_minute,
            headroom=headroom,
            pod_cores=pod_cores,
            max_connections=max_connections,
        )
    except (OSError, KeyError, TypeError, ValueError) as error:
        console.print(f"[red]Cannot plan:[/red] {error}")
        raise typer.Exit(2) from error
    console.print(plan_table(planned))
    first = planned.first_to_saturate
    console.print(
        f"Run {planned.workers} workers in {planned.pods} pods of {planned.pod_cores} cores"
        + (f" on a database of {planned.database_cores} cores" if planned.database_cores else "")
        + (
            f"; the first to saturate is the {first.name}, at {first.headroom:.2f}x the peak."
            if first is not None and first.headroom is not None
            else "."
        )
    )
    for unproven in planned.unproven:
        console.print(
            f"[yellow]Unproven:[/yellow] the {unproven.name} was never pushed to its limit and"
            f" only showed {unproven.headroom or 0:.2f}x the peak ({unproven.basis}):"
            " rehearse at a higher rate to learn whether it keeps up."
        )


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest revision of every module."""

    async def done(_: Shop) -> None:
        console.print("[green]database is up to date[/green]")

    _with_shop(done)


@cli.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write the document here instead of standard output.")
    ] = None,
) -> None:
    """Write the shop's OpenAPI document, the API contract committed as openapi.json."""
    text = contract.render()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@cli.command("demo-data")
def demo_data() -> None:
    """Load the demo shop (markets, products, prices, stock) unless it has products already."""
    from colonnade.demo import load_demo

    _with_shop(lambda shop: load_demo(shop, console))


@users.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The staff member's e-mail address.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters."
        ),
    ],
) -> None:
    """Create a staff account that holds every scope."""

    async def create(shop: Shop) -> None:
        member = await shop.identity.create_staff(email, password)
        console.print(f"[green]created admin[/green] {member.email} ({len(member.scopes)} scopes)")

    _with_shop(create)


@audit.command("verify")
def verify_audit() -> None:
    """Walk the audit log's hash chain; exit 1 naming the first changed or missing row."""

    async def verify(shop: Shop) -> bool:
        log = shop.compliance.audit
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("verifying the audit log", total=await log.size())
            verdict = await log.verify(progress=lambda n: progress.advance(task, n))
        if verdict.intact:
            console.print(f"[green]intact[/green]: {verdict.rows} rows, every link holds")
            return True
        console.print(f"[red]broken[/red]: {verdict.problem} ({verdict.rows} rows intact before)")
        return False

    if not _with_shop(verify):
        raise typer.Exit(1)


@dead_letters.command("list")
def list_dead_letters(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, oldest first.")] = 100,
) -> None:
    """Show parked events: what they are, who refused them, and the last error."""

    async def show(shop: Shop) -> None:
        parked = await shop.dead_letters.parked(limit)
        if not parked:
            console.print("[green]no dead letters[/green]")
            return
        table = Table(title=f"Dead letters ({await shop.dead_letters.waiting()} parked)")
        for column in ("id", "event", "event id", "consumers", "attempts", "parked at"):
            table.add_column(column)
        table.add_column("last error", overflow="fold")
        for letter in parked:
            table.add_row(
                str(letter.id),
                letter.event_type,
                letter.event_id,
                letter.consumers or "-",
                str(letter.attempts),
                f"{letter.parked_at:%Y-%m-%d %H:%M:%S}",
                letter.last_error or "",
            )
        console.print(table)

    _with_shop(show)


@dead_letters.command("replay")
def replay_dead_letters(
    ids: Annotated[list[int] | None, typer.Argument(help="Ids from `dead-letters list`.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every parked event.")] = False,
) -> None:
    """Put parked events back into the outbox; the relay delivers them afresh."""
    if bool(ids) == replay_all:
        console.print("[red]name the ids to replay, or pass --all[/red]")
        raise typer.Exit(2)

    async def replay(shop: Shop) -> int:
        total = await shop.dead_letters.waiting() if replay_all else len(ids or [])
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("replaying dead letters", total=total)
            return await shop.dead_letters.replay(
                None if replay_all else ids, progress=partial(progress.advance, task)
            )

    replayed = _with_shop(replay)
    console.print(f"[green]replayed {replayed} events[/green] into the outbox")
    if not replay_all and replayed < len(ids or []):
        console.print(f"[yellow]{len(ids or []) - replayed} of the ids were not parked[/yellow]")
        raise typer.Exit(1)


@keys.command("new")
def new_key() -> None:
    """Print a fresh master key for COLONNADE_ENCRYPTION_KEY; nothing is stored."""
    typer.echo(new_master_key())


@runtime_checkable
class _HoldsEncryptedData(Protocol):
    """A module service whose tables hold encrypted columns."""

    async def reencrypt(self, progress: Callable[[int], None] | None = None) -> int: ...

    async def stale_rows(self) -> int: ...


def _holders_of_encrypted_data(shop: Shop) -> list[tuple[str, _HoldsEncryptedData]]:
    found = [(field.name, getattr(shop, field.name)) for field in dataclasses.fields(shop)]
    return [(name, service) for name, service in found if isinstance(service, _HoldsEncryptedData)]


@keys.command("rotate")
def rotate_keys() -> None:
    """Add a data key and re-encrypt every module's personal data under it.

    Resumable: when values under an older key remain (a rotation was interrupted), the run
    finishes that rotation under the newest key instead of adding another; run it once more
    afterwards for a fresh key. Processes started before the rotation keep encrypting new
    values under the key they loaded until restarted, so restart them, then run it again to
    catch what they wrote meanwhile.
    """

    async def rotate(shop: Shop) -> None:
        holders = _holders_of_encrypted_data(shop)
        unfinished = sum([await service.stale_rows() for _, service in holders])
        if unfinished:
            console.print(
                f"finishing an unfinished rotation: {unfinished} rows are under an older key"
            )
        else:
            await shop.keyring.add_key()
        key_id = shop.keyring.active_key_id
        with Progress(console=console) as progress:
            for name, service in holders:
                task = progress.add_task(f"re-encrypting {name}", total=await service.stale_rows())
                await service.reencrypt(progress=partial(progress.advance, task))
        console.print(f"[green]every encrypted value is under data key[/green] {key_id}")

    _with_shop(rotate)


def main() -> None:
    cli()
