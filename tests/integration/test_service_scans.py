"""The service's scans, in process against the emulator and a real Postgres: deletions are
marked only on proof, look-back scans stop early, the status history records changes only."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from sync import deletions, parsing, sources, worker
from sync.http import TwilioClient
from sync.models import LEGACY_MESSAGES, Window, default_window
from sync.progress import Progress
from tests.conftest import run_backfill, utcnow

LEGACY = sources.BY_STREAM[LEGACY_MESSAGES]


async def full_legacy_scan(store, client, account_sid: str):
    """A complete full scan of the legacy list that keeps the keys it sees, as the service runs it."""
    now = utcnow()
    scan, _ = await worker.open_scan(store, LEGACY, account_sid, "full", default_window(now, None, None),
                                     fixed_end=False, page_size=50, now=now)
    result = await worker.run_scan(store, client, LEGACY, scan, Progress(), resumed=False,
                                   options=worker.ScanOptions(page_size=50, keep_seen=True))
    assert result.complete
    return scan


async def deleted_sids(store) -> set[str]:
    return {r[0] for r in await store.fetch("SELECT sid FROM twilio.legacy_messages WHERE deleted_at IS NOT NULL")}


async def test_a_message_the_list_no_longer_serves_is_marked_deleted_only_if_fetching_it_fails(store, emu, twilio):
    await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,))
    window = default_window(utcnow(), None, None)
    in_window = [p["sid"] for p in emu.legacy_payloads() if window.contains(datetime_of(p))]
    gone, hidden = in_window[3], in_window[4]
    emu.delete_legacy_message(gone)
    async with TwilioClient(twilio) as client:
        scan = await full_legacy_scan(store, client, twilio.account_sid)
        # As if the list had moved `hidden` past the scan (it still exists at Twilio).
        await store.fetch("DELETE FROM twilio.scan_seen WHERE key = $1", hidden)
        marked = await deletions.mark_deleted(store, client, LEGACY, scan)
    assert marked == 1
    assert await deleted_sids(store) == {gone}
    row = await store.fetch("SELECT raw FROM twilio.legacy_messages WHERE sid = $1", gone)
    assert row, "a deleted message stays in the archive"
    scans = await store.fetch("SELECT deleted FROM twilio.scans WHERE id = $1", scan.id)
    assert scans[0][0] == 1
    assert await store.fetch("SELECT * FROM twilio.scan_seen WHERE scan_id = $1", scan.id) == []


def datetime_of(payload: dict) -> datetime:
    return parsing.rfc2822(payload["date_created"])


async def test_no_deletion_is_marked_when_the_seen_keys_may_have_been_lost(store, emu, twilio):
    """scan_seen is UNLOGGED: a server restarted since the scan began may have emptied it."""
    await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,))
    window = default_window(utcnow(), None, None)
    gone = [p["sid"] for p in emu.legacy_payloads() if window.contains(datetime_of(p))][0]
    emu.delete_legacy_message(gone)
    async with TwilioClient(twilio) as client:
        scan = await full_legacy_scan(store, client, twilio.account_sid)
        before_the_server = dataclasses.replace(scan, started_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
        assert await deletions.mark_deleted(store, client, LEGACY, before_the_server) == 0
    assert await deleted_sids(store) == set()


async def test_a_look_back_scan_stops_once_the_pages_show_its_window_is_read(store, emu, twilio):
    await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,))
    queued = emu.add_legacy_message(status="queued", date_sent=None, price=None)
    now = utcnow()
    async with TwilioClient(twilio) as client:
        scan, _ = await worker.open_scan(store, LEGACY, twilio.account_sid, "recent",
                                         Window(now - timedelta(minutes=10), now), fixed_end=False, page_size=20, now=now)
        result = await worker.run_scan(store, client, LEGACY, scan, Progress(), resumed=False,
                                       options=worker.ScanOptions(page_size=20))
    total_pages = -(-len(emu.legacy_payloads()) // 20)
    assert result.complete and result.pages <= total_pages / 2, (result.pages, total_pages)
    assert await store.fetch("SELECT sid FROM twilio.legacy_messages WHERE sid = $1", queued["sid"])


async def test_the_status_history_records_changes_of_status_and_nothing_else(store, emu, twilio):
    await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,))
    first = await store.fetch("SELECT count(*) FROM twilio.message_status_history")
    assert first[0][0] == await store.status.count(LEGACY_MESSAGES), "one observation per message archived"
    sid = emu.legacy_payloads()[0]["sid"]
    emu.update_legacy_message(sid, price="-0.01000")  # a change, but not of status
    await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,))
    emu.update_legacy_message(sid, status="failed", error_code=30008)
    await run_backfill(store, twilio, streams=(LEGACY_MESSAGES,))
    rows = await store.fetch("SELECT status, previous_status, changed_at FROM twilio.message_status_history "
                             "WHERE message_id = $1 ORDER BY id", sid)
    assert [(r[0], r[1]) for r in rows][1:] == [("failed", rows[0][0])]
    archived = await store.fetch("SELECT date_updated FROM twilio.legacy_messages WHERE sid = $1", sid)
    assert rows[-1][2] == archived[0][0], "changed_at is when the API said the message changed"
    total = await store.fetch("SELECT count(*) FROM twilio.message_status_history")
    assert total[0][0] == first[0][0] + 1


async def test_hydration_fills_v1_bodies_in_the_unified_view(store, emu, twilio):
    from sync import hydrate

    emu.add_comms_message(status="DELIVERED", content={"text": "hello from v1"})
    await run_backfill(store, twilio, streams=("comms_messages",))
    async with TwilioClient(twilio) as client:
        done = await hydrate.hydrate(store, client, twilio.account_sid)
    assert done == await store.status.count("comms_messages")
    rows = await store.fetch("SELECT body FROM twilio.messages WHERE source = 'comms' AND body = 'hello from v1'")
    assert len(rows) == 1
    waiting = await store.fetch("SELECT count(*) FROM twilio.comms_messages WHERE hydrated_at IS NULL OR body IS NULL")
    assert waiting[0][0] == 0
    # A change at Twilio sends the message back to the queue, for its new attempts.
    message_id = emu.comms_payloads()[0]["id"]
    emu.update_comms_message(message_id, status="FAILED")
    await run_backfill(store, twilio, streams=("comms_messages",))
    assert [m for m, _ in await store.hydration.waiting(twilio.account_sid, utcnow() - timedelta(days=7), 10)] == [message_id]
