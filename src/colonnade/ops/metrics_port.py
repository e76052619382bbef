"""The operations port: what the shop's operators read, away from the port its visitors reach.

The shop's metrics tell its revenue per currency and its order counts, and its health details
tell which dependency fails; neither is for whoever can reach the storefront. Any process of
the shop (a server, and with several workers the parent that supervises them) calls
`serve_metrics` to expose, on COLONNADE_METRICS_HOST:COLONNADE_METRICS_PORT:

- `/metrics`: the shop's registry in the Prometheus text format, every worker's values summed;
- `/health/live`: the process answers;
- `/health/details`: each readiness check's state, where the process has checks to run.

The listener runs on a thread of its own, so a busy or stopped shop loop never holds a scrape
back (its checks still run on the shop's loop, which owns their connections). When one port
is all there is, `public_router` puts `/metrics` and `/health/details` behind a bearer token
on the public app instead.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn
from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from colonnade.kernel.errors import Unauthorized
from colonnade.kernel.metrics import shop_registry
from colonnade.kernel.settings import Settings
from colonnade.ops import health

# Each readiness check's state: "ok", or what is wrong with it.
Checks = Callable[[], Coroutine[Any, Any, dict[str, str]]]


class MetricsPort:
    """A running operations listener; `stop` closes it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve_metrics(settings: Settings, *, checks: Checks | None = None) -> MetricsPort | None:
    """Start the operations listener of this process, or nothing when COLONNADE_METRICS_PORT
    is 0. `checks` (readiness) are run on the event loop calling this, which must be running."""
    if settings.metrics_port == 0:
        return None
    if checks is not None:
        checks = _on_loop(checks, asyncio.get_running_loop())
    host, port = settings.metrics_host, settings.metrics_port
    try:
        # Bound here, not in the thread, so a taken port stops the caller with the reason.
        listening = socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as error:
        error.add_note(f"the metrics port {host}:{port} (COLONNADE_METRICS_HOST/_PORT)")
        raise
    server = uvicorn.Server(
        uvicorn.Config(
            operations_app(shop_registry(), checks),
            lifespan="off",
            access_log=False,
            # The process's own logging stays as it is.
            log_config=None,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listening]}, name="metrics-port", daemon=True
    )
    thread.start()
    return MetricsPort(server, thread)


def operations_app(registry: CollectorRegistry, checks: Checks | None) -> Starlette:
    """What the operations port answers, as an ASGI app."""

    async def metrics(_: Request) -> Response:
        return exposition(registry)

    async def live(_: Request) -> Response:
        return JSONResponse({"status": "live"})

    routes = [Route("/metrics", metrics), Route("/health/live", live)]
    if checks is not None:
        run_checks = checks

        async def details(_: Request) -> Response:
            return health.details(await run_checks())

        routes.append(Route("/health/details", details))
    return Starlette(routes=routes)


def public_router(token: SecretStr, checks: Checks) -> APIRouter:
    """`/metrics` and `/health/details` on the public port, for the bearer of `token` only."""
    expected = token.get_secret_value().encode()
    registry = shop_registry()

    async def bearer_of_the_token(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Compared in constant time: how long a refusal takes tells nothing of the token.
        if not (
            scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), expected)
        ):
            raise Unauthorized("needs the bearer token of COLONNADE_METRICS_TOKEN")

    # Out of the API's documentation: these answer a scraper and an operator, not clients.
    routes = APIRouter(
        tags=["health"], dependencies=[Depends(bearer_of_the_token)], include_in_schema=False
    )

    @routes.get("/metrics")
    async def metrics() -> Response:
        return exposition(registry)

    @routes.get("/health/details")
    async def details() -> Response:
        return health.details(await checks())

    return routes


def exposition(registry: CollectorRegistry) -> Response:
    """The registry in the Prometheus text format; with several workers (a multiprocess
    registry) the sum of every worker's values."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _on_loop(checks: Checks, loop: asyncio.AbstractEventLoop) -> Checks:
    """`checks`, run on `loop` (whose connections they use) when called from another."""

    async def run() -> dict[str, str]:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(checks(), loop))

    return run
