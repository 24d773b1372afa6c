"""The legacy list as a real account holds it (months of history behind the window), in every
order the documents leave possible, over HTTP into a real Postgres: each scan is exact, and in
the two likely orders it costs what its window holds, not what the account's history holds.

A budget is in list requests at page size P: a pass reads at most ceil(needed / P) + 3 pages,
`needed` being how many listed messages a reader in the list's order must pass to have seen
every message of its window (issue: "Read only the window on real accounts"), plus one for each
time slice the scan split off (a slice's last page is partly filled; issue "Move at the API's
pace")."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from sync import deletions, emulator, parsing, sources, worker
from sync.http import TwilioClient
from sync.models import LEGACY_MESSAGES, Window, default_window
from sync.progress import Progress
from tests.archive import assert_archive_equals_emulator, served
from tests.conftest import run_backfill, settings_for, utcnow

LEGACY = sources.BY_STREAM[LEGACY_MESSAGES]
P = 200
# Bounded in the two likely orders; (c) reads its never-sent block whole; (d) the whole list.
BOUNDED = ("created", "sent-created")
EXPECTED_ORDER = {"created": "created", "sent-created": "sent-created", "sent-sid": "sent-nulls",
                  "sent-nulls-last": "unordered", "shuffled": "unordered"}


@asynccontextmanager
async def account(order: str):
    """1,500 messages in the last 7 days and 6,000 more over the 120 days before, served over HTTP."""
    emu = emulator.Emulator(seed=31, comms_messages=0, legacy_messages=1_500, legacy_days=7,
                            legacy_history=6_000, legacy_history_days=120, legacy_order=order)
    async with emulator.serve(emu) as url:
        yield emu, settings_for(url)


def needed(emu: emulator.Emulator, window: Window) -> int:
    """Messages a reader of the unfiltered list, in its order, passes to see all of the window."""
    listed = emu.legacy_payloads()
    inside = [i for i, p in enumerate(listed) if window.contains(parsing.rfc2822(p["date_created"]))]
    return inside[-1] + 1


def pages(n: int) -> int:
    return -(-n // P)


async def scan_row(store) -> dict:
    rows = await store.fetch("SELECT list_order, pages, outside_window, window_start, window_end, "
                             "(SELECT count(*) FROM twilio.scan_slices s WHERE s.scan_id = scans.id) AS slices "
                             "FROM twilio.scans WHERE stream = 'legacy_messages' ORDER BY id DESC LIMIT 1")
    return dict(rows[0])


WINDOWS = {
    "7 days": lambda now: (None, None),
    "30 days back": lambda now: (now - timedelta(days=30), None),
    "50 to 40 days back": lambda now: (now - timedelta(days=50), now - timedelta(days=40)),
}


@pytest.mark.parametrize("window_name", list(WINDOWS))
@pytest.mark.parametrize("order", list(EXPECTED_ORDER))
async def test_a_backfill_is_exact_and_bounded_by_its_window(store, order, window_name, caplog):
    async with account(order) as (emu, twilio):
        since, until = WINDOWS[window_name](utcnow())
        with caplog.at_level(logging.WARNING, logger="sync.worker"):
            await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,), since=since, until=until, page_size=P)
        await assert_archive_equals_emulator(store, emu, streams=(LEGACY_MESSAGES,))
        scan = await scan_row(store)
        requests = emu.list_requests("legacy_list")
        listed = len(emu.legacy_payloads())
        assert scan["pages"] == requests, "every list request is one saved page"
        assert scan["list_order"] == EXPECTED_ORDER[order]
        warnings = [r for r in caplog.records if "scan.unbounded" in r.getMessage()]
        if order in BOUNDED:
            assert requests <= pages(needed(emu, Window(scan["window_start"], scan["window_end"]))) + 3 + scan["slices"]
            assert warnings == []
        else:
            assert len(warnings) == 1, "a scan that cannot stop early says so, once"
        if order in ("sent-nulls-last", "shuffled"):
            assert requests == pages(listed), "a list in no known order is read to its end"


@pytest.mark.parametrize("order", ["created", "sent-created"])
async def test_a_seven_day_backfill_reads_a_fraction_of_the_history(store, order):
    """The point of it all: 1,500 messages in the window, 6,000 behind it; 38 pages to read them all."""
    async with account(order) as (emu, twilio):
        await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,), page_size=P)
        assert emu.list_requests("legacy_list") <= pages(1_500) + 4 + (await scan_row(store))["slices"]
        if order == "sent-created":
            assert emu.list_requests("legacy_list", date_filtered=True) >= 1, "the sent part was read by DateSent"


async def legacy_scan(store, client, account_sid: str, kind: str, window: Window) -> worker.ScanResult:
    """One scan as the service runs it: a full one keeps the keys it saw and then proves deletions."""
    now = utcnow()
    scan, _ = await worker.open_scan(store, LEGACY, account_sid, kind, window, fixed_end=False, page_size=P, now=now)
    result = await worker.run_scan(store, client, LEGACY, scan, Progress(), resumed=False,
                                   options=worker.ScanOptions(page_size=P, keep_seen=kind == "full"))
    assert result.complete
    if kind == "full":
        await deletions.mark_deleted(store, client, LEGACY, scan)
    return result


@pytest.mark.parametrize("order", list(EXPECTED_ORDER))
async def test_the_service_scans_keep_the_archive_exact_under_live_traffic(store, order):
    """Creates, queued -> sent (out of the never-sent block), redactions and deletions, then the
    service's look-back and full scans: the archive equals the list, the deleted message is
    marked, and in the likely orders a look-back costs at most 4 requests."""
    async with account(order) as (emu, twilio):
        await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,), page_size=P)
        window = default_window(utcnow() - timedelta(hours=2), None, None)  # clear of both edges
        inside = [p for p in emu.legacy_payloads() if window.contains(parsing.rfc2822(p["date_created"]))]
        sent = [p for p in inside if p["date_sent"] is not None]
        gone, redacted = sent[5]["sid"], sent[9]["sid"]
        new = emu.add_legacy_message(status="delivered")
        queued = emu.add_legacy_message(status="queued", date_sent=None, price=None)
        emu.update_legacy_message(redacted, body="")
        emu.delete_legacy_message(gone)
        async with TwilioClient(twilio) as client:
            before = emu.list_requests("legacy_list")
            now = utcnow()
            await legacy_scan(store, client, twilio.account_sid, "recent", Window(now - timedelta(hours=1), now))
            look_back = emu.list_requests("legacy_list") - before
            emu.update_legacy_message(queued["sid"], status="sent", date_sent=emu_now(emu))  # it leaves the block
            before = emu.list_requests("legacy_list")
            full = await legacy_scan(store, client, twilio.account_sid, "full", default_window(utcnow(), None, None))
            full_requests = emu.list_requests("legacy_list") - before
        scan = await scan_row(store)
        full_window = Window(scan["window_start"], scan["window_end"])
        rows = {r["sid"]: r for r in await store.fetch(
            "SELECT sid, status, body, deleted_at, raw FROM twilio.legacy_messages "
            "WHERE date_created >= $1 AND date_created < $2", full_window.start, full_window.end)}
        assert rows[new["sid"]]["status"] == "delivered"
        assert rows[queued["sid"]]["status"] == "sent", "the message that left the never-sent block was seen again"
        assert rows[redacted]["body"] == ""
        assert rows[gone]["deleted_at"] is not None, "the deleted message stays, marked"
        assert {sid for sid, r in rows.items() if r["deleted_at"] is not None} == {gone}
        expected = served(emu, LEGACY_MESSAGES, full_window)
        assert {sid: json.loads(r["raw"]) for sid, r in rows.items() if sid != gone} == expected
        if order in BOUNDED:
            assert look_back <= 4
            assert full_requests <= pages(len(expected)) + 4 + scan["slices"]
        assert full.order == EXPECTED_ORDER[order]


def emu_now(emu: emulator.Emulator) -> str:
    from sync.emulator.formats import rfc2822

    return rfc2822(emu.clock_ms())
