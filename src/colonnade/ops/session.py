"""The session behind the operations pages: the staff member's own short-lived access token in
a cookie only /ops sees, and the pages' templates."""

from __future__ import annotations

from pathlib import Path
from string import Template

from fastapi import Request
from fastapi.responses import RedirectResponse

from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.principal import Principal
from colonnade.modules.identity.service import IdentityService
from colonnade.web.caching import PRIVATE_CACHE_CONTROL

COOKIE = "colonnade_ops"
# Pages and data are about now; no browser or proxy should keep them.
NO_STORE = {"Cache-Control": PRIVATE_CACHE_CONTROL}
_TEMPLATES = Path(__file__).parent / "templates"


async def page_reader(identity: IdentityService, request: Request, scope: str) -> Principal | None:
    """The staff member the page's cookie names, if they hold `scope`."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = await identity.authenticate(token)
    except ColonnadeError:
        return None
    return principal if scope in principal.scopes else None


def to_login() -> RedirectResponse:
    response = RedirectResponse("/ops/login", status_code=303, headers=NO_STORE)
    response.delete_cookie(COOKIE, path="/ops")
    return response


def template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text(encoding="utf-8"))
