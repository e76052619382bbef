"""Which methods a resource supports, for `Allow` (RFC 9110): on a 405, and as the answer to
OPTIONS. Starlette knows only the methods of the first route matching a path, while the shop
serves a path's methods from separate routes, so the OpenAPI document is asked instead."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.routing import compile_path

_IMPLICIT = {"get": ("HEAD",)}


def _table(app: FastAPI) -> list[tuple[re.Pattern[str], str]]:
    table: list[tuple[re.Pattern[str], str]] = getattr(app.state, "allowed_methods", None) or []
    if not table:
        paths: dict[str, dict[str, Any]] = app.openapi().get("paths", {})
        for template, operations in paths.items():
            methods = [m.upper() for m in operations]
            methods += [extra for m in operations for extra in _IMPLICIT.get(m, ())]
            pattern, _, _ = compile_path(template)
            table.append((pattern, ", ".join([*sorted(set(methods)), "OPTIONS"])))
        app.state.allowed_methods = table
    return table


def allowed_methods(app: FastAPI, path: str) -> str | None:
    """The `Allow` value for `path`, or None when no documented operation lives there."""
    for pattern, methods in _table(app):
        if pattern.match(path):
            return methods
    return None
