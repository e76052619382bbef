"""Compliance routes (personal-data export and erasure, the audit log) and the audit middleware.

Thin: parse, authorize, call one service method. The middleware records requests after the
route has run, from what the route left on `request.state`: the principal (put there by
authentication), optionally `audit_before` (a dict: the state before the change) and
`audit_subject_customer_id` (the customer a change concerns, when the path does not say).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colonnade.kernel.principal import Principal
from colonnade.modules.compliance.domain import (
    CUSTOMER_DATA_PREFIX,
    STATE_CHANGING,
    CustomerNotFound,
    should_record,
    without_secrets,
)
from colonnade.modules.compliance.service import (
    AuditEntry,
    AuditLog,
    AuditRecord,
    ComplianceService,
)
from colonnade.web.auth import requires
from colonnade.web.fields import MAX_WHOLE_NUMBER, Instant
from colonnade.web.problems import refusals

log = structlog.get_logger(__name__)

CUSTOMER = "customer"


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor_kind: str
    actor_id: str | None
    client_address: str | None
    action: str
    target: dict[str, Any]
    status: int
    subject_customer_id: str | None
    before: Any
    after: Any
    erased: bool

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(**entry.__dict__)


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None


def router(compliance: ComplianceService) -> APIRouter:
    routes = APIRouter()

    @routes.get(
        "/store/customers/me/export", tags=["customers"], responses=refusals(CustomerNotFound)
    )
    async def export_me(principal: Principal = Depends(requires(CUSTOMER))) -> dict[str, Any]:
        """Everything the shop keeps about the caller: profile, consents, orders, audit entries."""
        return await compliance.export(principal.subject)

    @routes.delete(
        "/store/customers/me",
        status_code=204,
        tags=["customers"],
        responses=refusals(CustomerNotFound),
    )
    async def erase_me(
        request: Request, principal: Principal = Depends(requires(CUSTOMER))
    ) -> Response:
        """Erase the caller's personal data; the account stops working at once."""
        await compliance.erase(principal.subject, principal)
        request.state.audit_erased = True
        return Response(status_code=204)

    @routes.get(
        "/admin/customers/{customer_id}/export",
        tags=["compliance"],
        responses=refusals(CustomerNotFound),
    )
    async def export_customer(
        customer_id: str, _: Principal = Depends(requires("customers:read"))
    ) -> dict[str, Any]:
        """Everything the shop keeps about a customer (a data subject access request)."""
        return await compliance.export(customer_id)

    @routes.delete(
        "/admin/customers/{customer_id}",
        status_code=204,
        tags=["compliance"],
        responses=refusals(CustomerNotFound),
    )
    async def erase_customer(
        customer_id: str,
        request: Request,
        principal: Principal = Depends(requires("compliance:admin")),
    ) -> Response:
        """Erase a customer's personal data; orders stay, anonymized, for accounting."""
        await compliance.erase(customer_id, principal)
        request.state.audit_erased = True
        return Response(status_code=204)

    @routes.get("/admin/audit", response_model=AuditPageOut, tags=["compliance"])
    async def audit_trail(
        _: Principal = Depends(requires("audit:read")),
        actor: Annotated[str | None, Query(description="Id of the staff member or key.")] = None,
        action: Annotated[
            str | None, Query(description='Method and route, e.g. "POST /admin/products".')
        ] = None,
        since: Annotated[Instant | None, Query(description="Entries from this moment on.")] = None,
        before: Annotated[
            int | None,
            Query(ge=1, le=MAX_WHOLE_NUMBER, description="next_before of the previous page."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> AuditPageOut:
        """The audit log, newest first, payloads opened."""
        page = await compliance.audit.entries(
            actor=actor, action=action, since=since, before=before, limit=limit
        )
        return AuditPageOut(
            entries=[AuditEntryOut.of(e) for e in page.entries], next_before=page.next_before
        )

    return routes


class AuditTrail:
    """Records each request the audit log keeps, before its answer leaves, whatever it was."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self._audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        body: list[bytes] = []
        recorded = False

        async def reading() -> Message:
            # The body as the route reads it (bounded by the size limit in front).
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
            return message

        async def answering(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, message["status"], b"".join(body))
            await send(message)

        changing = scope["method"] in STATE_CHANGING
        try:
            await self.app(scope, reading if changing else receive, answering)
        except Exception:
            if not recorded:
                recorded = True
                await self._record(scope, 500, b"".join(body))
            raise

    async def _record(self, scope: Scope, status: int, body: bytes) -> None:
        state: dict[str, Any] = scope["state"]
        principal = state.get("principal")
        if not isinstance(principal, Principal):
            return
        route = getattr(scope.get("route"), "path", None) or scope["path"]
        method = scope["method"]
        action = f"{method} {route}"
        if not should_record(method, action, principal.kind):
            return
        target = {str(k): str(v) for k, v in scope.get("path_params", {}).items()}
        subject = state.get("audit_subject_customer_id")
        if subject is None and principal.kind == "customer":
            subject = principal.subject
        if subject is None and route.startswith(CUSTOMER_DATA_PREFIX):
            subject = target.get("customer_id")
        before = state.get("audit_before")
        client = scope.get("client")
        record = AuditRecord(
            actor_kind=principal.kind,
            actor_id=principal.subject,
            client_address=client[0] if client else None,
            action=action,
            target=target,
            status=status,
            before=without_secrets(before) if isinstance(before, dict) else None,
            after=_json_body(body),
            subject_customer_id=subject,
            keep_payload=not state.get("audit_erased", False),
        )
        try:
            await self._audit.append(record)
        except Exception:  # the answer still goes out; the failure is for operators to see
            log.exception("audit.append_failed", action=action, status=status)


def _json_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return without_secrets(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Not JSON (a login form, a file): what was sent is not kept, only that it was.
        return {"non_json_body_bytes": len(body)}
