"""twilio.scans: a scan's row is its checkpoint (cursor and plan) and its counters."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import orjson

from sync import errors
from sync.models import Counts, Scan, Window
from sync.plan import State
from sync.sql.edge import Postgres

COLUMNS = (
    "id, account_sid, stream, kind, window_start, window_end, status, cursor, pages, records_seen, "
    "rows_inserted, rows_updated, problems, rejected, restarts, deleted, started_at, finished_at, plan, "
    "list_order, outside_window"
)


def plan_json(state: State) -> str:
    return orjson.dumps(state.to_json()).decode()


class Scans:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def running(self, account_sid: str, stream: str, kind: str) -> Scan | None:
        row = await self._db.fetchrow(
            f"SELECT {COLUMNS} FROM twilio.scans "
            "WHERE account_sid = $1 AND stream = $2 AND kind = $3 AND status = 'running'",
            account_sid, stream, kind,
        )
        return Scan.from_row(row) if row else None

    async def start(self, account_sid: str, stream: str, kind: str, window: Window, state: State) -> Scan:
        row = await self._db.fetchrow(
            "INSERT INTO twilio.scans (account_sid, stream, kind, window_start, window_end, cursor, plan) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}",
            account_sid, stream, kind, window.start, window.end, state.url, plan_json(state),
        )
        return Scan.from_row(row)

    async def last_complete(self, account_sid: str, stream: str, kind: str) -> datetime | None:
        return await self._db.fetchval(
            "SELECT max(finished_at) FROM twilio.scans WHERE account_sid = $1 AND stream = $2 AND kind = $3 "
            "AND status = 'complete'",
            account_sid, stream, kind,
        )

    async def end(self, scan_id: int, status: str, error: str | None = None) -> None:
        await self._db.execute(
            "UPDATE twilio.scans SET status = $2, error = $3, finished_at = now(), updated_at = now() "
            "WHERE id = $1 AND status = 'running'",
            scan_id, status, error,
        )

    async def restart(self, scan: Scan, before: State, after: State) -> None:
        """Send a running scan back to its phase's first page (its page token went stale); rows stay."""
        moved = await self._db.execute(
            "UPDATE twilio.scans SET cursor = $3, plan = $4::jsonb, restarts = restarts + 1, updated_at = now() "
            "WHERE id = $1 AND status = 'running' AND cursor IS NOT DISTINCT FROM $2",
            scan.id, before.url, after.url, plan_json(after),
        )
        if moved != "UPDATE 1":
            raise errors.ScanMovedError(f"scan {scan.id} of {scan.stream} was moved by someone else; not restarting it")

    async def latest(self) -> list[asyncpg.Record]:
        """The last complete and the running scan of each (account, stream), newest first."""
        return await self._db.fetch(
            "SELECT DISTINCT ON (account_sid, stream, status = 'running') "
            f"{COLUMNS} FROM twilio.scans WHERE status IN ('running', 'complete') "
            "ORDER BY account_sid, stream, status = 'running', started_at DESC"
        )


async def move_checkpoint(conn: asyncpg.Connection, scan: Scan, before: State, after: State, counts: Counts,
                          order: str | None) -> bool:
    """Move the scan's checkpoint from `before` to `after` and add a page's counts, in the
    page's transaction; False when the scan is not where `before` says (moved, or ended)."""
    moved = await conn.execute(
        "UPDATE twilio.scans SET cursor = $3, plan = $4::jsonb, pages = pages + $12, records_seen = records_seen + $5, "
        "rows_inserted = rows_inserted + $6, rows_updated = rows_updated + $7, "
        "problems = problems + $8, rejected = rejected + $9, outside_window = outside_window + $10, "
        "list_order = $11, updated_at = now(), "
        "status = CASE WHEN $3::text IS NULL THEN 'complete' ELSE status END, "
        "finished_at = CASE WHEN $3::text IS NULL THEN now() END "
        "WHERE id = $1 AND status = 'running' AND cursor = $2",
        scan.id, before.url, after.url, plan_json(after), counts.seen, counts.inserted, counts.updated,
        counts.problems, counts.rejected, counts.outside, order, counts.pages,
    )
    return moved == "UPDATE 1"


async def committed_before(conn: asyncpg.Connection, scan: Scan, after: State) -> bool:
    """Whether the checkpoint already is `after`: an earlier try committed and its answer was lost."""
    now = await conn.fetchrow("SELECT status, cursor FROM twilio.scans WHERE id = $1", scan.id)
    return now is not None and now["cursor"] == after.url and bool(after.url or now["status"] == "complete")
