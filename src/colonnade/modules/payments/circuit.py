"""The payment provider's circuit breaker: when to stop asking a provider that is not answering.

Pure rules over clock readings; the caller (resilience.py) does the calls and reports how
each ended. Closed: every call goes through. Open: after `consecutive_failures` failures in a
row, or when at least `failure_rate` of the calls in the last `window` failed (once there
were `minimum_calls` of them); no call goes through until `cooldown` has passed. Half-open:
after the cool-down, one trial call goes through; its success closes the breaker, its
failure opens it for another cool-down.

A failure is "no answer" (a timeout, the provider down). A declined card is an answer and
counts as a success: the provider is working.

`CircuitBreaker` keeps the state in this process; the rules it applies are `BreakerPolicy`'s,
which a breaker shared between processes applies to the state it keeps elsewhere.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

from colonnade.kernel.clock import Clock


class CircuitState(IntEnum):
    """The values are what the colonnade_payment_circuit_state gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    failure_rate: float = 0.5
    minimum_calls: int = 20
    window: timedelta = timedelta(seconds=60)
    cooldown: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1 or self.minimum_calls < 1:
            raise ValueError("a breaker needs at least one failure and one call to open")
        if not 0 < self.failure_rate <= 1:
            raise ValueError("the failure rate that opens the breaker is in (0, 1]")
        if self.window <= timedelta(0) or self.cooldown <= timedelta(0):
            raise ValueError("the window and the cool-down must be positive")

    def opens(self, failures_in_a_row: int, calls: int, failures: int) -> bool:
        """Whether a closed breaker opens, given its failures in a row and the calls and
        failures of the window."""
        if failures_in_a_row >= self.consecutive_failures:
            return True
        return calls >= self.minimum_calls and failures / calls >= self.failure_rate

    def state_since(self, opened_at: datetime | None, now: datetime) -> CircuitState:
        """The state of a breaker that opened at `opened_at` (None: it is closed): open for the
        cool-down, then half-open until a trial call decides."""
        if opened_at is None:
            return CircuitState.CLOSED
        return CircuitState.HALF_OPEN if now >= opened_at + self.cooldown else CircuitState.OPEN

    def retry_after(self, opened_at: datetime | None, now: datetime) -> int:
        """Whole seconds until a call may be tried again (at least 1)."""
        if opened_at is None:
            return 1
        return max(1, math.ceil((opened_at + self.cooldown - now).total_seconds()))


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures_in_a_row = 0
        self._recent: deque[tuple[datetime, bool]] = deque()  # (when, failed)
        self._opened_at: datetime | None = None
        self._trial_running = False

    @property
    def state(self) -> CircuitState:
        """The state now; an open breaker whose cool-down is over reads as half-open."""
        if self._state is CircuitState.OPEN and self._cooled_down():
            return CircuitState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a call go to the provider now? True obliges the caller to report how it ended
        (succeeded, failed or abandoned)."""
        if self._state is CircuitState.CLOSED:
            return True
        if self._state is CircuitState.OPEN:
            if not self._cooled_down():
                return False
            self._state = CircuitState.HALF_OPEN
        if self._trial_running:
            return False
        self._trial_running = True
        return True

    def succeeded(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._close()
            return
        self._failures_in_a_row = 0
        self._remember(failed=False)

    def failed(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._open()
            return
        if self._state is CircuitState.OPEN:
            return  # a call let through before the breaker opened; it is open already
        self._failures_in_a_row += 1
        self._remember(failed=True)
        failures = sum(1 for _, failed in self._recent if failed)
        if self._policy.opens(self._failures_in_a_row, len(self._recent), failures):
            self._open()

    def abandoned(self) -> None:
        """A call let through ended without telling (cancelled): another trial may go."""
        self._trial_running = False

    def retry_after(self) -> int:
        """Whole seconds until a call may be tried again (at least 1)."""
        return self._policy.retry_after(self._opened_at, self._clock.now())

    # --- transitions ----------------------------------------------------------------------

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock.now()
        self._trial_running = False

    def _close(self) -> None:
        self._state = CircuitState.CLOSED
        self._opened_at = None
        self._trial_running = False
        self._failures_in_a_row = 0
        self._recent.clear()

    def _cooled_down(self) -> bool:
        state = self._policy.state_since(self._opened_at, self._clock.now())
        return state is CircuitState.HALF_OPEN

    def _remember(self, *, failed: bool) -> None:
        now = self._clock.now()
        self._recent.append((now, failed))
        while self._recent and self._recent[0][0] <= now - self._policy.window:
            self._recent.popleft()
