"""The storefront's pages over HTTP on a real database: what a shopper's browser sends and
gets back. (The same paths in a real browser, in every market: tests/e2e/test_storefront.py.)"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from colonnade.app import Shop
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.catalog.service import NewProduct, NewVariant
from tests.conftest import count_rows
from tests.integration.storefront import PASSWORD, SECRET, client, product, started

MARKUP = '<script>alert("pwned")</script>'
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class Browser:
    """A client that behaves as a browser does towards the shop's own pages."""

    http: httpx.AsyncClient

    async def page(self, path: str, **query: str) -> httpx.Response:
        return await self.http.get(path, params=query or None)

    async def form(self, path: str) -> dict[str, str]:
        """The hidden fields of the page's first form that has them (its secret and keys)."""
        page = await self.page(path)
        assert page.status_code == 200, page.text
        return {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}

    async def post(
        self, path: str, fields: dict[str, str], *, site: str = "same-origin"
    ) -> httpx.Response:
        return await self.http.post(path, data=fields, headers={"Sec-Fetch-Site": site})


ADDRESS = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "line1": "1 Analytical Row",
    "postal_code": "10001",
    "city": "New York",
    "country": "US",
    "method": "card",
    "token": "tok_visa",
}


async def shop_with(database_url: str, **settings: object) -> AsyncIterator[tuple[Shop, Browser]]:
    configured = Settings(database_url=database_url, secret_key=SECRET, **settings)  # type: ignore[arg-type]
    async with started(configured, us_tax=Decimal("0.1")) as app, client(app) as http:
        yield app.state.shop, Browser(http)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Shop, Browser]]:
    async for opened in shop_with(database_url):
        yield opened


async def in_cart(browser: Browser, sku: str, quantity: int = 1) -> None:
    # Any page with a form carries the session's secret.
    fields = await browser.form("/en-us/account/login")
    added = await browser.post(
        "/en-us/cart/lines", {"csrf": fields["csrf"], "sku": sku, "quantity": str(quantity)}
    )
    assert added.status_code == 303, added.text


async def buy(browser: Browser, **changes: str) -> httpx.Response:
    fields = await browser.form("/en-us/checkout")
    return await browser.post("/en-us/checkout", {**fields, **ADDRESS, **changes})


