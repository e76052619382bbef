"""`colonnade promotions codes generate`: a merchant makes a batch of single-use codes for a
promotion and gets them as a CSV file to print or mail."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from colonnade.app import assemble
from colonnade.cli import cli
from colonnade.kernel.settings import Settings
from colonnade.modules.promotions.service import NewPromotion


@pytest.fixture
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI reads its database from the environment, as an operator's shell gives it."""
    monkeypatch.setenv("COLONNADE_DATABASE_URL", database_url)
    return database_url


def promotion_and_codes(url: str, make: bool) -> tuple[str, int]:
    """A new promotion's id (with `make`), or the codes its report counts."""

    async def run() -> tuple[str, int]:
        shop = assemble(Settings(database_url=url))
        try:
            if make:
                made = await shop.promotions.create(NewPromotion(code="POSTCARD", percent_off=15))
                return made.id, 0
            [found] = await shop.promotions.promotions()
            return found.id, (await shop.promotions.report(found.id)).codes
        finally:
            await shop.db.dispose()

    return asyncio.run(run())


def test_codes_are_made_for_a_promotion_and_written_to_a_csv_file(
    database: str, tmp_path: Path
) -> None:
    promotion, _ = promotion_and_codes(database, make=True)
    output = tmp_path / "postcard-codes.csv"

    made = CliRunner().invoke(
        cli,
        ["promotions", "codes", "generate", promotion, "--count", "2500", "--output", str(output)],
    )

    assert made.exit_code == 0, made.output
    assert "2,500 codes written" in made.output
    with output.open(encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["code"]
    codes = [row[0] for row in rows[1:]]
    assert len(codes) == len(set(codes)) == 2500
    assert all(code.startswith("POSTCARD-") for code in codes)
    assert promotion_and_codes(database, make=False) == (promotion, 2500)


def test_a_bad_count_or_an_unknown_promotion_is_refused_and_writes_nothing(
    database: str, tmp_path: Path
) -> None:
    promotion, _ = promotion_and_codes(database, make=True)
    output = tmp_path / "codes.csv"

    too_many = CliRunner().invoke(
        cli,
        ["promotions", "codes", "generate", promotion, "--count", "0", "--output", str(output)],
    )
    unknown = CliRunner().invoke(
        cli,
        ["promotions", "codes", "generate", "nope", "--count", "5", "--output", str(output)],
    )

    assert too_many.exit_code == 1
    assert "1 to 1,000,000 codes" in too_many.output
    assert unknown.exit_code == 1
    assert "there is no promotion nope" in unknown.output
    assert not output.exists()
    assert promotion_and_codes(database, make=False) == (promotion, 0)
