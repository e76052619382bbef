"""The OpenAPI document says exactly what the shop enforces: schemathesis runs every check
(positive and negative data, status codes, response schemas and headers, Allow, ...) through
every phase (examples, coverage, fuzzing, and the stateful phase, which follows the document's
links) against a started shop, on both databases, and may find nothing.

Staff holding every scope reach every admin route; a customer of their own reaches the
customer's routes. The number of examples is modest here; before a release, run it longer:
`COLONNADE_CONTRACT_EXAMPLES=300 .venv/bin/pytest tests/e2e/test_contract.py`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import RunningShop
from tests.e2e.staff import Staff

CONTRACT = Path(__file__).parent / "contract"
EXAMPLES = int(os.environ.get("COLONNADE_CONTRACT_EXAMPLES", "12"))
SEED = os.environ.get("COLONNADE_CONTRACT_SEED", "20261127")
CUSTOMER_ROUTES = "^/store/(customers/me|orders)"


def _customer_token(shop: RunningShop) -> str:
    email, password = "contract.customer@demo.example", "a long and secret passphrase"
    registered = httpx.post(
        shop.base_url + "/store/customers",
        json={"email": email, "password": password, "name": "Contract Customer"},
    )
    assert registered.status_code == 201, registered.text
    signed_in = httpx.post(
        shop.base_url + "/auth/token", data={"username": email, "password": password}
    )
    assert signed_in.status_code == 200, signed_in.text
    return str(signed_in.json()["access_token"])


def _schemathesis(shop: RunningShop, token: str, *selection: str) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONTRACT / "schemathesis.toml"),
            "run",
            shop.base_url + "/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            SEED,
            # One worker: hypothesis describing strategies from two threads at once trips
            # over CPython 3.11's parser ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
            *selection,
        ],
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.contract.checks"},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = run.stdout + run.stderr
    print(report)  # the whole run, shown when the test fails
    assert "Test cases:" in report, report[-5000:]
    assert run.returncode == 0, "schemathesis found failures; the run is printed above"


def test_the_shop_does_what_its_document_says(shop: RunningShop) -> None:
    staff = Staff.sign_in(shop)
    customer = _customer_token(shop)
    _schemathesis(shop, staff.headers["Authorization"].removeprefix("Bearer "))
    _schemathesis(shop, customer, "--include-path-regex", CUSTOMER_ROUTES)
