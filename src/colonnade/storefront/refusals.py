"""What the shop's protective middlewares refuse on a storefront's path (too many attempts,
a card number typed into a field, a body too large) shown as the shop's page in the
shopper's language rather than as the API's problem document."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colonnade.storefront.pages import Pages
from colonnade.storefront.shops import PREFIX

_PROBLEM = b"application/problem+json"


class RefusalPages:
    def __init__(self, app: ASGIApp, pages: Pages) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = scope["path"].strip("/").split("/", 1)[0] if scope["type"] == "http" else ""
        if not PREFIX.match(first):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def answering(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(_PROBLEM):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._page(scope, receive, send, start, b"".join(body))
                return
            await send(message)

        await self.app(scope, receive, answering)

    async def _page(
        self, scope: Scope, receive: Receive, send: Send, start: Message, body: bytes
    ) -> None:
        try:
            problem = orjson.loads(body)
            code = str(problem.get("code", ""))
        except orjson.JSONDecodeError:
            code = ""
        status = int(start["status"])
        kept = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in start.get("headers", [])
            if name.lower() == b"retry-after"
        }
        request = Request(scope, receive)
        shop = await self.pages.shop_of_path(request)
        page = await self.pages.page(
            request,
            shop,
            "error.html",
            {"status": status, "refusal": code or None},
            status=status,
            headers=kept,
        )
        await page(scope, receive, send)
