"""What a checkout answers, how its outcomes are counted and how its steps are traced:
shared by the step-by-step saga and the batched card purchase."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

from colonnade.kernel import tracing
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.metrics import CHECKOUTS, PAYMENT_DECLINES
from colonnade.kernel.money import Money
from colonnade.modules.orders.service import Order


def step_span(step: str, checkout_id: str) -> AbstractContextManager[Any]:
    """The span of one step of a checkout, or of one of its compensations."""
    return tracing.span(f"checkout.{step}", {"colonnade.checkout.id": checkout_id})


def failure_body(error: ColonnadeError, checkout_id: str) -> dict[str, Any]:
    """The problem a refused checkout answers, kept for its Idempotency-Key."""
    problem = {**error.problem(), "checkout_id": checkout_id}
    if error.status >= 500:
        # The answer is kept for this Idempotency-Key like any other, so a later attempt
        # must come under a new key; everything this one did has been undone.
        problem["detail"] = f"{problem['detail']}; retry with a new Idempotency-Key"
    return problem


# What the operations page tells apart; every other refusal is an `error`.
_FAILURE_OUTCOMES = {
    "out_of_stock": "out_of_stock",
    "payment_declined": "payment_declined",
    "payment_provider_unavailable": "provider_unavailable",
}
# A decline reason becomes a metric label only when it looks like a provider's code, so the
# number of series stays bounded whatever a provider answers.
_DECLINE_REASON = re.compile(r"[a-z_]{1,40}")


def count_failure(error: ColonnadeError) -> None:
    outcome = _FAILURE_OUTCOMES.get(error.code, "error")
    CHECKOUTS.labels(outcome).inc()
    if outcome == "payment_declined":
        reason = str(error.extensions.get("reason", ""))
        PAYMENT_DECLINES.labels(reason if _DECLINE_REASON.fullmatch(reason) else "other").inc()


def order_body(
    order: Order, access_token: str | None, method: str, checkout_id: str
) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status.value,
        "checkout_id": checkout_id,
        "total": order.total.as_dict(),
        "tax": order.tax.as_dict(),
        "discount": order.discount.as_dict(),
        "lines": [
            {
                "sku": line.sku,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": line.unit_price.as_dict(),
                "line_total": line.line_total.as_dict(),
                "tax": line.tax.as_dict(),
                "discount": (line.discount or Money.zero(order.currency)).as_dict(),
            }
            for line in order.lines
        ],
        "payment": {"method": method},
        "access_token": access_token,
    }
