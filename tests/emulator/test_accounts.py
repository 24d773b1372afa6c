"""The emulator's Accounts resource: the main account's subaccounts, listed and fetched as Twilio
documents them, each with its own data set, and the credentials that may read each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime

import aiohttp
import pytest

from sync.emulator import (DEFAULT_ACCOUNT_SID, DEFAULT_API_KEY_SECRET, DEFAULT_API_KEY_SID, DEFAULT_AUTH_TOKEN,
                           Emulator, serve)

from .helpers import NOW, basic_auth, get_json

MAIN = basic_auth(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
MAIN_KEY = basic_auth(DEFAULT_API_KEY_SID, DEFAULT_API_KEY_SECRET)
ACCOUNT_FIELDS = {"sid", "friendly_name", "status", "auth_token", "owner_account_sid", "date_created",
                  "date_updated", "type", "uri", "subresource_uris"}


@pytest.fixture
def emu() -> Emulator:
    return Emulator(seed=7, comms_messages=60, legacy_messages=60, now=NOW, subaccounts=5, subaccount_messages=20)


@pytest.fixture
async def base_url(emu: Emulator) -> AsyncIterator[str]:
    async with serve(emu) as url:
        yield url


async def _get(base_url: str, path: str, headers: dict[str, str], params: dict[str, str] | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession(base_url, headers=headers) as http:
        return await get_json(http, path, params)


async def _all_accounts(base_url: str, params: dict[str, str]) -> list[dict]:
    status, page = await _get(base_url, "/2010-04-01/Accounts.json", MAIN, params)
    assert status == 200, page
    found = list(page["accounts"])
    while page["next_page_uri"]:
        status, page = await _get(base_url, page["next_page_uri"], MAIN)
        assert status == 200, page
        found.extend(page["accounts"])
    return found


async def test_the_list_pages_through_the_main_account_and_every_subaccount(emu: Emulator, base_url: str) -> None:
    """Accounts.json lists the main account and each subaccount once, page by page, with every documented field."""
    found = await _all_accounts(base_url, {"PageSize": "2"})
    assert [a["sid"] for a in found] == [DEFAULT_ACCOUNT_SID] + [p.sid for p in emu.directory.subaccounts()]
    assert all(set(a) == ACCOUNT_FIELDS for a in found)
    sub = found[1]
    assert sub["owner_account_sid"] == DEFAULT_ACCOUNT_SID and sub["status"] == "active"
    assert sub["auth_token"] == emu.accounts[sub["sid"]].auth_token
    assert sub["uri"] == f"/2010-04-01/Accounts/{sub['sid']}.json"
    assert parsedate_to_datetime(sub["date_created"]).tzinfo is not None  # RFC 2822, like the other 2010 dates


async def test_the_list_filters_by_status_and_friendly_name(emu: Emulator, base_url: str) -> None:
    """Status= and FriendlyName= narrow the list, across pages."""
    subs = emu.directory.subaccounts()
    emu.directory.set_status(subs[1].sid, "closed")
    emu.directory.set_status(subs[3].sid, "suspended")
    closed = await _all_accounts(base_url, {"Status": "closed", "PageSize": "1"})
    assert [a["sid"] for a in closed] == [subs[1].sid]
    named = await _all_accounts(base_url, {"FriendlyName": subs[2].friendly_name})
    assert [a["sid"] for a in named] == [subs[2].sid]
    status, body = await _get(base_url, "/2010-04-01/Accounts.json", MAIN, {"Status": "gone"})
    assert status == 400 and body["code"] == 20001


async def test_each_subaccount_has_its_own_deterministic_data_set(emu: Emulator) -> None:
    """A subaccount's SID, token and messages come from the seed: the same emulator serves the same accounts."""
    again = Emulator(seed=7, comms_messages=60, legacy_messages=60, now=NOW, subaccounts=5, subaccount_messages=20)
    sid = emu.directory.subaccounts()[0].sid
    assert again.directory.subaccounts()[0].sid == sid
    assert again.accounts[sid].auth_token == emu.accounts[sid].auth_token
    assert again.legacy_payloads(sid) == emu.legacy_payloads(sid)
    assert len(emu.legacy_payloads(sid)) == 20 and emu.legacy_payloads(sid) != emu.legacy_payloads(DEFAULT_ACCOUNT_SID)
    assert {m["account_sid"] for m in emu.legacy_payloads(sid)} == {sid}


