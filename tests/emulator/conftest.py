"""Fixtures for the emulator's own tests: a small deterministic emulator served on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from sync.emulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, Emulator, serve

from .helpers import NOW, basic_auth


@pytest.fixture
def emu() -> Emulator:
    """400 records per API, fixed seed and `now`; tests change it freely."""
    return Emulator(seed=7, comms_messages=400, legacy_messages=400, now=NOW)


@pytest.fixture
async def base_url(emu: Emulator) -> AsyncIterator[str]:
    async with serve(emu) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A session on the emulator, authenticated as the default account."""
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)) as session:
        yield session
