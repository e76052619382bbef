"""Who is calling: a bearer token turned into a principal, and scope checks for routes.

The composition root puts an `Authenticator` on the app; routes ask for a scope with
`requires("catalog:write")` and never see how tokens are made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from colonnade.kernel.errors import Forbidden, Unauthorized
from colonnade.kernel.principal import Principal

Authenticator = Callable[[str], Awaitable[Principal]]

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def current_principal(request: Request, token: str | None = Depends(bearer)) -> Principal:
    if not token:
        raise Unauthorized("this route needs a bearer token (POST /auth/token)")
    authenticate: Authenticator = request.app.state.authenticate
    principal = await authenticate(token)
    # Kept for what runs around the route (the audit log, rate limits).
    request.state.principal = principal
    return principal


async def optional_principal(
    request: Request, token: str | None = Depends(bearer)
) -> Principal | None:
    """The caller, or None for a request without a token; a bad token is still refused."""
    if not token:
        return None
    return await current_principal(request, token)


def requires(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Principal = Depends(current_principal)) -> Principal:
        if scope not in principal.scopes:
            raise Forbidden(f"this action needs the scope '{scope}'", scope=scope)
        return principal

    return check
