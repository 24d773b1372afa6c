"""twilio.daily_account_overview since 0012: a table refreshed for the (account, day)s written since
the last refresh. Whatever the archiver writes (a page's new and changed records, a deletion, a
hydration) marks its days owed in the same transaction, and a refresh recomputes those days only,
to exactly what 0005's definition computes over the whole archive.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from sync import analytics, backfill, hydrate, machinery, models, sources, worker
from sync.emulator.formats import rfc3339
from sync.models import default_window
from sync.sources import base
from sync.sql import pages
from sync.store import Store
from tests.conftest import run_backfill, utcnow

KEY = "account_sid, day, source, price_unit"
LEGACY = sources.BY_STREAM[models.LEGACY_MESSAGES]
COMMS = sources.BY_STREAM[models.COMMS_MESSAGES]
UNDATED = "SM" + "0" * 31 + "1"


def _definition() -> str:
    """0005's SELECT of the materialized view, word for word: what the table must equal."""
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0005_analyst_views.py"
    spec = importlib.util.spec_from_file_location("m0005", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DAILY[0].split(" AS\n", 1)[1].rsplit("WITH DATA", 1)[0]


DEFINITION = _definition()


async def overview(conn: asyncpg.Connection, where: str = "true") -> list[tuple]:
    return [tuple(r) for r in await conn.fetch(f"SELECT * FROM twilio.daily_account_overview WHERE {where} ORDER BY {KEY}")]


async def computed(conn: asyncpg.Connection, where: str = "true") -> list[tuple]:
    """The definition over every message, now: the rows a refresh of the whole view would give."""
    return [tuple(r) for r in await conn.fetch(f"SELECT * FROM ({DEFINITION}) AS d WHERE {where} ORDER BY {KEY}")]


async def both(dsn: str, where: str = "true") -> tuple[list[tuple], list[tuple]]:
    """(the table's rows, the definition's rows) read in one snapshot."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read"):
            return await overview(conn, where), await computed(conn, where)
    finally:
        await conn.close()


async def assert_exact(dsn: str) -> None:
    table, definition = await both(dsn)
    assert table == definition and table


async def owed(store: Store) -> set[tuple]:
    return {tuple(r) for r in await store.fetch("SELECT account_sid, day FROM twilio.overview_days_owed")}


async def days_of(store: Store, table: str, key: str, created: str, keys: list[str]) -> set[tuple]:
    rows = await store.fetch(f"SELECT account_sid, ({created} AT TIME ZONE 'UTC')::date FROM twilio.{table} "
                             f"WHERE {key} = ANY($1)", keys)
    return {tuple(r) for r in rows}


async def _backfill(dsn: str, twilio) -> None:
    """A pass of the legacy and v1 message lists as `backfill` runs it, its refresh included."""
    now = utcnow()
    await backfill.run(dsn, twilio, (models.LEGACY_MESSAGES, models.COMMS_MESSAGES), default_window(now, None, None),
                       fixed_end=False, now=now, page_size=50, with_media=False)


async def _archived(store: Store, emu, twilio, dsn: str) -> None:
    """The emulator's messages archived by a backfill, with a legacy message whose creation time
    does not parse (the overview counts it under day null)."""
    emu.add_legacy_message(sid=UNDATED, date_created="yesterday-ish", status="failed")
    await _backfill(dsn, twilio)
    assert await store.fetchval("SELECT date_created IS NULL FROM twilio.legacy_messages WHERE sid = $1", UNDATED)


async def test_after_a_backfill_the_overview_is_exact_and_nothing_is_owed(store, emu, twilio, db_dsn):
    """The backfill's refresh leaves the table equal to the definition over everything (a null
    day, null currencies, percentiles), and takes every mark its pages wrote."""
    await _archived(store, emu, twilio, db_dsn)
    await assert_exact(db_dsn)
    rows = await store.fetch("SELECT day, price_unit FROM twilio.daily_account_overview")
    assert any(r["day"] is None for r in rows) and any(r["price_unit"] is None for r in rows)
    assert await owed(store) == set()


async def test_a_refresh_owing_nothing_recomputes_nothing_and_rewrites_no_row(store, emu, twilio, db_dsn):
    """Nothing owed: the function says 0 days and every row keeps its version (xmin): nothing was written."""
    await _archived(store, emu, twilio, db_dsn)
    query = f"SELECT xmin::text, * FROM twilio.daily_account_overview ORDER BY {KEY}"
    before = await store.fetch(query)
    assert await store.fetchval("SELECT twilio.refresh_daily_account_overview()") == 0
    assert await store.fetch(query) == before


async def test_changes_at_twilio_owe_their_days_only_and_the_refresh_makes_them_exact(store, emu, twilio, db_dsn):
    """A status change, a v1 deletion and a new message, archived by scans without a refresh (as
    `run`'s look-back scans): exactly their days are owed; the refresh recomputes those and the
    table equals the definition again."""
    await _archived(store, emu, twilio, db_dsn)
    sent = await store.fetchval("SELECT sid FROM twilio.legacy_messages WHERE status = 'sent' ORDER BY sid LIMIT 1")
    gone = await store.fetchval("SELECT id FROM twilio.comms_messages WHERE created_at < now() - interval '2 days' "
                                "ORDER BY id LIMIT 1")
    emu.update_legacy_message(sent, status="delivered")
    emu.update_comms_message(gone, deletedAt=rfc3339(emu.clock_ms()))
    added = emu.add_legacy_message(status="delivered", price="-0.06000", price_unit="GBP")["sid"]

    results = await run_backfill(store, twilio, streams=(models.LEGACY_MESSAGES, models.COMMS_MESSAGES))
    assert sum(r.updated for r in results.values()) == 2 and sum(r.inserted for r in results.values()) == 1
    expected = (await days_of(store, "legacy_messages", "sid", "date_created", [sent, added])
                | await days_of(store, "comms_messages", "id", "created_at", [gone]))
    assert await owed(store) == expected and len(expected) >= 2
    table, definition = await both(db_dsn)
    assert table != definition  # stale until the refresh
    assert await analytics.refresh(store) == len(expected)
    await assert_exact(db_dsn)
    assert await owed(store) == set()


async def test_a_refresh_recomputes_the_owed_days_and_no_other(store, emu, twilio, db_dsn):
    """Rows changed behind the marks' back (plain SQL) stay out of the overview, whatever is
    refreshed: a refresh owing one day recomputes that day only (its result says 1), proving it
    does not recompute the whole archive."""
    await _archived(store, emu, twilio, db_dsn)
    days = [r[0] for r in await store.fetch(
        "SELECT DISTINCT (date_created AT TIME ZONE 'UTC')::date FROM twilio.legacy_messages "
        "WHERE date_created IS NOT NULL ORDER BY 1 LIMIT 2")]
    stale, marked = (f"day = '{d}'" for d in days)
    for day in days:  # every message of both days canceled, unmarked
        await store.execute("UPDATE twilio.legacy_messages SET status = 'canceled' "
                            "WHERE (date_created AT TIME ZONE 'UTC')::date = $1", day)
    before_stale = await both(db_dsn, stale)
    assert before_stale[0] != before_stale[1]
    assert await analytics.refresh(store) == 0
    await store.execute("INSERT INTO twilio.overview_days_owed SELECT $1, $2", twilio.account_sid, days[1])
    assert await analytics.refresh(store) == 1
    table, definition = await both(db_dsn, marked)
    assert table == definition
    assert await store.fetchval(f"SELECT sum(canceled) FROM twilio.daily_account_overview WHERE {marked}") > 0
    assert await both(db_dsn, stale) == before_stale  # not owed: as it was, stale


async def test_deletions_and_hydration_owe_the_days_of_the_rows_they_change(store, emu, twilio, db_dsn):
    """A deletion proven by the archiver and the v1 content fetched by hydration each mark the
    days of the messages they changed, in their own statement; the refresh then makes them exact."""
    await _archived(store, emu, twilio, db_dsn)
    deleted = [r[0] for r in await store.fetch("SELECT sid FROM twilio.legacy_messages WHERE date_created IS NOT NULL "
                                               "ORDER BY sid LIMIT 3")]
    now = utcnow()
    scan, _ = await worker.open_scan(store, LEGACY, twilio.account_sid, "full", default_window(now, None, None),
                                     fixed_end=False, page_size=50, now=now)
    assert await store.deletions.mark(LEGACY, scan, deleted) == 3
    assert await owed(store) == await days_of(store, "legacy_messages", "sid", "date_created", deleted)
    assert await analytics.refresh(store) > 0

    async with machinery.twilio_client(twilio, store=store) as client:
        stored = await hydrate.hydrate(store, client, twilio.account_sid)
    hydrated = [r[0] for r in await store.fetch("SELECT id FROM twilio.comms_messages WHERE hydrated_at IS NOT NULL")]
    assert stored == len(hydrated) > 0
    assert await owed(store) == await days_of(store, "comms_messages", "id", "created_at", hydrated)
    await analytics.refresh(store)
    await assert_exact(db_dsn)


async def test_a_rolled_back_page_owes_nothing_and_a_committed_one_outlives_its_process(store, emu, twilio, db_dsn):
    """The marks are written in the page's own transaction: a page rolled back leaves neither rows
    nor marks; a page committed by a process that dies before its refresh leaves its marks, and the
    next refresh, by another process, brings the overview up to it."""
    await _archived(store, emu, twilio, db_dsn)
    created = datetime(2026, 11, 3, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))  # 4 November in UTC
    record = {"sid": "SM" + "a" * 32, "account_sid": twilio.account_sid, "status": "delivered", "direction": "inbound",
              "date_created": created.strftime("%a, %d %b %Y %H:%M:%S %z"), "price": None, "body": "hi"}
    row = base.keyed_row(LEGACY, record, twilio.account_sid)
    batch = pages.Batch.of_rows(LEGACY, [row])

    async def save(commit: bool) -> None:
        conn = await asyncpg.connect(db_dsn)
        try:
            tx = conn.transaction()
            await tx.start()
            assert (await pages.upsert(conn, LEGACY, batch, one_by_one=False)).inserted == 1
            await (tx.commit() if commit else tx.rollback())
        finally:
            await conn.close()

    await save(commit=False)
    assert await owed(store) == set()
    assert await store.fetchval("SELECT count(*) FROM twilio.legacy_messages WHERE sid = $1", record["sid"]) == 0
    await save(commit=True)  # and its process dies: no refresh
    day = created.astimezone(timezone.utc).date()
    assert await owed(store) == {(twilio.account_sid, day)}
    async with await Store.connect(db_dsn) as another:
        assert await analytics.refresh(another) == 1
    await assert_exact(db_dsn)
    assert await store.fetchval("SELECT messages FROM twilio.daily_account_overview WHERE day = $1 "
                                "AND source = 'legacy' AND price_unit IS NULL", day) >= 1


async def test_a_mark_committed_while_a_refresh_runs_stays_for_the_next_one(store, emu, twilio, db_dsn):
    """A page still open while a refresh runs: the refresh neither waits for it nor takes its mark
    (not committed before the refresh began), so once the page commits its day is still owed and
    the next refresh counts its rows."""
    await _archived(store, emu, twilio, db_dsn)
    sid = await store.fetchval("SELECT sid FROM twilio.legacy_messages WHERE status <> 'canceled' "
                               "AND date_created IS NOT NULL ORDER BY sid LIMIT 1")
    writer = await asyncpg.connect(db_dsn)
    try:
        tx = writer.transaction()
        await tx.start()
        await writer.execute("WITH w AS (UPDATE twilio.legacy_messages SET status = 'canceled' WHERE sid = $1 "
                             "RETURNING account_sid, date_created) INSERT INTO twilio.overview_days_owed "
                             "SELECT account_sid, (date_created AT TIME ZONE 'UTC')::date FROM w", sid)
        assert await analytics.refresh(store) == 0
        await tx.commit()
    finally:
        await writer.close()
    assert await owed(store) == await days_of(store, "legacy_messages", "sid", "date_created", [sid])
    assert await analytics.refresh(store) == 1
    await assert_exact(db_dsn)
