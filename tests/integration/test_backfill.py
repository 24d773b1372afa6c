"""Backfill against the emulator and a real Postgres: complete, exact, idempotent, newest-wins."""

from __future__ import annotations

import json
from datetime import timedelta

from sync import backfill, parsing, sources
from sync.models import Window, default_window
from sync.sources import base, legacy
from tests.conftest import run_backfill, utcnow

WEEK = timedelta(days=7)


async def archived(store, table: str, key: str) -> dict[str, dict]:
    rows = await store.fetch(f"SELECT {key} AS k, raw FROM twilio.{table}")
    return {r["k"]: json.loads(r["raw"]) for r in rows}


def legacy_in(window: Window, payloads: list[dict]) -> dict[str, dict]:
    return {p["sid"]: p for p in payloads if window.contains(parsing.rfc2822(p["date_created"]))}


def comms_in(window: Window, payloads: list[dict]) -> dict[str, dict]:
    return {p["id"]: p for p in payloads if window.contains(parsing.rfc3339(p["createdAt"]))}


async def test_backfill_archives_exactly_what_each_api_serves_in_the_window(store, emu, twilio):
    """Every record of all three lists created in the window is archived once, raw as served."""
    now = utcnow()
    window = Window(now - WEEK, now)
    results = await run_backfill(store, twilio, since=window.start, until=window.end)

    assert await archived(store, "legacy_messages", "sid") == legacy_in(window, emu.legacy_payloads())
    assert await archived(store, "comms_messages", "id") == comms_in(window, emu.comms_payloads())
    assert await archived(store, "comms_operations", "id") == comms_in(window, emu.operation_payloads())
    assert results["legacy_messages"].pages > 1 and results["comms_messages"].pages > 1, "small pages must page"
    legacy_total = len(emu.legacy_payloads())
    assert 0 < len(legacy_in(window, emu.legacy_payloads())) < legacy_total, "data must straddle the window"


async def test_typed_columns_are_derived_from_the_payload(store, emu, twilio):
    """timestamptz, numeric and integer columns hold what the raw payload says."""
    await run_backfill(store, twilio, streams=("legacy_messages", "comms_messages"))
    rows = await store.fetch(
        "SELECT raw, date_created, date_sent, date_updated, price, num_segments, num_media, error_code, "
        "from_address, to_address, tags FROM twilio.legacy_messages"
    )
    for r in rows:
        raw = json.loads(r["raw"])
        assert r["date_created"] == parsing.rfc2822(raw["date_created"])
        assert r["date_sent"] == (None if raw["date_sent"] is None else parsing.rfc2822(raw["date_sent"]))
        assert r["date_updated"] == parsing.rfc2822(raw["date_updated"])
        assert r["price"] == (None if raw["price"] is None else parsing.decimal(raw["price"]))
        assert r["num_segments"] == int(raw["num_segments"])
        assert r["num_media"] == int(raw["num_media"])
        assert r["error_code"] == raw["error_code"]
        assert (r["from_address"], r["to_address"]) == (raw["from"], raw["to"])
        assert json.loads(r["tags"]) == raw.get("tags")
    comms = await store.fetch(
        "SELECT raw, created_at, from_address, to_address, recipient_count, status FROM twilio.comms_messages"
    )
    for r in comms:
        raw = json.loads(r["raw"])
        assert r["created_at"] == parsing.rfc3339(raw["createdAt"])
        assert r["from_address"] == raw["from"]["address"]
        assert r["to_address"] == raw["to"][0]["address"]
        assert r["recipient_count"] == len(raw["to"])
        assert r["status"] == raw["status"]


async def test_awkward_records_are_archived(store, emu, twilio):
    """Null date_sent, null price, empty bodies, emoji, WhatsApp and group messages all arrive."""
    await run_backfill(store, twilio, streams=("legacy_messages", "comms_messages"))
    found = await store.fetch(
        "SELECT count(*) FILTER (WHERE date_sent IS NULL) AS unsent, "
        "count(*) FILTER (WHERE price IS NULL) AS unpriced, "
        "count(*) FILTER (WHERE body = '') AS redacted, "
        "count(*) FILTER (WHERE body ~ '[\\U0001F300-\\U0001FAFF]') AS emoji, "
        "count(*) FILTER (WHERE from_address LIKE 'whatsapp:%' OR to_address LIKE 'whatsapp:%') AS whatsapp "
        "FROM twilio.legacy_messages"
    )
    assert all(found[0][k] > 0 for k in ("unsent", "unpriced", "redacted", "emoji", "whatsapp")), dict(found[0])
    groups = await store.fetch("SELECT count(*) FROM twilio.comms_messages WHERE recipient_count > 1")
    assert groups[0][0] > 0


