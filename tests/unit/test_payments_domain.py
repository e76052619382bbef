"""Payment rules: what a payment may do next, refunds within the capture, gift cards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.kernel.money import Money
from colonnade.modules.payments import domain
from colonnade.modules.payments.domain import (
    InvalidPayment,
    PaymentMethod,
    PaymentStateConflict,
    PaymentStatus,
    RefundExceedsCapture,
)


def usd(amount: int) -> Money:
    return Money(amount, "USD")


@pytest.mark.parametrize("token", ["tok_visa", "tok_chargeDeclined", "tok_" + "a" * 64])
def test_provider_tokens_are_accepted(token: str) -> None:
    assert domain.valid_token(token) == token


@pytest.mark.parametrize(
    "token",
    ["4242424242424242", "tok_", "tok_" + "a" * 65, "tok_visa!", "tok visa", "", None, "TOK_visa"],
)
def test_anything_that_is_not_a_provider_token_is_refused(token: str | None) -> None:
    with pytest.raises(InvalidPayment) as refused:
        domain.valid_token(token)
    assert refused.value.status == 422


def test_each_method_takes_only_its_own_instrument() -> None:
    assert domain.checked_instrument(PaymentMethod.CARD, "tok_visa", None) == ("tok_visa", None)
    assert domain.checked_instrument(PaymentMethod.GIFT_CARD, None, "GC-1") == (None, "GC-1")
    assert domain.checked_instrument(PaymentMethod.BANK_TRANSFER, None, None) == (None, None)
    with pytest.raises(InvalidPayment):
        domain.checked_instrument(PaymentMethod.CARD, None, None)
    with pytest.raises(InvalidPayment):
        domain.checked_instrument(PaymentMethod.GIFT_CARD, "tok_visa", None)
    with pytest.raises(InvalidPayment):
        domain.checked_instrument(PaymentMethod.BANK_TRANSFER, "tok_visa", None)


def test_an_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(InvalidPayment, match="card, bank_transfer, gift_card"):
        domain.payment_method("cash")


def test_only_an_authorized_payment_is_captured_and_a_captured_one_is_left_alone() -> None:
    assert domain.should_capture("p", PaymentStatus.AUTHORIZED) is True
    assert domain.should_capture("p", PaymentStatus.CAPTURED) is False
    assert domain.should_capture("p", PaymentStatus.REFUNDED) is False
    for status in (PaymentStatus.VOIDED, PaymentStatus.FAILED, PaymentStatus.PENDING):
        with pytest.raises(PaymentStateConflict):
            domain.should_capture("p", status)


def test_voiding_is_idempotent_and_never_undoes_a_capture() -> None:
    assert domain.should_void("p", PaymentStatus.AUTHORIZED) is True
    assert domain.should_void("p", PaymentStatus.UNKNOWN) is True
    assert domain.should_void("p", PaymentStatus.VOIDED) is False
    assert domain.should_void("p", PaymentStatus.FAILED) is False
    with pytest.raises(PaymentStateConflict):
        domain.should_void("p", PaymentStatus.CAPTURED)


@given(
    captured=st.integers(1, 10**9),
    refunded_share=st.floats(0, 1),
    amount=st.integers(1, 2 * 10**9),
)
def test_a_refund_is_allowed_exactly_when_it_fits_in_what_is_left(
    captured: int, refunded_share: float, amount: int
) -> None:
    refunded = int(captured * refunded_share)
    fits = refunded + amount <= captured
    try:
        domain.check_refundable(
            "p", PaymentStatus.CAPTURED, usd(captured), usd(refunded), usd(amount)
        )
        allowed = True
    except RefundExceedsCapture:
        allowed = False
    assert allowed is fits


def test_an_uncaptured_payment_cannot_be_refunded() -> None:
    with pytest.raises(PaymentStateConflict):
        domain.check_refundable("p", PaymentStatus.AUTHORIZED, usd(0), usd(0), usd(1))


@given(balance=st.integers(0, 10**9), amount=st.integers(1, 10**9))
def test_a_gift_card_takes_what_it_has_and_never_more(balance: int, amount: int) -> None:
    take = domain.gift_card_take(balance, amount)
    assert 0 <= take <= balance
    assert take <= amount
    assert take in (amount, balance)


def test_a_short_gift_card_reports_the_rest_and_other_methods_report_nothing() -> None:
    authorized = PaymentStatus.AUTHORIZED
    assert domain.uncovered(PaymentMethod.GIFT_CARD, authorized, usd(5000), usd(3000)) == usd(2000)
    assert domain.uncovered(PaymentMethod.CARD, authorized, usd(5000), usd(5000)) == usd(0)
    assert domain.uncovered(PaymentMethod.GIFT_CARD, PaymentStatus.FAILED, usd(5000), usd(0)) == (
        usd(0)
    )


def test_a_gift_card_code_is_found_however_it_is_typed() -> None:
    code = domain.new_gift_card_code()
    assert len(code) == len("GC-XXXX-XXXX-XXXX-XXXX")
    hashed = domain.gift_card_hash(code)
    assert domain.gift_card_hash(code.lower().replace("-", " ")) == hashed
    assert domain.gift_card_hash(code[3:]) == hashed
    assert code not in hashed
    assert domain.new_gift_card_code() != code


def test_a_code_whose_own_letters_begin_with_gc_is_found_without_its_prefix() -> None:
    code = "GC-GCAB-CDEF-GHJK-LMNP"
    hashed = domain.gift_card_hash(code)
    assert domain.gift_card_hash("GCAB-CDEF-GHJK-LMNP") == hashed
    assert domain.gift_card_hash("gcabcdefghjklmnp") == hashed
    assert domain.gift_card_hash("GCABCDEFGHJKLMNP") != domain.gift_card_hash("ABCDEFGHJKLMNP")


def test_amounts_must_be_positive() -> None:
    with pytest.raises(domain.InvalidAmount):
        domain.valid_amount(usd(0))
    assert domain.valid_amount(usd(1)) == usd(1)
