"""`python -m bench.analytics`: what the analyst views (migration 0005) cost on a big archive.

Loads N messages per API straight into a migrated database with INSERT ... SELECT (no emulator,
no HTTP: this measures reading, not archiving; each message's first status-history row is derived
from it, as for the archiver's rows since migration 0011, so there is no history to load), with
statuses, directions, prices, currencies and error codes spread as in a busy account over 90
days, then times the refresh of daily_account_overview as `run` and `backfill` do it through
sync/analytics.py (every day owed, as after a first backfill; nothing owed; 100 messages of one day
changed: migration 0012) and each analyst query (the views whole, a 30-day slice, and the Grafana panels'
SQL), and prints one line per figure. Uses DATABASE_URL's server when set (it creates and drops a
database of its own), otherwise a private embedded Postgres.

    .venv/bin/python -m bench.analytics --messages 1000000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import anyio
import asyncpg

from bench import procs

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "twilio-archive-analysts.json"

# Statuses as Twilio's own weights for a busy account (see sync/emulator/generate.py).
LEGACY = """
INSERT INTO twilio.legacy_messages (sid, account_sid, direction, from_address, to_address, body, status,
    num_segments, num_media, price, price_unit, error_code, date_created, date_sent, date_updated, raw)
SELECT 'SM' || lpad(to_hex(i), 32, '0'), 'AC' || repeat('0', 32),
       CASE WHEN s.status = 'received' THEN 'inbound' ELSE 'outbound-api' END,
       CASE WHEN s.status = 'received' THEN '+1555' || lpad((i % 5000)::text, 7, '0') ELSE '+1415555010' || (i % 5) END,
       CASE WHEN s.status = 'received' THEN '+1415555010' || (i % 5) ELSE '+1555' || lpad((i % 5000)::text, 7, '0') END,
       'Your code is ' || i, s.status, 1 + i % 3, 0,
       CASE WHEN s.status IN ('delivered', 'sent', 'read', 'undelivered') THEN -0.0079 * (1 + i % 3) END,
       CASE WHEN i % 10 = 0 THEN 'EUR' ELSE 'USD' END,
       CASE WHEN s.status IN ('failed', 'undelivered') THEN (ARRAY[30003, 30005, 30007, 21610, 21614])[1 + i % 5] END,
       c.created, c.created + interval '2 seconds', c.created + make_interval(secs => 3 + i % 40), '{}'::jsonb
FROM generate_series(1, $1) AS i
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (i::bigint * 7776000 / $1)::double precision) AS created) AS c
CROSS JOIN LATERAL (SELECT (ARRAY['delivered','delivered','delivered','delivered','received','received','sent',
                                 'undelivered','failed','queued'])[1 + (i * 7) % 10] AS status) AS s"""

COMMS = """
INSERT INTO twilio.comms_messages (id, account_sid, status, from_address, from_channel, to_address, to_channel,
    recipient_count, body, created_at, updated_at, raw)
SELECT 'comms_message_' || lpad(to_hex(i), 26, '0'), 'AC' || repeat('0', 32), s.status,
       CASE WHEN s.status = 'INBOUND' THEN '+1555' || lpad((i % 5000)::text, 7, '0') ELSE '+1415555010' || (i % 5) END,
       'SMS',
       CASE WHEN s.status = 'INBOUND' THEN '+1415555010' || (i % 5) ELSE '+1555' || lpad((i % 5000)::text, 7, '0') END,
       'PHONE', 1, 'Hello number ' || i, c.created, c.created + make_interval(secs => 3 + i % 40), '{}'::jsonb
FROM generate_series(1, $1) AS i
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (i::bigint * 7776000 / $1)::double precision) AS created) AS c
CROSS JOIN LATERAL (SELECT (ARRAY['DELIVERED','DELIVERED','DELIVERED','DELIVERED','INBOUND','READ','SENT',
                                 'UNDELIVERED','FAILED','QUEUED'])[1 + (i * 7) % 10] AS status) AS s"""

# A completed pass per stream, as the archiver leaves: the dashboard lists accounts from twilio.scans.
SCANS = """
INSERT INTO twilio.scans (account_sid, stream, kind, window_start, window_end, status, finished_at)
SELECT 'AC' || repeat('0', 32), stream, 'backfill', now() - interval '90 days', now(), 'complete', now()
FROM unnest(ARRAY['legacy_messages', 'comms_messages']) AS stream"""

QUERIES = {
    "message_facts, one day": "SELECT count(seconds_to_delivered) FROM twilio.message_facts WHERE day = current_date - 10",
    "message_facts, whole": ("SELECT count(*), count(seconds_to_delivered), sum(body_words), count(counterpart),"
                             " count(*) FILTER (WHERE is_final) FROM twilio.message_facts"),
    "daily_account_overview, whole": "SELECT * FROM twilio.daily_account_overview",
    "daily_account_overview, last 30 days": "SELECT * FROM twilio.daily_account_overview WHERE day >= current_date - 30",
    "number_overview, whole": "SELECT * FROM twilio.number_overview",
    "error_overview, whole": "SELECT * FROM twilio.error_overview",
}


async def dashboard_queries(conn: asyncpg.Connection) -> dict[str, str]:
    """Each panel's SQL as Grafana sends it for the last 30 days and All accounts (the one
    substitution tests/analysts.py makes), and the $account variable's own query."""
    from tests.analysts import account_query, panel_sql, substitute

    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    accounts = [r[0] for r in await conn.fetch(account_query(board))]
    return {"variable: $account": account_query(board),
            **{f"panel: {title}": substitute(sql, accounts=accounts, days=30) for title, sql in panel_sql(board)}}


