"""The benchmark's printed tables and its JSON record in bench/results/."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bench.purchase import Results, Step

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_THROUGHPUT = 0.2  # purchases/s at 64 clients per TPC-B tps
TARGET_FLASH_SALE = 1.0  # flash-sale sales/s per hot-row tps

# Wide enough for the purchases table when the output goes to a file instead of a terminal.
console = Console(width=None if sys.stdout.isatty() else 160)


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _errors(step: Step) -> str:
    return str(sum(step.report.errors.values()))


def _scenario(step: Step) -> str:
    if step.report.scenario == "throughput":
        return "purchases"
    return "flash sale"


def purchases_table(results: Results) -> Table:
    cores = os.cpu_count() or 1
    workers = results.arguments.get("workers", 1)
    table = Table(
        title="Guest purchases (cart + line + checkout), one `colonnade serve`"
        f" (PostgreSQL: {workers} worker processes)"
    )
    for name, justify in [
        ("database", "left"),
        ("scenario", "left"),
        ("clients", "right"),
        ("rate/s", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("errors", "right"),
        ("server CPU", "right"),
        ("load gen CPU", "right"),
        ("PG CPU", "right"),
        (f"machine ({cores} cores)", "right"),
        ("write tx/purchase", "right"),
        ("statements/purchase", "right"),
        ("server ms/purchase", "right"),
        ("outbox lag s", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for step in results.steps:
        r = step.report
        table.add_row(
            step.database,
            _scenario(step),
            str(r.clients),
            _num(r.rate),
            _num(r.p50_ms, 0),
            _num(r.p99_ms, 0),
            _errors(step),
            _share(r.cpu.server),
            _share(r.cpu.load_generator),
            _share(r.cpu.database),
            _share(r.cpu.machine),
            _num(step.write_transactions_per_purchase),
            _num(r.statements_per_purchase),
            _num(_server_ms(step)),
            _num(r.outbox_lag_seconds),
        )
    return table


def _server_ms(step: Step) -> float | None:
    """Server CPU milliseconds per purchase in the window."""
    r = step.report
    return r.cpu.server * 1000 / r.rate if r.rate else None


def batches_table(results: Results) -> Table:
    """How many requests went to the database together, per step of the purchase."""
    steps = sorted({name for s in results.steps for name in s.report.batch_sizes})
    table = Table(title="Batch sizes per step (p50 / p99, requests per batch)")
    for name in ("database", "scenario", "clients", *steps):
        table.add_column(name, justify="left" if name in ("database", "scenario") else "right")
    for step in results.steps:
        sizes = step.report.batch_sizes
        table.add_row(
            step.database,
            _scenario(step),
            str(step.report.clients),
            *(
                f"{sizes[name][0]:g} / {sizes[name][1]:g}" if name in sizes else "—"
                for name in steps
            ),
        )
    return table


def _step(results: Results, database: str, scenario: str, clients: int | None) -> Step | None:
    for step in results.steps:
        r = step.report
        if (step.database, r.scenario) == (database, scenario) and clients in (None, r.clients):
            return step
    return None


def ratios_table(results: Results) -> Table:
    """Every target of the batched purchase path, PostgreSQL at 64 clients unless named."""
    figures = results.pgbench
    table = Table(title="Targets, measured in this run")
    for name in ("figure", "PostgreSQL", "target", "met", "SQLite (beside)"):
        table.add_column(name, justify="left" if name == "figure" else "right")

    def row(label: str, pg: float | None, lite: float | None, target: str, ok: bool) -> None:
        met = "—" if pg is None else ("yes" if ok else "NO")
        table.add_row(label, _num(pg, 3), target, met, _num(lite, 3))

    pg64 = _step(results, "postgresql", "throughput", 64)
    lite64 = _step(results, "sqlite", "throughput", 64)
    flash = _step(results, "postgresql", "flash_sale", None)
    lite_flash = _step(results, "sqlite", "flash_sale", None)
    if figures is not None:
        tpcb, hot = figures.tpcb.tps, figures.hot_row.tps
        pg, lite = (
            (pg64.report.rate / tpcb if pg64 else None),
            (lite64.report.rate / tpcb if lite64 else None),
        )
        row(
            f"purchases/s at 64 clients ÷ TPC-B tps ({tpcb:,.0f})",
            pg,
            lite,
            f"≥ {TARGET_THROUGHPUT}",
            pg is not None and pg >= TARGET_THROUGHPUT,
        )
        pg, lite = (
            (flash.report.rate / hot if flash else None),
            (lite_flash.report.rate / hot if lite_flash else None),
        )
        row(
            f"flash-sale sales/s ÷ hot-row tps ({hot:,.0f})",
            pg,
            lite,
            f"≥ {TARGET_FLASH_SALE}",
            pg is not None and pg >= TARGET_FLASH_SALE,
        )
    p99 = pg64.report.p99_ms if pg64 else None
    row(
        "p99 ms of a purchase at 64 clients",
        p99,
        lite64.report.p99_ms if lite64 else None,
        "≤ 200",
        p99 is not None and p99 <= 200,
    )
    lite_share = lite64.report.rate / pg64.report.rate if pg64 and lite64 else None
    row(
        "SQLite purchases/s ÷ PostgreSQL's, 64 clients",
        lite_share,
        None,
        "≥ 0.5",
        lite_share is not None and lite_share >= 0.5,
    )
    cpu = _server_ms(pg64) if pg64 else None
    row(
        "server CPU ms per purchase",
        cpu,
        _server_ms(lite64) if lite64 else None,
        "≤ 3",
        cpu is not None and cpu <= 3,
    )
    stmts = pg64.report.statements_per_purchase if pg64 else None
    row(
        "statements per purchase",
        stmts,
        lite64.report.statements_per_purchase if lite64 else None,
        "≤ 6",
        stmts is not None and stmts <= 6,
    )
    writes = pg64.write_transactions_per_purchase if pg64 else None
    row("write transactions per purchase", writes, None, "≤ 1", writes is not None and writes <= 1)
    lag = max(
        (s.report.outbox_lag_seconds or 0.0 for s in results.steps if s.database == "postgresql"),
        default=None,
    )
    lite_lag = max(
        (s.report.outbox_lag_seconds or 0.0 for s in results.steps if s.database == "sqlite"),
        default=None,
    )
    row("outbox lag at the end of any step, s", lag, lite_lag, "< 2", lag is not None and lag < 2)
    return table


def pgbench_table(results: Results) -> Table | None:
    figures = results.pgbench
    if figures is None:
        return None
    table = Table(
        title=f"pgbench (TPC-B-like at scale {figures.scale}; hot row: see bench/pgbench.py)"
    )
    for name in ("run", "clients", "seconds", "tps", "latency ms", "PG CPU", "machine"):
        table.add_column(name, justify="left" if name == "run" else "right")
    for run in (figures.tpcb, figures.hot_row):
        table.add_row(
            run.name,
            str(run.clients),
            str(run.seconds),
            _num(run.tps),
            _num(run.latency_ms, 2),
            _share(run.cpu.database),
            _share(run.cpu.machine),
        )
    return table


def print_report(results: Results) -> None:
    console.print()
    console.print(purchases_table(results))
    console.print(batches_table(results))
    for step in results.steps:
        if step.report.errors:
            listed = ", ".join(f"{k}: {v}" for k, v in step.report.errors.items())
            console.print(
                f"  errors {step.database} {_scenario(step)} {step.report.clients}: {listed}"
            )
        for note in step.report.notes:
            where = f"{step.database} {_scenario(step)} {step.report.clients}"
            console.print(f"  [yellow]{where}: {note}[/yellow]")
    for kind, audit in results.audits.items():
        verdict = "[green]exact[/green]" if audit.exact else "[red]NOT EXACT[/red]"
        console.print(
            f"  flash sale audit {kind}: {verdict} — stock {audit.stock}, sold per admin API"
            f" {audit.sold_by_audit}, reserved after {audit.reserved_after}, sales answered"
            f" {audit.sales_answered}, sold-out answers {audit.sold_out_answers},"
            f" other answers {audit.other_answers or 'none'}"
        )
    for kind, per in results.transactions_per_purchase.items():
        console.print(
            f"  {kind}: {per:.1f} transactions (read and write) per purchase attempt over the run"
        )
    for table in (pgbench_table(results), ratios_table(results)):
        if table is not None:
            console.print()
            console.print(table)
    console.print(
        "\n[dim]CPU columns: CPU seconds per wall second (100% = one core busy), the server's"
        f" worker processes summed (SQLite 1, PostgreSQL {results.arguments.get('workers', 1)});"
        " a worker at ~100% is saturated. Machine = busy share of all"
        f" {os.cpu_count()} cores. Server, PostgreSQL and load generator compete for the same"
        " cores here, so compare ratios from one run, not figures across runs.[/dim]"
    )


def write_json(results: Results) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"purchase-{stamp}.json"
    record: dict[str, Any] = {
        "written_at": stamp,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        **dataclasses.asdict(results),
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
