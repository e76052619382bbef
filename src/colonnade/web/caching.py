"""HTTP caching that browsers and a CDN in front of the shop understand.

Public catalog answers (the same for every shopper) carry a strong ETag, a short max-age with
stale-while-revalidate, and a Surrogate-Key naming the products and markets they show, so a
CDN can purge exactly what changed. Everything else is private and never stored: an answer a
route does not mark public gets `Cache-Control: private, no-store`, so a new route is safe
until someone decides otherwise.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Browsers and CDNs may reuse a catalog answer this long, then serve it while they ask again:
# shoppers see a price or stock change within seconds even without a purge.
PUBLIC_CACHE_CONTROL = "public, max-age=2, stale-while-revalidate=10"
PRIVATE_CACHE_CONTROL = "private, no-store"
# Catalog answers vary by URL only (market and locale are query parameters); a CDN that
# compresses keeps one copy per encoding.
PUBLIC_VARY = "Accept-Encoding"


def etag_of(body: bytes) -> str:
    """A strong validator: the same bytes, the same tag, in every process."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this tag (compared weakly, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def public(request: Request, body: bytes, etag: str, surrogate_key: str) -> Response:
    """A public JSON answer, or 304 Not Modified when the client holds these bytes already."""
    headers = {
        "ETag": etag,
        "Cache-Control": PUBLIC_CACHE_CONTROL,
        "Vary": PUBLIC_VARY,
        "Surrogate-Key": surrogate_key,
    }
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


class PrivateUnlessPublic:
    """Marks every answer that set no Cache-Control of its own as private and not to be stored
    (refusals and problems of public routes included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
            await send(message)

        await self.app(scope, receive, send_marked)
