"""The operations page at /ops: staff log in with a form, then watch live charts.

The session is the staff member's own short-lived access token (signed by identity, valid
for access_token_ttl) in a cookie the page's scripts cannot read (HttpOnly), that no other
site can make the browser send (SameSite=Strict) and that only /ops ever sees. Form posts
must also come from this shop's own pages (Sec-Fetch-Site or Origin say so), so no other
site can log a browser in or out. The data endpoint takes a staff bearer token as well.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from colonnade.kernel.errors import ColonnadeError, Forbidden
from colonnade.kernel.principal import Principal
from colonnade.modules.identity.service import IdentityService
from colonnade.ops.sampler import Sampler
from colonnade.ops.view import AlertOut, OpsData, ops_data
from colonnade.web.auth import bearer, current_principal
from colonnade.web.caching import PRIVATE_CACHE_CONTROL

SCOPE = "ops:read"
COOKIE = "colonnade_ops"
_HERE = Path(__file__).parent
_TEMPLATES = _HERE / "templates"
# Pages and data are about now; no browser or proxy should keep them.
_NO_STORE = {"Cache-Control": PRIVATE_CACHE_CONTROL}


def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text(encoding="utf-8"))


async def ops_reader(request: Request, token: str | None = Depends(bearer)) -> Principal:
    """A staff member with the ops:read scope, by bearer token or by the page's cookie."""
    principal = await current_principal(request, token or request.cookies.get(COOKIE))
    if SCOPE not in principal.scopes:
        raise Forbidden(f"this needs the scope '{SCOPE}'", scope=SCOPE)
    return principal


def _same_origin(request: Request) -> bool:
    """A form post must come from one of this shop's pages. Browsers say where from in
    Sec-Fetch-Site (even when, under Referrer-Policy no-referrer, their Origin is "null");
    older ones only in Origin. Clients that are not browsers send neither and cannot be made
    to post by another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


def install(
    app: FastAPI, *, sampler: Sampler, identity: IdentityService, behind_https: bool
) -> None:
    app.mount("/ops/static", StaticFiles(directory=_HERE / "static"), name="ops-static")
    app.include_router(_router(sampler, identity, behind_https))


def _router(sampler: Sampler, identity: IdentityService, behind_https: bool) -> APIRouter:
    routes = APIRouter(tags=["operations"])
    login_form = _template("login.html")
    page = _template("page.html")
    refresh_ms = int(min(5.0, max(2.0, sampler.every_seconds)) * 1000)

    def login_page(error: str = "", status: int = 200, email: str = "") -> HTMLResponse:
        message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        body = login_form.substitute(error=message, email=escape(email, quote=True))
        return HTMLResponse(body, status_code=status, headers=_NO_STORE)

    async def principal_of(request: Request) -> Principal | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            principal = await identity.authenticate(token)
        except ColonnadeError:
            return None
        return principal if SCOPE in principal.scopes else None

    def to_login() -> RedirectResponse:
        response = RedirectResponse("/ops/login", status_code=303, headers=_NO_STORE)
        response.delete_cookie(COOKIE, path="/ops")
        return response

    @routes.get("/ops/login", include_in_schema=False)
    async def login() -> HTMLResponse:
        return login_page()

    @routes.post("/ops/login", include_in_schema=False)
    async def log_in(
        request: Request,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
    ) -> Response:
        if not _same_origin(request):
            return login_page("This form must be sent from the shop's own page.", 403)
        try:
            token = await identity.issue_token(email, password)
        except ColonnadeError as error:
            return login_page(error.detail, error.status, email)
        # The page lives only as long as its access token: the refresh token is not needed.
        await identity.logout(token.refresh_token)
        if SCOPE not in token.scope.split():
            return login_page("This account may not see the operations page.", 403, email)
        response = RedirectResponse("/ops", status_code=303, headers=_NO_STORE)
        response.set_cookie(
            COOKIE,
            token.access_token,
            max_age=token.expires_in,
            path="/ops",
            secure=behind_https or request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    @routes.post("/ops/logout", include_in_schema=False)
    async def log_out(request: Request) -> Response:
        if not _same_origin(request):
            return login_page("This form must be sent from the shop's own page.", 403)
        return to_login()

    @routes.get("/ops", include_in_schema=False)
    async def operations(request: Request) -> Response:
        if await principal_of(request) is None:
            return to_login()
        data = ops_data(sampler)
        body = page.substitute(
            refresh_ms=refresh_ms,
            alert_rows=_alert_rows(data),
            checkout_totals=_checkout_totals(data),
            stockouts=f"{data.totals.stockouts:g}",
            promotions_running="\u2014"
            if data.totals.promotions_running is None
            else f"{data.totals.promotions_running:g}",
        )
        return HTMLResponse(body, headers=_NO_STORE)

    @routes.get("/ops/data", response_model=OpsData)
    async def operations_data(response: Response, _: Principal = Depends(ops_reader)) -> OpsData:
        """What the operations page charts: recent rates, latency percentiles, checkouts by
        outcome, stock-outs, the outbox, and every alert with its burn rates."""
        response.headers.update(_NO_STORE)
        return ops_data(sampler)

    return routes


def _alert_rows(data: OpsData) -> str:
    rows = []
    for alert in data.alerts:
        state = "firing" if alert.firing else "ok"
        rows.append(
            f'<tr data-alert="{escape(alert.alert, quote=True)}" data-state="{state}">'
            f'<td title="{escape(alert.summary or "", quote=True)}">{escape(alert.alert)}</td>'
            f"<td>{escape(alert.severity or '')}</td><td>{_measured(alert)}</td>"
            f'<td>{_rate(alert.threshold)}</td><td class="state">{state}</td></tr>'
        )
    return "\n".join(rows)


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _measured(alert: AlertOut) -> str:
    """A condition's value, or an SLO alert's burn rates over its long / short window."""
    if alert.value is not None or alert.long_burn_rate is None:
        return _rate(alert.value)
    return f"{_rate(alert.long_burn_rate)} / {_rate(alert.short_burn_rate)}"


def _checkout_totals(data: OpsData) -> str:
    return "\n".join(
        f'<div data-outcome="{escape(outcome, quote=True)}"><dt>{escape(outcome)}</dt>'
        f"<dd>{count:g}</dd></div>"
        for outcome, count in sorted(data.totals.checkouts.items())
    )
