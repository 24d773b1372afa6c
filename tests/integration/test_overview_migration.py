"""Migration 0012 on an archive with data: the materialized overview becomes a table with its rows
and comments, every day the archive holds is owed, so the first refresh is exact whatever state
the view was in (populated and current, populated and stale, never populated); and back to 0011.

The messages are written by plain SQL (as tests/integration/test_status_history.py does), since
the archiver of 0011 is not this one; what matters is what the migration finds.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from sync import migrate
from tests import pg
from tests.integration.test_overview_days import DEFINITION, KEY

ACCOUNTS = ("AC00000000000000000000000000000001", "AC00000000000000000000000000000002")
TABLE = f"SELECT * FROM twilio.daily_account_overview ORDER BY {KEY}"
COMPUTED = f"SELECT * FROM ({DEFINITION}) AS d ORDER BY {KEY}"
COMMENTS = ("SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute AS a "
            "WHERE a.attrelid = 'twilio.daily_account_overview'::regclass AND a.attnum > 0 ORDER BY a.attnum")


async def _migrate(dsn: str, revision: str, *, down: bool = False) -> None:
    await asyncio.to_thread(migrate.downgrade if down else migrate.upgrade, dsn, revision)


async def _fetch(dsn: str, query: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def _run(dsn: str, script: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(script)  # no arguments: the simple protocol runs a script
    finally:
        await conn.close()


def _messages(n: int, first: int) -> str:
    """n legacy and n v1 messages over both accounts and four days (one legacy message undated,
    prices in two currencies), numbered from `first`."""
    return f"""
    INSERT INTO twilio.legacy_messages (sid, account_sid, direction, status, price, price_unit, num_segments,
                                        body, date_created, date_updated, raw)
    SELECT 'SM' || lpad(i::text, 32, '0'), (ARRAY{list(ACCOUNTS)})[1 + i % 2],
           CASE WHEN i % 3 = 0 THEN 'inbound' ELSE 'outbound-api' END,
           (ARRAY['delivered', 'failed', 'sent', 'received'])[1 + i % 4], -0.0079 * (i % 3),
           CASE WHEN i % 5 = 0 THEN 'EUR' ELSE 'USD' END, 1 + i % 2, CASE WHEN i % 7 = 0 THEN '' ELSE 'hi' END,
           CASE WHEN i = {first} THEN NULL ELSE timestamptz '2026-11-20' + i * interval '37 minutes' END,
           timestamptz '2026-11-20' + i * interval '37 minutes' + interval '5 seconds', '{{}}'
    FROM generate_series({first}, {first + n - 1}) AS i;
    INSERT INTO twilio.comms_messages (id, account_sid, status, from_channel, created_at, updated_at, raw)
    SELECT 'comms_message_' || i, (ARRAY{list(ACCOUNTS)})[1 + i % 2],
           (ARRAY['DELIVERED', 'INBOUND', 'READ', 'FAILED'])[1 + i % 4], 'SMS',
           timestamptz '2026-11-20' + i * interval '41 minutes', timestamptz '2026-11-20' + i * interval '41 minutes', '{{}}'
    FROM generate_series({first}, {first + n - 1}) AS i"""


@pytest.mark.parametrize("state", ["current", "stale", "never populated"])
async def test_upgrading_keeps_the_views_rows_and_the_first_refresh_makes_them_exact(empty_database_dsn, state):
    """At 0011 the view is refreshed (or not) before more messages arrive; after 0012 the table
    holds what the view held (nothing if it was never populated), with the same column comments,
    every (account, day) of the archive is owed, and the first refresh gives the definition's rows."""
    dsn = empty_database_dsn
    await _migrate(dsn, "0011")
    await _run(dsn, _messages(120, 1))
    comments = await _fetch(dsn, COMMENTS)
    if state == "never populated":
        await _fetch(dsn, "REFRESH MATERIALIZED VIEW twilio.daily_account_overview WITH NO DATA")
    else:
        await _fetch(dsn, "REFRESH MATERIALIZED VIEW twilio.daily_account_overview")
    if state == "stale":
        await _run(dsn, _messages(40, 500))
    held = [] if state == "never populated" else await _fetch(dsn, TABLE)

    await _migrate(dsn, "head")
    assert await _fetch(dsn, TABLE) == held
    assert await _fetch(dsn, COMMENTS) == comments
    days = await _fetch(dsn, "SELECT count(DISTINCT (account_sid, day)) FROM twilio.overview_days_owed")
    archived = await _fetch(dsn, "SELECT count(DISTINCT (account_sid, day)) FROM twilio.message_facts")
    assert days == archived and days[0][0] > 8  # two accounts, four days and more, a null day
    refreshed = await _fetch(dsn, "SELECT twilio.refresh_daily_account_overview()")
    assert refreshed == days
    assert await _fetch(dsn, TABLE) == await _fetch(dsn, COMPUTED)


