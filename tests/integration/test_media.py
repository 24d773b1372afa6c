"""The media of legacy messages against the emulator and a real Postgres: exactly one list read per
message with media, none for the others; deletions marked and kept; 404s and bad items recorded."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sync import emulator as emulator_pkg, machinery, media, models, parsing
from sync.emulator import DEFAULT_ACCOUNT_SID
from sync.observe import Observer
from tests.conftest import run_backfill, utcnow

LEGACY = (models.LEGACY_MESSAGES,)


@pytest.fixture
def emu() -> emulator_pkg.Emulator:
    """Legacy messages only, a quarter of them with media, over the default 7-day window and before."""
    return emulator_pkg.Emulator(seed=11, comms_messages=0, legacy_messages=300, legacy_days=14, mms_share=0.25)


def with_media(emu: emulator_pkg.Emulator, since=None) -> dict[str, dict]:
    """The messages the list serves with num_media above 0, created since `since`."""
    return {m["sid"]: m for m in emu.legacy_payloads() if m["num_media"] != "0"
            and (since is None or parsing.rfc2822(m["date_created"]) >= since)}


def served_media(emu: emulator_pkg.Emulator, messages: dict[str, dict]) -> dict[str, dict]:
    return {item["sid"]: item for m in messages.values() for item in emu.media.items(m)}


async def archived_media(store) -> dict[str, dict]:
    rows = await store.fetch("SELECT sid, raw, deleted_at FROM twilio.legacy_media")
    return {r["sid"]: {**json.loads(r["raw"]), "_deleted": r["deleted_at"] is not None} for r in rows}


async def follow(store, twilio, **options) -> media.MediaRun:
    async with machinery.twilio_client(twilio, store=store) as client:
        return await media.follow(store, client, twilio.account_sid, **options)


async def backfill_with_media(store, twilio) -> media.MediaRun:
    """A legacy backfill of the default window, then its media, as `backfill` runs them."""
    await run_backfill(store, twilio, streams=LEGACY)
    return await follow(store, twilio)


async def test_backfill_reads_one_media_list_per_message_with_media_and_none_for_the_others(store, emu, twilio):
    """Every archived message with media has its list read once (one request: one page), plain SMS none."""
    since = utcnow() - timedelta(days=7)
    run = await backfill_with_media(store, twilio)
    archived_messages = {r["sid"] for r in await store.fetch("SELECT sid FROM twilio.legacy_messages")}
    expected = {sid: m for sid, m in with_media(emu).items() if sid in archived_messages}
    assert expected.keys() == set(with_media(emu, since)) and len(expected) > 20
    assert emu.request_counts["media_list"] == len(expected) == run.lists == run.requests
    listed = {r.path.split("/Messages/")[1].split("/")[0] for r in emu.list_log if r.route == "media_list"}
    assert listed == set(expected)
    stored = await archived_media(store)
    assert {sid: {k: v for k, v in item.items() if k != "_deleted"} for sid, item in stored.items()} == \
        served_media(emu, expected)
    assert sum(int(m["num_media"]) for m in expected.values()) == len(stored) == run.items

    again = await follow(store, twilio)  # nothing owed any more: no request
    assert again.lists == 0 and emu.request_counts["media_list"] == len(expected)
    assert await store.media.counts(DEFAULT_ACCOUNT_SID) == (len(stored), 0, 0)


async def test_a_list_longer_than_a_page_is_paged(store, emu, twilio):
    """With pages of 2 items, a message of n items costs ceil(n/2) requests, and every item is stored."""
    await run_backfill(store, twilio, streams=LEGACY)
    run = await follow(store, twilio, page_size=2)
    archived_messages = {r["sid"] for r in await store.fetch("SELECT sid FROM twilio.legacy_messages")}
    expected = {sid: m for sid, m in with_media(emu).items() if sid in archived_messages}
    assert run.requests == sum(max(1, -(-int(m["num_media"]) // 2)) for m in expected.values()) > len(expected)
    assert emu.request_counts["media_list"] == run.requests
    assert len(await archived_media(store)) == sum(int(m["num_media"]) for m in expected.values())


async def test_a_changed_num_media_reads_the_list_again(store, emu, twilio):
    """A message whose num_media changes owes its list again: one more request, for it alone."""
    await backfill_with_media(store, twilio)
    before = emu.request_counts["media_list"]
    sid = next(iter(with_media(emu, utcnow() - timedelta(days=7))))
    await store.execute("UPDATE twilio.legacy_messages SET num_media = num_media + 1 WHERE sid = $1", sid)
    assert await store.media.owed(DEFAULT_ACCOUNT_SID, 10) == [(sid, await store.fetchval(
        "SELECT num_media FROM twilio.legacy_messages WHERE sid = $1", sid))]
    run = await follow(store, twilio)
    assert run.lists == 1 and emu.request_counts["media_list"] == before + 1


async def test_deleted_media_stays_archived_and_is_marked_after_the_recheck(store, emu, twilio):
    """An item deleted at Twilio keeps its row; the re-check of lists read longer ago than the interval marks it."""
    await backfill_with_media(store, twilio)
    message = next(iter(with_media(emu, utcnow() - timedelta(days=7)).values()))
    gone = emu.media.items(message)[0]
    emu.media.delete(gone["sid"])

    quiet = await follow(store, twilio)  # nothing owed, and no re-check asked for: nothing read
    assert quiet.lists == 0
    recent = await follow(store, twilio, recheck=timedelta(days=1))  # every list was read just now
    assert recent.lists == 0
    # The interval has passed for every list (as if a day went by).
    await store.execute("UPDATE twilio.legacy_media_lists SET read_at = read_at - interval '2 days'")
    run = await follow(store, twilio, recheck=timedelta(days=1))
    assert run.lists == len(await store.fetch("SELECT 1 FROM twilio.legacy_media_lists")) and run.marked == 1
    stored = await archived_media(store)
    assert stored[gone["sid"]]["_deleted"] is True
    assert [sid for sid, item in stored.items() if item["_deleted"]] == [gone["sid"]]
    assert await store.media.counts(DEFAULT_ACCOUNT_SID) == (len(stored), 1, 0)


async def test_a_404_for_a_media_list_is_recorded_as_a_fact(store, emu, twilio):
    """A message deleted at Twilio before its media was read: its list is gone (404), recorded, not retried."""
    await run_backfill(store, twilio, streams=LEGACY)
    sid = next(iter(with_media(emu, utcnow() - timedelta(days=7))))
    emu.delete_legacy_message(sid)
    run = await follow(store, twilio)
    assert run.gone == 1
    row = await store.fetchrow("SELECT outcome, items FROM twilio.legacy_media_lists WHERE message_sid = $1", sid)
    assert (row["outcome"], row["items"]) == ("gone", 0)
    assert await store.fetchval("SELECT count(*) FROM twilio.legacy_media WHERE message_sid = $1", sid) == 0
    assert await store.media.owed(DEFAULT_ACCOUNT_SID, 10) == []
    await follow(store, twilio, recheck=timedelta(0))  # every list read again, but not the gone one
    assert sum(1 for r in emu.list_log if r.route == "media_list" and sid in r.path) == 1


async def test_an_unparseable_media_item_is_kept_raw_and_counted(store, emu, twilio, monkeypatch):
    """An item without a sid goes whole to rejected_records; one with a bad date is stored with its problem."""
    await run_backfill(store, twilio, streams=LEGACY)
    target = next(iter(with_media(emu, utcnow() - timedelta(days=7))))
    items = emu.media.items

    def spoiled(message):
        made = items(message)
        if message.get("sid") == target:
            made = [{**made[0], "date_created": "yesterday"}, {"content_type": "image/png"}, *made[1:]]
        return made

    monkeypatch.setattr(emu.media, "items", spoiled)

    class Counted(Observer):
        rejected = 0

        def media_listed(self, account_sid, outcome, items, rejected):
            Counted.rejected += rejected

    run = await follow(store, twilio, observer=Counted())
    assert run.rejected == 1 and run.problems == 1 and Counted.rejected == 1
    reject = await store.fetchrow("SELECT stream, record_key, raw_text FROM twilio.rejected_records")
    assert reject["stream"] == "legacy_media" and json.loads(reject["raw_text"]) == {"content_type": "image/png"}
    bad = await store.fetchrow(
        "SELECT date_created, parse_problems, raw->>'date_created' AS raw_date FROM twilio.legacy_media "
        "WHERE message_sid = $1 AND parse_problems IS NOT NULL", target)
    assert bad["date_created"] is None and bad["raw_date"] == "yesterday"
    assert bad["parse_problems"][0].startswith("date_created:")


async def test_media_lists_shrink_their_page_after_500s_like_the_scans(store, emu, twilio):
    """An API that answers 500 to pages over 30 items: the media lists ask smaller pages and all arrive,
    the lists after the first ones asking the smaller size at once."""
    await run_backfill(store, twilio, streams=LEGACY)
    emu.faults.profile = emulator_pkg.FaultProfile(max_page_size=30)
    run = await follow(store, twilio)
    archived_messages = {r["sid"] for r in await store.fetch("SELECT sid FROM twilio.legacy_messages")}
    expected = {sid: m for sid, m in with_media(emu).items() if sid in archived_messages}
    assert run.lists == len(expected) and run.items == sum(int(m["num_media"]) for m in expected.values())
    assert emu.faults.stats()["injected"]["page_size"] < len(expected)
