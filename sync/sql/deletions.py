"""twilio.scan_seen and deleted_at: what a complete full scan did not see (see sync/deletions.py)."""

from __future__ import annotations

import asyncpg

from sync.models import Scan
from sync.sources import Source
from sync.sql import views
from sync.sql.edge import SCHEMA, Postgres, key_list


async def keep_seen(conn: asyncpg.Connection, scan: Scan, keys: list[str]) -> None:
    """The proof a full scan needs to tell a deleted message from one it saw (see
    Deletions.candidates): every key it was served, in the page's transaction."""
    if not keys:
        return
    keys_sql, arg = key_list(keys)
    await conn.execute(f"INSERT INTO twilio.scan_seen (scan_id, key) SELECT $2, unnest({keys_sql})", arg, scan.id)


class Deletions:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def clear_seen(self, account_sid: str, stream: str) -> None:
        """Drop the seen keys of scans that ended without using them (failed, abandoned)."""
        await self._db.execute(
            "DELETE FROM twilio.scan_seen WHERE scan_id IN (SELECT id FROM twilio.scans "
            "WHERE account_sid = $1 AND stream = $2 AND status <> 'running')",
            account_sid, stream,
        )

    async def seen_set_intact(self, scan: Scan) -> bool:
        """Whether the scan's seen keys can be trusted: scan_seen is UNLOGGED, and a server
        that restarted since the scan began may have emptied it (it does after a crash)."""
        return await self._db.fetchval("SELECT pg_postmaster_start_time() < $1", scan.started_at)

    async def candidates(self, source: Source, scan: Scan, limit: int) -> list[str]:
        """Archived, undeleted records created in the scan's window that the scan never saw."""
        created = source.created_column
        rows = await self._db.fetch(
            f"SELECT t.{source.key} FROM {SCHEMA}.{source.stream} AS t "
            f"WHERE t.account_sid = $1 AND t.deleted_at IS NULL AND t.{created} >= $2 AND t.{created} < $3 "
            f"AND NOT EXISTS (SELECT 1 FROM twilio.scan_seen AS s WHERE s.scan_id = $4 AND s.key = t.{source.key}) "
            f"ORDER BY t.{created} DESC LIMIT $5",
            scan.account_sid, scan.window.start, scan.window.end, scan.id, limit,
        )
        return [r[0] for r in rows]

    async def mark(self, source: Source, scan: Scan, keys: list[str]) -> int:
        """Mark records deleted (never remove them), count them on the scan, drop its seen keys."""

        async def once() -> int:
            async with self._db.transaction() as conn:
                # A deletion changes the overview's counts of its message's day: marked owed with it.
                created = source.created_column
                owed = f", owed AS ({views.mark_sql('m', created)}) " if source.in_overview else " "
                marked = await conn.fetchval(
                    f"WITH m AS (UPDATE {SCHEMA}.{source.stream} SET deleted_at = now() "
                    f"WHERE {source.key} = ANY($1::text[]) AND account_sid = $2 AND deleted_at IS NULL "
                    f"RETURNING account_sid, {created}){owed}"
                    "SELECT count(*) FROM m",
                    keys, scan.account_sid,
                )
                await conn.execute("UPDATE twilio.scans SET deleted = deleted + $2 WHERE id = $1", scan.id, marked)
                await conn.execute("DELETE FROM twilio.scan_seen WHERE scan_id = $1", scan.id)
            return marked

        return await self._db.retrying(once, f"mark deleted records of {source.stream}")
