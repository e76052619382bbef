"""One place that turns errors into RFC 9457 application/problem+json responses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from colonnade.kernel.errors import ColonnadeError
from colonnade.web.methods import allowed_methods

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_BASE = "https://colonnade.dev/problems/"


def problem_response(
    problem: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    if "retry_after" in problem:
        # A problem that knows when to come back says so in the header clients act on.
        headers = {"Retry-After": str(problem["retry_after"]), **(headers or {})}
    return JSONResponse(
        problem, status_code=problem["status"], media_type=PROBLEM_JSON, headers=headers
    )


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(location[0] if location else "request")


# The shape every error answer has (RFC 9457 plus our stable `code`); extensions may follow.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": True,
}


# Refusals any operation may give, whatever its own rules: the protective middlewares', the
# request validation's, and authentication's where the operation takes a token.
_EVERY_OPERATION: dict[int, tuple[str, ...]] = {
    422: ("invalid_input", "nul_character", "card_number_rejected"),
    429: ("rate_limited",),
}
_WITH_BODY: dict[int, tuple[str, ...]] = {400: ("malformed_body",), 413: ("body_too_large",)}
_WITH_TOKEN: dict[int, tuple[str, ...]] = {
    401: ("unauthorized", "invalid_token"),
    403: ("forbidden", "scope_not_held"),
}
_CODES = "x-problem-codes"
# What the framework itself refuses: a body that is not even text, an unknown path or method.
_HTTP_CODES = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}


Refusal = type[ColonnadeError] | tuple[int, str]
"""An error class, or (status, code) for another module's error, which a route may not import."""


def refusals(*errors: Refusal) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that may refuse with these errors: each status lists its
    problem codes, and the document tells a client exactly which `code`s to expect."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        status, code = error if isinstance(error, tuple) else (error.status, error.code)
        by_status.setdefault(status, []).append(code)
    return {
        status: {"description": HTTPStatus(status).phrase, _CODES: codes}
        for status, codes in by_status.items()
    }


def _refusal_statuses(operation: dict[str, Any]) -> dict[int, list[str]]:
    statuses: dict[int, list[str]] = {}
    general = [_EVERY_OPERATION]
    if "requestBody" in operation:
        general.append(_WITH_BODY)
    if operation.get("security"):
        general.append(_WITH_TOKEN)
    for table in general:
        for status, codes in table.items():
            statuses.setdefault(status, []).extend(codes)
    for status, response in operation.get("responses", {}).items():
        codes = response.pop(_CODES, [])
        if status.isdigit() and status[0] == "4":
            statuses.setdefault(int(status), []).extend(codes)
    return statuses


def _problem_content(codes: list[str]) -> dict[str, Any]:
    schema = {
        "allOf": [{"$ref": "#/components/schemas/Problem"}],
        "properties": {"code": {"enum": sorted(set(codes))}},
    }
    return {PROBLEM_JSON: {"schema": schema}}


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI say what the shop does: every error is problem+json, and each
    operation lists every status it may refuse with and, for each, the problem `code`s."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.setdefault("responses", {})
                    for status, codes in _refusal_statuses(operation).items():
                        response = responses.setdefault(
                            str(status), {"description": HTTPStatus(status).phrase}
                        )
                        response["content"] = _problem_content(codes)
                        described = ", ".join(f"`{code}`" for code in sorted(set(codes)))
                        response["description"] = f"{HTTPStatus(status).phrase}: {described}"
                    operation["responses"] = dict(sorted(responses.items()))
            for unused in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(ColonnadeError)
    async def _domain(_: Request, error: ColonnadeError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return problem_response(error.problem(), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(
            {
                "type": _BASE + "invalid-input",
                "title": "Invalid input",
                "status": 422,
                "detail": detail,
                "code": "invalid_input",
                "errors": errors,
            }
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        headers = dict(error.headers) if error.headers else {}
        if error.status_code == 405:
            allowed = allowed_methods(app, request.url.path)
            if allowed is not None:
                headers["Allow"] = allowed
                if request.method == "OPTIONS":
                    # What OPTIONS asks (RFC 9110 9.3.7): the methods this resource supports.
                    return Response(status_code=204, headers=headers)
        code = _HTTP_CODES.get(error.status_code, "http_error")
        return problem_response(
            {
                "type": _BASE + code.replace("_", "-"),
                "title": str(error.detail),
                "status": error.status_code,
                "detail": str(error.detail),
                "code": code,
            },
            headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("request.failed", path=request.url.path)
        return problem_response(
            {
                "type": _BASE + "internal-error",
                "title": "Internal error",
                "status": 500,
                "detail": "the shop could not complete this request; it changed nothing",
                "code": "internal_error",
            }
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, error: DBAPIError) -> JSONResponse:
        if not error.connection_invalidated:
            return await _unexpected(request, error)
        # The connection died under the request (a restarted or failed-over database, a cut
        # connection): the pool replaces it and those older, and the request may simply be
        # repeated, which a 500 would not tell the client.
        log.warning("request.database_lost", path=request.url.path, error=str(error.orig))
        return problem_response(
            {
                "type": _BASE + "database-unavailable",
                "title": "Database unavailable",
                "status": 503,
                "detail": (
                    "the shop lost its connection to its database while answering; repeat the"
                    " request (a checkout repeated with its Idempotency-Key is charged once)"
                ),
                "code": "database_unavailable",
                "retry_after": 1,
            }
        )