async def test_markup_in_a_product_title_and_an_address_is_shown_as_text(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
    created = await shop.catalog.create_product(
        NewProduct(
            titles={"en-US": f"{MARKUP} mug"},
            descriptions={"en-US": f"{MARKUP} & more"},
            default_locale="en-US",
            variants=[NewVariant(sku=sku)],
        )
    )
    await shop.pricing.set_prices(sku, [Money(1200, "USD")])
    await shop.inventory.set_on_hand(sku, 5)

    for path in ("/en-us/", f"/en-us/p/{created.id}", "/en-us/search"):
        page = await browser.page(path, **({"q": "mug"} if "search" in path else {}))
        assert page.status_code == 200
        assert MARKUP not in page.text
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; mug" in page.text
    product_page = await browser.page(f"/en-us/p/{created.id}")
    # In the structured data too: no value can close its script element.
    structured = re.search(
        r'<script type="application/ld\+json">(.*?)</script>', product_page.text, re.S
    )
    assert structured is not None
    assert "</script" not in structured.group(1)
    assert "\\u003cscript\\u003e" in structured.group(1)

    await in_cart(browser, sku)
    placed = await buy(browser, name=MARKUP, line2=f"{MARKUP} flat 2")
    assert placed.status_code == 303, placed.text
    confirmation = await browser.page(placed.headers["location"])
    assert confirmation.status_code == 200
    assert MARKUP not in confirmation.text
    assert "&lt;script&gt;" in confirmation.text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; mug" in confirmation.text


async def test_a_form_without_the_sessions_secret_or_from_another_site_changes_nothing(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    sku = await product(shop)
    fields = await browser.form("/en-us/account/login")

    forged = await browser.post("/en-us/cart/lines", {"sku": sku, "quantity": "1"})
    wrong = await browser.post(
        "/en-us/cart/lines", {"csrf": "guessed", "sku": sku, "quantity": "1"}
    )
    cross_site = await browser.post(
        "/en-us/cart/lines",
        {"csrf": fields["csrf"], "sku": sku, "quantity": "1"},
        site="cross-site",
    )
    for refused in (forged, wrong, cross_site):
        assert refused.status_code == 403
        assert 'data-refusal="form_expired"' in refused.text
    assert await count_rows(shop.db, "cart_carts") == 0

    await in_cart(browser, sku)
    assert await count_rows(shop.db, "cart_carts") == 1


async def test_the_session_cookie_is_http_only_same_site_and_secure_behind_https(
    database_url: str,
) -> None:
    async for _, browser in shop_with(database_url, behind_https=True):
        answer = await browser.page("/en-us/")
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("colonnade_store=")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" in cookie
        # A page of the shop: the same strict policy as the operations page.
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert "private" in answer.headers["cache-control"]


async def test_checkout_errors_are_tied_to_their_fields_and_keep_the_cart(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    sku = await product(shop, on_hand=3)
    await in_cart(browser, sku, 2)

    refused = await buy(browser, email="not an address", line1="", country="Atlantis")
    assert refused.status_code == 422
    for name in ("email", "line1", "country"):
        assert f'aria-invalid="true" aria-describedby="e-{name}"' in refused.text
        assert f'<p class="error" id="e-{name}">' in refused.text
    # What the shopper typed is kept, escaped.
    assert 'value="not an address"' in refused.text
    assert await count_rows(shop.db, "checkout_checkouts") == 0
    cart = await browser.page("/en-us/cart")
    assert f'data-sku="{sku}"' in cart.text
    assert (await shop.inventory.stock(sku)).available == 3


async def test_a_declined_card_keeps_the_cart_and_charges_nothing_then_another_card_buys(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    sku = await product(shop, price=2500, on_hand=4)
    await in_cart(browser, sku)

    declined = await buy(browser, token="tok_chargeDeclined")
    assert declined.status_code == 402
    assert 'data-refusal="payment_declined"' in declined.text
    assert f'data-sku="{sku}"' in declined.text
    assert (await shop.inventory.stock(sku)).available == 4

    # The form shown again is a new attempt (a new key), not a replay of the refusal.
    placed = await buy(browser)
    assert placed.status_code == 303, placed.text
    order_page = await browser.page(placed.headers["location"])
    assert "$27.50" in order_page.text
    assert "guest-link" in order_page.text
    assert (await shop.inventory.stock(sku)).available == 3
    # The cart is bought: the session holds none in this market now.
    assert "Your cart is empty." in (await browser.page("/en-us/cart")).text


async def test_the_same_form_sent_twice_buys_once(store: tuple[Shop, Browser]) -> None:
    shop, browser = store
    sku = await product(shop, on_hand=5)
    await in_cart(browser, sku)
    fields = await browser.form("/en-us/checkout")

    first = await browser.post("/en-us/checkout", {**fields, **ADDRESS})
    again = await browser.post("/en-us/checkout", {**fields, **ADDRESS})
    assert first.status_code == 303
    assert await count_rows(shop.db, "orders_orders") == 1
    assert (await shop.inventory.stock(sku)).available == 4
    # The second post finds no cart left to buy: its page says so, and nothing more is sold.
    assert again.status_code == 409
    assert 'data-refusal="cart_empty"' in again.text


async def test_a_card_number_typed_into_a_field_is_refused_on_a_page_and_kept_nowhere(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    sku = await product(shop)
    await in_cart(browser, sku)

    refused = await buy(browser, line2="4242 4242 4242 4242")
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("text/html")
    assert 'data-refusal="card_number_rejected"' in refused.text
    assert "4242 4242" not in refused.text
    assert await count_rows(shop.db, "checkout_checkouts") == 0


async def test_sign_ins_beyond_the_allowance_get_the_shops_page_with_retry_after(
    database_url: str,
) -> None:
    async for _, browser in shop_with(database_url, rate_limit_login_per_address=2):
        fields = await browser.form("/en-us/account/login")
        answers = [
            await browser.post(
                "/en-us/account/login",
                {"csrf": fields["csrf"], "email": "eve@example.com", "password": "x" * 12},
            )
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [401, 401, 429]
        assert 'data-refusal="invalid_credentials"' in answers[0].text
        limited = answers[2]
        assert limited.headers["content-type"].startswith("text/html")
        assert 'data-refusal="rate_limited"' in limited.text
        assert int(limited.headers["retry-after"]) > 0


async def test_a_customer_registers_buys_and_finds_the_order_in_the_account(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    sku = await product(shop, price=999)
    fields = await browser.form("/en-us/account/register")
    registered = await browser.post(
        "/en-us/account/register",
        {**fields, "name": "Grace", "email": "grace@example.com", "password": PASSWORD},
    )
    assert registered.status_code == 303
    assert registered.headers["location"] == "/en-us/account"
    assert "HttpOnly" in registered.headers["set-cookie"]

    await in_cart(browser, sku)
    placed = await buy(browser, email="grace@example.com")
    assert placed.status_code == 303
    assert placed.headers["location"].startswith("/en-us/account/orders/")
    account = await browser.page("/en-us/account")
    assert "Hello, Grace" in account.text
    assert "$10.99" in account.text  # 9.99 and 10% tax added on top

    export = await browser.page("/en-us/account/export")
    assert export.headers["content-disposition"].startswith("attachment")
    assert export.json()["profile"]["email"] == "grace@example.com"
    assert len(export.json()["orders"]) == 1


async def test_an_expired_sign_in_sends_the_customer_to_sign_in_again(
    store: tuple[Shop, Browser],
) -> None:
    _, browser = store
    browser.http.cookies.set("colonnade_customer", "expired.or.forged")
    account = await browser.page("/en-us/account")
    assert account.status_code == 303
    assert account.headers["location"] == "/en-us/account/login?expired=1"
    login = await browser.page(account.headers["location"])
    assert 'data-refusal="session_expired"' in login.text


async def test_erasing_needs_the_confirmation_then_signs_the_customer_out_for_good(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    fields = await browser.form("/en-us/account/register")
    await browser.post(
        "/en-us/account/register",
        {**fields, "name": "Hedy", "email": "hedy@example.com", "password": PASSWORD},
    )
    erase_form = await browser.form("/en-us/account/erase")
    unconfirmed = await browser.post("/en-us/account/erase", erase_form)
    assert unconfirmed.status_code == 422
    assert 'aria-describedby="e-confirm"' in unconfirmed.text
    assert await count_rows(shop.db, "compliance_erasures") == 0

    erased = await browser.post("/en-us/account/erase", {**erase_form, "confirm": "yes"})
    assert erased.status_code == 200
    assert "Your account is erased" in erased.text
    assert await count_rows(shop.db, "compliance_erasures") == 1
    # Both requests are in the audit log, as the API's are.
    recorded = await shop.compliance.audit.entries(action="POST /{prefix:shop}/account/erase")
    assert sorted(entry.status for entry in recorded.entries) == [200, 422]
    login = await browser.form("/en-us/account/login")
    again = await browser.post(
        "/en-us/account/login", {**login, "email": "hedy@example.com", "password": PASSWORD}
    )
    assert again.status_code == 401


async def test_a_full_checkout_waits_in_the_queue_page_and_is_let_in_with_its_ticket(
    database_url: str,
) -> None:
    async for shop, browser in shop_with(database_url, checkout_concurrency="1"):
        sku = await product(shop, on_hand=2)
        await in_cart(browser, sku)
        assert shop.waiting_room is not None
        # Another buyer holds the one place.
        holder = await shop.waiting_room.enter("another-cart", None)

        waiting = await buy(browser)
        assert waiting.status_code == 503
        assert int(waiting.headers["retry-after"]) >= 1
        assert 'id="queued"' in waiting.text
        fields = {name: html.unescape(value) for name, value in HIDDEN.findall(waiting.text)}
        assert fields["queue_ticket"]
        assert fields["email"] == ADDRESS["email"]
        assert await count_rows(shop.db, "checkout_checkouts") == 0

        await holder.leave()
        let_in = await browser.post("/en-us/checkout", fields)
        assert let_in.status_code == 303, let_in.text
        assert (await shop.inventory.stock(sku)).available == 1


async def test_paths_under_no_storefront_keep_the_apis_answers(
    store: tuple[Shop, Browser],
) -> None:
    _, browser = store
    shop_page = await browser.page("/en-us/no-such-page")
    assert shop_page.status_code == 404
    assert shop_page.headers["content-type"].startswith("text/html")
    missing_product = await browser.page("/en-us/p/no-such-product")
    assert missing_product.status_code == 404
    assert missing_product.headers["content-type"].startswith("text/html")
    api = await browser.page("/store/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    not_a_method = await browser.http.post("/store/products")
    assert not_a_method.status_code == 405


async def test_the_front_door_and_the_sitemap_name_every_language_version(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    await shop.pricing.set_market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
    await product(shop)
    german = await browser.http.get("/", headers={"Accept-Language": "de-AT,de;q=0.9"})
    assert german.status_code == 307
    assert german.headers["location"] == "/de-de/"
    other = await browser.http.get("/", headers={"Accept-Language": "fr-FR"})
    assert other.headers["location"] == "/en-us/"

    product_id = (await shop.catalog.products("en-US", q=None, category=None, limit=1))[0].id
    sitemap = await browser.page("/sitemap.xml")
    assert sitemap.headers["content-type"].startswith("application/xml")
    for prefix in ("en-us", "de-de"):
        assert f"<loc>http://shop.test/{prefix}/p/{product_id}</loc>" in sitemap.text
    assert f'hreflang="de-DE" href="http://shop.test/de-de/p/{product_id}"' in sitemap.text
    page = await browser.page(f"/en-us/p/{product_id}")
    assert f'hreflang="de-DE" href="http://shop.test/de-de/p/{product_id}"' in page.text


async def test_a_page_that_fails_is_the_shops_500_page_and_a_later_one_works_again(
    store: tuple[Shop, Browser],
) -> None:
    shop, browser = store
    sku = await product(shop)
    await in_cart(browser, sku)
    # The cart's lines out of reach, as a database whose table is missing would have them.
    async with shop.db.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE cart_lines RENAME TO cart_lines_away")
    failed = await browser.page("/en-us/cart")
    assert failed.status_code == 500
    assert failed.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in failed.text
    assert "cart_lines" not in failed.text

    async with shop.db.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE cart_lines_away RENAME TO cart_lines")
    assert f'data-sku="{sku}"' in (await browser.page("/en-us/cart")).text
