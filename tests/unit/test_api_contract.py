"""The committed openapi.json is the document the shop serves, whatever the environment of
the process that writes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from colonnade.cli import cli

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"
REGENERATE = (
    "openapi.json is not the shop's OpenAPI document; if the API change is meant, "
    "regenerate it with `colonnade openapi --output openapi.json` and commit it"
)


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()  # building the app configured quiet logs for this process


def written(*args: str) -> str:
    printed = CliRunner().invoke(cli, ["openapi", *args])
    assert printed.exit_code == 0, printed.output
    return printed.stdout


def test_the_committed_document_is_the_one_the_shop_serves() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == written(), REGENERATE


def test_the_document_covers_every_module_whatever_this_process_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLONNADE_SERVE_MODULES", "catalog")
    monkeypatch.setenv("COLONNADE_METRICS_TOKEN", "a-token-that-adds-no-documented-route")

    document = json.loads(written())

    assert {"/store/carts", "/store/carts/{cart_id}/checkout", "/auth/token"} <= set(
        document["paths"]
    )
    assert document == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_the_document_is_written_to_a_file_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"

    assert written("--output", str(target)) == ""
    text = target.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text)["info"]["title"] == "Colonnade"
