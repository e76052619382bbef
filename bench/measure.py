"""CPU accounting read from /proc, and the percentiles the tables quote.

The machine is small and shared, so every figure is quoted with who used the CPU while it
was taken: the shop's server process, the load generator, PostgreSQL's processes and the
machine as a whole. A rate is only meaningful next to those shares.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

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
            # Backends opened during the window started from zero CPU.
            used = sum(cpu - start.database.get(pid, 0.0) for pid, cpu in end.database.items())
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
