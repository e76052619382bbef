"""The operations page at /ops: staff log in with a form, then watch live charts; staff who
may read insights see what sold at /ops/insights (insights_page.py) with the same session.

The session is the staff member's own short-lived access token (signed by identity, valid
for access_token_ttl) in a cookie the page's scripts cannot read (HttpOnly), that no other
site can make the browser send (SameSite=Strict) and that only /ops ever sees. Form posts
must also come from this shop's own pages (Sec-Fetch-Site or Origin say so), so no other
site can log a browser in or out. The data endpoint takes a staff bearer token as well.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from colonnade.kernel.clock import Clock
from colonnade.kernel.errors import ColonnadeError, Forbidden
from colonnade.kernel.principal import Principal
from colonnade.modules.analytics.service import AnalyticsService
from colonnade.modules.identity.service import IdentityService
from colonnade.ops import insights_page
from colonnade.ops.sampler import Sampler
from colonnade.ops.session import COOKIE, NO_STORE, page_reader, template, to_login
from colonnade.ops.view import AlertOut, OpsData, ops_data
from colonnade.web.auth import bearer, current_principal
from colonnade.web.origin import same_origin

SCOPE = "ops:read"
# The pages behind the login, by the scope each needs, in the order a login goes to them.
PAGES = {SCOPE: "/ops", insights_page.SCOPE: "/ops/insights"}
_HERE = Path(__file__).parent


async def ops_reader(request: Request, token: str | None = Depends(bearer)) -> Principal:
    """A staff member with the ops:read scope, by bearer token or by the page's cookie."""
    principal = await current_principal(request, token or request.cookies.get(COOKIE))
    if SCOPE not in principal.scopes:
        raise Forbidden(f"this needs the scope '{SCOPE}'", scope=SCOPE)
    return principal


def install(
    app: FastAPI,
    *,
    sampler: Sampler,
    identity: IdentityService,
    analytics: AnalyticsService,
    clock: Clock,
    behind_https: bool,
) -> None:
    app.mount("/ops/static", StaticFiles(directory=_HERE / "static"), name="ops-static")
    app.include_router(_router(sampler, identity, behind_https))
    app.include_router(insights_page.router(identity, analytics, clock))


def _router(sampler: Sampler, identity: IdentityService, behind_https: bool) -> APIRouter:
    routes = APIRouter(tags=["operations"])
    login_form = template("login.html")
    page = template("page.html")
    refresh_ms = int(min(5.0, max(2.0, sampler.every_seconds)) * 1000)

    def login_page(error: str = "", status: int = 200, email: str = "") -> HTMLResponse:
        message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        body = login_form.substitute(error=message, email=escape(email, quote=True))
        return HTMLResponse(body, status_code=status, headers=NO_STORE)

    @routes.get("/ops/login", include_in_schema=False)
    async def login() -> HTMLResponse:
        return login_page()

    @routes.post("/ops/login", include_in_schema=False)
    async def log_in(
        request: Request,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
    ) -> Response:
        if not same_origin(request):
            return login_page("This form must be sent from the shop's own page.", 403)
        try:
            token = await identity.issue_token(email, password)
        except ColonnadeError as error:
            return login_page(error.detail, error.status, email)
        # The page lives only as long as its access token: the refresh token is not needed.
        await identity.logout(token.refresh_token)
        held = token.scope.split()
        pages = [path for scope, path in PAGES.items() if scope in held]
        if not pages:
            return login_page("This account may not see the operations pages.", 403, email)
        response = RedirectResponse(pages[0], status_code=303, headers=NO_STORE)
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
        if not same_origin(request):
            return login_page("This form must be sent from the shop's own page.", 403)
        return to_login()

    @routes.get("/ops", include_in_schema=False)
    async def operations(request: Request) -> Response:
        if await page_reader(identity, request, SCOPE) is None:
            if await page_reader(identity, request, insights_page.SCOPE) is not None:
                return RedirectResponse("/ops/insights", status_code=303, headers=NO_STORE)
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
            queue_state="off" if data.totals.checkout_queue is None else "on",
            queue_totals=_queue_totals(data),
        )
        return HTMLResponse(body, headers=NO_STORE)

    @routes.get("/ops/data", response_model=OpsData)
    async def operations_data(response: Response, _: Principal = Depends(ops_reader)) -> OpsData:
        """What the operations page charts: recent rates, latency percentiles, checkouts by
        outcome, stock-outs, the outbox, and every alert with its burn rates."""
        response.headers.update(NO_STORE)
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


# The waiting room's figures, in the order the page shows them (ops.js keeps the same).
QUEUE_FIGURES = (
    ("waiting", "waiting"),
    ("in_flight", "in flight"),
    ("limit", "limit"),
    ("ticketed", "tickets given"),
    ("held", "told to wait again"),
    ("admitted", "let in"),
    ("refused", "tickets refused"),
)


def _queue_totals(data: OpsData) -> str:
    queue = data.totals.checkout_queue
    if queue is None:
        return ""
    return "\n".join(
        f'<div data-figure="{name}"><dt>{label}</dt><dd>{getattr(queue, name):g}</dd></div>'
        for name, label in QUEUE_FIGURES
    )


def _checkout_totals(data: OpsData) -> str:
    return "\n".join(
        f'<div data-outcome="{escape(outcome, quote=True)}"><dt>{escape(outcome)}</dt>'
        f"<dd>{count:g}</dd></div>"
        for outcome, count in sorted(data.totals.checkouts.items())
    )
