"""The machine under a loopback rehearsal, read from /proc (Linux): which process serves the
shop's port, its workers, and the CPU each of them and the database's backends use.

A figure per purchase means little on a shared machine without who spent it, so the server's
processes, the database's backends and the load generator are each metered apart. Where
/proc is missing (another system, a shop elsewhere) every reading is None and the report
says the figure was not measured.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds the process has used (None once it is gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command (field 2) may hold spaces; the numbers start after its closing ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _parents() -> dict[int, int]:
    found: dict[int, int] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            found[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended while we looked
    return found


def children(pid: int) -> list[int]:
    return sorted(child for child, parent in _parents().items() if parent == pid)


def tree(pid: int) -> list[int]:
    """`pid` and every process descending from it now."""
    parents = _parents()
    found, pending = [pid], [pid]
    while pending:
        current = pending.pop()
        below = [child for child, parent in parents.items() if parent == current]
        found += below
        pending += below
    return found


def workers(pid: int) -> list[int]:
    """The worker processes a `colonnade serve --workers N` runs under `pid`: its children
    started by multiprocessing, less its resource tracker."""
    found = []
    for child in children(pid):
        try:
            command = (PROC / str(child) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"multiprocessing" in command and b"resource_tracker" not in command:
            found.append(child)
    return found


def listening_pid(port: int) -> int | None:
    """The process that opened the socket listening on `port`: with several workers they all
    hold it, and the one that opened it is the one whose parent does not."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for fd in PROC.glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                holders.add(int(fd.parent.parent.name))
        except OSError:
            continue
    parents = _parents()
    roots = [pid for pid in holders if parents.get(pid) not in holders]
    return min(roots) if roots else None


def machine_cores() -> int:
    return os.cpu_count() or 1


class Meter:
    """CPU seconds per wall second used by a changing set of processes since the last
    reading: a process new since then counts from its start, one gone since then is lost
    for its last interval."""

    def __init__(self) -> None:
        self._last: dict[int, float] | None = None
        self._at = 0.0

    def read(self, now: float, processes: Iterable[int]) -> float | None:
        used = {pid: cpu for pid in processes if (cpu := cpu_seconds(pid)) is not None}
        last, at = self._last, self._at
        self._last, self._at = used, now
        if last is None or not used or now <= at:
            return None
        spent = sum(cpu - last.get(pid, 0.0) for pid, cpu in used.items())
        return max(0.0, spent) / (now - at)


class OwnMeter:
    """The load generator's own CPU, cores busy since the last reading."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def read(self, now: float) -> float | None:
        times = os.times()
        used = times.user + times.system
        last, self._last = self._last, (used, now)
        if last is None or now <= last[1]:
            return None
        return (used - last[0]) / (now - last[1])


class MachineMeter:
    """The busy share of all the machine's cores since the last reading (1.0: every core)."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def read(self) -> float | None:
        try:
            ticks = [int(t) for t in (PROC / "stat").read_text().splitlines()[0].split()[1:9]]
        except (OSError, ValueError):
            return None
        idle = ticks[3] + ticks[4]  # idle and waiting for I/O
        total = sum(ticks)  # guest time is counted in user already
        last, self._last = self._last, (total - idle, total)
        if last is None or total <= last[1]:
            return None
        return (total - idle - last[0]) / (total - last[1])