async def test_downgrading_gives_back_0008s_materialized_view_and_upgrading_again_is_exact(empty_database_dsn):
    """head -> 0011: a materialized view again, populated with the definition's rows, with 0008's
    comment and the column comments; -> head again: a table, exact after its refresh."""
    dsn = empty_database_dsn
    await _migrate(dsn, "0011")
    view_comment = await _fetch(dsn, "SELECT obj_description('twilio.daily_account_overview'::regclass)")
    comments = await _fetch(dsn, COMMENTS)
    await _migrate(dsn, "head")
    await _run(dsn, _messages(60, 1))  # archived after 0012, never marked: the view computes them anyway
    await _migrate(dsn, "0011", down=True)
    kind = await _fetch(dsn, "SELECT relkind::text, relispopulated FROM pg_class "
                             "WHERE oid = 'twilio.daily_account_overview'::regclass")
    assert kind == [("m", True)]
    assert await _fetch(dsn, TABLE) == await _fetch(dsn, COMPUTED) != []
    assert await _fetch(dsn, "SELECT obj_description('twilio.daily_account_overview'::regclass)") == view_comment
    assert await _fetch(dsn, COMMENTS) == comments
    assert await _fetch(dsn, "SELECT to_regclass('twilio.overview_days_owed')") == [(None,)]
    await _migrate(dsn, "head")
    await _fetch(dsn, "SELECT twilio.refresh_daily_account_overview()")
    assert await _fetch(dsn, TABLE) == await _fetch(dsn, COMPUTED)


async def test_a_service_user_that_owns_nothing_refreshes_with_plain_grants(empty_database_dsn):
    """The refresh needs no ownership (a materialized view's refresh did): a role granted what the
    archiver reads and writes, and INSERT, DELETE on the overview and its marks, refreshes it; the
    reader role reads the overview but may not refresh it."""
    dsn, service = empty_database_dsn, pg.random_name("service")
    await _migrate(dsn, "head")
    await _run(dsn, _messages(30, 1) + ";" + f"""
        INSERT INTO twilio.overview_days_owed SELECT DISTINCT account_sid, day FROM twilio.message_facts;
        CREATE ROLE {service} NOLOGIN;
        GRANT USAGE ON SCHEMA twilio TO {service};
        GRANT SELECT ON ALL TABLES IN SCHEMA twilio TO {service};
        GRANT INSERT, DELETE ON twilio.overview_days_owed, twilio.daily_account_overview
            TO {service}""")
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE twilio_archive_reader")
            assert await conn.fetchval("SELECT count(*) FROM twilio.daily_account_overview") == 0
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.fetchval("SELECT twilio.refresh_daily_account_overview()")
        async with conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {service}")
            assert await conn.fetchval("SELECT twilio.refresh_daily_account_overview()") > 0
        assert await _fetch(dsn, TABLE) == await _fetch(dsn, COMPUTED)
    finally:
        await conn.execute(f"DROP OWNED BY {service}; DROP ROLE {service}")
        await conn.close()
