"""What HTTP says about methods (RFC 9110): a 405 names, in `Allow`, every method the resource
supports, and OPTIONS answers with them; the OpenAPI document is the list of what is
supported, so the answers and the document agree path by path."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.settings import Settings
from tests.integration.storefront import client, started

SOME_ID = "0190f3c8-0000-7000-8000-000000000000"


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(database_url=database_url, secret_key="http-methods-tests-" + "s" * 32)
    async with started(settings) as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


def allowed(header: str) -> set[str]:
    return {method.strip() for method in header.split(",")}


def documented(app: FastAPI) -> dict[str, set[str]]:
    paths = app.openapi()["paths"]
    return {
        re.sub(r"\{[^}]+\}", SOME_ID, path): {method.upper() for method in operations}
        for path, operations in paths.items()
    }


async def test_options_names_every_documented_method_of_each_path(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    for path, methods in documented(app).items():
        answer = await http.options(path)

        assert answer.status_code == 204, (path, answer.text)
        expected = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
        assert allowed(answer.headers["Allow"]) == expected, path


async def test_a_method_the_resource_lacks_gets_405_with_all_of_its_methods(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.put("/store/customers/me")

    assert answer.status_code == 405
    assert answer.json()["code"] == "method_not_allowed"
    assert allowed(answer.headers["Allow"]) == {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}


async def test_a_path_that_does_not_exist_is_not_found_for_every_method(
    http: httpx.AsyncClient,
) -> None:
    for method in ("GET", "OPTIONS", "DELETE"):
        answer = await http.request(method, "/store/no-such-thing")

        assert answer.status_code == 404, method
        assert "Allow" not in answer.headers
