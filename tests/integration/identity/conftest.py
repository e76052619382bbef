"""The identity service on a real database and its routes, for every identity test here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.modules.identity.service import IdentityService
from tests.integration.identity.shop import START, make_client, make_identity


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def identity(db: Database, keyring: Keyring, clock: SettableClock) -> IdentityService:
    return make_identity(db, keyring, clock)


@pytest.fixture
async def http(identity: IdentityService) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(identity) as client:
        yield client
