"""CPU accounting read from /proc, the shop's own counters, and the percentiles the tables
quote.

The machine is small and shared, so every figure is quoted with who used the CPU while it
was taken: the shop's server process, the load generator, PostgreSQL's processes and the
machine as a whole. A rate is only meaningful next to those shares.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def process_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User plus system CPU seconds a process has used so far (0 once it is gone), with
    `reaped_children` also those of its children that ended and were waited for."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces; the numbers start after its closing ')'.
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of its live descendants (a server's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        children.setdefault(parent, []).append(int(entry.name))
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += process_cpu_seconds(current)
        pending.extend(children.get(current, []))
    return total


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU seconds per PostgreSQL process (postmaster, backends, background workers).

    Backends that ended (pgbench's, at the end of its run) live on in the postmaster's
    reaped-children time, so they are counted too.
    """
    used: dict[int, float] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                used[int(entry.name)] = process_cpu_seconds(int(entry.name), reaped_children=True)
        except OSError:
            continue  # the process ended while we looked
    return used


def machine_busy_and_total() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine, summed over its cores."""
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(t) for t in first]
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """Who had used how much CPU at one moment; two of them make a window's shares."""

    at: float
    load_generator: float
    server: float
    database: dict[int, float]
    machine_busy: float
    machine_total: float

    @classmethod
    def take(cls, server_pid: int, watch_database: bool) -> CpuSnapshot:
        times = os.times()
        busy, total = machine_busy_and_total()
        return cls(
            at=time.monotonic(),
            load_generator=times.user + times.system,
            server=process_tree_cpu_seconds(server_pid),
            database=postgres_cpu_seconds() if watch_database else {},
            machine_busy=busy,
            machine_total=total,
        )


@dataclass(frozen=True)
class CpuShares:
    """CPU seconds used per wall second in a window: 1.0 is one core fully busy."""

    wall_seconds: float
    server: float
    load_generator: float
    database: float | None
    machine: float  # busy fraction of all cores (1.0 = every core busy)

    @classmethod
    def between(cls, start: CpuSnapshot, end: CpuSnapshot) -> CpuShares:
        wall = max(end.at - start.at, 1e-9)
        database = None
        if end.database:
            # Backends opened during the window started from zero CPU. Those that ended in it
            # now count, whole, in the postmaster's reaped-children time: what they had used
            # before the window is taken off again.
            used = sum(cpu - start.database.get(pid, 0.0) for pid, cpu in end.database.items())
            used -= sum(cpu for pid, cpu in start.database.items() if pid not in end.database)
            database = used / wall
        machine_total = max(end.machine_total - start.machine_total, 1e-9)
        return cls(
            wall_seconds=wall,
            server=(end.server - start.server) / wall,
            load_generator=(end.load_generator - start.load_generator) / wall,
            database=database,
            machine=(end.machine_busy - start.machine_busy) / machine_total,
        )


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass(frozen=True)
class ShopCounters:
    """What the shop's own /metrics said at one moment: statements run, batch sizes per step
    (cumulative histogram buckets), and how late the outbox is."""

    statements: float
    batch_buckets: dict[str, dict[float, float]]
    outbox_lag_seconds: float

    @classmethod
    def parse(cls, exposition: str) -> ShopCounters:
        statements = 0.0
        buckets: dict[str, dict[float, float]] = {}
        lag = 0.0
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                if sample.name == "colonnade_db_query_duration_seconds_count":
                    statements += sample.value
                elif sample.name == "colonnade_batch_size_bucket":
                    step = buckets.setdefault(sample.labels["step"], {})
                    step[float(sample.labels["le"])] = sample.value
                elif sample.name == "colonnade_outbox_lag_seconds":
                    lag = max(lag, sample.value)
        return cls(statements, buckets, lag)


def batch_percentiles(
    start: ShopCounters, end: ShopCounters, fractions: tuple[float, ...] = (0.5, 0.99)
) -> dict[str, list[float]]:
    """Per step, the batch sizes at these fractions of the batches run between two readings
    (the upper bound of the histogram bucket each falls in)."""
    found: dict[str, list[float]] = {}
    for step, after in end.batch_buckets.items():
        before = start.batch_buckets.get(step, {})
        counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
        total = counts[-1][1] if counts else 0.0
        if total <= 0:
            continue
        found[step] = [next(le for le, n in counts if n >= q * total) for q in fractions]
    return found
