"""Helpers for the emulator's tests: auth headers, JSON fetches and whole-list scans over HTTP."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import aiohttp

from sync.emulator import DEFAULT_ACCOUNT_SID

# A fixed `now` keeps every generated timestamp identical from run to run; the emulator's
# clock then runs on from it in real time, so retention is checked against now + elapsed.
NOW = dt.datetime(2025, 6, 18, 12, 0, 0, tzinfo=dt.UTC)
LEGACY_LIST = f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
# Twilio's schemas and fixtures, copied into the repository (tests/reference/README.md says from where).
REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def basic_auth(username: str, password: str) -> dict[str, str]:
    """An Authorization header (aiohttp's BasicAuth is deprecated, and warnings are errors)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def legacy_message(sid: str, account_sid: str = DEFAULT_ACCOUNT_SID) -> str:
    return f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"


async def get_json(http: aiohttp.ClientSession, url: str, params: dict[str, str] | None = None) -> tuple[int, dict]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json()


async def legacy_scan(
    http: aiohttp.ClientSession, params: dict[str, str], on_page: Callable[[dict], object] | None = None
) -> list[dict]:
    """Every record of a legacy list, following next_page_uri verbatim."""
    status, page = await get_json(http, LEGACY_LIST, params)
    assert status == 200, page
    records = list(page["messages"])
    while page["next_page_uri"]:
        if on_page is not None:
            on_page(page)
        status, page = await get_json(http, page["next_page_uri"])
        assert status == 200, page
        records.extend(page["messages"])
    return records


async def comms_scan(
    http: aiohttp.ClientSession,
    path: str,
    params: dict[str, str],
    on_page: Callable[[dict], object] | None = None,
) -> list[dict]:
    """Every record of a v1 list (messages or operations), passing pagination.next back as pageToken."""
    items = "operations" if path.endswith("Operations") else "messages"
    status, page = await get_json(http, path, params)
    assert status == 200, page
    records = list(page[items])
    while page["pagination"]["next"]:
        if on_page is not None:
            on_page(page)
        status, page = await get_json(http, path, {**params, "pageToken": page["pagination"]["next"]})
        assert status == 200, page
        records.extend(page[items])
    return records
