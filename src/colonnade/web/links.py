"""OpenAPI links: which answer leads to which next call, so clients (and API testers) can
follow the shop's flows (a cart to its checkout, a checkout to its order, an order to its
payment) without knowing its URLs.

They are declared here, in one table, because they cross modules: a cart's checkout leads to
an order of the orders module. A link is documented only when the process serves both ends
(a module group serves only its modules' routes), so a document never points at an
operation it lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class Link:
    """From a `status` answer of operation `source`, the call of operation `target` whose
    `parameters` (and `request_body`, if any) are runtime expressions over that exchange. A
    link is named after its target: an answer leads to an operation at most once."""

    source: str
    status: str
    target: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    request_body: Mapping[str, str] | None = None
    description: str | None = None

    def definition(self) -> dict[str, Any]:
        link: dict[str, Any] = {"operationId": self.target}
        if self.parameters:
            link["parameters"] = dict(self.parameters)
        if self.request_body is not None:
            link["requestBody"] = dict(self.request_body)
        if self.description is not None:
            link["description"] = self.description
        return link


def _from(source: str, status: str, expressions: Mapping[str, str], *targets: str) -> list[Link]:
    """Links from one answer to several operations that take the same parameters."""
    return [Link(source, status, target, expressions) for target in targets]


_CART = {"cart_id": "$response.body#/id"}
_LINE = {"cart_id": "$response.body#/id", "sku": "$request.body#/sku"}
_ORDER = {"order_id": "$response.body#/id"}
_PAYMENT = {"payment_id": "$response.body#/id"}
_ORDER_PAYMENT = {"payment_id": "$response.body#/payment_id"}
_SKU = {"sku": "$response.body#/sku"}
_FIRST_VARIANT = {"sku": "$response.body#/variants/0/sku"}
_MARKET = {"market": "$response.body#/code"}

LINKS: tuple[Link, ...] = (
    # Browsing: markets, products, and what the staff keep of them.
    Link("list_markets", "200", "show_market", {"code": "$response.body#/0/code"}),
    Link("list_markets", "200", "list_products", {"market": "$response.body#/0/code"}),
    Link("show_market", "200", "list_products", _MARKET),
    Link("show_market", "200", "open_cart", request_body=_MARKET),
    Link("set_market", "200", "show_market", {"code": "$response.body#/code"}),
    Link("set_market", "200", "list_products", _MARKET),
    Link("set_market", "200", "open_cart", request_body=_MARKET),
    Link(
        "list_products",
        "200",
        "show_product",
        {"product_id": "$response.body#/0/id", "market": "$request.query.market"},
    ),
    *_from(
        "list_products",
        "200",
        {"sku": "$response.body#/0/variants/0/sku"},
        "show_prices",
        "stock_level",
    ),
    *_from("show_product", "200", _FIRST_VARIANT, "show_prices", "stock_level"),
    Link(
        "set_category",
        "200",
        "create_product",
        request_body={"category": "$response.body#/slug"},
        description="A product in the category.",
    ),
    # A new product: its prices, then its stock.
    Link("create_product", "201", "change_product", {"product_id": "$response.body#/id"}),
    *_from(
        "create_product",
        "201",
        _FIRST_VARIANT,
        "set_prices",
        "show_prices",
        "set_stock",
        "stock_level",
    ),
    *_from("set_prices", "200", _SKU, "show_prices", "set_stock"),
    *_from("show_prices", "200", _SKU, "set_prices", "stock_level"),
    *_from("set_stock", "200", _SKU, "stock_level", "stock_ledger"),
    Link("stock_level", "200", "stock_ledger", _SKU),
    # Buying: a cart, its lines, its checkout, the order it places.
    *_from("open_cart", "201", _CART, "show_cart", "add_line", "check_out"),
    *_from("show_cart", "200", _CART, "add_line", "check_out"),
    *_from("add_line", "200", _LINE, "set_quantity", "remove_line"),
    *_from("add_line", "200", _CART, "show_cart", "check_out"),
    *_from("set_quantity", "200", _CART, "show_cart", "check_out"),
    Link("remove_line", "200", "show_cart", _CART),
    Link(
        "check_out",
        "201",
        "store_order",
        {"order_id": "$response.body#/id", "token": "$response.body#/access_token"},
        description="The order as its buyer sees it: a guest with the secret handed out.",
    ),
    *_from("check_out", "201", _ORDER, "staff_order", "cancel_order", "refund_order"),
    Link("my_orders", "200", "store_order", {"order_id": "$response.body#/items/0/id"}),
    # The staff's order flow: fulfil, ship, deliver, cancel, refund, and its payment.
    Link("list_orders", "200", "staff_order", {"order_id": "$response.body#/items/0/id"}),
    *_from(
        "staff_order",
        "200",
        _ORDER,
        "fulfil_order",
        "ship_order",
        "deliver_order",
        "cancel_order",
        "refund_order",
    ),
    *_from("fulfil_order", "200", _ORDER, "ship_order", "cancel_order"),
    Link("ship_order", "200", "deliver_order", _ORDER),
    Link("deliver_order", "200", "refund_order", _ORDER),
    Link("staff_order", "200", "show_payment", _ORDER_PAYMENT),
    Link("cancel_order", "200", "show_payment", _ORDER_PAYMENT),
    Link("refund_order", "200", "staff_order", {"order_id": "$request.path.order_id"}),
    *_from("show_payment", "200", _PAYMENT, "refund_payment", "confirm_transfer"),
    Link("show_payment", "200", "staff_order", {"order_id": "$response.body#/order_id"}),
    *_from("confirm_transfer", "200", _PAYMENT, "show_payment", "refund_payment"),
    Link("refund_payment", "200", "show_payment", _PAYMENT),
    # A customer's data: its export and its erasure.
    *_from(
        "register",
        "201",
        {"customer_id": "$response.body#/id"},
        "export_customer",
        "erase_customer",
    ),
    Link("export_customer", "200", "erase_customer", {"customer_id": "$request.path.customer_id"}),
    # API keys: a key is revoked by its id.
    Link("create_api_key", "201", "revoke_api_key", {"key_id": "$response.body#/id"}),
    Link("list_api_keys", "200", "revoke_api_key", {"key_id": "$response.body#/0/id"}),
)


def add_links(document: dict[str, Any]) -> None:
    """Put each link on its source's answer, if the document has both ends."""
    operations = {
        operation["operationId"]: operation
        for path in document.get("paths", {}).values()
        for operation in path.values()
        if "operationId" in operation
    }
    for link in LINKS:
        source = operations.get(link.source)
        if source is None or link.target not in operations:
            continue
        answer = source.get("responses", {}).get(link.status)
        if answer is not None:
            answer.setdefault("links", {})[link.target] = link.definition()


def install(app: FastAPI) -> None:
    """Links go into the document `app.openapi` builds, once, before it is cached."""
    document: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_links(document())
        return document()

    app.openapi = openapi  # type: ignore[method-assign]
