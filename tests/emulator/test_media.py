"""The Media subresource of legacy messages: list, fetch, delete, paging, filters, schema, share."""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest

from sync.emulator import DEFAULT_ACCOUNT_SID, Account, Emulator, serve
from sync.emulator.formats import parse_rfc2822

from .helpers import NOW, basic_auth, get_json, legacy_message
from .test_schemas import oas_validator, v2010  # noqa: F401 - the fixture


def media_list(sid: str, account_sid: str = DEFAULT_ACCOUNT_SID) -> str:
    return legacy_message(sid, account_sid).removesuffix(".json") + "/Media.json"


def with_media(emu: Emulator) -> list[dict]:
    return [m for m in emu.legacy_payloads() if m["num_media"] != "0"]


async def test_a_message_lists_as_many_items_as_its_num_media_and_they_validate(http, emu: Emulator, v2010):  # noqa: F811
    """Each message with media lists num_media items (ListMediaResponse, items of the message and account)."""
    path = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json"
    validator = oas_validator(v2010, "paths", path, "get", "responses", "200", "content", "application/json", "schema")
    messages = with_media(emu)
    assert messages
    for message in messages[:10]:
        status, page = await get_json(http, media_list(message["sid"]))
        assert status == 200
        validator.validate(page)
        assert len(page["media_list"]) == int(message["num_media"])
        for item in page["media_list"]:
            assert item["parent_sid"] == message["sid"] and item["account_sid"] == DEFAULT_ACCOUNT_SID
            assert item["date_created"] == message["date_created"]
            assert item["uri"] == media_list(message["sid"]).removesuffix(".json") + f"/{item['sid']}.json"
        assert message["subresource_uris"]["media"] == media_list(message["sid"])


async def test_a_plain_sms_lists_no_media(http, emu: Emulator):
    """A message with num_media 0 has an empty list."""
    plain = next(m for m in emu.legacy_payloads() if m["num_media"] == "0")
    status, page = await get_json(http, media_list(plain["sid"]))
    assert status == 200 and page["media_list"] == [] and page["next_page_uri"] is None


async def test_the_list_pages_with_tokens_until_every_item_is_read(http, emu: Emulator):
    """PageSize=1 pages through every item once, by next_page_uri."""
    message = max(with_media(emu), key=lambda m: int(m["num_media"]))
    seen, url, params = [], media_list(message["sid"]), {"PageSize": "1"}
    while url:
        status, page = await get_json(http, url, params)
        assert status == 200
        seen += [item["sid"] for item in page["media_list"]]
        url, params = page["next_page_uri"], None
    assert len(seen) == len(set(seen)) == int(message["num_media"])


async def test_previous_page_uri_leads_back_to_the_page_before(http, emu: Emulator):
    """The second page's previous_page_uri serves the first page again."""
    message = max(with_media(emu), key=lambda m: int(m["num_media"]))
    assert int(message["num_media"]) >= 2
    _, first = await get_json(http, media_list(message["sid"]), {"PageSize": "1"})
    _, second = await get_json(http, first["next_page_uri"])
    assert first["previous_page_uri"] is None and second["page"] == 1
    _, back = await get_json(http, second["previous_page_uri"])
    assert back["media_list"] == first["media_list"]


async def test_date_created_filters_select_whole_days(http, emu: Emulator):
    """DateCreated on the message's day lists its items; the day after lists none; a bad date is a 400."""
    message = with_media(emu)[0]
    created = dt.datetime.fromtimestamp(parse_rfc2822(message["date_created"]) / 1000, dt.UTC).date()
    _, same = await get_json(http, media_list(message["sid"]), {"DateCreated": created.isoformat()})
    _, after = await get_json(http, media_list(message["sid"]), {"DateCreated>": (created + dt.timedelta(1)).isoformat()})
    status, bad = await get_json(http, media_list(message["sid"]), {"DateCreated": "yesterday"})
    assert len(same["media_list"]) == int(message["num_media"]) and after["media_list"] == []
    assert status == 400 and bad["code"] == 20001


async def test_fetch_and_delete_an_item(http, emu: Emulator):
    """An item fetches as listed; after DELETE (204) the list and the fetch no longer serve it, num_media stays."""
    message = with_media(emu)[0]
    _, page = await get_json(http, media_list(message["sid"]))
    item = page["media_list"][0]
    status, fetched = await get_json(http, item["uri"])
    assert status == 200 and fetched == item
    async with http.delete(item["uri"]) as response:
        assert response.status == 204
    _, after = await get_json(http, media_list(message["sid"]))
    assert item["sid"] not in [m["sid"] for m in after["media_list"]]
    assert len(after["media_list"]) == int(message["num_media"]) - 1
    status, gone = await get_json(http, item["uri"])
    assert status == 404 and gone["code"] == 20404
    assert emu.legacy_payloads()[emu.legacy_payloads().index(message)]["num_media"] == message["num_media"]


async def test_unknown_or_deleted_message_and_another_account_are_404(http, emu: Emulator):
    """No list for a message that does not exist, was deleted, or belongs to another account."""
    message = with_media(emu)[0]
    status, body = await get_json(http, media_list("MM" + "0" * 32))
    assert status == 404 and body["status"] == 404 and body["code"] == 20404
    status, _ = await get_json(http, media_list(message["sid"], "AC" + "1" * 32))
    assert status == 404
    emu.delete_legacy_message(message["sid"])
    status, _ = await get_json(http, media_list(message["sid"]))
    assert status == 404


async def test_another_accounts_credentials_do_not_read_the_media():
    """A second account's credentials get a 404 for the first account's media list."""
    other = Account("AC" + "2" * 32, "token2")
    emu = Emulator(seed=3, legacy_messages=200, comms_messages=0, now=NOW,
                   accounts=[Account(DEFAULT_ACCOUNT_SID, "token1"), other])
    message = with_media(emu)[0]
    async with serve(emu) as url, aiohttp.ClientSession(url, headers=basic_auth(other.sid, "token2")) as http:
        status, _ = await get_json(http, media_list(message["sid"]))
    assert status == 404


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5])
def test_the_mms_share_sets_how_many_messages_carry_media(share):
    """About `mms_share` of the legacy messages carry 1 to 10 media items; the same seed gives the same media."""
    emu = Emulator(seed=1, legacy_messages=4000, comms_messages=0, now=NOW, mms_share=share)
    payloads = emu.legacy_payloads()
    counts = [int(m["num_media"]) for m in payloads]
    shown = sum(1 for c in counts if c) / len(counts)
    assert abs(shown - share) < 0.06 + share * 0.3
    assert all(0 <= c <= 10 for c in counts)
    again = Emulator(seed=1, legacy_messages=4000, comms_messages=0, now=NOW, mms_share=share)
    message = next((m for m in payloads if m["num_media"] != "0"), None)
    if message is not None:
        assert emu.media.items(message) == again.media.items(message)
