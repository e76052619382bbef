"""Checks of the shop's own that the contract run adds to schemathesis' (loaded through
SCHEMATHESIS_HOOKS by tests/e2e/test_contract.py)."""

from __future__ import annotations

import schemathesis

# The only refusals a request the document allows may still get: each depends on stored data
# or on a rule that no JSON Schema can state. Every other refusal of a schema-valid request
# means the document is looser than the shop. Whether an operation documents the code is
# checked by schemathesis itself (the 4xx responses enumerate their codes).
SCHEMA_VALID_REFUSALS = {
    # Stored data.
    "unknown_market": "a well-formed market code that no market has",
    "unknown_sku": "a well-formed SKU that no product variant has",
    "unknown_category": "a well-formed category slug that no category has",
    "cart_empty": "a cart with no lines to check out",
    "cart_full": "a cart that already holds the most lines a cart may hold",
    "invalid_quantity": "a line that would grow beyond the most units one line may hold",
    "idempotency_key_reused": "a key an earlier, different request was stored under",
    "payment_declined": "a card, gift card or balance the payment provider declines (402)",
    "currency_mismatch": "a gift card in another currency than the cart's",
    "invalid_payment": "a payment that is not of the kind the operation acts on",
    "invalid_amount": "a refund in another currency than the payment's",
    "category_cycle": "a parent that is the category itself or below it",
    "unknown_promotion_code": "a well-formed discount code that no promotion has",
    "line_not_on_order": "a well-formed SKU the refunded order has no line of",
    # Rules across fields or across array items, which JSON Schema cannot state.
    "invalid_fx_rate": "a rate from a currency to itself",
    "duplicate_currency": "two prices of one SKU in the same currency",
    "repeated_sku": "two variants of one product with the same SKU",
    "missing_title": "a default locale the title has no text in",
    "invalid_product": "a locale spelled twice in other case, or a description without title",
    "invalid_promotion": "both a percentage and fixed amounts off, or neither; an automatic "
    "promotion without a title; buy without get; a target named twice",
    "invalid_refund": "a refund of both an amount and lines, or of neither",
    "invalid_refund_lines": "a SKU named twice in one refund by line",
    "invalid_promotion_window": "an end before the start (which is now when left out)",
    "invalid_sale_window": "an end before the start (which is now when left out)",
    "invalid_sale": "a SKU, product or category named twice; a SKU without a sale price, or "
    "products or categories, in a sale without a percentage; a sale of nothing",
    "invalid_insight_window": "a window that ends before it starts or spans more than 366 days",
    "invalid_forecast_day": "a day from tomorrow to a week ahead: tomorrow moves with the clock",
    # Rules no pattern can hold.
    "unknown_locale": "a well-formed language tag that Babel does not know",
    "unknown_time_zone": "a name the time zone database does not know",
    "card_number_rejected": "any field holding 13-19 digits that pass the Luhn check",
}


@schemathesis.check
def refused_only_for_reasons_no_schema_states(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    meta = case.meta
    if (
        meta is None
        or not meta.generation.mode.is_positive
        or response.status_code not in (402, 422)
    ):
        return None
    code = response.json().get("code")
    if code not in SCHEMA_VALID_REFUSALS:
        raise AssertionError(
            f"a request the document allows was refused with {code!r}: the rule behind it "
            "belongs in the document's schema"
        )
    return None
