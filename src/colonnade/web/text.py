"""No NUL characters in what a client sends: PostgreSQL cannot store them in text, and no
shop field has a use for them, so they are refused at the door (422) wherever they are —
path, query string, JSON or form body — instead of failing deep inside a query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from colonnade.web.asgi import buffered_body, media_type, send_problem

# As they arrive: percent-encoded in URLs and forms, escaped in JSON.
_ENCODED_NUL = (b"%00", b"\\u0000", b"\x00")


def _holds_nul(raw: bytes) -> bool:
    return any(marker in raw for marker in _ENCODED_NUL)


class NulCharacterGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        location = None
        if "\x00" in scope["path"]:
            location = "path"
        elif _holds_nul(scope.get("query_string", b"")):
            location = "query"
        else:
            media = media_type(scope)
            if media.endswith("json") or media == "application/x-www-form-urlencoded":
                body, receive = await buffered_body(scope, receive)
                if _holds_nul(body):
                    location = "body"
        if location is None:
            await self.app(scope, receive, send)
            return
        await send_problem(
            scope,
            receive,
            send,
            status=422,
            code="nul_character",
            title="Invalid input",
            detail=f"the {location} holds a NUL character, which no field of the shop accepts",
            location=location,
        )


# JSON Schema's way to say "holds no NUL": a string matching this pattern is not valid.
_NO_NUL = {"not": {"pattern": "\\x00"}}
# Strings these keywords already pin down cannot hold a NUL.
_CLOSED = {"enum", "const", "format"}


def _refuse_nul(schema: Any, components: dict[str, Any], seen: set[str]) -> None:
    if isinstance(schema, list):
        for item in schema:
            _refuse_nul(item, components, seen)
    if not isinstance(schema, dict):
        return
    reference = schema.get("$ref")
    if isinstance(reference, str):
        name = reference.rsplit("/", 1)[-1]
        if name not in seen and name in components:
            seen.add(name)
            _refuse_nul(components[name], components, seen)
        return
    if schema.get("type") == "string" and not _CLOSED & schema.keys():
        schema.update(_NO_NUL)
    elif (
        schema.get("type") == "object"
        and schema.get("additionalProperties") is not False
        and "propertyNames" not in schema
    ):
        # Names of fields nobody declared are text the client sends too.
        schema["propertyNames"] = dict(_NO_NUL)
    names = schema.get("propertyNames")
    if isinstance(names, dict) and not (_CLOSED | {"not"}) & names.keys():
        names.update(_NO_NUL)
    for key, value in schema.items():
        if key not in ("default", "examples", "example"):
            _refuse_nul(value, components, seen)


def declare(app: FastAPI) -> None:
    """The document says what NulCharacterGuard enforces: no string a client sends (path,
    query, header or body) holds a NUL."""
    document: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = document()
            components = schema.get("components", {}).get("schemas", {})
            seen: set[str] = set()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    _refuse_nul(operation.get("parameters", []), components, seen)
                    _refuse_nul(operation.get("requestBody", {}), components, seen)
        return document()

    app.openapi = openapi  # type: ignore[method-assign]
