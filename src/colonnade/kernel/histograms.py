"""Percentiles from a histogram's buckets, as Prometheus computes them: what the operations
page and the warehouse's slowest routes both read latencies with."""

from __future__ import annotations

import math
from collections.abc import Iterable


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Like PromQL's histogram_quantile: linear inside the bucket holding the q-th
    observation; the highest finite bound when it falls in the +Inf bucket."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
