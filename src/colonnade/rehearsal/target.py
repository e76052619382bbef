"""Which shops a rehearsal may load: its own machine's, or a host named on purpose.

A rehearsal sends a Black Friday's worth of requests and can kill processes and cut database
connections; pointed at the wrong address by a typo it would be an attack on whoever answers.
So it refuses every target but loopback unless the host is named with `--allow-host`, and
the faults that reach into the shop's machine only ever run against loopback. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

from colonnade.rehearsal.profile import Fault


class TargetRefused(ValueError):
    """The rehearsal will not run against this target (the message says why)."""


def host_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"'{url}' is not an http(s) URL with a host")
    return parts.hostname.lower()


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_target(url: str, allowed_hosts: Collection[str]) -> str:
    """The target's host, when a rehearsal may load it; TargetRefused otherwise."""
    host = host_of(url)
    if is_loopback(host) or host in {h.lower() for h in allowed_hosts}:
        return host
    raise TargetRefused(
        f"{host} is not this machine: name it with --allow-host {host} to rehearse against it"
    )


def check_faults(url: str, faults: Iterable[Fault], database_url: str | None) -> None:
    """Faults that kill processes or cut connections run only on a loopback shop (and
    database); the rest go through the shop's own HTTP doors."""
    local = [f for f in faults if f.needs_local_access]
    if not local:
        return
    if not is_loopback(host_of(url)):
        raise TargetRefused(f"{local[0].kind} reaches into the shop's machine: loopback only")
    if any(f.kind == "cut-database" for f in local):
        if database_url is None:
            raise TargetRefused("cut-database needs --database-url (the shop's PostgreSQL)")
        database = urlsplit(database_url)
        if not database.scheme.startswith("postgresql"):
            raise TargetRefused("cut-database cuts PostgreSQL connections: a postgresql:// URL")
        if not is_loopback(database.hostname or ""):
            raise TargetRefused("cut-database runs against a loopback PostgreSQL only")
