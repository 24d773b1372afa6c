"""The legacy Messages.json list: paging, keyset stability, DateSent filters, envelope, errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections import Counter

import pytest

from sync.emulator import Emulator
from sync.emulator.formats import parse_rfc2822, rfc2822

from .helpers import LEGACY_LIST, NOW, get_json, legacy_message, legacy_scan


def sort_key(message: dict) -> tuple[int, int]:
    """The documented order (date_sent desc), nulls first as the emulator chooses."""
    sent = parse_rfc2822(message["date_sent"])
    return (0, 0) if sent is None else (1, -sent)


async def test_following_next_page_uri_returns_every_record_once_in_date_sent_desc_order(http, emu: Emulator):
    """Paging by next_page_uri verbatim yields the whole list exactly once, newest date_sent first."""
    records = await legacy_scan(http, {"PageSize": "37"})
    sids = [m["sid"] for m in records]
    assert sids == [m["sid"] for m in emu.legacy_payloads()]
    assert len(sids) == len(set(sids)) == 400
    assert [sort_key(m) for m in records] == sorted(sort_key(m) for m in records)


async def test_page_envelope_is_twilios(http):
    """Envelope keys, start/end, page numbering and the URIs match Twilio's examples."""
    status, first = await get_json(http, LEGACY_LIST, {"PageSize": "5"})
    assert status == 200
    assert list(first) == [
        "first_page_uri", "end", "previous_page_uri", "messages", "uri", "page_size", "start", "next_page_uri", "page",
    ]  # fmt: skip
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 5, 0, 4)
    assert first["uri"] == first["first_page_uri"] == f"{LEGACY_LIST}?PageSize=5&Page=0"
    assert first["previous_page_uri"] is None
    last_sid = first["messages"][-1]["sid"]
    assert first["next_page_uri"] == f"{LEGACY_LIST}?PageSize=5&Page=1&PageToken=PA{last_sid}"

    status, second = await get_json(http, first["next_page_uri"])
    assert (second["page"], second["start"], second["end"]) == (1, 5, 9)
    assert second["uri"] == first["next_page_uri"]
    assert second["previous_page_uri"] == f"{LEGACY_LIST}?PageSize=5&Page=0&PageToken=PB{second['messages'][0]['sid']}"
    status, back = await get_json(http, second["previous_page_uri"])
    assert [m["sid"] for m in back["messages"]] == [m["sid"] for m in first["messages"]]


async def test_filters_are_echoed_percent_encoded_in_page_uris(http):
    """To/From/DateSent> are echoed like Twilio's fixture: %2B for +, DateSent%3E=, empty page start 0 end 0."""
    params = {"To": "+123456789", "From": "+987654321", "DateSent>": "2008-01-02", "PageSize": "2"}
    status, page = await get_json(http, LEGACY_LIST, params)
    assert status == 200
    expected = f"{LEGACY_LIST}?To=%2B123456789&From=%2B987654321&DateSent%3E=2008-01-02&PageSize=2&Page=0"
    assert page["uri"] == page["first_page_uri"] == expected
    assert (page["messages"], page["start"], page["end"], page["next_page_uri"]) == ([], 0, 0, None)


async def test_next_page_uri_keeps_the_filters(http, emu: Emulator):
    """A filtered scan stays filtered on every page, and is complete."""
    to = next(m["to"] for m in emu.legacy_payloads() if m["to"] and m["to"].startswith("+1415"))
    pages: list[dict] = []
    records = await legacy_scan(http, {"To": to, "PageSize": "3"}, on_page=pages.append)
    assert all("To=%2B1415" in p["next_page_uri"] for p in pages)
    assert {m["sid"] for m in records} == {m["sid"] for m in emu.legacy_payloads() if m["to"] == to}
    assert len(records) > 3


async def test_records_inserted_moved_and_deleted_while_paging_cause_no_duplicates_or_skips(http, emu: Emulator):
    """Keyset paging: inserts and deletes mid-scan never make a pre-existing record repeat or go missing.

    Only a record that itself moved (the cursor record, given a later date_sent) may be seen
    twice, with its new values: that is the list changing, not the paging failing.
    """
    before = emu.legacy_payloads()
    deleted: set[str] = set()
    moved: set[str] = set()
    victims = iter(reversed(before))  # the oldest ones, not yet reached by the scan
    oldest_sent = [m["date_sent"] for m in before if m["date_sent"]][-1]
    later = rfc2822(int(NOW.timestamp()) * 1000 + 7_200_000)

    def meddle(page: dict) -> None:
        last = page["messages"][-1]
        emu.add_legacy_message(date_sent=later)  # newer than anything: lands before the cursor
        emu.add_legacy_message(date_sent=None, status="queued")  # null date_sent sorts first
        emu.add_legacy_message(date_sent=oldest_sent)  # ties with the oldest record
        emu.add_legacy_message(date_sent=last["date_sent"])  # ties with the cursor record
        victim = next(victims)["sid"]
        emu.delete_legacy_message(victim)
        deleted.add(victim)
        if page["page"] % 3 == 1:  # the cursor record itself moves...
            emu.update_legacy_message(last["sid"], date_sent=later)
            moved.add(last["sid"])
        elif page["page"] % 3 == 2:  # ... or vanishes
            emu.delete_legacy_message(last["sid"])

    records = await legacy_scan(http, {"PageSize": "20"}, on_page=meddle)
    seen = Counter(m["sid"] for m in records)
    assert {sid for sid, n in seen.items() if n > 1} <= moved
    assert {m["sid"] for m in before} - deleted <= set(seen)
    assert len(deleted) > 10 and moved