async def test_messages_never_sent_are_not_missed(store, emu, twilio):
    """A queued message with a null date_sent, created inside the window, is archived."""
    queued = emu.add_legacy_message(status="queued", date_sent=None, price=None)
    await run_backfill(store, twilio, streams=("legacy_messages",))
    rows = await store.fetch("SELECT status, date_sent FROM twilio.legacy_messages WHERE sid = $1", queued["sid"])
    assert [tuple(r) for r in rows] == [("queued", None)]


async def test_rescan_of_an_unchanged_window_rewrites_no_row(store, emu, twilio):
    """A second pass over the same data writes nothing: every row keeps its xmin."""
    await run_backfill(store, twilio)
    before = {t: await store.fetch(f"SELECT raw, xmin::text AS x FROM twilio.{t} ORDER BY 1::text")
              for t in ("legacy_messages", "comms_messages", "comms_operations")}
    results = await run_backfill(store, twilio)
    after = {t: await store.fetch(f"SELECT raw, xmin::text AS x FROM twilio.{t} ORDER BY 1::text")
             for t in before}
    assert after == before
    assert all(r.inserted == 0 and r.updated == 0 and r.seen > 0 for r in results.values())


async def test_a_key_holding_the_key_separator_is_looked_up_whole(store):
    """Keys go to Postgres as one text split at U+001F; rows with a key that holds that character
    send theirs as an array instead, so no key is split: saved again, each is found by its digest
    and not touched (a key missed there would be written through the upsert, which locks it)."""
    records = [{"sid": "MM\x1fodd", "status": "delivered"}, {"sid": "MMplain", "status": "sent"}]
    rows = [base.keyed_row(legacy.SOURCE, r, "AC1") for r in records]
    for batch in (rows[1:], rows):  # keys as one text, then as an array (the odd key is new)
        first = await store.pages.save_records(legacy.SOURCE, "AC1", batch)
        again = await store.pages.save_records(legacy.SOURCE, "AC1", batch)
        assert (first.inserted, again.inserted, again.updated) == (1, 0, 0)
    stored = await store.fetch("SELECT sid, xmax::text AS xmax FROM twilio.legacy_messages ORDER BY sid")
    assert [(r["sid"], r["xmax"]) for r in stored] == [("MM\x1fodd", "0"), ("MMplain", "0")]


async def test_rows_stored_before_digests_existed_get_one_without_counting_as_changed(store, emu, twilio):
    """After upgrading to revision 0003, a row without raw_digest gets it on its next scan; the
    payload did not change, so neither last_changed_at nor the scan's changed count moves; the
    scan after that writes nothing at all."""
    await run_backfill(store, twilio, streams=("legacy_messages",))
    await store.fetch("UPDATE twilio.legacy_messages SET raw_digest = NULL, last_changed_at = '2020-01-01Z'")
    results = await run_backfill(store, twilio, streams=("legacy_messages",))
    assert results["legacy_messages"].updated == 0
    rows = await store.fetch("SELECT count(*) FILTER (WHERE raw_digest IS NULL) AS missing, "
                             "count(*) FILTER (WHERE last_changed_at > '2020-01-01Z') AS moved FROM twilio.legacy_messages")
    assert (rows[0]["missing"], rows[0]["moved"]) == (0, 0)
    before = await store.fetch("SELECT sid, xmin::text AS x FROM twilio.legacy_messages ORDER BY sid")
    await run_backfill(store, twilio, streams=("legacy_messages",))
    assert await store.fetch("SELECT sid, xmin::text AS x FROM twilio.legacy_messages ORDER BY sid") == before


