"""The list-request log: budgets per list and per account, and which legacy requests were DateSent-filtered."""

from __future__ import annotations

import datetime as dt

import aiohttp

from sync.emulator import Account, Emulator, ListRequest, serve
from sync.emulator.formats import parse_rfc2822

from .helpers import NOW, basic_auth, get_json

A = Account("AC" + "a" * 32, "token-a")
B = Account("AC" + "b" * 32, "token-b")


def legacy_list(account: Account) -> str:
    return f"/2010-04-01/Accounts/{account.sid}/Messages.json"


async def scan(http: aiohttp.ClientSession, account: Account, params: dict[str, str]) -> list[dict]:
    """Every record of `account`'s legacy list, following next_page_uri verbatim."""
    status, page = await get_json(http, legacy_list(account), params)
    records = list(page["messages"])
    while page["next_page_uri"]:
        status, page = await get_json(http, page["next_page_uri"])
        records.extend(page["messages"])
    assert status == 200
    return records


async def test_list_requests_are_counted_per_list_and_account_and_say_if_date_filtered():
    """A scan that switches to a DateSent query shows in the log; counts split by list, account and filter."""
    emu = Emulator(seed=4, comms_messages=120, legacy_messages=250, now=NOW, accounts=[A, B])
    async with serve(emu) as url, aiohttp.ClientSession(url, headers=basic_auth(A.sid, A.auth_token)) as a:
        assert len(await scan(a, A, {"PageSize": "100"})) == 250  # 3 pages
        day = "2025-06-13"
        since = int(dt.datetime(2025, 6, 13, tzinfo=dt.UTC).timestamp()) * 1000
        sent = sum(1 for m in emu.legacy_payloads(A.sid) if (parse_rfc2822(m["date_sent"]) or 0) >= since)
        assert len(await scan(a, A, {"DateSent>": day, "PageSize": str(-(-sent // 2))})) == sent  # 2 pages
        status, _ = await get_json(a, "/v1/Messages", {"pageSize": "10"})
        assert status == 200
        async with aiohttp.ClientSession(url, headers=basic_auth(B.sid, B.auth_token)) as b:
            await get_json(b, legacy_list(B), {"DateSent": day})
            await get_json(b, f"/2010-04-01/Accounts/{B.sid}/Messages/SM{'0' * 32}.json")  # not a list
        async with aiohttp.ClientSession(url, headers=basic_auth(A.sid, "wrong")) as stranger:
            status, _ = await get_json(stranger, legacy_list(A))
            assert status == 401  # unauthenticated: no account to count it against
        emu.faults.command({"inject": "503", "times": 1})
        status, _ = await get_json(a, legacy_list(A), {"PageSize": "100"})
        assert status == 503  # answered with a fault, but asked all the same

    assert emu.list_requests("legacy_list", A.sid) == 3 + 2 + 1
    assert emu.list_requests("legacy_list", B.sid) == 1
    assert emu.list_requests("legacy_list") == 7
    assert emu.list_requests("comms_list", A.sid) == 1 and emu.list_requests("comms_list", B.sid) == 0
    assert emu.list_requests("legacy_list", A.sid, date_filtered=True) == 2
    assert emu.list_requests("legacy_list", A.sid, date_filtered=False) == 4
    legacy_a = [r for r in emu.list_log if r.route == "legacy_list" and r.account_sid == A.sid]
    assert [r.date_filtered for r in legacy_a] == [False, False, False, True, True, False]
    assert [r.page_token for r in legacy_a] == [False, True, True, False, True, False]
    assert legacy_a[3] == ListRequest(A.sid, "legacy_list", (("DateSent>", day),), False,
                                      f"/2010-04-01/Accounts/{A.sid}/Messages.json?DateSent%3E={day}&PageSize=18")
