"""Watching every request: how many and how long per route, how many at once, and a request id
that ties its log lines together, ending with one access log line.

Mounted outermost, so its clock and counts include the other middlewares and the requests
they refuse (a too large body, a rate limit). Routes are labelled by their template
(`/store/carts/{cart_id}`), never by the raw path, so the number of series stays bounded
however many carts there are; a path no route knows is `unmatched`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from time import perf_counter

import structlog
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colonnade.kernel.ids import new_id
from colonnade.kernel.metrics import (
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    HTTP_REQUESTS_IN_FLIGHT,
)

log = structlog.get_logger("colonnade.http")

REQUEST_ID_HEADER = b"x-request-id"
# A client's (or a proxy's) id is kept only when it is short and plain, so it can neither
# bloat the logs nor smuggle anything into them.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Any other method is one label value, so a client cannot invent new series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class RequestObservation:
    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        # The app's own route list (the same object), so routes added later count too.
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = _request_id(scope)
        echoed = request_id.encode("ascii")
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        # Unless the app answers, the server answers 500 for it.
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, echoed)]
            await send(message)

        HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            HTTP_REQUESTS_IN_FLIGHT.dec()
            self._observe(scope, status, perf_counter() - started)
        # Only after an answer: on a crash the id stays bound, so the report the server writes
        # further out still names the request (the next request binds its own anyway).
        structlog.contextvars.reset_contextvars(**bound)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        route = self._route_of(scope)
        labels = (method, route, str(status))
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_REQUEST_DURATION.labels(*labels).observe(elapsed)
        log.info(
            "http.request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )

    def _route_of(self, scope: Scope) -> str:
        """The template of the route that answered; for a request a middleware refused before
        routing, the template of the route it was meant for."""
        route = scope.get("route")
        if route is not None:
            return _template(route)
        # Included routers hold their routes inside; matched one by one, as the router would.
        partial: object | None = None
        for candidate in iter_route_contexts(self.routes):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return _template(candidate)
            if match is Match.PARTIAL and partial is None:
                partial = candidate
        return _template(partial) if partial is not None else UNMATCHED


def _template(route: object) -> str:
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            given = bytes(value).decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(given):
                return given
            break
    return new_id()
