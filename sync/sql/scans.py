"""twilio.scans and twilio.scan_slices: a scan's row is its head's checkpoint (cursor and plan)
and its counters; each of its slices' rows is that slice's checkpoint."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import orjson

from sync import errors
from sync.models import ChainId, Counts, Head, Scan, Slice, Window
from sync.plan import State
from sync.sql.edge import Postgres

COLUMNS = (
    "id, account_sid, stream, kind, window_start, window_end, status, cursor, pages, records_seen, "
    "rows_inserted, rows_updated, problems, rejected, restarts, deleted, started_at, finished_at, plan, "
    "list_order, outside_window"
)
# How many slices a scan has, and how many of them are read: what `status` shows.
SLICE_COUNTS = (
    "(SELECT count(*) FROM twilio.scan_slices s WHERE s.scan_id = scans.id) AS slices, "
    "(SELECT count(*) FROM twilio.scan_slices s WHERE s.scan_id = scans.id AND s.cursor IS NULL) AS slices_done"
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

    async def restart(self, scan: Scan, chain: ChainId, before: State, after: State) -> None:
        """Send one of a running scan's chains back to its first page (its page
        token went stale); rows stay."""

        def moved() -> errors.ScanMovedError:
            return errors.ScanMovedError(f"scan {scan.id} of {scan.stream} was moved by someone else; not restarting it")

        async def once() -> None:
            async with self._db.transaction() as conn:
                if not await conn.fetchval("SELECT true FROM twilio.scans WHERE id = $1 AND status = 'running' "
                                           "FOR UPDATE", scan.id):
                    raise moved()
                if await _move(conn, scan, chain, before, after):
                    await conn.execute("UPDATE twilio.scans SET restarts = restarts + 1, updated_at = now() "
                                       "WHERE id = $1", scan.id)
                elif not await committed_before(conn, scan, chain, after):  # else an earlier try committed
                    raise moved()

        await self._db.retrying(once, f"restart a scan of {scan.stream}")

    async def slices(self, scan: Scan) -> list[tuple[Slice, State]]:
        """The scan's slices still to read: (id, state as last saved)."""
        rows = await self._db.fetch(
            "SELECT id, cursor, plan::text FROM twilio.scan_slices WHERE scan_id = $1 AND cursor IS NOT NULL ORDER BY id",
            scan.id,
        )
        return [(Slice(row["id"]), State.from_json(row["cursor"], orjson.loads(row["plan"]))) for row in rows]

    async def finish(self, scan: Scan) -> bool:
        """Mark the scan complete if its head and every slice are read; whether it now is."""
        return await self._db.fetchval(
            "UPDATE twilio.scans SET status = 'complete', finished_at = now(), updated_at = now() "
            "WHERE id = $1 AND status = 'running' AND cursor IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM twilio.scan_slices WHERE scan_id = $1 AND cursor IS NOT NULL) "
            "RETURNING true", scan.id,
        ) is True

    async def latest(self) -> list[asyncpg.Record]:
        """The last complete and the running scan of each (account, stream), newest first."""
        return await self._db.fetch(
            "SELECT DISTINCT ON (account_sid, stream, status = 'running') "
            f"{COLUMNS}, {SLICE_COUNTS} FROM twilio.scans WHERE status IN ('running', 'complete') "
            "ORDER BY account_sid, stream, status = 'running', started_at DESC"
        )


async def move_checkpoint(conn: asyncpg.Connection, scan: Scan, chain: ChainId, before: State, after: State,
                          counts: Counts, order: str | None) -> bool:
    """Move one chain's checkpoint from `before` to `after` and add a page's
    counts to the scan, in the page's transaction; False when the chain is not where `before`
    says, or the scan is no longer running (moved, or ended)."""
    counted = await conn.execute(
        "UPDATE twilio.scans SET pages = pages + $2, records_seen = records_seen + $3, "
        "rows_inserted = rows_inserted + $4, rows_updated = rows_updated + $5, problems = problems + $6, "
        "rejected = rejected + $7, outside_window = outside_window + $8, "
        "list_order = coalesce($9, list_order), updated_at = now() "
        "WHERE id = $1 AND status = 'running'",
        scan.id, counts.pages, counts.seen, counts.inserted, counts.updated, counts.problems, counts.rejected,
        counts.outside, order,
    )
    return counted == "UPDATE 1" and await _move(conn, scan, chain, before, after, counts.seen)


async def _move(conn: asyncpg.Connection, scan: Scan, chain: ChainId, before: State, after: State,
                seen: int | None = None) -> bool:
    if isinstance(chain, Head):
        moved = await conn.execute(
            "UPDATE twilio.scans SET cursor = $3, plan = $4::jsonb WHERE id = $1 AND cursor IS NOT DISTINCT FROM $2",
            scan.id, before.url, after.url, plan_json(after),
        )
    else:
        moved = await conn.execute(
            "UPDATE twilio.scan_slices SET cursor = $3, plan = $4::jsonb, pages = pages + $5, "
            "records_seen = records_seen + $6, finished_at = CASE WHEN $3::text IS NULL THEN now() END "
            "WHERE id = $1 AND scan_id = $7 AND cursor IS NOT DISTINCT FROM $2",
            chain.id, before.url, after.url, plan_json(after), 0 if seen is None else 1, seen or 0, scan.id,
        )
    return moved == "UPDATE 1"


async def add_slices(conn: asyncpg.Connection, scan: Scan, states: tuple[State, ...]) -> list[tuple[Slice, State]]:
    """Create slices of the scan, in the transaction of the page that split them off."""
    if not states:
        return []
    rows = await conn.fetch(
        "INSERT INTO twilio.scan_slices (scan_id, cursor, plan) "
        "SELECT $1, u.cursor, u.plan::jsonb FROM unnest($2::text[], $3::text[]) AS u(cursor, plan) "
        "RETURNING id, cursor, plan::text",
        scan.id, [s.url for s in states], [plan_json(s) for s in states],
    )
    return [(Slice(row["id"]), State.from_json(row["cursor"], orjson.loads(row["plan"]))) for row in rows]


async def committed_before(conn: asyncpg.Connection, scan: Scan, chain: ChainId, after: State) -> bool:
    """Whether the chain's checkpoint already is `after`: an earlier try committed and its
    answer was lost. The plan's state holds the chain's last position, so it tells the pages apart."""
    if isinstance(chain, Head):
        row = await conn.fetchrow("SELECT cursor, plan::text FROM twilio.scans WHERE id = $1", scan.id)
    else:
        row = await conn.fetchrow("SELECT cursor, plan::text FROM twilio.scan_slices WHERE id = $1", chain.id)
    return row is not None and row["cursor"] == after.url and orjson.loads(row["plan"] or "null") == after.to_json()
