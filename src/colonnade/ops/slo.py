"""Service level objectives and the burn-rate alerts that guard them.

Pure definitions and arithmetic: no clock, no registry. The shop evaluates them itself
(ops.sampler, for the operations page) and the same definitions become the Prometheus rules
file (ops.rules), so the two cannot disagree.

The alerts follow the multi-window, multi-burn-rate recipe of the Google SRE workbook
("Alerting on SLOs"). A burn rate of 1 spends exactly the error budget over the SLO period
(30 days); 14.4 spends 2 % of it in an hour. An alert fires only while BOTH its windows burn
faster than that: the long window proves the problem is big enough to matter, the short one
that it is still going on, so an alert stops soon after the errors stop.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60.0
HOUR = 60 * MINUTE
DAY = 24 * HOUR

CHECKOUT_ROUTE = "/store/carts/{cart_id}/checkout"


@dataclass(frozen=True)
class AnsweredWithoutServerError:
    """Good: any answer but a 5xx. A refusal (4xx) is the shop working as it should, and so
    is the checkout waiting room's 503 (`QUEUED_OUTCOMES`)."""


# The outcomes of colonnade_checkout_queue_total that are answered with a 503 checkout_queued.
QUEUED_OUTCOMES = ("ticketed", "held")


@dataclass(frozen=True)
class AnsweredWithin:
    """Good: a request of this route answered within `seconds` (a histogram bucket bound)."""

    method: str
    route: str
    seconds: float


Indicator = AnsweredWithoutServerError | AnsweredWithin


@dataclass(frozen=True)
class Objective:
    name: str
    title: str
    # Share of good events the shop promises, over a 30-day period.
    target: float
    indicator: Indicator

    @property
    def error_budget(self) -> float:
        return 1 - self.target


@dataclass(frozen=True)
class BurnRule:
    """Alert when both windows spend the budget more than `burn_rate` times too fast."""

    speed: str
    severity: str
    burn_rate: float
    long_window: float
    short_window: float


OBJECTIVES: tuple[Objective, ...] = (
    # Three nines: on a Black Friday of a million requests, a thousand may fail before the
    # month's budget is gone; any stricter and a single bad deploy would spend it.
    Objective(
        name="availability",
        title="Requests answered without a server error",
        target=0.999,
        indicator=AnsweredWithoutServerError(),
    ),
    # A checkout is several local transactions plus two payment provider calls; a card
    # processor answers in a few hundred milliseconds, so one second leaves room for its slow
    # days while a buyer still sees an answer before they think to click again. 99 %, not
    # more: the tail belongs to the provider, which the shop cannot make faster.
    Objective(
        name="checkout_latency",
        title="Checkouts answered within one second",
        target=0.99,
        indicator=AnsweredWithin("POST", CHECKOUT_ROUTE, 1.0),
    ),
)

# The workbook's recommended set: two paging speeds and one for a ticket.
BURN_RULES: tuple[BurnRule, ...] = (
    BurnRule("fast", "page", 14.4, long_window=1 * HOUR, short_window=5 * MINUTE),
    BurnRule("slow", "page", 6.0, long_window=6 * HOUR, short_window=30 * MINUTE),
    BurnRule("steady", "ticket", 1.0, long_window=3 * DAY, short_window=6 * HOUR),
)


def alert_name(objective: Objective, rule: BurnRule) -> str:
    """E.g. ColonnadeAvailabilityFastBurn."""
    words = [*objective.name.split("_"), rule.speed, "burn"]
    return "Colonnade" + "".join(word.capitalize() for word in words)


@dataclass(frozen=True)
class Events:
    """Good and total events counted over one window."""

    good: float
    total: float

    @property
    def error_ratio(self) -> float:
        if self.total <= 0:
            return 0.0  # no traffic spends no budget
        return min(1.0, max(0.0, (self.total - self.good) / self.total))


def burn_rate(objective: Objective, events: Events) -> float:
    return events.error_ratio / objective.error_budget


@dataclass(frozen=True)
class AlertState:
    alert: str
    objective: str
    severity: str
    threshold: float
    long_burn_rate: float
    short_burn_rate: float

    @property
    def firing(self) -> bool:
        return self.long_burn_rate > self.threshold and self.short_burn_rate > self.threshold


def evaluate(objective: Objective, rule: BurnRule, long: Events, short: Events) -> AlertState:
    return AlertState(
        alert=alert_name(objective, rule),
        objective=objective.name,
        severity=rule.severity,
        threshold=rule.burn_rate,
        long_burn_rate=burn_rate(objective, long),
        short_burn_rate=burn_rate(objective, short),
    )


@dataclass(frozen=True)
class Condition:
    """Alert while a gauge the shop keeps is above `above`: something wrong right now, not a
    budget spent over time. Across processes the highest value counts."""

    alert: str
    severity: str
    metric: str
    above: float
    summary: str


CONDITIONS: tuple[Condition, ...] = (
    Condition(
        "ColonnadeStockLedgerDrift",
        "page",
        "colonnade_stock_ledger_drift_skus",
        0,
        "Stock levels disagree with their ledger: the shop may sell what it does not have",
    ),
    Condition(
        "ColonnadePaymentCircuitOpen",
        "page",
        "colonnade_payment_circuit_state",
        1,
        "The payment provider's circuit breaker is open: checkouts fail at once",
    ),
    Condition(
        "ColonnadeOutboxLagging",
        "page",
        "colonnade_outbox_lag_seconds",
        60,
        "Events wait more than a minute to be published: e-mails and consumers fall behind",
    ),
    Condition(
        "ColonnadeDeadLetters",
        "ticket",
        "colonnade_dead_letters",
        0,
        "Events were parked as dead letters: `colonnade dead-letters list` names them",
    ),
)


@dataclass(frozen=True)
class ConditionState:
    condition: Condition
    value: float | None

    @property
    def firing(self) -> bool:
        return self.value is not None and self.value > self.condition.above


def all_alert_names() -> list[str]:
    return [alert_name(o, r) for o in OBJECTIVES for r in BURN_RULES] + [
        c.alert for c in CONDITIONS
    ]
