"""How many checkouts the waiting room lets run at once: a number the shop sets, or one learned
from how long checkouts take.

The learned limit follows the gradient concurrency limits (Netflix's Gradient2, after TCP
Vegas): a checkout that takes longer than checkouts took when the shop was not crowded is a
sign that work queues inside the shop (for the database, a lock, the event loop), and more
checkouts at once would only make each slower. Every window of checkouts it compares their
mean time with a slow average of the same, and

    limit' = limit * clamp(tolerance * long / short, 0.5, 1) + sqrt(limit)

so the limit grows by about its square root while times hold and shrinks when they rise.
On top of that the latency objective is a hard line: when the window's p99 passes the
target, the limit is cut by a fifth at once, whatever the gradient says, and again each
window the objective stays broken as long as each cut makes the p99 fall; when one does not,
the slowness is not the limit's doing and the limit holds. Otherwise each step
moves the limit a fifth of the way to what it proposes, so one odd window does not swing it,
and it does not grow while it is not what stops checkouts (fewer than half of it ran at
once), so a quiet hour does not teach it a limit it never tried.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class FixedLimit:
    """The limit the shop set (COLONNADE_CHECKOUT_CONCURRENCY=<n>)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a waiting room lets at least one checkout in")
        self._limit = limit

    @property
    def value(self) -> int:
        return self._limit

    def ended(self, seconds: float, in_flight: int) -> None:
        """A fixed limit learns nothing."""


class LearnedLimit:
    """The limit learned from checkout times (COLONNADE_CHECKOUT_CONCURRENCY=auto)."""

    TOLERANCE = 2.0
    SMOOTHING = 0.2
    # The long average moves this share of the way to each window's mean: about twenty
    # windows of memory.
    LONG_WEIGHT = 0.05
    CUT = 0.8
    # A cut helped if the next window's p99 is at least this much lower: about what a fifth
    # fewer checkouts at once take off a wait that comes from their number.
    CURED = 0.85

    def __init__(
        self,
        *,
        target_seconds: float,
        initial: int = 20,
        least: int = 2,
        most: int = 1_000,
        window_seconds: float = 1.0,
        window_checkouts: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not least <= initial <= most:
            raise ValueError("a learned limit starts between its least and its most")
        self._target = target_seconds
        self._estimate = float(initial)
        self._least = least
        self._most = most
        self._window_seconds = window_seconds
        self._window_checkouts = window_checkouts
        self._clock = clock
        self._long: float | None = None
        # The p99 of the last window, while windows break the objective one after another.
        self._breached: float | None = None
        self._times: list[float] = []
        self._busiest = 0
        self._window_began = clock()

    @property
    def value(self) -> int:
        return int(self._estimate)

    def ended(self, seconds: float, in_flight: int) -> None:
        """A checkout ended after `seconds`, with `in_flight` checkouts running (itself too)."""
        self._times.append(seconds)
        self._busiest = max(self._busiest, in_flight)
        now = self._clock()
        if len(self._times) < self._window_checkouts or now - self._window_began < (
            self._window_seconds
        ):
            return
        self._learn(sorted(self._times))
        self._times = []
        self._busiest = 0
        self._window_began = now

    def _learn(self, times: list[float]) -> None:
        short = max(sum(times) / len(times), 1e-6)
        p99 = times[math.ceil(0.99 * len(times)) - 1]
        if self._long is None:
            self._long = short
        else:
            self._long += (short - self._long) * self.LONG_WEIGHT
            # Times fell well below the long average (the crowd left, a slow provider
            # recovered): let the average come down faster than it would go up.
            if self._long > 2 * short:
                self._long *= 0.95
        if p99 > self._target:
            # The objective breaks now: no smoothing. But when the last cut did not make
            # checkouts quicker, they are slow for another reason (the process is busy with
            # other requests, a provider is slow): a smaller limit would only turn buyers away.
            cured = self._breached is None or p99 < self._breached * self.CURED
            moved = self._estimate * self.CUT if cured else self._estimate
            self._breached = p99
        else:
            self._breached = None
            gradient = min(1.0, max(0.5, self.TOLERANCE * self._long / short))
            proposed = self._estimate * gradient + math.sqrt(self._estimate)
            if self._busiest < self._estimate / 2:
                proposed = min(proposed, self._estimate)
            moved = self._estimate + (proposed - self._estimate) * self.SMOOTHING
        self._estimate = min(float(self._most), max(float(self._least), moved))
