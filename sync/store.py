"""The archive database: the only module with SQL (besides the migrations).

Each page is one round trip: its rows go in as one `INSERT ... SELECT FROM unnest(...)`
whose `ON CONFLICT ... DO UPDATE ... WHERE` skips rows whose payload did not change (a
rescan of an unchanged window writes nothing) and never lets an older payload replace a
newer one. The scan's checkpoint moves in the same transaction, so a crash at any instant
leaves either the page and its checkpoint, or neither."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import asyncpg

from sync import errors
from sync.models import STREAMS, PageWrite, Scan, Window
from sync.sources import BY_STREAM, Source

SCHEMA = "twilio"


@functools.lru_cache(maxsize=None)
def upsert_sql(source: Source) -> str:
    columns = source.all_columns
    names = [name for name, _ in columns]
    # Arrays of jsonb and text[] do not survive unnest, so they travel as text and are cast here.
    wire = {"jsonb": "text", "text[]": "text"}
    params = ", ".join(f"${i}::{wire.get(kind, kind)}[]" for i, (_, kind) in enumerate(columns, 1))
    selects = []
    for name, kind in columns:
        if kind == "jsonb":
            selects.append(f"u.{name}::jsonb")
        elif kind == "text[]":
            selects.append(f"string_to_array(u.{name}, E'\\n')")
        else:
            selects.append(f"u.{name}")
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != source.key)
    upd = source.updated_column
    return (
        f"INSERT INTO {SCHEMA}.{source.stream} AS t ({', '.join(names)})\n"
        f"SELECT {', '.join(selects)} FROM unnest({params}) AS u({', '.join(names)})\n"
        f"ON CONFLICT ({source.key}) DO UPDATE SET {updates}, last_changed_at = now()\n"
        f"WHERE t.raw IS DISTINCT FROM excluded.raw\n"
        f"  AND (excluded.{upd} IS NULL OR t.{upd} IS NULL OR excluded.{upd} >= t.{upd})\n"
        f"RETURNING (xmax = 0) AS inserted"
    )


def _columns_of(rows: list[tuple]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows)]


_SCAN_COLUMNS = (
    "id, account_sid, stream, kind, window_start, window_end, status, cursor, pages, records_seen, "
    "rows_inserted, rows_updated, problems, started_at, finished_at"
)


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, max_size: int = 8) -> Store:
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, timeout=15, command_timeout=300)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise errors.StoreError(f"cannot connect to the database: {describe(exc)}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def check_schema(self) -> None:
        exists = await self._fetchval("SELECT to_regclass('twilio.scans') IS NOT NULL")
        if not exists:
            raise errors.StoreError("the archive schema is missing: run `python -m sync migrate` first")

    # ---- scans and checkpoints ------------------------------------------------------------

    async def running_scan(self, account_sid: str, stream: str, kind: str) -> Scan | None:
        row = await self._fetchrow(
            f"SELECT {_SCAN_COLUMNS} FROM twilio.scans "
            "WHERE account_sid = $1 AND stream = $2 AND kind = $3 AND status = 'running'",
            account_sid, stream, kind,
        )
        return Scan.from_row(row) if row else None

    async def start_scan(self, account_sid: str, stream: str, kind: str, window: Window, cursor: str) -> Scan:
        row = await self._fetchrow(
            "INSERT INTO twilio.scans (account_sid, stream, kind, window_start, window_end, cursor) "
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_SCAN_COLUMNS}",
            account_sid, stream, kind, window.start, window.end, cursor,
        )
        return Scan.from_row(row)

    async def end_scan(self, scan_id: int, status: str, error: str | None = None) -> None:
        await self._execute(
            "UPDATE twilio.scans SET status = $2, error = $3, finished_at = now(), updated_at = now() "
            "WHERE id = $1 AND status = 'running'",
            scan_id, status, error,
        )

    async def save_page(self, source: Source, scan_id: int, rows: list[tuple], next_url: str | None,
                        seen: int, problems: int) -> PageWrite:
        """Upsert a page's rows and move the scan's checkpoint past it, atomically."""
        columns = _columns_of(rows)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                results = await conn.fetch(upsert_sql(source), *columns) if rows else []
                inserted = sum(1 for r in results if r["inserted"])
                updated = len(results) - inserted
                moved = await conn.execute(
                    "UPDATE twilio.scans SET cursor = $2, pages = pages + 1, records_seen = records_seen + $3, "
                    "rows_inserted = rows_inserted + $4, rows_updated = rows_updated + $5, "
                    "problems = problems + $6, updated_at = now(), "
                    "status = CASE WHEN $2::text IS NULL THEN 'complete' ELSE status END, "
                    "finished_at = CASE WHEN $2::text IS NULL THEN now() END "
                    "WHERE id = $1 AND status = 'running'",
                    scan_id, next_url, seen, inserted, updated, problems,
                )
                if moved != "UPDATE 1":
                    # Someone ended this scan under us; committing its page would fork the checkpoint.
                    raise errors.StoreError(f"scan {scan_id} is no longer running; not saving its page")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StoreError(f"cannot save a page of {source.stream}: {describe(exc)}") from exc
        return PageWrite(inserted=inserted, updated=updated)

    # ---- reading ---------------------------------------------------------------------------

    async def status(self) -> list[dict[str, Any]]:
        """Per (account, stream): last complete scan, in-flight checkpoint, rows, newest record."""
        scans = await self._fetch(
            "SELECT DISTINCT ON (account_sid, stream, status = 'running') "
            f"{_SCAN_COLUMNS} FROM twilio.scans WHERE status IN ('running', 'complete') "
            "ORDER BY account_sid, stream, status = 'running', started_at DESC"
        )
        out = []
        for stream in STREAMS:
            created = BY_STREAM[stream].created_column
            row = await self._fetchrow(f"SELECT count(*), max({created}) FROM twilio.{stream}")
            entry: dict[str, Any] = {"stream": stream, "rows": row[0], "newest": row[1], "complete": None, "running": None}
            for scan in scans:
                if scan["stream"] == stream:
                    entry["running" if scan["status"] == "running" else "complete"] = Scan.from_row(scan)
            out.append(entry)
        return out

    async def count(self, table: str) -> int:
        if table not in STREAMS:
            raise ValueError(table)
        return await self._fetchval(f"SELECT count(*) FROM twilio.{table}")

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._fetch(query, *args)

    # ---- the driver edge -------------------------------------------------------------------

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(query, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StoreError(describe(exc)) from exc

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await self._pool.fetchrow(query, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StoreError(describe(exc)) from exc

    async def _fetchval(self, query: str, *args: Any) -> Any:
        try:
            return await self._pool.fetchval(query, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StoreError(describe(exc)) from exc

    async def _execute(self, query: str, *args: Any) -> str:
        try:
            return await self._pool.execute(query, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StoreError(describe(exc)) from exc


def describe(exc: BaseException) -> str:
    """One line about a driver error, without the DSN (it may hold a password)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
