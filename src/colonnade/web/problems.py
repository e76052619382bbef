"""One place that turns errors into RFC 9457 application/problem+json responses."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from colonnade.kernel.errors import ColonnadeError

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


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI say what the shop does: every error is problem+json, any 4xx may come
    (401 for a missing token, 413 for a large body, 429 when rate limited...)."""

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
            problem = {
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            }
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.setdefault("responses", {})
                    for status, response in responses.items():
                        if status[0] in "45":
                            response.update(problem)
                    responses.setdefault("4XX", {"description": "a problem (RFC 9457)", **problem})
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
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return problem_response(
            {
                "type": _BASE + code.replace("_", "-"),
                "title": str(error.detail),
                "status": error.status_code,
                "detail": str(error.detail),
                "code": code,
            },
            dict(error.headers) if error.headers else None,
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
