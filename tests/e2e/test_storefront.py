"""The storefront's pages in a real browser (Debian's chromium, headless), against a shop
started with the demo data on SQLite and on PostgreSQL: what a shopper sees when buying as a
guest (with and without JavaScript), as a customer who also takes their data and leaves, when
the stock runs out before paying and when the card or its processor says no; axe-core finds
no serious accessibility problem on any kind of page in any market, and a screenshot of each
is kept under tests/artifacts/.

The scenarios find their way by the pages' stable hooks (data-* attributes, form field names,
URLs) and fill forms by their labels as the market's catalog words them; what must be in the
market's own language is checked where a shopper reads it: money, dates, headings.

Locally the tests skip when chromium is missing; with COLONNADE_REQUIRE_BROWSER=1 (CI) they
fail instead."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, Locator, Page, ViewportSize, sync_playwright

from tests.e2e.conftest import RunningShop, shop_environment, start_shop, stop
from tests.e2e.staff import Staff
from tests.e2e.test_ops_page import ARTIFACTS, chromium  # noqa: F401 - chromium is a fixture

AXE = Path(__file__).resolve().parent / "static" / "axe.min.js"
CATALOGS = Path(__file__).resolve().parents[2] / "src" / "colonnade" / "storefront" / "locale"
# Generous for one step: a shared CI machine may be slow to render.
WAIT_MS = 20_000
PASSWORD = "correct horse battery staple"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 320, "height": 640}


@dataclass(frozen=True)
class Market:
    prefix: str
    code: str
    locale: str
    # A price and a date as the market writes them (CLDR's, as Babel formats them).
    money: re.Pattern[str]
    date: re.Pattern[str]
    address: dict[str, str]

    def amount(self, shown: str) -> Decimal:
        """The number a price on the page stands for ("1.234,50 €" is 1234.50)."""
        digits = re.sub(r"[^\d.,]", "", shown)
        if self.code == "DE":
            digits = digits.replace(".", "").replace(",", ".")
        else:
            digits = digits.replace(",", "")
        return Decimal(digits)


DE = Market(
    "de-de",
    "DE",
    "de-DE",
    # "35,80 €" (a no-break space before the sign), "1.234,50 €".
    re.compile(r"\d{1,3}(\.\d{3})*,\d{2}\s€"),
    # "5. Dezember 2026".
    re.compile(r"\d{1,2}\. \w+ \d{4}"),
    {"name": "Erika Mustermann", "line1": "Heidestraße 17", "postal_code": "51147",
     "city": "Köln", "country": "DE"},
)  # fmt: skip
JP = Market(
    "ja-jp",
    "JP",
    "ja-JP",
    # "￥2,725": a full-width yen sign, no minor units.
    re.compile(r"￥\d{1,3}(,\d{3})*"),
    # "2026年12月5日".
    re.compile(r"\d{4}年\d{1,2}月\d{1,2}日"),
    {"name": "山田 花子", "line1": "千代田1-1", "postal_code": "100-0001",
     "city": "千代田区", "region": "東京都", "country": "JP"},
)  # fmt: skip
US = Market(
    "en-us",
    "US",
    "en-US",
    re.compile(r"\$\d{1,3}(,\d{3})*\.\d{2}"),
    # "December 5, 2026".
    re.compile(r"\w+ \d{1,2}, \d{4}"),
    {"name": "Ada Lovelace", "line1": "1 Row", "postal_code": "12345",
     "city": "Springfield", "region": "IL", "country": "US"},
)  # fmt: skip
MARKETS = (DE, JP, US)

# The checkout's fields by name, with the English text of their labels (the catalogs' ids).
CHECKOUT_LABELS = {
    "email": "E-mail address",
    "name": "Full name",
    "line1": "Street and number",
    "line2": "Address line 2 (optional)",
    "postal_code": "Postal code",
    "city": "City",
    "region": "Region (optional)",
    "country": "Country",
    "phone": "Phone (optional)",
}


@cache
def _catalog(locale: str) -> dict[str, str]:
    path = CATALOGS / locale.replace("-", "_") / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as source:
        return {
            str(m.id): str(m.string) for m in read_po(source) if m.id and isinstance(m.string, str)
        }


def worded(market: Market, english: str) -> str:
    """A text as the market's pages word it: its catalog's translation, or the English text
    while the catalog has none (as the pages do)."""
    return _catalog(market.locale).get(english) or english


def labelled(page: Page, market: Market, english: str) -> Locator:
    """The field whose label says `english` in the market's words (a required field's label
    ends in a star)."""
    return page.get_by_label(re.compile(rf"^{re.escape(worded(market, english))}(\s*\*)?$"))


# --- the browser and the shop ------------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    running: RunningShop
    database: str
    staff: Staff

    @property
    def url(self) -> str:
        return self.running.base_url

    def orders_for(self, email: str) -> list[dict[str, Any]]:
        return self.staff.call("GET", "/admin/orders", params={"email": email, "limit": 100})[
            "items"
        ]

    def new_product(self, title: str, on_hand: int) -> tuple[str, str]:
        """A product sold in every market, with `on_hand` units; its id and SKU."""
        sku = f"SF-{uuid.uuid4().hex[:10].upper()}"
        product = self.staff.call(
            "POST",
            "/admin/products",
            json={
                "title": {"en-US": title, "de-DE": title, "ja-JP": title},
                "variants": [
                    {
                        "sku": sku,
                        "prices": [
                            {"amount": 2_500, "currency": "USD"},
                            {"amount": 2_300, "currency": "EUR"},
                            {"amount": 3_800, "currency": "JPY"},
                        ],
                    }
                ],
            },
        )
        self.staff.call("PUT", f"/admin/inventory/{sku}", json={"on_hand": on_hand})
        return product["id"], sku


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    workdir = tmp_path_factory.mktemp("storefront-shop")
    env = shop_environment(
        request,
        workdir,
        # tok_timeout's processor never answers; the shop gives up after 1 s, asks once more,
        # and tells the shopper within about two seconds instead of thirty.
        test_gateway_no_answer_seconds="30",
        payment_timeout_seconds="1",
        payment_retries="1",
        payment_retry_backoff_seconds="0.1",
        # The scenarios fail a few provider calls on purpose: the breaker must not open and
        # refuse the purchases of the scenarios after them.
        payment_breaker_failures="50",
        payment_breaker_minimum_calls="1000",
    )
    process, base_url = start_shop(env, workdir, "--demo-data")
    try:
        running = RunningShop(base_url, env, workdir)
        yield Shop(running, request.param, Staff.sign_in(running))
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser(chromium: Path, shop: Shop) -> Iterator[Browser]:  # noqa: F811 - the fixture
    """One browser per shop; each shopper gets a context (cookies) of their own. It starts
    after the shop and ends before the next: while Playwright's loop runs in this thread, the
    next shop's PostgreSQL database could not be made (that takes an asyncio.run)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def shopper(
    browser: Browser, market: Market, *, javascript: bool = True, bypass_csp: bool = False
) -> Iterator[tuple[Page, list[str]]]:
    """A page in a browser context of its own (a new shopper), asking for the market's
    language, and the script errors and CSP refusals it meets."""
    context = browser.new_context(
        viewport=DESKTOP,
        locale=market.locale,
        java_script_enabled=javascript,
        bypass_csp=bypass_csp,
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        yield page, problems
    finally:
        context.close()


# --- what a shopper does -----------------------------------------------------------------


@dataclass(frozen=True)
class Chosen:
    sku: str
    title: str


def follow(page: Page, target: Locator) -> None:
    """Click what leads to another page (a link, a form's button) and wait until that page
    is there: a form's answer may be slow to come on a busy machine."""
    with page.expect_navigation():
        target.click()


def open_product_in(page: Page, shop: Shop, market: Market, category: str, index: int) -> None:
    """Open the category's page from the menu, then the `index`th product listed there."""
    follow(page, page.locator(f"nav.categories a[href='/{market.prefix}/c/{category}']"))
    assert page.url == f"{shop.url}/{market.prefix}/c/{category}"
    follow(page, page.locator("ul.products li.product a").nth(index))
    assert re.fullmatch(rf"{shop.url}/{market.prefix}/p/[^/]+", page.url), page.url


def add_to_cart(page: Page, market: Market) -> Chosen:
    """On a product page: add one unit of its first variant on sale; this leads to the cart."""
    form = page.locator("form.buy:has(button[type=submit])").first
    chosen = Chosen(form.locator("input[name=sku]").input_value(), page.inner_text("h1"))
    follow(page, form.locator("button[type=submit]"))
    assert page.url.endswith(f"/{market.prefix}/cart"), page.url
    assert page.locator(f"tr[data-sku='{chosen.sku}']").count() == 1
    return chosen


def go_to_checkout(page: Page, market: Market) -> None:
    follow(page, page.locator(f"main a[href='/{market.prefix}/checkout']"))
    assert page.url.endswith(f"/{market.prefix}/checkout"), page.url


def fill_checkout(page: Page, market: Market, email: str | None, token: str) -> None:
    """Fill the checkout form by its labels (as a screen reader names the fields)."""
    values = {**market.address, **({} if email is None else {"email": email})}
    for name, value in values.items():
        field = labelled(page, market, CHECKOUT_LABELS[name])
        assert field.get_attribute("name") == name
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.locator("input[name=method][value=card]").check()
    page.locator("select[name=token]").select_option(token)


def submit_checkout(page: Page) -> None:
    follow(page, page.locator("form.checkout button[type=submit]"))


def skus_listed(page: Page) -> set[str]:
    """The SKUs of the lines the page lists (a cart's, a checkout's or an order's)."""
    return set(
        page.locator("main [data-sku]").evaluate_all("lines => lines.map(l => l.dataset.sku)")
    )


def cart_skus(page: Page, shop: Shop, market: Market) -> set[str]:
    page.goto(f"{shop.url}/{market.prefix}/cart")
    return skus_listed(page)


def total_shown(page: Page, market: Market) -> str:
    total = page.locator("dd[data-total]").inner_text().strip()
    assert market.money.fullmatch(total), f"{total!r} is not money as {market.locale} writes it"
    return total


def refusal_shown(page: Page) -> str | None:
    refusal = page.locator("p.refusal[role=alert][data-refusal]")
    return refusal.get_attribute("data-refusal") if refusal.count() else None


# --- a: a guest buys in the German shop ----------------------------------------------------


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_a_guest_in_germany_buys_two_products_and_keeps_the_order_link(
    browser: Browser, shop: Shop, javascript: bool
) -> None:
    email = f"gast-{uuid.uuid4().hex[:8]}@example.de"
    with shopper(browser, DE, javascript=javascript) as (page, problems):
        # A German browser is sent to the German pages.
        page.goto(shop.url + "/")
        assert page.url == f"{shop.url}/de-de/"
        assert page.get_attribute("html", "lang") == "de-DE"

        open_product_in(page, shop, DE, "coffee", 1)
        beans = add_to_cart(page, DE)
        open_product_in(page, shop, DE, "kitchen", 2)
        kitchen = add_to_cart(page, DE)
        assert page.inner_text("h1") == "Ihr Warenkorb"
        assert skus_listed(page) == {beans.sku, kitchen.sku}
        in_cart = total_shown(page, DE)

        go_to_checkout(page, DE)
        assert page.inner_text("h1") == "Kasse"
        assert skus_listed(page) == {beans.sku, kitchen.sku}
        assert total_shown(page, DE) == in_cart
        fill_checkout(page, DE, email, "tok_visa")
        # German law wants the button that buys to say that it costs money.
        follow(page, page.get_by_role("button", name="Zahlungspflichtig bestellen"))

        # The confirmation, at the guest's own link to the order.
        assert re.fullmatch(rf"{shop.url}/de-de/orders/[^/?]+\?token=[^&]+&placed=1", page.url)
        [order] = shop.orders_for(email)
        assert order["status"] == "paid"
        assert page.inner_text("h1") == f"Bestellung {order['number']}"
        assert page.inner_text("p.notice[role=status]") == (
            "Vielen Dank! Ihre Bestellung ist eingegangen."
        )
        assert DE.date.search(page.inner_text("main")), "no date as German writes it"
        assert skus_listed(page) == {beans.sku, kitchen.sku}
        lines = page.locator("tr[data-sku] th").all_inner_texts()
        assert sorted(lines) == sorted([beans.title, kitchen.title])
        paid = total_shown(page, DE)
        assert paid == in_cart
        assert DE.amount(paid) * 100 == order["total"]["amount"]
        assert order["total"]["currency"] == "EUR"
        link = page.locator("a.guest-link").get_attribute("href")
        assert link is not None
        assert f"/de-de/orders/{order['id']}?token=" in link
        assert page.locator("a.guest-link").inner_text() == link

        # The cart was bought: it is empty now.
        assert cart_skus(page, shop, DE) == set()
        assert problems == []

    # The link shows the order to whoever has it, in a browser that never bought anything.
    with shopper(browser, DE, javascript=javascript) as (page, problems):
        page.goto(link)
        assert order["number"] in page.inner_text("h1")
        assert skus_listed(page) == {beans.sku, kitchen.sku}
        assert total_shown(page, DE) == paid
        assert page.locator("p.notice[role=status]").count() == 0
        # ...and not to whoever guesses at it.
        guessed = page.goto(link.split("?token=")[0] + "?token=not-the-token")
        assert guessed is not None
        assert guessed.status == 404
        assert order["number"] not in page.content()
        assert problems == []


# --- b: a customer in Japan, from registering to erasing their account ----------------------


def test_a_customer_in_japan_registers_buys_takes_their_data_and_erases_the_account(
    browser: Browser, shop: Shop, tmp_path: Path
) -> None:
    email = f"hanako-{uuid.uuid4().hex[:8]}@example.jp"
    with shopper(browser, JP) as (page, problems):
        page.goto(f"{shop.url}/ja-jp/account/register")
        labelled(page, JP, "Your name").fill("山田 花子")
        labelled(page, JP, "E-mail address").fill(email)
        labelled(page, JP, "Password (at least 12 characters)").fill(PASSWORD)
        follow(page, page.get_by_role("button", name="アカウントを作成"))
        assert page.url == f"{shop.url}/ja-jp/account"
        assert page.inner_text("h1") == "こんにちは、山田 花子様"

        page.goto(f"{shop.url}/ja-jp/")
        open_product_in(page, shop, JP, "tea", 0)
        tea = add_to_cart(page, JP)
        go_to_checkout(page, JP)
        # A signed-in customer's e-mail and name are filled in already.
        assert page.locator("input[name=email]").input_value() == email
        assert page.locator("input[name=name]").input_value() == "山田 花子"
        fill_checkout(page, JP, None, "tok_visa")
        submit_checkout(page)

        found = re.fullmatch(rf"{shop.url}/ja-jp/account/orders/([^/?]+)\?placed=1", page.url)
        assert found, page.url
        order_id = found.group(1)
        [order] = shop.orders_for(email)
        assert order["id"] == order_id
        assert order["status"] == "paid"
        assert skus_listed(page) == {tea.sku}
        paid = total_shown(page, JP)
        assert JP.amount(paid) == order["total"]["amount"]  # yen have no minor unit

        assert page.inner_text("p.notice[role=status]") == (
            "ご注文ありがとうございます。ご注文を承りました。"
        )

        # The account lists the order: its number, the day in Japanese, the total in yen.
        page.goto(f"{shop.url}/ja-jp/account")
        assert page.inner_text("h2#orders") == "ご注文履歴"
        row = page.locator(f"tr[data-order='{order_id}']")
        assert row.locator("th").inner_text() == order["number"]
        placed_on, total = row.locator("td").all_inner_texts()
        assert JP.date.fullmatch(placed_on), placed_on
        assert total == paid

        # "Download all your data": a JSON file with the account and the order.
        with page.expect_download() as download:
            page.locator("a[href='/ja-jp/account/export']").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        exported = json.loads(saved.read_text())
        assert exported["profile"]["email"] == email
        assert [o["id"] for o in exported["orders"]] == [order_id]

        # Erasing asks for a confirmation first; unticked, nothing is erased.
        follow(page, page.locator("a[href='/ja-jp/account/erase']"))
        assert page.url == f"{shop.url}/ja-jp/account/erase"
        assert page.inner_text("h1") == "アカウントの削除"
        erase = page.locator("form[action='/ja-jp/account/erase'] button[type=submit]")
        follow(page, erase)
        assert page.locator("input[name=confirm]").get_attribute("aria-invalid") == "true"
        assert shop.orders_for(email) != []
        page.locator("input[name=confirm]").check()
        follow(page, erase)
        assert page.inner_text("h1") == "アカウントを削除しました"
        assert "colonnade_customer" not in {c["name"] for c in page.context.cookies()}

        # The orders stay for the books, without the e-mail address.
        assert shop.orders_for(email) == []
        kept = shop.staff.call("GET", f"/admin/orders/{order_id}")
        assert kept["email"] is None

        # The account is gone: the same e-mail and password sign in no more.
        page.goto(f"{shop.url}/ja-jp/account")
        assert page.url == f"{shop.url}/ja-jp/account/login"
        labelled(page, JP, "E-mail address").fill(email)
        labelled(page, JP, "Password").fill(PASSWORD)
        follow(page, page.locator("form[action$='/account/login'] button[type=submit]"))
        assert refusal_shown(page) == "invalid_credentials"
        assert "colonnade_customer" not in {c["name"] for c in page.context.cookies()}
        assert problems == []


# --- c: sold out between the cart and the checkout ----------------------------------------


def test_a_product_sold_out_before_paying_is_refused_and_the_cart_is_kept(
    browser: Browser, shop: Shop
) -> None:
    product_id, sku = shop.new_product("Last-batch grinder", on_hand=3)
    email = f"late-{uuid.uuid4().hex[:8]}@example.com"
    with shopper(browser, US) as (page, problems):
        page.goto(f"{shop.url}/en-us/p/{product_id}")
        add_to_cart(page, US)
        go_to_checkout(page, US)
        fill_checkout(page, US, email, "tok_visa")
        # Someone else bought the last units meanwhile.
        shop.staff.call("PUT", f"/admin/inventory/{sku}", json={"on_hand": 0})
        submit_checkout(page)

        assert refusal_shown(page) == "out_of_stock"
        # Still the checkout, with what the shopper typed.
        assert page.url == f"{shop.url}/en-us/checkout"
        assert page.locator("input[name=email]").input_value() == email
        assert skus_listed(page) == {sku}
        assert cart_skus(page, shop, US) == {sku}
        assert shop.orders_for(email) == []
        stock = shop.staff.call("GET", f"/admin/inventory/{sku}")
        assert (stock["on_hand"], stock["reserved"]) == (0, 0)
        assert problems == []


# --- d: the card is declined, then its processor does not answer ----------------------------


def test_a_declined_card_or_a_silent_processor_charges_nothing_and_keeps_the_cart(
    browser: Browser, shop: Shop
) -> None:
    product_id, sku = shop.new_product("Spare dripper", on_hand=5)
    email = f"abgelehnt-{uuid.uuid4().hex[:8]}@example.de"
    with shopper(browser, DE) as (page, problems):
        page.goto(f"{shop.url}/de-de/p/{product_id}")
        add_to_cart(page, DE)
        go_to_checkout(page, DE)
        fill_checkout(page, DE, email, "tok_chargeDeclined")
        submit_checkout(page)
        assert refusal_shown(page) == "payment_declined"
        assert skus_listed(page) == {sku}
        assert shop.orders_for(email) == []
        assert shop.staff.call("GET", f"/admin/inventory/{sku}")["reserved"] == 0

        # The form is shown again as it was sent: another card is all it takes.
        assert page.locator("select[name=token]").input_value() == "tok_chargeDeclined"
        page.locator("select[name=token]").select_option("tok_timeout")
        began = time.monotonic()
        submit_checkout(page)
        assert refusal_shown(page) == "payment_provider_unavailable"
        # The shop's own timeout answers the shopper, not the processor's thirty seconds.
        assert time.monotonic() - began < 15
        assert skus_listed(page) == {sku}
        assert shop.orders_for(email) == []
        assert shop.staff.call("GET", f"/admin/inventory/{sku}")["reserved"] == 0
        assert cart_skus(page, shop, DE) == {sku}

        # The cart kept through both refusals buys with a card that works.
        go_to_checkout(page, DE)
        fill_checkout(page, DE, email, "tok_visa")
        submit_checkout(page)
        assert "/de-de/orders/" in page.url
        [order] = shop.orders_for(email)
        assert order["status"] == "paid"
        assert [line["sku"] for line in order["lines"]] == [sku]
        assert problems == []


# --- e, f: every kind of page passes axe-core, and is photographed -------------------------


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def described(kind: str, violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{kind}: {v['id']} ({v['impact']}) {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"])
        for v in violations
    ]


@pytest.mark.parametrize("market", MARKETS, ids=[m.prefix for m in MARKETS])
def test_every_kind_of_page_passes_axe_and_is_photographed(
    browser: Browser, shop: Shop, market: Market
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    seen: list[str] = []

    def check(page: Page, kind: str) -> None:
        page.wait_for_load_state()
        assert page.get_attribute("html", "lang") == market.locale, kind
        problems.extend(described(kind, serious_violations(page)))
        screenshot = ARTIFACTS / f"storefront-{shop.database}-{market.prefix}-{kind}.png"
        page.screenshot(path=str(screenshot), full_page=True)
        # Reflow (WCAG 1.4.10, which axe does not test): at a phone's 320 CSS pixels the page
        # does not scroll sideways (a wide table may, in its own box).
        page.set_viewport_size(PHONE)
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        if wide > PHONE["width"]:
            problems.append(f"{kind}: {wide} px wide at {PHONE['width']} px, scrolls sideways")
        page.set_viewport_size(DESKTOP)
        seen.append(kind)

    email = f"a11y-{market.code.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    # Only this context may run the injected axe-core: the pages' CSP allows their own scripts.
    with shopper(browser, market, bypass_csp=True) as (page, errors):
        page.goto(f"{shop.url}/{market.prefix}/")
        check(page, "home")
        follow(page, page.locator("nav.categories a[href$='/c/coffee']"))
        check(page, "category")
        first_title = page.locator("ul.products li.product .title").first.inner_text()
        page.locator("form[role=search] input[name=q]").fill(first_title.split()[0])
        with page.expect_navigation():
            page.locator("form[role=search] input[name=q]").press("Enter")
        assert "/search?q=" in page.url
        assert page.locator("ul.products li.product").count() >= 1
        check(page, "search")
        follow(page, page.locator("ul.products li.product a").first)
        check(page, "product")
        add_to_cart(page, market)
        check(page, "cart")
        go_to_checkout(page, market)
        check(page, "checkout")
        # Sent empty: every required field says what is missing.
        submit_checkout(page)
        assert page.locator("[aria-invalid=true]").count() >= 5
        check(page, "checkout-errors")
        fill_checkout(page, market, email, "tok_visa")
        submit_checkout(page)
        assert "/orders/" in page.url
        assert market.date.search(page.inner_text("main")), "no order date in the market's words"
        total_shown(page, market)
        check(page, "confirmation")
        page.goto(f"{shop.url}/{market.prefix}/account/login")
        check(page, "login")
        page.goto(f"{shop.url}/{market.prefix}/account/register")
        check(page, "register")
        page.locator("input[name=name]").fill("Axe Tester")
        page.locator("input[name=email]").fill("a11y-customer-" + email)
        page.locator("input[name=password]").fill(PASSWORD)
        follow(page, page.locator("form[action$='/account/register'] button[type=submit]"))
        assert page.url.endswith(f"/{market.prefix}/account")
        check(page, "account")
        page.goto(f"{shop.url}/{market.prefix}/account/erase")
        check(page, "erase")
        missing = page.goto(f"{shop.url}/{market.prefix}/no-such-page")
        assert missing is not None
        assert missing.status == 404
        check(page, "not-found")
        assert errors == []

    print(f"storefront screenshots: {ARTIFACTS}/storefront-{shop.database}-{market.prefix}-*.png")
    assert problems == [], "\n".join(problems)
    assert len(seen) == 13
