"""Clients generated from the committed openapi.json work against a started shop: a typed
Python client (openapi-python-client) buys as a guest, and TypeScript types
(openapi-typescript) type clients/typescript/purchase.ts under `tsc --strict`.

The Python generator runs in a virtualenv of its own (clients/python/requirements.txt), made
once and kept in pytest's cache. The TypeScript check needs npm: locally it skips without it,
with COLONNADE_REQUIRE_BROWSER=1 (CI) it fails instead."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
import venv
from pathlib import Path

import httpx
import pytest

from tests.conftest import _needed
from tests.e2e.buyers import ADDRESS
from tests.e2e.conftest import RunningShop

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi.json"
GENERATOR = ROOT / "clients" / "python" / "requirements.txt"
TYPESCRIPT = ROOT / "clients" / "typescript"
REQUIRE_NPM = os.environ.get("COLONNADE_REQUIRE_BROWSER") == "1"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a tool; its output is the failure message when it fails."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def generator(pytestconfig: pytest.Config) -> Path:
    """The bin directory of the generator's virtualenv, made once per pinned version."""
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:12]
    home = pytestconfig.cache.mkdir(f"openapi-python-client-{digest}")
    bin_dir = home / "bin"
    installed = home / ".installed"
    if not installed.exists():
        venv.create(home, with_pip=True, clear=True)
        run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "-r", str(GENERATOR)], ROOT)
        installed.touch()
    return bin_dir


@pytest.fixture(scope="module")
def python_client(generator: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the generated package `colonnade_client`."""
    out = tmp_path_factory.mktemp("python-client")
    # Its own bin first: the generator formats what it wrote with the ruff installed beside it.
    env = {**os.environ, "PATH": f"{generator}{os.pathsep}{os.environ['PATH']}"}
    run(
        [
            str(generator / "openapi-python-client"),
            "generate",
            "--path",
            str(DOCUMENT),
            "--output-path",
            str(out / "colonnade_client"),
            "--meta",
            "none",
        ],
        out,
        env,
    )
    return out


# One database is enough: the client's calls are the same on both.
@pytest.mark.parametrize("shop", ["sqlite"], indirect=True)
def test_a_guest_buys_through_the_generated_python_client(
    shop: RunningShop, python_client: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(python_client))
    from colonnade_client import Client
    from colonnade_client.api.cart import add_line, open_cart
    from colonnade_client.api.catalog import list_products
    from colonnade_client.api.checkout import check_out
    from colonnade_client.api.orders import store_order
    from colonnade_client.models import (
        AddLine,
        Address,
        CardPayment,
        CartOut,
        CheckoutIn,
        OpenCart,
        OrderOut,
        PurchaseOut,
        StockLabel,
        StoreProductOut,
    )

    with Client(base_url=shop.base_url, timeout=httpx.Timeout(30)) as client:
        products = list_products.sync(client=client, market="US")
        assert isinstance(products, list), products
        assert all(isinstance(product, StoreProductOut) for product in products)
        sku = next(
            variant.sku
            for product in products
            for variant in product.variants
            if variant.stock == StockLabel.IN_STOCK and variant.price is not None
        )

        opened = open_cart.sync(client=client, body=OpenCart(market="US"))
        assert isinstance(opened, CartOut), opened
        cart = add_line.sync(client=client, cart_id=opened.id, body=AddLine(sku=sku, quantity=1))
        assert isinstance(cart, CartOut), cart

        placed = check_out.sync_detailed(
            client=client,
            cart_id=cart.id,
            idempotency_key=f"python-client-{uuid.uuid4()}",
            body=CheckoutIn(
                email="ada@example.com",
                shipping_address=Address(**ADDRESS),
                payment=CardPayment(method="card", token="tok_visa"),
            ),
        )
        assert placed.status_code == 201, placed.content
        answer = placed.parsed
        assert isinstance(answer, PurchaseOut), answer
        assert answer.total == cart.total

        order = store_order.sync(client=client, order_id=answer.id, token=answer.access_token)

    assert isinstance(order, OrderOut), order
    assert order.status == "paid"
    assert order.total == cart.total
    assert [(line.sku, line.quantity) for line in order.lines] == [(sku, 1)]


@pytest.fixture(scope="module")
def typescript(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of clients/typescript with its pinned packages installed and schema.d.ts
    generated from the committed document; the repository's tree stays as it was."""
    _needed(shutil.which("npm") is not None, "npm is missing (install Node.js 20)", REQUIRE_NPM)
    project = tmp_path_factory.mktemp("typescript") / "typescript"
    shutil.copytree(TYPESCRIPT, project, ignore=shutil.ignore_patterns("node_modules", "*.d.ts"))
    run(["npm", "ci", "--no-audit", "--no-fund"], project)
    run(["npx", "openapi-typescript", str(DOCUMENT), "-o", "schema.d.ts"], project)
    return project


def test_the_typed_purchase_compiles_under_strict_typescript(typescript: Path) -> None:
    run(["npx", "tsc", "-p", "."], typescript)


def test_typescript_refuses_a_field_the_document_does_not_declare(typescript: Path) -> None:
    (typescript / "wrong.ts").write_text(
        'import type { components } from "./schema";\n'
        'import { Shop } from "./purchase";\n'
        'export const grandTotal = (cart: components["schemas"]["CartOut"]): number =>\n'
        "  cart.grand_total.amount;\n"
        'export const openCart = (shop: Shop) => shop.openCart({ markt: "US" });\n'
    )
    (typescript / "tsconfig.wrong.json").write_text(
        '{"extends": "./tsconfig.json", "files": ["wrong.ts"]}\n'
    )

    checked = subprocess.run(
        ["npx", "tsc", "-p", "tsconfig.wrong.json"],
        cwd=typescript,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert checked.returncode != 0
    assert "Property 'grand_total' does not exist" in checked.stdout, checked.stdout
    assert "'markt' does not exist" in checked.stdout, checked.stdout
