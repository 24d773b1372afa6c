"""The legacy list in each plausible order: complete paging, DateSent filters, records that move."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from sync.emulator import LEGACY_ORDERS, Emulator
from sync.emulator.formats import DAY_MS, parse_rfc2822, rfc2822

from .helpers import NOW, legacy_scan

NOW_MS = int(NOW.timestamp()) * 1000
SENT_ORDERS = ("sent-created", "sent-sid", "sent-nulls-last")


def expected_key(order: str, m: dict) -> tuple:
    """Where a record belongs in `order`, from its own date_sent, date_created and sid."""
    sent, created, sid = parse_rfc2822(m["date_sent"]), parse_rfc2822(m["date_created"]), m["sid"]
    if order == "created":
        return (-created, sid)
    if order == "sent-created":
        return (0, -created, sid) if sent is None else (1, -sent, sid)
    if order == "sent-sid":
        return (0, 0, sid) if sent is None else (1, -sent, sid)
    if order == "sent-nulls-last":
        return (1, -created, sid) if sent is None else (0, -sent, sid)
    raise AssertionError(f"{order} has no order to derive")


def sent_day(m: dict) -> int | None:
    ms = parse_rfc2822(m["date_sent"])
    return None if ms is None else ms // DAY_MS


@pytest.fixture(params=LEGACY_ORDERS)
def emu(request) -> Emulator:
    """300 records over 7 days and 300 more over the 53 days before, in each order."""
    return Emulator(seed=11, comms_messages=10, legacy_messages=300, legacy_days=7, legacy_history=300,
                    legacy_history_days=60, now=NOW, legacy_order=request.param)  # fmt: skip


def add_ties(emu: Emulator) -> None:
    """Records that tie on date_created (never sent) and on date_sent, so ties are ordered too."""
    created = rfc2822(NOW_MS - 2 * DAY_MS)
    for status in ("queued", "scheduled", "failed"):
        emu.add_legacy_message(status=status, date_created=created, date_sent=None)
    for _ in range(3):
        emu.add_legacy_message(date_created=created, date_sent=rfc2822(NOW_MS - 2 * DAY_MS + 3000))


async def test_paging_serves_every_record_once_in_the_order(http, emu: Emulator):
    """Following next_page_uri yields each retained record exactly once, in exactly the chosen order."""
    add_ties(emu)
    order = emu.legacy_order.name
    records = await legacy_scan(http, {"PageSize": "37"})
    sids = [m["sid"] for m in records]
    assert len(sids) == len(set(sids)) == 606
    assert all(parse_rfc2822(m["date_created"]) > NOW_MS - 400 * DAY_MS for m in records)
    assert any(m["date_sent"] is None for m in records)
    assert sids == [m["sid"] for m in emu.legacy_payloads()]
    if order == "shuffled":
        again = await legacy_scan(http, {"PageSize": "1000"})
        assert [m["sid"] for m in again] == sids  # stable between requests
        for other in ("created", "sent-sid"):
            keys = [expected_key(other, m) for m in records]
            assert keys != sorted(keys), f"shuffled is sorted like {other}"
    else:
        keys = [expected_key(order, m) for m in records]
        assert keys == sorted(keys)


@pytest.mark.parametrize(("name", "wanted"), [
    ("DateSent", lambda d, day: d == day),
    ("DateSent<", lambda d, day: d <= day),
    ("DateSent>", lambda d, day: d >= day),
])  # fmt: skip
async def test_date_sent_filters_are_exact_in_every_order(http, emu: Emulator, name, wanted):
    """=, <= and >= DateSent give exactly the records sent on those GMT days, in list order, never a null one."""
    day = NOW_MS // DAY_MS - 3  # inside the 7 recent days: some 40 records
    iso = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
    # Never-sent records created that very day must still not match.
    for status in ("queued", "canceled"):
        emu.add_legacy_message(status=status, date_created=rfc2822(day * DAY_MS + 36_000_000), date_sent=None)
    # One sent that day is gone, another sent later: neither is that day's any more.
    records = await legacy_scan(http, {"PageSize": "1000"})
    that_day = [m["sid"] for m in records if sent_day(m) == day]
    emu.delete_legacy_message(that_day[0])
    emu.update_legacy_message(that_day[1], date_sent=rfc2822(NOW_MS))
    records = await legacy_scan(http, {"PageSize": "1000"})
    expected = [m["sid"] for m in records if (d := sent_day(m)) is not None and wanted(d, day)]
    got = await legacy_scan(http, {name: iso, "PageSize": "25"})
    assert [m["sid"] for m in got] == expected
    assert len(expected) > 25 and all(m["date_sent"] is not None for m in got)


async def test_a_queued_message_sent_later_moves_where_the_order_says(http, emu: Emulator):
    """queued -> sent leaves the null block in the date_sent orders and stays put in the others."""
    order = emu.legacy_order.name
    created = NOW_MS - 3 * DAY_MS
    queued = emu.add_legacy_message(status="queued", date_created=rfc2822(created), date_sent=None)
    before = [m["sid"] for m in await legacy_scan(http, {"PageSize": "1000"})]
    emu.update_legacy_message(queued["sid"], status="sent", date_sent=rfc2822(created + 2000))
    after = await legacy_scan(http, {"PageSize": "1000"})
    assert sorted(before) == sorted(m["sid"] for m in after)
    moved = before.index(queued["sid"]) != [m["sid"] for m in after].index(queued["sid"])
    assert moved == (order in SENT_ORDERS)
    if order != "shuffled":
        keys = [expected_key(order, m) for m in after]
        assert keys == sorted(keys)
    # A DateSent filter now finds it, and only once.
    iso = dt.datetime.fromtimestamp((created + 2000) / 1000, dt.UTC).date().isoformat()
    found = [m["sid"] for m in await legacy_scan(http, {"DateSent": iso, "PageSize": "10"})]
    assert found.count(queued["sid"]) == 1


async def test_a_scan_sees_every_record_while_page_ends_are_sent_moved_and_deleted(http, emu: Emulator):
    """Each page's last record is sent (queued -> sent), re-sent or deleted before the next page is
    asked for: the scan still yields every other record exactly once, in every order."""
    order = emu.legacy_order.name
    before = emu.legacy_payloads()
    later = rfc2822(NOW_MS + 7_200_000)
    moved: set[str] = set()
    sent_from_queue: set[str] = set()
    deleted: set[str] = set()

    def meddle(page: dict) -> None:
        last = page["messages"][-1]
        if page["page"] % 4 == 3:
            emu.delete_legacy_message(last["sid"])
            deleted.add(last["sid"])
        elif last["date_sent"] is None:
            emu.update_legacy_message(last["sid"], status="sent", date_sent=rfc2822(NOW_MS))
            sent_from_queue.add(last["sid"])
        else:
            emu.update_legacy_message(last["sid"], date_sent=later)
        moved.add(last["sid"])

    records = await legacy_scan(http, {"PageSize": "20"}, on_page=meddle)
    seen = Counter(m["sid"] for m in records)
    assert {sid for sid, n in seen.items() if n > 1} <= moved - deleted
    assert {m["sid"] for m in before} <= set(seen)  # page ends were served before they changed
    assert len(moved) > 20 and deleted
    if order in SENT_ORDERS:
        assert sent_from_queue, "no page ended in the null block"
