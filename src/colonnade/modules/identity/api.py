"""Identity routes: logging in and out, customer accounts and consents, staff, API keys.

Thin: parse, authorize, call one service method.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from colonnade.kernel.principal import Principal
from colonnade.modules.identity.domain import (
    CONSENT_PURPOSES,
    MAX_NAME_LENGTH,
    MIN_PASSWORD_LENGTH,
    ROLES,
    STAFF_SCOPES,
    ApiKeyNotFound,
    Customer,
    CustomerNotFound,
    InvalidCredentials,
    InvalidRefreshToken,
    LoginLocked,
    ScopeNotHeld,
    StaffExists,
    UnknownConsent,
    UnknownRole,
    UnknownScope,
    WeakPassword,
    WrongPassword,
)
from colonnade.modules.identity.service import AccessToken, ApiKey, Consent, IdentityService
from colonnade.web.auth import current_principal, requires
from colonnade.web.fields import SPACE, declared
from colonnade.web.problems import problem_response, refusals

CUSTOMER = "customer"

# The domain's e-mail rule (surrounding white space is trimmed), checked here as well so the
# document can state it: the domain's refusal is the generic invalid_input all the same.
# Spelled alike in every regular expression dialect: no white space, in any of their senses.
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f\x85\ufeff]+"
EMAIL_PATTERN = rf"^{SPACE}*{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}{SPACE}*$"
Email = Annotated[StrictStr, Field(pattern=EMAIL_PATTERN, max_length=254)]
"""An e-mail address, such as ada@example.com."""

# A name the domain keeps: something besides white space, no control characters. Checked here
# for the same reason as e-mail addresses.
_NAME_CHAR = r"[^\x00-\x1f\x7f]"
NAME_PATTERN = rf"^{_NAME_CHAR}*(?:[^\s\x00-\x1f\x7f\x85]|\ufeff){_NAME_CHAR}*$"
Name = Annotated[StrictStr, Field(pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH)]

# The domain refuses a short password with its own weak_password.
NewPassword = Annotated[StrictStr, declared(minLength=MIN_PASSWORD_LENGTH)]
Role = Annotated[StrictStr, declared(enum=sorted(ROLES))]
Scope = Annotated[StrictStr, declared(enum=sorted(STAFF_SCOPES))]
Purpose = Annotated[str, Path(json_schema_extra={"enum": sorted(CONSENT_PURPOSES)})]


class TokenRequest(BaseModel):
    """The OAuth2 token request: a password grant, or a refresh token to trade."""

    grant_type: Literal["password", "refresh_token"] = "password"
    username: str = ""
    password: str = ""
    refresh_token: str = ""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"grant_type": {"const": "refresh_token"}},
                "required": ["grant_type"],
            },
            "then": {
                "required": ["refresh_token"],
                "properties": {"refresh_token": {"minLength": 1}},
            },
            "else": {
                "required": ["username", "password"],
                "properties": {"username": {"minLength": 1}, "password": {"minLength": 1}},
            },
        }
    )

    @model_validator(mode="after")
    def _grant_complete(self) -> TokenRequest:
        if self.grant_type == "refresh_token" and not self.refresh_token:
            raise ValueError("grant_type=refresh_token needs refresh_token")
        if self.grant_type == "password" and not (self.username and self.password):
            raise ValueError("grant_type=password needs username and password")
        return self


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

    email: Email
    password: NewPassword
    name: Name


class CustomerOut(BaseModel):
    id: str
    email: str
    name: str

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        return cls(id=customer.id, email=customer.email, name=customer.name)


class ProfileChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: StrictStr
    new_password: NewPassword


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

    email: Email
    password: NewPassword
    name: Name | Literal[""] = Field(description="Empty: the e-mail address stands for it.")
    roles: list[Role] = Field(min_length=1)


class StaffOut(BaseModel):
    id: str
    email: str
    name: str
    roles: list[str]
    scopes: list[str]


class NewApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    scopes: list[Scope] = Field(min_length=1)


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
        responses=refusals(InvalidCredentials, InvalidRefreshToken, LoginLocked),
    )
    async def sign_in(form: Annotated[TokenRequest, Form()]) -> TokenOut | JSONResponse:
        """Log in (OAuth2 password grant, staff and customers) or trade a refresh token.

        401 on any mismatch, whichever it was; 429 with Retry-After while an e-mail address
        is locked after repeated failures.
        """
        if form.grant_type == "refresh_token":
            return TokenOut.of(await identity.refresh(form.refresh_token))
        try:
            return TokenOut.of(await identity.issue_token(form.username, form.password))
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
        "/store/customers",
        status_code=201,
        response_model=CustomerOut,
        tags=["customers"],
        responses=refusals(WeakPassword),
    )
    async def register(body: Registration) -> CustomerOut:
        """Open a customer account. An address that has one gets the same kind of answer."""
        return CustomerOut.of(
            await identity.register_customer(body.email, body.password, body.name)
        )

    @routes.get(
        "/store/customers/me",
        response_model=CustomerOut,
        tags=["customers"],
        responses=refusals(CustomerNotFound),
    )
    async def show_me(principal: Principal = Depends(requires(CUSTOMER))) -> CustomerOut:
        return CustomerOut.of(await identity.customer(principal.subject))

    @routes.patch(
        "/store/customers/me",
        response_model=CustomerOut,
        tags=["customers"],
        responses=refusals(CustomerNotFound),
    )
    async def change_me(
        body: ProfileChange, principal: Principal = Depends(requires(CUSTOMER))
    ) -> CustomerOut:
        return CustomerOut.of(await identity.rename_customer(principal.subject, body.name))

    @routes.post(
        "/store/customers/me/password",
        status_code=204,
        tags=["customers"],
        responses=refusals(WeakPassword, CustomerNotFound, WrongPassword),
    )
    async def change_password(
        body: PasswordChange, principal: Principal = Depends(requires(CUSTOMER))
    ) -> Response:
        """Change the password; every refresh token of the account stops working."""
        await identity.change_password(principal.subject, body.current_password, body.new_password)
        return Response(status_code=204)

    @routes.get(
        "/store/customers/me/consents",
        response_model=list[ConsentOut],
        tags=["customers"],
        responses=refusals(CustomerNotFound),
    )
    async def list_consents(principal: Principal = Depends(requires(CUSTOMER))) -> list[ConsentOut]:
        return [ConsentOut.of(c) for c in await identity.consents(principal.subject)]

    @routes.put(
        "/store/customers/me/consents/{purpose}",
        response_model=ConsentOut,
        tags=["customers"],
        responses=refusals(UnknownConsent, CustomerNotFound),
    )
    async def set_consent(
        purpose: Purpose,
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

    @routes.post(
        "/admin/staff",
        status_code=201,
        response_model=StaffOut,
        tags=["staff"],
        responses=refusals(WeakPassword, UnknownRole, ScopeNotHeld, StaffExists),
    )
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

    @routes.post(
        "/admin/api-keys",
        status_code=201,
        response_model=NewApiKeyOut,
        tags=["staff"],
        responses=refusals(UnknownScope, ScopeNotHeld),
    )
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

    @routes.delete(
        "/admin/api-keys/{key_id}",
        status_code=204,
        tags=["staff"],
        responses=refusals(ApiKeyNotFound),
    )
    async def revoke_api_key(
        key_id: str, _: Principal = Depends(requires("apikeys:write"))
    ) -> Response:
        """Revoke a key: requests with it are refused from now on."""
        await identity.revoke_api_key(key_id)
        return Response(status_code=204)

    return routes
