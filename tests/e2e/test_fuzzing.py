"""Schemathesis fuzzes every operation of the OpenAPI against a started shop, on both
databases, as a staff member holding every scope (so protected routes are reached too):
no input may cause a 5xx, and every documented response must match its schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.e2e.conftest import RunningShop
from tests.e2e.staff import Staff

EXAMPLES_PER_OPERATION = 15


def test_no_input_breaks_the_shop_or_its_documented_answers(shop: RunningShop) -> None:
    headers = Staff.sign_in(shop).headers
    api = schemathesis.openapi.from_url(shop.base_url + "/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    calls = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(
                base_url=shop.base_url,
                headers=headers,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
                timeout=30,
            )

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - report every operation
            failures[f"{operation.method.upper()} {operation.path}"] = str(failure)[:2000]

    assert operations > 20
    assert calls > operations * 5, "the fuzzer hardly called the shop"
    assert not failures, "\n\n".join(f"{op}:\n{text}" for op, text in failures.items())