async def test_changed_records_take_the_newer_state(store, emu, twilio):
    """Status changes, a late price and a redacted body replace the stored state on the next pass."""
    await run_backfill(store, twilio, streams=("legacy_messages", "comms_messages"))
    row = await store.fetch("SELECT sid FROM twilio.legacy_messages WHERE status = 'sent' AND body <> '' LIMIT 1")
    sent = {"sid": row[0]["sid"]}
    emu.update_legacy_message(sent["sid"], status="delivered", price="-0.01500", body="")
    queued = await store.fetch("SELECT id FROM twilio.comms_messages WHERE status = 'QUEUED' LIMIT 1")
    emu.update_comms_message(queued[0]["id"], status="DELIVERED")

    results = await run_backfill(store, twilio, streams=("legacy_messages", "comms_messages"))

    legacy = (await store.fetch("SELECT status, price::text, body FROM twilio.legacy_messages WHERE sid = $1", sent["sid"]))[0]
    assert tuple(legacy) == ("delivered", "-0.01500", "")
    comms = await store.fetch("SELECT status FROM twilio.comms_messages WHERE id = $1", queued[0]["id"])
    assert comms[0]["status"] == "DELIVERED"
    assert results["legacy_messages"].updated == 1 and results["comms_messages"].updated == 1
    assert results["legacy_messages"].inserted == 0


async def test_an_older_payload_never_replaces_a_newer_one(store, emu, twilio):
    """If the API serves a stale copy (older date_updated), the newer archived state stays."""
    await run_backfill(store, twilio, streams=("legacy_messages",))
    row = (await store.fetch("SELECT sid, raw FROM twilio.legacy_messages WHERE status = 'delivered' LIMIT 1"))[0]
    current = json.loads(row["raw"])
    stale_when = parsing.rfc2822(current["date_updated"]) - timedelta(hours=1)
    emu.update_legacy_message(row["sid"], status="sent", date_updated=stale_when.strftime("%a, %d %b %Y %H:%M:%S +0000"))
    results = await run_backfill(store, twilio, streams=("legacy_messages",))
    kept = await store.fetch("SELECT status FROM twilio.legacy_messages WHERE sid = $1", row["sid"])
    assert kept[0]["status"] == "delivered"
    assert results["legacy_messages"].updated == 0


async def test_unknown_fields_and_statuses_are_stored_and_unknown_statuses_reported(store, emu, twilio):
    """A field Twilio adds tomorrow stays in raw; an undocumented status is stored as given,
    listed in parse_problems and counted, so an operator sees Twilio's vocabulary grow."""
    legacy = emu.add_legacy_message(status="teleported", brand_new_field={"nested": [1, 2]})
    comms = emu.add_comms_message(status="BEAMED", brandNewField="x")
    results = await run_backfill(store, twilio, streams=("legacy_messages", "comms_messages"))
    row = (await store.fetch("SELECT status, raw, parse_problems FROM twilio.legacy_messages WHERE sid = $1", legacy["sid"]))[0]
    assert row["status"] == "teleported"
    assert json.loads(row["raw"])["brand_new_field"] == {"nested": [1, 2]}
    assert row["parse_problems"] == ["status: not a documented value: 'teleported'"]
    row = (await store.fetch("SELECT status, raw FROM twilio.comms_messages WHERE id = $1", comms["id"]))[0]
    assert row["status"] == "BEAMED" and json.loads(row["raw"])["brandNewField"] == "x"
    assert results["legacy_messages"].problems >= 1 and results["comms_messages"].problems >= 1
    listed = {r["record_key"] for r in await store.fetch("SELECT record_key FROM twilio.record_problems WHERE stored")}
    assert {legacy["sid"], comms["id"]} <= listed


async def test_nul_characters_are_replaced_counted_and_kept_exactly(store, emu, twilio):
    """A body with NUL is stored with U+FFFD, its exact JSON kept in raw_text, and counted."""
    message = emu.add_legacy_message(body="before\x00after")
    results = await run_backfill(store, twilio, streams=("legacy_messages",))
    row = (await store.fetch(
        "SELECT body, raw->>'body' AS raw_body, raw_text, parse_problems FROM twilio.legacy_messages WHERE sid = $1",
        message["sid"]))[0]
    assert row["body"] == row["raw_body"] == "before\ufffdafter"
    assert json.loads(row["raw_text"])["body"] == "before\x00after"
    assert any(p.startswith("nul_replaced") for p in row["parse_problems"])
    assert results["legacy_messages"].problems == 1


