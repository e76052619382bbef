"""Card numbers never enter the shop (it stays out of PCI-DSS scope): a request that carries
one anywhere in its query string or its JSON or form body is refused before any route runs.

Buyers pay with a payment provider's token; a card number typed into an address line, a note
or a token field is a mistake we must not store, log or forward. The answer names the field
but never repeats the number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from colonnade.kernel.cards import contains_card_number, may_contain_card_number
from colonnade.web.asgi import buffered_body, media_type, send_problem

_FORM = "application/x-www-form-urlencoded"


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def card_number_fields(document: Any, path: str = "") -> Iterator[str]:
    """Dotted paths (`shipping_address.line2`, `lines.0.sku`) of values holding a card number."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from card_number_fields(value, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from card_number_fields(value, f"{path}.{index}" if path else str(index))
    # A card number sent as a bare JSON number is still a card number.
    elif (
        isinstance(document, str | int)
        and not isinstance(document, bool)
        and contains_card_number(str(document))
    ):
        yield path


def _form_fields(raw: bytes) -> Iterator[str]:
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if contains_card_number(value):
            yield name


class CardNumberGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field = next(_form_fields(scope.get("query_string", b"")), None)
        location = "query"
        media = media_type(scope)
        if field is None and (_is_json(media) or media == _FORM):
            body, receive = await buffered_body(scope, receive)
            field = _body_field(body, media)
            location = "body"
        if field is None:
            await self.app(scope, receive, send)
            return
        await send_problem(
            scope,
            receive,
            send,
            status=422,
            code="card_number_rejected",
            title="Card number rejected",
            detail=(
                f"the {location} field '{field}' looks like a payment card number; card numbers "
                "never enter the shop: pay with a token from the payment provider instead"
            ),
            field=field,
            location=location,
        )


def _body_field(body: bytes, media: str) -> str | None:
    if media == _FORM:
        return next(_form_fields(body), None)
    # JSON may spell digits as \u escapes, which the quick look at raw bytes would miss.
    if not may_contain_card_number(body) and b"\\u" not in body:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None  # the route answers malformed JSON itself
    return next(card_number_fields(document), None)
