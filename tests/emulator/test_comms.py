"""The v1 Comms API: message and operation lists, fetches, filters, tokens, retention, errors."""

from __future__ import annotations

import base64
import datetime as dt
from collections import Counter

import orjson
import pytest

from sync.emulator import Emulator
from sync.emulator.formats import parse_rfc3339, rfc3339

from .helpers import NOW, comms_scan, get_json

MESSAGES = "/v1/Messages"
OPERATIONS = "/v1/Messages/Operations"


def created(record: dict) -> int:
    return parse_rfc3339(record["createdAt"])


@pytest.mark.parametrize("path", [MESSAGES, OPERATIONS])
async def test_following_pagination_next_returns_every_record_once_newest_first(http, emu: Emulator, path):
    """Paging by pagination.next yields the whole list once, createdAt descending, ties by id."""
    records = await comms_scan(http, path, {"pageSize": "23"})
    expected = emu.comms_payloads() if path == MESSAGES else emu.operation_payloads()
    assert [r["id"] for r in records] == [r["id"] for r in expected]
    assert len({r["id"] for r in records}) == len(records) > 23
    assert [(-created(r), r["id"]) for r in records] == sorted((-created(r), r["id"]) for r in records)


async def test_the_self_token_fetches_the_same_page_again(http):
    """pagination.self replays the page it came with; the first page's self is a token too."""
    status, first = await get_json(http, MESSAGES, {"pageSize": "5"})
    status, second = await get_json(http, MESSAGES, {"pageSize": "5", "pageToken": first["pagination"]["next"]})
    for page in (first, second):
        status, again = await get_json(http, MESSAGES, {"pageToken": page["pagination"]["self"]})
        assert status == 200 and again == page


async def test_default_page_size_is_50_and_a_token_keeps_its_page_size(http):
    """No pageSize means 50; a token carries the size it was issued with."""
    _, first = await get_json(http, MESSAGES)
    assert len(first["messages"]) == 50
    _, small = await get_json(http, MESSAGES, {"pageSize": "4"})
    _, next_page = await get_json(http, MESSAGES, {"pageToken": small["pagination"]["next"]})
    assert len(next_page["messages"]) == 4


async def test_messages_inserted_while_paging_cause_no_duplicates_or_skips(http, emu: Emulator):
    """Keyset tokens: inserts before, at and after the cursor never disturb pre-existing records."""
    before = emu.comms_payloads()

    def meddle(page: dict) -> None:
        last = page["messages"][-1]
        emu.add_comms_message()  # created now: newest of all
        emu.add_comms_message(createdAt=last["createdAt"])  # ties with the cursor
        emu.add_comms_message(createdAt=before[-1]["createdAt"])  # ties with the oldest

    records = await comms_scan(http, MESSAGES, {"pageSize": "30"}, on_page=meddle)
    seen = Counter(r["id"] for r in records)
    assert max(seen.values()) == 1
    assert {r["id"] for r in before} <= set(seen)