async def test_a_record_with_an_unparseable_date_is_kept_and_reported(store, emu, twilio):
    """A date in an unexpected format leaves its column null, keeps raw, and is counted."""
    message = emu.add_legacy_message(date_sent="yesterday at noon", num_segments="many")
    results = await run_backfill(store, twilio, streams=("legacy_messages",))
    row = (await store.fetch(
        "SELECT date_sent, num_segments, raw->>'date_sent' AS raw_date, parse_problems "
        "FROM twilio.legacy_messages WHERE sid = $1", message["sid"]))[0]
    assert row["date_sent"] is None and row["num_segments"] is None
    assert row["raw_date"] == "yesterday at noon"
    assert sorted(p.split(":")[0] for p in row["parse_problems"]) == ["date_sent", "num_segments"]
    assert results["legacy_messages"].problems == 1


async def test_since_reaches_further_back_on_the_legacy_list_only(store, emu, twilio):
    """--since 20 days ago archives older legacy messages; v1 still stops at its 7-day retention."""
    now = utcnow()
    await run_backfill(store, twilio, since=now - timedelta(days=20), until=now)
    oldest = await store.fetch("SELECT min(date_created) AS m FROM twilio.legacy_messages")
    assert oldest[0]["m"] < now - WEEK
    assert await archived(store, "legacy_messages", "sid") == legacy_in(
        Window(now - timedelta(days=20), now), emu.legacy_payloads())
    newest_comms = await store.fetch("SELECT min(created_at) AS m FROM twilio.comms_messages")
    assert newest_comms[0]["m"] >= now - WEEK - timedelta(seconds=5)


async def test_api_key_credentials_work(store, emu, base_url):
    """An API key and secret authenticate in place of the auth token."""
    from sync.emulator import DEFAULT_API_KEY_SECRET, DEFAULT_API_KEY_SID
    from tests.conftest import settings_for

    twilio = settings_for(base_url, username=DEFAULT_API_KEY_SID, password=DEFAULT_API_KEY_SECRET)
    results = await run_backfill(store, twilio, streams=("legacy_messages", "comms_messages"))
    assert results["legacy_messages"].inserted > 0 and results["comms_messages"].inserted > 0


async def test_every_backfill_leaves_the_overview_current_and_one_owing_nothing_rewrites_no_row(store, emu, twilio, db_dsn):
    """A pass ends with the overview current: what it archived, and what others marked owed since
    the last refresh (a pass that wrote nothing included); a pass when nothing is owed recomputes no
    day, so the overview's rows keep their xmin."""
    legacy = ("legacy_messages",)

    async def backfill_pass() -> None:
        now = utcnow()
        await backfill.run(db_dsn, twilio, legacy, default_window(now, None, None), fixed_end=False, now=now,
                           page_size=50)

    async def overview() -> tuple[int, list]:
        rows = await store.fetch("SELECT messages, xmin::text AS version FROM twilio.daily_account_overview "
                                 "ORDER BY account_sid, day, source, price_unit")
        return sum(r["messages"] for r in rows), [r["version"] for r in rows]

    await backfill_pass()
    archived = await store.status.count("legacy_messages")
    total, versions = await overview()
    assert total == archived
    await backfill_pass()  # the same window again: nothing written, nothing owed
    assert await overview() == (total, versions), "a refresh owing nothing rewrote the overview"
    # As `run`'s look-back scans archive between its full cycles: in the table, its day marked
    # owed (as every writer marks it), not yet in the overview.
    names = [name for name, _ in sources.BY_STREAM["legacy_messages"].all_columns]
    await store.execute(f"WITH behind AS (INSERT INTO twilio.legacy_messages ({', '.join(names)}) "
                        f"SELECT 'SMbehind', {', '.join(names[1:])} FROM twilio.legacy_messages LIMIT 1 "
                        "RETURNING account_sid, date_created) INSERT INTO twilio.overview_days_owed "
                        "SELECT account_sid, (date_created AT TIME ZONE 'UTC')::date FROM behind")
    await backfill_pass()  # writes nothing of its own
    assert (await overview())[0] == archived + 1, "a pass left a day owed by another writer out of the overview"
