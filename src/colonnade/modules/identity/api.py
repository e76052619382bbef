"""Identity routes: the OAuth2 password grant that hands out access tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from colonnade.modules.identity.service import IdentityService


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


def router(identity: IdentityService) -> APIRouter:
    routes = APIRouter(tags=["auth"])

    @routes.post("/auth/token", response_model=TokenOut)
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
        """Log in with e-mail and password (OAuth2 password grant); 401 on any mismatch."""
        issued = await identity.issue_token(form.username, form.password)
        return TokenOut(**issued.__dict__)

    return routes