async def test_date_sent_filters_are_inclusive_whole_days_and_skip_null_date_sent(http, emu: Emulator):
    """DateSent=, DateSent< and DateSent> compare GMT days, inclusively; null date_sent never matches."""
    emu.add_legacy_message(date_sent=None, status="queued")
    records = emu.legacy_payloads()
    day = parse_rfc2822(records[len(records) // 2]["date_sent"]) // 86_400_000

    def days(m: dict) -> int | None:
        ms = parse_rfc2822(m["date_sent"])
        return None if ms is None else ms // 86_400_000

    iso = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    cases = {
        "DateSent": lambda d: d == day,
        "DateSent<": lambda d: d <= day,
        "DateSent>": lambda d: d >= day,
    }
    for name, wanted in cases.items():
        got = await legacy_scan(http, {name: iso.isoformat(), "PageSize": "50"})
        expected = [m["sid"] for m in records if days(m) is not None and wanted(days(m))]
        assert [m["sid"] for m in got] == expected, name
        assert expected and all(m["date_sent"] is not None for m in got)

    # The twilio SDK sends datetimes as YYYY-MM-DDTHH:MM:SSZ: only the day counts.
    sdk = await legacy_scan(http, {"DateSent": f"{iso.isoformat()}T23:59:59Z"})
    assert [m["sid"] for m in sdk] == [m["sid"] for m in records if days(m) == day]
    both = await legacy_scan(http, {"DateSent>": iso.isoformat(), "DateSent<": iso.isoformat()})
    assert [m["sid"] for m in both] == [m["sid"] for m in sdk]


async def test_records_past_400_days_are_never_listed_or_fetched(http, emu: Emulator):
    """Retention: a message created 401 days ago is neither listed nor fetchable."""
    created = int((NOW - dt.timedelta(days=401)).timestamp()) * 1000
    old = emu.add_legacy_message(date_created=rfc2822(created), date_sent=rfc2822(created + 2000))
    assert old["sid"] not in {m["sid"] for m in emu.legacy_payloads()}
    assert old["sid"] not in {m["sid"] for m in await legacy_scan(http, {"PageSize": "1000"})}
    status, body = await get_json(http, legacy_message(old["sid"]))
    assert status == 404 and body["code"] == 20404


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"PageSize": "1001"}, 20007, "Page size too large. The maximum page size is 1000"),
        ({"Page": "1"}, 20001, "PageToken is required for paging."),
        ({"PageSize": "0"}, 20001, None),
        ({"PageSize": "ten"}, 20001, None),
        ({"PageToken": "garbage"}, 20001, None),
        ({"PageToken": "PASM00000000000000000000000000000000", "Page": "1"}, 20001, None),
        ({"DateSent>": "yesterday"}, 20001, None),
    ],
)
async def test_bad_list_parameters_are_400_with_the_legacy_error_body(http, params, code, message):
    """Out-of-range PageSize, Page without a token, unknown tokens and bad dates are 400s."""
    status, body = await get_json(http, LEGACY_LIST, params)
    assert status == 400
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["code"], body["status"]) == (code, 400)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    if message is not None:
        assert body["message"] == message


async def test_page_size_1000_is_allowed(http):
    """PageSize=1000, the documented maximum, serves the whole 400-record list in one page."""
    status, page = await get_json(http, LEGACY_LIST, {"PageSize": "1000"})
    assert status == 200 and len(page["messages"]) == 400 and page["next_page_uri"] is None


async def test_request_counts_name_each_route(http, emu: Emulator):
    """Every request is counted under its route name."""
    await legacy_scan(http, {"PageSize": "100"})
    await get_json(http, legacy_message(emu.legacy_payloads()[0]["sid"]))
    assert emu.request_counts["legacy_list"] == 4
    assert emu.request_counts["legacy_fetch"] == 1


async def test_inserting_from_another_thread_while_serving_is_safe(http, emu: Emulator):
    """Mutations from a thread interleave with page requests without corrupting the index."""
    stop = threading.Event()

    def writer() -> None:
        for _ in range(300):
            if stop.is_set():
                return
            emu.add_legacy_message(date_sent=None, status="queued")
            emu.add_legacy_message()
            time.sleep(0.0005)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        before = {m["sid"] for m in emu.legacy_payloads()}
        records = await legacy_scan(http, {"PageSize": "25"})
    finally:
        stop.set()
        thread.join()
    assert before - {m["sid"] for m in records} == set()


async def test_pages_can_be_fetched_concurrently(http):
    """Many scans interleaving on one server each get the whole list, in the same order."""
    results = await asyncio.gather(*(legacy_scan(http, {"PageSize": str(size)}) for size in (7, 13, 50, 400)))
    assert len({tuple(m["sid"] for m in r) for r in results}) == 1