# What a backfill of the loaded messages would have marked (sync/sql/views.py): each (account, day).
MARK_ALL = """
INSERT INTO twilio.overview_days_owed (account_sid, day)
SELECT DISTINCT account_sid, (date_created AT TIME ZONE 'UTC')::date FROM twilio.legacy_messages
UNION SELECT DISTINCT account_sid, (created_at AT TIME ZONE 'UTC')::date FROM twilio.comms_messages"""

# A small change to the big archive, as a `run` turn makes it: 100 messages of one day ten days ago
# seen delivered (the status trigger writes their history), marked as the archiver marks a page.
CHANGE = """
WITH changed AS (
    UPDATE twilio.legacy_messages SET status = 'delivered', date_updated = date_updated + interval '1 second'
    WHERE sid IN (SELECT sid FROM twilio.legacy_messages
                  WHERE date_created >= current_date - 10 AND date_created < current_date - 9 LIMIT 100)
    RETURNING account_sid, date_created)
INSERT INTO twilio.overview_days_owed (account_sid, day)
SELECT DISTINCT account_sid, (date_created AT TIME ZONE 'UTC')::date FROM changed"""


async def refreshes(dsn: str) -> list[tuple[str, float]]:
    """The overview refreshed as the archiver refreshes it (sync/analytics.py): after the load
    (every day owed, as after a first backfill), again with nothing owed (a quiet cycle), and after
    100 messages of one day changed (a busy cycle of `run` on a big archive)."""
    from sync import analytics
    from sync.store import Store

    out = []
    async with await Store.connect(dsn) as store:
        for when, before in (("after the load, every day owed", MARK_ALL), ("again, nothing owed", None),
                             ("after 100 messages of one day changed", CHANGE)):
            if before:
                await store.execute(before)
            started = time.perf_counter()
            days = await analytics.refresh(store)
            out.append((f"refresh daily_account_overview, {when} ({days} days)", time.perf_counter() - started))
    return out


async def measure(dsn: str, messages: int) -> list[tuple[str, float]]:
    conn = await asyncpg.connect(dsn)
    try:
        figures = []
        started = time.perf_counter()
        await conn.execute(LEGACY, messages)
        await conn.execute(COMMS, messages)
        await conn.execute(SCANS)
        await conn.execute("VACUUM ANALYZE")
        figures.append((f"load {messages:,} messages per API (+ status history)", time.perf_counter() - started))
        history = await conn.fetchval("SELECT count(*) FROM twilio.message_status_history")
        print(f"loaded: {2 * messages:,} messages, {history:,} status-history rows in {figures[-1][1]:.0f} s", flush=True)
        for label, seconds in await refreshes(dsn):
            figures.append((label, seconds))
            print(f"{seconds:8.3f} s  {label}", flush=True)
        for label, query in {**QUERIES, **await dashboard_queries(conn)}.items():
            await conn.fetch(query)  # warm the cache: a dashboard asks the same again and again
            started = time.perf_counter()
            await conn.fetch(query)
            figures.append((label, time.perf_counter() - started))
            print(f"{figures[-1][1]:8.3f} s  {label}", flush=True)
        return figures
    finally:
        await conn.close()


async def run(messages: int) -> None:
    with tempfile.TemporaryDirectory(prefix="twa-") as tmp, procs.postgres(Path(tmp)) as server:
        databases = procs.Databases(server.dsn)
        try:
            await databases.prepare()
            dsn = await databases.fresh("analytics")
            print(f"Postgres {await databases.server_version()}", flush=True)
            await measure(dsn, messages)
        finally:
            await databases.drop_all()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, metavar="N",
                        help="messages per API (default 1,000,000)")
    args = parser.parse_args()
    anyio.run(run, args.messages)


if __name__ == "__main__":
    main()
