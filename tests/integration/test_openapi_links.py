"""The OpenAPI document's links lead a client through the shop's flows: every link names an
operation the document has, gives it what it requires, and reads fields the answers have;
and a guest (then the staff) get from a new cart to the order and its payment by following
them on a running shop."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from colonnade.app import create_app
from colonnade.kernel.settings import Settings
from colonnade.web.links import LINKS
from tests.integration.storefront import PASSWORD, SECRET, checkout_body, product, storefront

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
# The answers the walk below follows on a running shop: every link of theirs is read from a
# real answer there, which also checks links from answers whose schema the document leaves open.
WALKED = {"open_cart", "add_line", "check_out", "staff_order", "show_payment"}
_EXPRESSION = re.compile(
    r"\$(?P<source>request|response)\.(?P<where>body#|path\.|query\.)(?P<at>.*)"
)


def document(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    return create_app(
        Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
            secret_key=SECRET,
            **settings,
        )
    ).openapi()


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each operation id's method, path and operation."""
    return {
        operation["operationId"]: (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def links(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(source operation id, status, name, link) of every link in the document."""
    return [
        (operation["operationId"], status, name, link)
        for item in document["paths"].values()
        for operation in item.values()
        for status, answer in operation["responses"].items()
        for name, link in answer.get("links", {}).items()
    ]


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema and len(present := _not_null(schema["anyOf"])) == 1:
            schema = present[0]
        else:
            return schema


def _not_null(choices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [choice for choice in choices if choice.get("type") != "null"]


def names_something(document: dict[str, Any], schema: dict[str, Any], pointer: str) -> bool:
    """Whether JSON pointer `pointer` names a field values of `schema` have."""
    for token in pointer.split("/")[1:]:
        schema = resolved(document, schema)
        if schema.get("type") == "array" and token.isdigit():
            schema = schema["items"]
        elif token in schema.get("properties", {}):
            schema = schema["properties"][token]
        else:
            return False
    return True


def json_schema(part: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON schema of a request body or answer; {} when it says none."""
    return (part or {}).get("content", {}).get("application/json", {}).get("schema") or {}


@pytest.mark.parametrize("modules", ["", "cart,checkout", "orders,payments,compliance"])
def test_every_link_leads_to_an_operation_with_what_it_requires(
    tmp_path: Path, modules: str
) -> None:
    spec = document(tmp_path, serve_modules=modules)
    by_id = operations(spec)
    found = links(spec)
    assert found, "the document has links"
    undocumented = set()
    for source_id, status, name, link in found:
        where = f"{source_id} -[{status}]-> {name}"
        assert link["operationId"] in by_id, f"{where}: no such operation"
        _, _, source = by_id[source_id]
        _, _, target = by_id[link["operationId"]]
        given = link.get("parameters", {})
        accepted = {p["name"]: p for p in target.get("parameters", [])}
        assert set(given) <= set(accepted), f"{where}: the target takes no such parameter"
        # An Idempotency-Key header is the caller's own, never a value an answer hands over.
        required = {n for n, p in accepted.items() if p.get("required") and p["in"] != "header"}
        assert required <= set(given), f"{where}: the target's {required - set(given)} missing"
        body = link.get("requestBody", {})
        for field in body:
            assert names_something(spec, json_schema(target.get("requestBody")), f"/{field}"), (
                f"{where}: the target's body has no {field}"
            )
        answer = json_schema(source["responses"][status])
        for expression in [*given.values(), *body.values()]:
            parsed = _EXPRESSION.fullmatch(expression)
            assert parsed, f"{where}: {expression} is no runtime expression"
            if parsed["where"] != "body#":
                kind = parsed["where"].rstrip(".")
                source_parameters = {(p["in"], p["name"]) for p in source.get("parameters", [])}
                assert (kind, parsed["at"]) in source_parameters, f"{where}: {expression}"
            elif parsed["source"] == "request":
                request = json_schema(source.get("requestBody"))
                assert names_something(spec, request, parsed["at"]), f"{where}: {expression}"
            elif resolved(spec, answer):
                assert names_something(spec, answer, parsed["at"]), f"{where}: {expression}"
            else:
                undocumented.add(source_id)
    assert undocumented <= WALKED, "links read answers whose fields nothing checks"


def test_a_link_is_left_out_when_this_process_does_not_serve_both_ends(tmp_path: Path) -> None:
    spec = document(tmp_path, serve_modules="cart,checkout")
    leads = {(source, name) for source, _, name, _ in links(spec)}
    assert ("open_cart", "check_out") in leads
    # The orders module, where a checkout leads, is served elsewhere; refunds are checkout's.
    assert {name for source, name in leads if source == "check_out"} == {"refund_order"}
    whole = document(tmp_path)
    assert len(links(whole)) == len(LINKS), "every link of the table, with every module served"


def test_the_purchase_path_is_linked_from_a_new_cart_to_the_order(tmp_path: Path) -> None:
    spec = document(tmp_path)
    leads = {(source, name) for source, _, name, _ in links(spec)}
    assert {
        ("open_cart", "add_line"),
        ("add_line", "check_out"),
        ("check_out", "store_order"),
        ("check_out", "staff_order"),
        ("staff_order", "show_payment"),
        ("show_payment", "refund_payment"),
    } <= leads


async def follow(
    http: httpx.AsyncClient,
    spec: dict[str, Any],
    source: str,
    answer: httpx.Response,
    target: str,
    walked: set[str],
    **request: Any,
) -> httpx.Response:
    """Call `target` as the link from `source`'s answer says, having read every link of that
    answer from it."""
    assert answer.is_success, answer.text
    _, _, operation = operations(spec)[source]
    leads = operation["responses"][str(answer.status_code)]["links"]
    values = {
        name: {key: read(expression, answer) for key, expression in link["parameters"].items()}
        for name, link in leads.items()
    }
    walked.add(source)
    method, path, called = operations(spec)[target]
    in_path = {p["name"] for p in called.get("parameters", []) if p["in"] == "path"}
    given = values[target]
    url = path.format(**{name: value for name, value in given.items() if name in in_path})
    query = {name: value for name, value in given.items() if name not in in_path}
    return await http.request(method, url, params=query, **request)


def read(expression: str, answer: httpx.Response) -> Any:
    """What a runtime expression over a request's body or its answer's body names in them."""
    parsed = _EXPRESSION.fullmatch(expression)
    assert parsed, f"{expression} is no runtime expression"
    assert parsed["where"] == "body#", f"the walk reads no {expression}"
    value = answer.json() if parsed["source"] == "response" else json.loads(answer.request.content)
    for token in parsed["at"].split("/")[1:]:
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


async def test_a_guest_and_the_staff_follow_the_links_from_a_cart_to_the_refund(
    database_url: str,
) -> None:
    async with storefront(database_url) as (shop, http):
        sku = await product(shop, price=1500)
        await shop.identity.create_staff("staff@shop.test", PASSWORD)
        signed_in = await http.post(
            "/auth/token", data={"username": "staff@shop.test", "password": PASSWORD}
        )
        staff = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        spec = (await http.get("/openapi.json")).json()
        walked: set[str] = set()

        cart = await http.post("/store/carts", json={"market": "US"})
        added = await follow(
            http, spec, "open_cart", cart, "add_line", walked, json={"sku": sku, "quantity": 2}
        )
        bought = await follow(
            http,
            spec,
            "add_line",
            added,
            "check_out",
            walked,
            json=checkout_body("guest@example.com", ADDRESS),
            headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}"},
        )
        order = await follow(http, spec, "check_out", bought, "store_order", walked)
        assert order.status_code == 200, order.text
        assert (order.json()["number"], order.json()["lines"][0]["quantity"]) == (
            bought.json()["number"],
            2,
        )

        seen_by_staff = await follow(
            http, spec, "check_out", bought, "staff_order", walked, headers=staff
        )
        payment = await follow(
            http, spec, "staff_order", seen_by_staff, "show_payment", walked, headers=staff
        )
        assert payment.json()["order_id"] == order.json()["id"]
        refund = await follow(
            http,
            spec,
            "show_payment",
            payment,
            "refund_payment",
            walked,
            headers=staff,
            json={"amount": {"amount": 500, "currency": "USD"}},
        )
        assert refund.status_code == 200, refund.text
        assert refund.json()["refunded"] == {"amount": 500, "currency": "USD"}
        assert walked == WALKED