async def test_main_credentials_read_a_subaccounts_legacy_messages_but_its_api_key_does_not(emu: Emulator,
                                                                                              base_url: str) -> None:
    """The main SID+token read a subaccount's Messages.json; the main API key gets 401 20003."""
    sid = emu.directory.subaccounts()[0].sid
    path = f"/2010-04-01/Accounts/{sid}/Messages.json"
    status, page = await _get(base_url, path, MAIN, {"PageSize": "1000"})
    assert status == 200 and {m["sid"] for m in page["messages"]} == {m["sid"] for m in emu.legacy_payloads(sid)}
    status, body = await _get(base_url, path, MAIN_KEY)
    assert (status, body["code"]) == (401, 20003)


async def test_v1_lists_are_read_with_the_subaccounts_own_credentials(emu: Emulator, base_url: str) -> None:
    """v1 has no account in its path: the subaccount's own SID and token choose its messages."""
    sub = emu.directory.subaccounts()[0].sid
    status, page = await _get(base_url, "/v1/Messages", basic_auth(sub, emu.accounts[sub].auth_token),
                              {"pageSize": "1000"})
    assert status == 200
    assert {m["id"] for m in page["messages"]} == {m["id"] for m in emu.comms_payloads(sub)}


async def test_listing_needs_the_main_accounts_credentials(emu: Emulator, base_url: str) -> None:
    """The main API key lists every account; a subaccount's credentials list only itself."""
    status, page = await _get(base_url, "/2010-04-01/Accounts.json", MAIN_KEY)
    assert status == 200 and len(page["accounts"]) == 6
    sub = emu.directory.subaccounts()[0].sid
    status, page = await _get(base_url, "/2010-04-01/Accounts.json", basic_auth(sub, emu.accounts[sub].auth_token))
    assert status == 200 and [a["sid"] for a in page["accounts"]] == [sub]


async def test_a_closed_subaccount_refuses_its_resources_and_a_suspended_one_stays_readable(emu: Emulator,
                                                                                              base_url: str) -> None:
    """Closed: 401 20003 on its messages, with the main's or its own credentials; its record still says closed."""
    closed, suspended = (p.sid for p in emu.directory.subaccounts()[:2])
    emu.directory.set_status(closed, "closed")
    emu.directory.set_status(suspended, "suspended")
    status, body = await _get(base_url, f"/2010-04-01/Accounts/{closed}/Messages.json", MAIN)
    assert (status, body["code"]) == (401, 20003)
    status, body = await _get(base_url, "/v1/Messages", basic_auth(closed, emu.accounts[closed].auth_token))
    assert status == 401 and body["errors"][0]["code"] == 20003
    status, record = await _get(base_url, f"/2010-04-01/Accounts/{closed}.json", MAIN)
    assert status == 200 and record["status"] == "closed"
    status, _ = await _get(base_url, f"/2010-04-01/Accounts/{suspended}/Messages.json", MAIN)
    assert status == 200


async def test_another_main_accounts_subaccount_is_not_found(base_url: str, emu: Emulator) -> None:
    """A subaccount's path under credentials that do not own it is a 404, as for any other account."""
    other = Emulator(seed=8, comms_messages=0, legacy_messages=0, subaccounts=1).directory.subaccounts()[0].sid
    status, body = await _get(base_url, f"/2010-04-01/Accounts/{other}/Messages.json", MAIN)
    assert (status, body["code"]) == (404, 20404)


async def test_subaccounts_are_created_and_closed_while_it_serves(emu: Emulator, base_url: str) -> None:
    """Twilio's own POSTs and the control route create and close subaccounts; the list shows them at once."""
    async with aiohttp.ClientSession(base_url, headers=MAIN) as http:
        async with http.post("/2010-04-01/Accounts.json", data={"FriendlyName": "Acme"}) as resp:
            assert resp.status == 201
            created = await resp.json()
        async with http.post(f"/2010-04-01/Accounts/{created['sid']}.json", data={"Status": "closed"}) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "closed"
    async with aiohttp.ClientSession(base_url) as http:
        async with http.post("/_emulator/accounts", json={"friendly_name": "Beta", "messages": 3}) as resp:
            beta = await resp.json()
    listed = {a["sid"]: a for a in await _all_accounts(base_url, {})}
    assert listed[created["sid"]]["status"] == "closed" and listed[created["sid"]]["friendly_name"] == "Acme"
    assert listed[beta["sid"]]["status"] == "active" and len(emu.legacy_payloads(beta["sid"])) == 3
