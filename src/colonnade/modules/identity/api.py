"""Identity routes: logging in and out, customer accounts and consents, staff, API keys.

Thin: parse, authorize, call one service method.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from colonnade.kernel.errors import InvalidInput
from colonnade.kernel.principal import Principal
from colonnade.modules.identity.domain import Customer, LoginLocked
from colonnade.modules.identity.service import AccessToken, ApiKey, Consent, IdentityService
from colonnade.web.auth import current_principal, requires
from colonnade.web.problems import problem_response

CUSTOMER = "customer"


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int = Field(description="Seconds the access token is valid.")
    scope: str
    refresh_token: str = Field(
        description="Opaque; trade it once at POST /auth/token (grant_type=refresh_token)."
    )

    @classmethod
    def of(cls, token: AccessToken) -> TokenOut:
        return cls(**token.__dict__)


class Logout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: StrictStr


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: StrictStr
    password: StrictStr
    name: StrictStr


class CustomerOut(BaseModel):
    id: str
    email: str
    name: str

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        return cls(id=customer.id, email=customer.email, name=customer.name)


class ProfileChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: StrictStr
    new_password: StrictStr


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    granted: StrictBool


class ConsentOut(BaseModel):
    purpose: str
    granted: bool
    changed_at: datetime | None = Field(description="None when the customer was never asked.")

    @classmethod
    def of(cls, consent: Consent) -> ConsentOut:
        return cls(purpose=consent.purpose, granted=consent.granted, changed_at=consent.changed_at)


class NewStaff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: StrictStr
    password: StrictStr
    name: StrictStr
    roles: list[StrictStr] = Field(min_length=1)


class StaffOut(BaseModel):
    id: str
    email: str
    name: str
    roles: list[str]
    scopes: list[str]


class NewApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr
    scopes: list[StrictStr] = Field(min_length=1)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(**key.__dict__)


class NewApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    key: str = Field(description="Shown this once; the shop keeps only its digest.")


def router(identity: IdentityService) -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/auth/token",
        response_model=TokenOut,
        tags=["auth"],
        responses={429: {"description": "too many failed logins for this e-mail address"}},
    )
    async def sign_in(
        grant_type: Annotated[Literal["password", "refresh_token"], Form()] = "password",
        username: Annotated[str | None, Form()] = None,
        password: Annotated[str | None, Form()] = None,
        refresh_token: Annotated[str | None, Form()] = None,
    ) -> TokenOut | JSONResponse:
        """Log in (OAuth2 password grant, staff and customers) or trade a refresh token.

        401 on any mismatch, whichever it was; 429 with Retry-After while an e-mail address
        is locked after repeated failures.
        """
        if grant_type == "refresh_token":
            if not refresh_token:
                raise InvalidInput(
                    "grant_type=refresh_token needs refresh_token", field="refresh_token"
                )
            return TokenOut.of(await identity.refresh(refresh_token))
        if username is None or password is None:
            raise InvalidInput("grant_type=password needs username and password", field="username")
        try:
            return TokenOut.of(await identity.issue_token(username, password))
        except LoginLocked as locked:
            return problem_response(locked.problem(), {"Retry-After": str(locked.retry_after)})

    @routes.post("/auth/logout", status_code=204, tags=["auth"])
    async def logout(body: Logout) -> Response:
        """Revoke a refresh token and every token rotated from the same login."""
        await identity.logout(body.refresh_token)
        return Response(status_code=204)

    @routes.post("/auth/logout-all", status_code=204, tags=["auth"])
    async def logout_all(principal: Principal = Depends(current_principal)) -> Response:
        """Revoke every refresh token of the caller, on every device."""
        await identity.logout_all(principal.subject)
        return Response(status_code=204)

    @routes.post(
        "/store/customers", status_code=201, response_model=CustomerOut, tags=["customers"]
    )
    async def register(body: Registration) -> CustomerOut:
        """Open a customer account. An address that has one gets the same kind of answer."""
        return CustomerOut.of(
            await identity.register_customer(body.email, body.password, body.name)
        )

    @routes.get("/store/customers/me", response_model=CustomerOut, tags=["customers"])
    async def show_me(principal: Principal = Depends(requires(CUSTOMER))) -> CustomerOut:
        return CustomerOut.of(await identity.customer(principal.subject))

    @routes.patch("/store/customers/me", response_model=CustomerOut, tags=["customers"])
    async def change_me(
        body: ProfileChange, principal: Principal = Depends(requires(CUSTOMER))
    ) -> CustomerOut:
        return CustomerOut.of(await identity.rename_customer(principal.subject, body.name))

    @routes.post("/store/customers/me/password", status_code=204, tags=["customers"])
    async def change_password(
        body: PasswordChange, principal: Principal = Depends(requires(CUSTOMER))
    ) -> Response:
        """Change the password; every refresh token of the account stops working."""
        await identity.change_password(principal.subject, body.current_password, body.new_password)
        return Response(status_code=204)

    @routes.get("/store/customers/me/consents", response_model=list[ConsentOut], tags=["customers"])
    async def list_consents(principal: Principal = Depends(requires(CUSTOMER))) -> list[ConsentOut]:
        return [ConsentOut.of(c) for c in await identity.consents(principal.subject)]

    @routes.put(
        "/store/customers/me/consents/{purpose}", response_model=ConsentOut, tags=["customers"]
    )
    async def set_consent(
        purpose: str,
        body: ConsentChange,
        request: Request,
        principal: Principal = Depends(requires(CUSTOMER)),
    ) -> ConsentOut:
        """Give or withdraw a consent; each change is kept with its time and client address."""
        source = request.client.host if request.client else None
        return ConsentOut.of(
            await identity.set_consent(
                principal.subject, purpose, granted=body.granted, source=source
            )
        )

    @routes.post("/admin/staff", status_code=201, response_model=StaffOut, tags=["staff"])
    async def create_staff(
        body: NewStaff, principal: Principal = Depends(requires("staff:write"))
    ) -> StaffOut:
        """A staff account with roles; nobody grants scopes they do not hold themselves."""
        member = await identity.create_staff(
            body.email, body.password, name=body.name, roles=body.roles, granted_by=principal
        )
        return StaffOut(
            id=member.id,
            email=member.email,
            name=member.name,
            roles=list(member.roles),
            scopes=sorted(member.scopes),
        )

    @routes.post("/admin/api-keys", status_code=201, response_model=NewApiKeyOut, tags=["staff"])
    async def create_api_key(
        body: NewApiKeyIn, principal: Principal = Depends(requires("apikeys:write"))
    ) -> NewApiKeyOut:
        """A key for an integration, with at most the scopes of its creator; shown once."""
        made = await identity.create_api_key(principal, body.name, body.scopes)
        return NewApiKeyOut(**made.__dict__)

    @routes.get("/admin/api-keys", response_model=list[ApiKeyOut], tags=["staff"])
    async def list_api_keys(
        _: Principal = Depends(requires("apikeys:write")),
    ) -> list[ApiKeyOut]:
        return [ApiKeyOut.of(k) for k in await identity.api_keys()]

    @routes.delete("/admin/api-keys/{key_id}", status_code=204, tags=["staff"])
    async def revoke_api_key(
        key_id: str, _: Principal = Depends(requires("apikeys:write"))
    ) -> Response:
        """Revoke a key: requests with it are refused from now on."""
        await identity.revoke_api_key(key_id)
        return Response(status_code=204)

    return routes
