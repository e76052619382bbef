"""The storefront mounted on the shop's app: its files, its pages, and its 404 page for
whatever else is under a storefront's prefix."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from colonnade.storefront import account, browsing, buying
from colonnade.storefront.pages import PageRoute, Pages
from colonnade.storefront.render import STATIC


def install(app: FastAPI, pages: Pages) -> None:
    """After every other route: the last one takes whatever else a storefront's prefix
    leads to."""
    app.state.storefront = pages
    app.mount("/static/store", StaticFiles(directory=STATIC), name="store-static")
    for part in (browsing, buying, account):
        app.include_router(part.routes(pages))
    app.include_router(_nowhere(pages))


def _nowhere(pages: Pages) -> APIRouter:
    routes = APIRouter(route_class=PageRoute, include_in_schema=False)

    @routes.api_route("/{prefix:shop}/{rest:path}", methods=["GET", "POST"])
    async def nowhere(request: Request, prefix: str, rest: str) -> Response:
        return await pages.not_found(request)

    return routes

    return routes
