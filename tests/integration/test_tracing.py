"""Tracing: one trace follows a purchase from its HTTP request, through each checkout step and
its statements, over the outbox, to the confirmation e-mail it caused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_trace_id
from sqlalchemy import select

from colonnade.app import Shop, create_app
from colonnade.kernel import tracing
from colonnade.kernel.events import Envelope
from colonnade.kernel.schema import outbox
from colonnade.kernel.settings import Settings
from colonnade.modules.notifications.service import SentMessage
from colonnade.modules.orders.events import OrderPaid
from tests.integration.storefront import SECRET, check_out, client, open_cart, product

ADDRESS = {
    "name": "Ada",
    "line1": "1 Row",
    "city": "Springfield",
    "postal_code": "1",
    "country": "US",
}
STEPS = {"reserve", "charge", "settle"}


@asynccontextmanager
async def traced_shop(
    database_url: str, exporter: InMemorySpanExporter
) -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    """The whole app with its spans going to `exporter`; leaving it flushes them there."""
    app = create_app(Settings(database_url=database_url, secret_key=SECRET), span_exporter=exporter)
    async with app.router.lifespan_context(app), client(app) as http:
        shop: Shop = app.state.shop
        await shop.pricing.set_market("US", "United States", "USD", "en-US", False, Decimal("0.1"))
        yield shop, http


async def confirmation_of(shop: Shop, order_id: str) -> list[SentMessage]:
    """The order's confirmation e-mails, once the relay has delivered OrderPaid."""
    deadline = time.monotonic() + 30
    while not (sent := await shop.notifications.sent_for_order(order_id)):
        assert time.monotonic() < deadline, "no confirmation e-mail within 30 s"
        await asyncio.sleep(0.05)
    return sent


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    found = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        found.append(span)
    return found


def named(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, f"{len(matching)} spans named {name}: {[s.name for s in spans]}"
    return matching[0]


async def test_one_trace_follows_a_purchase_from_its_request_to_the_email(
    database_url: str,
) -> None:
    exporter = InMemorySpanExporter()
    async with traced_shop(database_url, exporter) as (shop, http):
        sku = await product(shop)
        bought = await check_out(http, await open_cart(http, sku), "ada@example.com", ADDRESS)
        assert bought.status_code == 201, bought.text
        [message] = await confirmation_of(shop, bought.json()["id"])

    spans = exporter.get_finished_spans()
    request = named(spans, "POST /store/carts/{cart_id}/checkout")
    assert request.kind == SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201
    trace_id = request.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in in_trace}

    def under_request(span: ReadableSpan) -> bool:
        return request in ancestors(span, by_id)

    checkout_id = bought.json()["checkout_id"]
    steps = [s for s in in_trace if s.name.startswith("checkout.")]
    assert {s.name.removeprefix("checkout.") for s in steps} >= STEPS
    assert all(under_request(s) for s in steps)
    assert all((s.attributes or {})["colonnade.checkout.id"] == checkout_id for s in steps)
    reserve = named(in_trace, "checkout.reserve")
    statements = [s for s in in_trace if (s.attributes or {}).get("db.system.name")]
    assert any(reserve in ancestors(s, by_id) for s in statements), "no statement of the reserve"
    assert all(s.kind == SpanKind.CLIENT for s in statements)

    published = named(in_trace, "publish orders.OrderPaid")
    assert published.kind == SpanKind.PRODUCER
    assert under_request(published)
    consumed = [s for s in in_trace if s.name == "process orders.OrderPaid"]
    assert consumed
    assert all(s.kind == SpanKind.CONSUMER for s in consumed)
    assert all(published in ancestors(s, by_id) for s in consumed)
    sent = named(in_trace, "notifications.send")
    assert published in ancestors(sent, by_id)
    assert under_request(sent)
    assert message.trace_id == format_trace_id(trace_id)


async def test_each_confirmation_of_a_batch_stays_in_the_trace_of_its_purchase(
    database_url: str,
) -> None:
    exporter = InMemorySpanExporter()
    async with traced_shop(database_url, exporter) as (shop, http):
        await shop.relay.stop()  # both purchases' events then leave in one batch
        sku = await product(shop)
        bought = []
        for buyer in ("ada", "grace"):
            answer = await check_out(
                http, await open_cart(http, sku), f"{buyer}@example.com", ADDRESS
            )
            assert answer.status_code == 201, answer.text
            bought.append(answer.json()["id"])
        await shop.relay.publish_due()
        [first], [second] = [await shop.notifications.sent_for_order(o) for o in bought]

    spans = exporter.get_finished_spans()
    # Analytics takes the same batch too, in a span of its own.
    (batch,) = [
        s
        for s in spans
        if s.name == "process orders.OrderPaid"
        and s.attributes
        and s.attributes.get("messaging.consumer.group.name") == "notifications.confirm-order"
    ]
    assert {
        s.attributes.get("messaging.consumer.group.name")
        for s in spans
        if s.name == "process orders.OrderPaid" and s.attributes
    } == {"notifications.confirm-order", "analytics.facts"}
    assert batch.kind == SpanKind.CONSUMER
    assert batch.parent is None
    assert len(batch.links) == 2, "the batch's span links to both purchases"
    requests = [s for s in spans if s.name == "POST /store/carts/{cart_id}/checkout"]
    assert {first.trace_id, second.trace_id} == {
        format_trace_id(r.context.trace_id) for r in requests
    }
    for request in requests:
        in_trace = [s for s in spans if s.context.trace_id == request.context.trace_id]
        by_id = {s.context.span_id: s for s in in_trace}
        published = named(in_trace, "publish orders.OrderPaid")
        sent = named(in_trace, "notifications.send")
        assert published in ancestors(sent, by_id)
        assert request in ancestors(sent, by_id)


async def test_a_redelivered_order_paid_sends_one_email(database_url: str) -> None:
    exporter = InMemorySpanExporter()
    async with traced_shop(database_url, exporter) as (shop, http):
        sku = await product(shop)
        bought = await check_out(http, await open_cart(http, sku), "ada@example.com", ADDRESS)
        order_id = bought.json()["id"]
        await confirmation_of(shop, order_id)
        async with shop.db.reading() as conn:
            row = (
                await conn.execute(
                    select(outbox).where(outbox.c.event_type == OrderPaid.event_type)
                )
            ).one()
        again = Envelope(
            event_type=row.event_type,
            payload=row.payload,
            occurred_at=row.occurred_at,
            event_id=row.event_id,
            headers=row.headers,
        )
        assert "traceparent" in again.headers
        await shop.bus.publish(again)
        await shop.bus.publish(again)
        assert len(await shop.notifications.sent_for_order(order_id)) == 1


def test_otlp_export_goes_to_the_configured_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        configured = tracing.configure(Settings(otlp_endpoint="http://collector.test:4318"))
        assert configured is not None
        assert tracing.enabled()
        assert isinstance(configured.exporter, OTLPSpanExporter)
        assert configured.exporter._endpoint == "http://collector.test:4318/v1/traces"
        assert configured.provider.resource.attributes["service.name"] == "colonnade"

        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://standard.test:4318/")
        standard = tracing.configure(Settings())
        assert standard is not None
        assert isinstance(standard.exporter, OTLPSpanExporter)
        assert standard.exporter._endpoint == "http://standard.test:4318/v1/traces"

        monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert tracing.configure(Settings()) is None
        assert not tracing.enabled()
        with tracing.span("checkout.reserve"):
            assert tracing.current_trace_id() is None
    finally:
        tracing.shutdown()
