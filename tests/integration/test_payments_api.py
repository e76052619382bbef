"""Payments' admin routes over HTTP: refunds, bank transfers, gift cards, scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import Unauthorized
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.payments.adapters.test_gateway import TestGateway
from colonnade.modules.payments.api import router
from colonnade.modules.payments.service import Payment, PaymentsService
from colonnade.web import problems

TOKENS = {
    "admin": frozenset({"orders:read", "orders:refund", "payments:write"}),
    "reader": frozenset({"orders:read"}),
}
PROBLEM = "application/problem+json"


async def authenticate(token: str) -> Principal:
    if token not in TOKENS:
        raise Unauthorized("unknown token")
    return Principal(subject=token, kind="staff", scopes=TOKENS[token])


@pytest.fixture
def payments(db: Database) -> PaymentsService:
    clock = SettableClock(datetime(2025, 11, 28, tzinfo=UTC))
    return PaymentsService(db, provider=TestGateway(db, clock=clock), clock=clock)


@pytest.fixture
async def client(payments: PaymentsService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = authenticate
    app.include_router(router(payments))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://shop.test",
        headers={"Authorization": "Bearer admin"},
    ) as http:
        yield http


async def captured(payments: PaymentsService, amount: int = 5000) -> Payment:
    payment = await payments.authorize("chk-1", Money(amount, "USD"), "card", token="tok_visa")
    return await payments.capture(payment.id)


async def test_staff_see_a_payment(client: httpx.AsyncClient, payments: PaymentsService) -> None:
    payment = await captured(payments)

    response = await client.get(f"/admin/payments/{payment.id}")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["method"], body["checkout_id"]) == ("captured", "card", "chk-1")
    assert body["captured"] == {"amount": 5000, "currency": "USD"}
    assert body["refunded"] == {"amount": 0, "currency": "USD"}


async def test_an_unknown_payment_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/payments/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "unknown_payment"


async def test_a_refund_is_retried_safely_under_one_idempotency_key(
    client: httpx.AsyncClient, payments: PaymentsService
) -> None:
    payment = await captured(payments)
    body = {"amount": {"amount": 2000, "currency": "USD"}}
    url = f"/admin/payments/{payment.id}/refund"

    first = await client.post(url, json=body, headers={"Idempotency-Key": "refund-1"})
    again = await client.post(url, json=body, headers={"Idempotency-Key": "refund-1"})

    assert first.status_code == again.status_code == 200
    assert again.json()["refunded"] == {"amount": 2000, "currency": "USD"}


async def test_refunding_more_than_was_captured_is_a_409(
    client: httpx.AsyncClient, payments: PaymentsService
) -> None:
    payment = await captured(payments, 5000)

    response = await client.post(
        f"/admin/payments/{payment.id}/refund",
        json={"amount": {"amount": 5001, "currency": "USD"}},
    )

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "refund_exceeds_capture"
    assert problem["refundable"] == {"amount": 5000, "currency": "USD"}
    assert (await payments.payment(payment.id)).refunded.amount == 0


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ({"amount": 10.5, "currency": "USD"}, "invalid_input"),
        ({"amount": "100", "currency": "USD"}, "invalid_input"),
        ({"amount": True, "currency": "USD"}, "invalid_input"),
        ({"amount": 0, "currency": "USD"}, "invalid_input"),
        ({"amount": -5, "currency": "USD"}, "invalid_input"),
        ({"amount": 100, "currency": "usd"}, "unknown_currency"),
        ({"amount": 100, "currency": "USD", "extra": 1}, "invalid_input"),
    ],
)
async def test_a_refund_amount_must_be_positive_whole_minor_units(
    client: httpx.AsyncClient, payments: PaymentsService, amount: dict[str, object], code: str
) -> None:
    payment = await captured(payments)
    response = await client.post(f"/admin/payments/{payment.id}/refund", json={"amount": amount})
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert (await payments.payment(payment.id)).refunded.amount == 0


async def test_refunds_need_the_refund_scope(
    client: httpx.AsyncClient, payments: PaymentsService
) -> None:
    payment = await captured(payments)
    response = await client.post(
        f"/admin/payments/{payment.id}/refund",
        json={"amount": {"amount": 100, "currency": "USD"}},
        headers={"Authorization": "Bearer reader"},
    )
    assert response.status_code == 403
    assert response.json()["scope"] == "orders:refund"


async def test_staff_confirm_a_bank_transfer(
    client: httpx.AsyncClient, payments: PaymentsService
) -> None:
    payment = await payments.authorize("chk-1", Money(12000, "USD"), "bank_transfer")

    wrong = await client.post(
        f"/admin/payments/{payment.id}/confirm-transfer",
        json={"amount": {"amount": 100, "currency": "USD"}},
    )
    assert wrong.status_code == 409
    assert wrong.json()["code"] == "transfer_amount_mismatch"

    response = await client.post(
        f"/admin/payments/{payment.id}/confirm-transfer",
        json={"amount": {"amount": 12000, "currency": "USD"}},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "captured"


async def test_a_gift_card_code_is_shown_once_and_pays(
    client: httpx.AsyncClient, payments: PaymentsService, db: Database
) -> None:
    response = await client.post(
        "/admin/gift-cards", json={"amount": {"amount": 5000, "currency": "EUR"}}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["balance"] == {"amount": 5000, "currency": "EUR"}
    code = body["code"]
    assert code.startswith("GC-")
    payment = await payments.authorize(
        "chk-1", Money(1200, "EUR"), "gift_card", gift_card_code=code
    )
    assert payment.authorized == Money(1200, "EUR")
    async with db.reading() as conn:
        stored = (await conn.execute(text("SELECT code_hash FROM payments_gift_cards"))).scalar()
    assert stored != code
    assert code.replace("-", "") not in str(stored)


async def test_an_unknown_currency_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/admin/gift-cards", json={"amount": {"amount": 5000, "currency": "XYZ"}}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_currency"


async def test_issuing_gift_cards_needs_the_payments_write_scope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/admin/gift-cards",
        json={"amount": {"amount": 5000, "currency": "USD"}},
        headers={"Authorization": "Bearer reader"},
    )
    assert response.status_code == 403
