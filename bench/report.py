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
TARGET_THROUGHPUT = 0.15  # purchases/s at 64 clients per TPC-B tps
TARGET_FLASH_SALE = 0.5  # flash-sale sales/s per hot-row tps

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
        )
    return table


def _rate(results: Results, database: str, scenario: str, clients: int | None) -> float | None:
    for step in results.steps:
        r = step.report
        if (step.database, r.scenario) == (database, scenario) and clients in (None, r.clients):
            return r.rate
    return None


def ratios_table(results: Results) -> Table | None:
    figures = results.pgbench
    if figures is None:
        return None
    table = Table(title="Ratios to pgbench on the same server, same run")
    for name in ("ratio", "PostgreSQL", "target", "met", "SQLite (beside)"):
        table.add_column(name, justify="left" if name == "ratio" else "right")
    rows = [
        (
            f"purchases/s at 64 clients ÷ TPC-B tps ({figures.tpcb.tps:,.0f})",
            "throughput",
            64,
            figures.tpcb.tps,
            TARGET_THROUGHPUT,
        ),
        (
            f"flash-sale sales/s ÷ hot-row tps ({figures.hot_row.tps:,.0f})",
            "flash_sale",
            None,
            figures.hot_row.tps,
            TARGET_FLASH_SALE,
        ),
    ]
    for label, scenario, clients, baseline, target in rows:
        pg = _rate(results, "postgresql", scenario, clients)
        lite = _rate(results, "sqlite", scenario, clients)
        pg_ratio = None if pg is None else pg / baseline
        lite_ratio = None if lite is None else lite / baseline
        met = "—" if pg_ratio is None else ("yes" if pg_ratio >= target else "NO")
        table.add_row(label, _num(pg_ratio, 3), f"≥ {target}", met, _num(lite_ratio, 3))
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
