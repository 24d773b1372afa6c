"""The analysts' daily overview (twilio.daily_account_overview, migration 0012): the days its
writers owe it, and its refresh.

The overview is a table recomputed per (account, UTC day of creation). Every statement that inserts
or changes a row of a message table marks the (account, day)s of the rows it wrote in
twilio.overview_days_owed, in its own transaction (pages.py, hydration.py, deletions.py use what
is here), so a mark commits exactly when its rows do. The refresh (twilio.refresh_daily_account_overview)
takes the marks and recomputes only those days. This module may not decide when to refresh
(analytics.py does) nor write a message row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone

import asyncpg

from sync.sources import Source
from sync.sql.edge import Postgres

OWED = "twilio.overview_days_owed"

# A refresh reads the owed days only, but the first one after migrating to 0012 owes every day.
REFRESH_TIMEOUT = 3600.0


def day_sql(created: str) -> str:
    """The overview's day of the creation time `created` (SQL): its UTC date, as twilio.message_facts.day."""
    return f"({created} AT TIME ZONE 'UTC')::date"


def mark_sql(rows: str, created: str) -> str:
    """The INSERT that marks the (account_sid, day of `created`) of each row of `rows` (a relation
    or CTE with an account_sid column), one mark per distinct pair."""
    return f"INSERT INTO {OWED} (account_sid, day) SELECT DISTINCT account_sid, {day_sql(created)} FROM {rows}"


def upsert_marks(source: Source, rows: str) -> str:
    """The CTEs pages.py's upsert adds for a list counted in the overview: the (account, day) of each
    row its `written` CTE returns (key, account_sid, creation time), in its new form and, for a changed
    row, as it was (`before`: the statement's snapshot still reads the old row), since both days'
    overview rows changed. Only rows actually written: the upsert's WHERE leaves an older payload out."""
    key, created = source.key, source.created_column
    return (f",\nbefore AS (SELECT t.{key}, t.account_sid, t.{created} FROM twilio.{source.stream} AS t\n"
            f"  WHERE t.{key} IN (SELECT {key} FROM {rows})),\n"
            f"marked AS ({mark_sql('written', created)}\n"
            f"  UNION SELECT b.account_sid, {day_sql('b.' + created)} FROM before AS b JOIN written USING ({key}))")


def day_of(created: datetime | None) -> date | None:
    """`day_sql` in Python, for a time asyncpg sends as timestamptz: its UTC date (a naive time is
    local time to asyncpg, as to astimezone; the parsers give aware ones). Raises OverflowError
    where the UTC date is not a Python date; asyncpg refuses to send such a time too, so a page
    that holds one never reaches its marks (its COPY fails first)."""
    if created is None:
        return None
    if created.tzinfo is timezone.utc:  # nearly every time: the parsers' own
        return created.date()
    return created.astimezone(timezone.utc).date()


def days_of(source: Source, rows: Iterable[tuple]) -> set[tuple[str | None, date | None]]:
    """The distinct (account_sid, day) the rows of a list counted in the overview fall on."""
    account, created = source.overview_columns
    return {(row[account], day_of(row[created])) for row in rows}


async def mark(conn: asyncpg.Connection, days: set[tuple[str | None, date | None]]) -> None:
    """Mark these (account, day)s owed, in the caller's transaction: one small statement."""
    if days:
        accounts, dates = zip(*sorted(days, key=lambda d: (d[0] or "", d[1] or date.min)))
        await conn.execute(f"INSERT INTO {OWED} (account_sid, day) SELECT * FROM unnest($1::text[], $2::date[])",
                           list(accounts), list(dates))


class Views:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def refresh(self) -> int:
        """Recompute the owed (account, day)s of twilio.daily_account_overview, in a transaction of its
        own; how many. Readers keep reading the previous rows meanwhile. Retried while the database is away."""

        async def once() -> int:
            async with self._db.transaction() as conn:
                return await conn.fetchval("SELECT twilio.refresh_daily_account_overview()", timeout=REFRESH_TIMEOUT)

        return await self._db.retrying(once, "refresh twilio.daily_account_overview")
