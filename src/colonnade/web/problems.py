"""One place that turns errors into RFC 9457 application/problem+json responses."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from colonnade.kernel.errors import ColonnadeError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_BASE = "https://colonnade.dev/problems/"


def problem_response(
    problem: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem, status_code=problem["status"], media_type=PROBLEM_JSON, headers=headers
    )


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(location[0] if location else "request")


def install(app: FastAPI) -> None:
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
