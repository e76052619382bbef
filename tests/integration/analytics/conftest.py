"""The shop every analytics test buys from and asks: see shopfront."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.analytics.shopfront import Shopfront, shopfront


@pytest.fixture
async def front(database_url: str, tmp_path: Path) -> AsyncIterator[Shopfront]:
    async with shopfront(database_url, tmp_path) as opened:
        yield opened