async def test_start_and_end_date_select_created_at_in_a_half_open_window(http, emu: Emulator):
    """startDate is inclusive, endDate exclusive: adjacent windows partition the list."""
    everything = emu.comms_payloads()
    middle = everything[len(everything) // 2]
    cut = middle["createdAt"]
    start = rfc3339(created(everything[-1]) - 1000)
    end = rfc3339(created(everything[0]) + 1000)
    newer = await comms_scan(http, MESSAGES, {"startDate": cut, "endDate": end, "pageSize": "40"})
    older = await comms_scan(http, MESSAGES, {"startDate": start, "endDate": cut, "pageSize": "40"})
    assert [r["id"] for r in newer + older] == [r["id"] for r in everything]
    assert middle["id"] in {r["id"] for r in newer}
    assert all(created(r) >= created(middle) for r in newer) and all(created(r) < created(middle) for r in older)
    ops = await comms_scan(http, OPERATIONS, {"startDate": cut})
    assert {o["id"] for o in ops} == {o["id"] for o in emu.operation_payloads() if created(o) >= created(middle)}


@pytest.mark.parametrize(
    "params",
    [
        {"pageSize": "0"},
        {"pageSize": "1001"},
        {"pageSize": "fifty"},
        {"startDate": "2025-06-18"},
        {"startDate": "yesterday"},
        {"startDate": "2025-06-18T12:00:00Z", "endDate": "2025-06-18T12:00:00Z"},
        {"startDate": "2025-06-18T12:00:00Z", "endDate": "2025-06-17T12:00:00Z"},
        {"status": "sent"},
        {"channel": "EMAIL"},
        {"operationId": "op_1"},
        {"pageToken": "not-a-token"},
        {"pageToken": base64.urlsafe_b64encode(b'{"k":null,"f":{},"n":5,"s":"0000000000000000"}').decode()},
    ],
)
async def test_bad_parameters_are_400_with_the_twilio_errors_body(http, params):
    """Out-of-range pageSize, non-RFC 3339 or inverted dates, unknown enums and forged tokens are 400s."""
    for path in (MESSAGES, OPERATIONS):
        if path == OPERATIONS and set(params) & {"channel", "operationId"}:
            continue
        status, body = await get_json(http, path, params)
        assert status == 400, (path, params)
        (error,) = body["errors"]
        assert set(error) == {"code", "message", "info_url", "context"}
        assert error["info_url"] == f"https://www.twilio.com/docs/api/errors/{error['code']}"


async def test_a_token_cannot_change_the_query_or_cross_routes(http):
    """A token is bound to its filters and its list: changed filters or the other list are 400s."""
    status, page = await get_json(http, MESSAGES, {"status": "DELIVERED", "pageSize": "3"})
    token = page["pagination"]["next"]
    status, _ = await get_json(http, MESSAGES, {"status": "SENT", "pageToken": token})
    assert status == 400
    status, _ = await get_json(http, OPERATIONS, {"pageToken": token})
    assert status == 400
    status, same = await get_json(http, MESSAGES, {"status": "DELIVERED", "pageToken": token})
    status, bare = await get_json(http, MESSAGES, {"pageToken": token})
    assert same == bare and {m["status"] for m in same["messages"]} == {"DELIVERED"}


async def test_status_channel_and_operation_filters(http, emu: Emulator):
    """status, channel and operationId each narrow the list to exactly the matching messages."""
    everything = emu.comms_payloads()
    for status in ("DELIVERED", "INBOUND", "GROUP", "SCHEDULED"):
        got = await comms_scan(http, MESSAGES, {"status": status, "pageSize": "25"})
        assert [m["id"] for m in got] == [m["id"] for m in everything if m["status"] == status] != []
    whatsapp = await comms_scan(http, MESSAGES, {"channel": "WHATSAPP"})
    assert whatsapp and all("WHATSAPP" in (m["from"]["channel"], m["to"][0]["channel"]) for m in whatsapp)
    op = max(emu.operation_payloads(), key=lambda o: o["stats"]["total"])
    members = await comms_scan(http, MESSAGES, {"operationId": op["id"], "pageSize": "7"})
    assert len(members) == op["stats"]["total"] > 1
    assert all(m["related"][0]["id"] == op["id"] for m in members)
    assert [created(m) for m in members] == sorted((created(m) for m in members), reverse=True)
    completed = await comms_scan(http, OPERATIONS, {"status": "COMPLETED"})
    assert completed and {o["status"] for o in completed} == {"COMPLETED"}


async def test_fetch_adds_content_and_attempts(http, emu: Emulator):
    """GET /v1/Messages/{id} is the list item plus content and attempts matching its status."""
    for listed in emu.comms_payloads()[:60]:
        status, body = await get_json(http, f"{MESSAGES}/{listed['id']}")
        assert status == 200
        assert {k: v for k, v in body.items() if k not in ("content", "attempts")} == listed
        assert body["content"]
        failing = listed["status"] in ("FAILED", "UNDELIVERED")
        if listed["status"] in ("SCHEDULED", "QUEUED", "CANCELED", "INBOUND"):
            assert body["attempts"] == []
        else:
            last = body["attempts"][-1]
            assert last["status"] == listed["status"] and (last["error"] is not None) == failing
            assert set(last) == {"from", "to", "status", "attemptedAt", "infoUrl", "error"}


async def test_operation_fetch_and_stats_match_its_messages(http, emu: Emulator):
    """An Operation's stats count its messages by status, and recipients and attempts add up."""
    messages = emu.comms_payloads()
    for op in emu.operation_payloads():
        status, body = await get_json(http, f"{OPERATIONS}/{op['id']}")
        assert status == 200 and body == op
        mine = [m for m in messages if m["related"] and m["related"][0]["id"] == op["id"]]
        stats = op["stats"]
        assert stats["total"] == len(mine)
        assert stats["recipients"] == sum(len(m["to"]) for m in mine) + stats["unaddressable"]
        by_status = Counter(m["status"] for m in mine)
        assert stats["delivered"] == by_status["DELIVERED"] and stats["failed"] == by_status["FAILED"]
        assert stats["sent"] == by_status["SENT"] + by_status["GROUP"]
        counters = ("queued", "sent", "scheduled", "delivered", "read", "undelivered", "failed", "canceled")
        assert sum(stats[c] for c in counters) == stats["total"]


async def test_operation_stats_follow_message_updates(emu: Emulator):
    """Changing a message's status through Python updates its Operation's stats and updatedAt."""
    op = next(o for o in emu.operation_payloads() if o["stats"]["delivered"])
    member = next(m for m in emu.comms_payloads() if m["related"] and m["related"][0]["id"] == op["id"] and m["status"] == "DELIVERED")
    emu.update_comms_message(member["id"], status="READ")
    after = next(o for o in emu.operation_payloads() if o["id"] == op["id"])
    assert after["stats"]["delivered"] == op["stats"]["delivered"] - 1
    assert after["stats"]["read"] == op["stats"]["read"] + 1
    assert created({"createdAt": after["updatedAt"]}) > created({"createdAt": op["updatedAt"]})


async def test_unknown_and_expired_ids_are_404(http, emu: Emulator):
    """Unknown ids, and records older than 7 days, are 404 with the TwilioErrors body."""
    old = emu.add_comms_message(createdAt=rfc3339(int((NOW - dt.timedelta(days=8)).timestamp()) * 1000))
    assert old["id"] not in {m["id"] for m in emu.comms_payloads()}
    for path in (f"{MESSAGES}/comms_message_01h2xcejqtf2nbrexx3vqjhp41", f"{MESSAGES}/{old['id']}",
                 f"{OPERATIONS}/comms_operation_01h2xcejqtf2nbrexx3vqjhp41", f"{OPERATIONS}/{old['related'][0]['id']}"):  # fmt: skip
        status, body = await get_json(http, path)
        assert status == 404
        assert body["errors"][0]["code"] == 20404


async def test_retention_hides_records_older_than_7_days(http, emu: Emulator):
    """The generated history holds records past 7 days; no list shows them, even when asked by date."""
    long_ago = rfc3339(int((NOW - dt.timedelta(days=30)).timestamp()) * 1000)
    for path in (MESSAGES, OPERATIONS):
        records = await comms_scan(http, path, {"startDate": long_ago, "pageSize": "1000"})
        assert records and all(created(r) >= int((NOW - dt.timedelta(days=7)).timestamp()) * 1000 for r in records)
    book = next(iter(emu._books.values()))
    hidden = [row for row in book.comms.values() if row.created < int((NOW - dt.timedelta(days=7)).timestamp()) * 1000]
    assert hidden and not {row.key[1] for row in hidden} & {m["id"] for m in emu.comms_payloads()}


async def test_injected_bad_values_are_served_verbatim(http, emu: Emulator):
    """Overrides may put anything in a record (bad dates, NUL, unknown status and fields): the API serves it."""
    weird = emu.add_comms_message(status="EXPLODED", updatedAt="yesterday-ish", tags={"k": "nul\x00here"}, surprise=[1, {"a": None}])
    status, page = await get_json(http, MESSAGES, {"pageSize": "5"})
    listed = next(m for m in page["messages"] if m["id"] == weird["id"])
    assert listed["status"] == "EXPLODED" and listed["surprise"] == [1, {"a": None}]
    assert listed["tags"] == {"k": "nul\x00here"} and listed["updatedAt"] == "yesterday-ish"
    async with http.get(f"{MESSAGES}/{weird['id']}") as response:
        assert b"\\u0000" in await response.read()
    bad_date = emu.add_comms_message(createdAt="not a date")
    status, body = await get_json(http, f"{MESSAGES}/{bad_date['id']}")
    assert status == 200 and body["createdAt"] == "not a date"


async def test_tokens_are_urlsafe_base64_json(http):
    """Tokens are opaque to clients but plain urlsafe base64 of a small JSON cursor."""
    _, page = await get_json(http, MESSAGES, {"pageSize": "2"})
    token = page["pagination"]["next"]
    cursor = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert cursor["k"][1] == page["messages"][-1]["id"]
