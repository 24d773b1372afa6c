"""The archive database: the only module with SQL (besides the migrations).

Each page is one transaction of a few round trips: the stored digests of its records, then
one `INSERT ... SELECT FROM unnest(...) ON CONFLICT ... DO UPDATE ... WHERE` of only the new
and changed ones, which never lets an older payload replace a newer one, then the scan's
checkpoint. A rescan of an unchanged window writes nothing, and a crash at any instant
leaves either the page and its checkpoint, or neither."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from sync import errors, logs
from sync.models import STREAMS, Page, PageWrite, Rejected, Scan, Window
from sync.plan import State
from sync.retry import Backoff, retrying
from sync.sources import BY_STREAM, Source
from sync.sources.base import DIGEST, RAW, RAW_TEXT

log = logs.get(__name__)
# A Postgres restart or failover takes seconds to a minute or two; wait that out, then say so.
RECONNECT = Backoff(attempts=None, base=0.2, cap=10.0, budget=180.0)

SCHEMA = "twilio"
# A materialized view's refresh recomputes it whole: about 10 s at 1M messages per API.
REFRESH_TIMEOUT = 3600.0


@functools.cache
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
    if source.hydrated:
        # A changed message is fetched again for its content and attempts (see hydrate.py).
        updates += ", hydrated_at = CASE WHEN t.raw IS DISTINCT FROM excluded.raw THEN NULL ELSE t.hydrated_at END"
    upd = source.updated_column
    # Rows whose digest matches never get here (see _write_page). A differing digest over an
    # equal payload (a row stored before digests existed) only refreshes the digest: the row
    # keeps its last_changed_at and RETURNING does not count it as changed.
    return (
        f"INSERT INTO {SCHEMA}.{source.stream} AS t ({', '.join(names)})\n"
        f"SELECT {', '.join(selects)} FROM unnest({params}) AS u({', '.join(names)})\n"
        f"ON CONFLICT ({source.key}) DO UPDATE SET {updates},\n"
        f"  last_changed_at = CASE WHEN t.raw IS DISTINCT FROM excluded.raw THEN now() ELSE t.last_changed_at END\n"
        f"WHERE t.raw_digest IS DISTINCT FROM excluded.raw_digest\n"
        f"  AND (excluded.{upd} IS NULL OR t.{upd} IS NULL OR excluded.{upd} >= t.{upd})\n"
        f"RETURNING (xmax = 0) AS inserted, (last_changed_at = now()) AS changed"
    )


@functools.cache
def digests_sql(source: Source) -> str:
    return f"SELECT {source.key} AS key, raw_digest FROM {SCHEMA}.{source.stream} WHERE {source.key} = ANY($1::text[])"


def _plan_json(state: State) -> str:
    return orjson.dumps(state.to_json()).decode()


def _columns_of(rows: list[tuple]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows)]


_SCAN_COLUMNS = (
    "id, account_sid, stream, kind, window_start, window_end, status, cursor, pages, records_seen, "
    "rows_inserted, rows_updated, problems, rejected, restarts, deleted, started_at, finished_at, plan, "
    "list_order, outside_window"
)


# Every row we write can be fetched from Twilio again, and a page commits with its own
# checkpoint: if Postgres crashes before flushing the last commits, they vanish together and the
# scan refetches those pages. So no commit needs to wait for its WAL to reach the disk.
SERVER_SETTINGS = {"synchronous_commit": "off"}


class Store:
    def __init__(self, pool: asyncpg.Pool, *, retry: Backoff = RECONNECT) -> None:
        self._pool = pool
        self._retry = retry
        self.on_retry: Callable[[str], None] | None = None  # told the cause of each retry (metrics)

    @classmethod
    async def connect(cls, dsn: str, *, max_size: int = 8) -> Store:
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, timeout=15, command_timeout=300,
                                             server_settings=SERVER_SETTINGS)
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

    async def start_scan(self, account_sid: str, stream: str, kind: str, window: Window, state: State) -> Scan:
        row = await self._fetchrow(
            "INSERT INTO twilio.scans (account_sid, stream, kind, window_start, window_end, cursor, plan) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_SCAN_COLUMNS}",
            account_sid, stream, kind, window.start, window.end, state.url, _plan_json(state),
        )
        return Scan.from_row(row)

    async def last_complete(self, account_sid: str, stream: str, kind: str) -> datetime | None:
        return await self._fetchval(
            "SELECT max(finished_at) FROM twilio.scans WHERE account_sid = $1 AND stream = $2 AND kind = $3 "
            "AND status = 'complete'",
            account_sid, stream, kind,
        )

    async def end_scan(self, scan_id: int, status: str, error: str | None = None) -> None:
        await self._execute(
            "UPDATE twilio.scans SET status = $2, error = $3, finished_at = now(), updated_at = now() "
            "WHERE id = $1 AND status = 'running'",
            scan_id, status, error,
        )

    async def restart_scan(self, scan: Scan, before: State, after: State) -> None:
        """Send a running scan back to its phase's first page (its page token went stale); rows stay."""
        moved = await self._execute(
            "UPDATE twilio.scans SET cursor = $3, plan = $4::jsonb, restarts = restarts + 1, updated_at = now() "
            "WHERE id = $1 AND status = 'running' AND cursor IS NOT DISTINCT FROM $2",
            scan.id, before.url, after.url, _plan_json(after),
        )
        if moved != "UPDATE 1":
            raise errors.ScanMovedError(f"scan {scan.id} of {scan.stream} was moved by someone else; not restarting it")

    async def save_page(self, source: Source, scan: Scan, before: State, after: State, page: Page, *,
                        seen: bool = False) -> PageWrite:
        """Upsert a page's rows and move the scan's checkpoint from `before` to `after`, atomically.

        Retried while the database is unreachable: the transaction either committed or did not,
        and a retry after a commit whose answer was lost sees the checkpoint already moved.
        With `seen`, the page's keys are kept for the scan's deletion check."""

        async def once() -> PageWrite:
            try:
                return await self._write_page(source, scan, before, after, page, seen=seen, one_by_one=False)
            except ROW_REFUSALS:
                # A value Postgres refuses aborts the whole statement; find it, row by row.
                return await self._write_page(source, scan, before, after, page, seen=seen, one_by_one=True)

        return await self._retrying(once, f"save a page of {source.stream}")

    async def _write_page(self, source: Source, scan: Scan, before: State, after: State, page: Page, *,
                          seen: bool, one_by_one: bool) -> PageWrite:
        async with self._pool.acquire() as conn, conn.transaction():
            results, refused = await _upsert(conn, source, page.rows, one_by_one=one_by_one)
            rejected = page.rejected + refused
            await _keep_rejected(conn, source, scan.account_sid, rejected, scan.id)
            if seen:
                # The proof a full scan needs to tell a deleted message from one it saw (see
                # deletion_candidates): every key it was served, in the page's transaction.
                keys = [row[0] for row in page.rows] + [r.key for r in page.rejected if r.key is not None]
                await conn.execute("INSERT INTO twilio.scan_seen (scan_id, key) SELECT $1, unnest($2::text[])",
                                   scan.id, keys)
            inserted = sum(1 for r in results if r["inserted"])
            updated = sum(1 for r in results if r["changed"] and not r["inserted"])
            order = after.order if source.sent_column is not None else None
            moved = await conn.execute(
                "UPDATE twilio.scans SET cursor = $3, plan = $4::jsonb, pages = pages + 1, records_seen = records_seen + $5, "
                "rows_inserted = rows_inserted + $6, rows_updated = rows_updated + $7, "
                "problems = problems + $8, rejected = rejected + $9, outside_window = outside_window + $10, "
                "list_order = $11, updated_at = now(), "
                "status = CASE WHEN $3::text IS NULL THEN 'complete' ELSE status END, "
                "finished_at = CASE WHEN $3::text IS NULL THEN now() END "
                "WHERE id = $1 AND status = 'running' AND cursor = $2",
                scan.id, before.url, after.url, _plan_json(after), page.seen, inserted, updated, page.problems,
                len(rejected), page.outside_window, order,
            )
            if moved != "UPDATE 1":
                now = await conn.fetchrow("SELECT status, cursor FROM twilio.scans WHERE id = $1", scan.id)
                if now is not None and now["cursor"] == after.url and (after.url or now["status"] == "complete"):
                    return PageWrite(inserted=0, updated=0, rejected=0)  # an earlier try committed; we missed the answer
                # Someone ended or moved this scan under us; committing would fork the checkpoint.
                raise errors.ScanMovedError(f"scan {scan.id} of {source.stream} was moved by someone else; not saving its page")
        return PageWrite(inserted=inserted, updated=updated, rejected=len(rejected))

    async def save_records(self, source: Source, account_sid: str, rows: list[tuple]) -> PageWrite:
        """Upsert rows fetched one by one (outside any scan), by the same rules as a page."""

        async def write(one_by_one: bool) -> PageWrite:
            async with self._pool.acquire() as conn, conn.transaction():
                results, refused = await _upsert(conn, source, rows, one_by_one=one_by_one)
                await _keep_rejected(conn, source, account_sid, refused, None)
            return PageWrite(inserted=sum(1 for r in results if r["inserted"]),
                             updated=sum(1 for r in results if r["changed"] and not r["inserted"]), rejected=len(refused))

        async def once() -> PageWrite:
            try:
                return await write(False)
            except ROW_REFUSALS:
                return await write(True)

        return await self._retrying(once, f"save records of {source.stream}")

    # ---- deletions: what a complete full scan did not see ----------------------------------

    async def clear_seen(self, account_sid: str, stream: str) -> None:
        """Drop the seen keys of scans that ended without using them (failed, abandoned)."""
        await self._execute(
            "DELETE FROM twilio.scan_seen WHERE scan_id IN (SELECT id FROM twilio.scans "
            "WHERE account_sid = $1 AND stream = $2 AND status <> 'running')",
            account_sid, stream,
        )

    async def seen_set_intact(self, scan: Scan) -> bool:
        """Whether the scan's seen keys can be trusted: scan_seen is UNLOGGED, and a server
        that restarted since the scan began may have emptied it (it does after a crash)."""
        return await self._fetchval("SELECT pg_postmaster_start_time() < $1", scan.started_at)

    async def deletion_candidates(self, source: Source, scan: Scan, limit: int) -> list[str]:
        """Archived, undeleted records created in the scan's window that the scan never saw."""
        created = source.created_column
        rows = await self._fetch(
            f"SELECT t.{source.key} FROM {SCHEMA}.{source.stream} AS t "
            f"WHERE t.account_sid = $1 AND t.deleted_at IS NULL AND t.{created} >= $2 AND t.{created} < $3 "
            f"AND NOT EXISTS (SELECT 1 FROM twilio.scan_seen AS s WHERE s.scan_id = $4 AND s.key = t.{source.key}) "
            f"ORDER BY t.{created} DESC LIMIT $5",
            scan.account_sid, scan.window.start, scan.window.end, scan.id, limit,
        )
        return [r[0] for r in rows]

    async def mark_deleted(self, source: Source, scan: Scan, keys: list[str]) -> int:
        """Mark records deleted (never remove them), count them on the scan, drop its seen keys."""

        async def once() -> int:
            async with self._pool.acquire() as conn, conn.transaction():
                marked = await conn.fetchval(
                    f"WITH m AS (UPDATE {SCHEMA}.{source.stream} SET deleted_at = now() "
                    f"WHERE {source.key} = ANY($1::text[]) AND account_sid = $2 AND deleted_at IS NULL RETURNING 1) "
                    "SELECT count(*) FROM m",
                    keys, scan.account_sid,
                )
                await conn.execute("UPDATE twilio.scans SET deleted = deleted + $2 WHERE id = $1", scan.id, marked)
                await conn.execute("DELETE FROM twilio.scan_seen WHERE scan_id = $1", scan.id)
            return marked

        return await self._retrying(once, f"mark deleted records of {source.stream}")

    # ---- leases: one replica per (account, stream) ------------------------------------------

    async def acquire_lease(self, account_sid: str, stream: str, holder: str, ttl: float) -> bool:
        """Take the lease if it is free, expired or already ours; whether we hold it now."""
        got = await self._fetchval(
            "INSERT INTO twilio.leases AS l (account_sid, stream, holder, expires_at) "
            "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) "
            "ON CONFLICT (account_sid, stream) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
            "acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE now() END "
            "WHERE l.holder = excluded.holder OR l.expires_at < now() RETURNING true",
            account_sid, stream, holder, ttl,
        )
        return bool(got)

    async def renew_leases(self, holder: str, ttl: float) -> set[tuple[str, str]]:
        """Extend every unexpired lease we hold; the (account, stream) pairs still ours."""
        rows = await self._fetch(
            "UPDATE twilio.leases SET expires_at = now() + make_interval(secs => $2) "
            "WHERE holder = $1 AND expires_at >= now() RETURNING account_sid, stream",
            holder, ttl,
        )
        return {(r[0], r[1]) for r in rows}

    async def release_leases(self, holder: str) -> None:
        """Let another replica take over at once (on a clean stop)."""
        await self._execute("UPDATE twilio.leases SET expires_at = now() - interval '1 second' WHERE holder = $1", holder)

    # ---- v1 message content (GET /v1/Messages/{id}) ------------------------------------------

    async def unhydrated(self, account_sid: str, since: datetime, limit: int) -> list[tuple[str, datetime]]:
        """New and changed v1 messages still retained at Twilio, newest first: (id, last_changed_at)."""
        rows = await self._fetch(
            "SELECT id, last_changed_at FROM twilio.comms_messages "
            "WHERE account_sid = $1 AND hydrated_at IS NULL AND created_at >= $2 ORDER BY created_at DESC LIMIT $3",
            account_sid, since, limit,
        )
        return [(r[0], r[1]) for r in rows]

    async def save_hydration(self, hydrated: list[tuple[str, datetime, object, str | None, str | None]]) -> None:
        """Store (id, last_changed_at, body, content json, attempts json) for messages that did
        not change since they were read; a message that did waits for the next fetch."""
        await self._retrying(lambda: self._pool.executemany(
            "UPDATE twilio.comms_messages SET body = $3, content = $4::jsonb, attempts = $5::jsonb, hydrated_at = now() "
            "WHERE id = $1 AND last_changed_at = $2 AND hydrated_at IS NULL",
            hydrated,
        ), "save message content")

    async def newest_records(self, accounts: list[str]) -> list[tuple[str, str, datetime | None]]:
        """(account, stream, newest creation time) of each account's streams. One account at a
        time: the creation-time index is read backwards until the account's newest row, where a
        GROUP BY would read the whole table."""
        out = []
        for stream in STREAMS:
            created = BY_STREAM[stream].created_column
            for account_sid in accounts:
                newest = await self._fetchval(f"SELECT max({created}) FROM {SCHEMA}.{stream} WHERE account_sid = $1",
                                              account_sid)
                out.append((account_sid, stream, newest))
        return out

    async def ping(self) -> None:
        """Fails (StoreUnavailableError) unless the database answers now: no retrying."""
        try:
            await self._pool.fetchval("SELECT 1", timeout=5)
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            raise errors.StoreUnavailableError(f"the database does not answer: {describe(exc)}") from exc

    # ---- per-account state ----------------------------------------------------------------

    async def paused_until(self, account_sid: str) -> datetime | None:
        return await self._fetchval("SELECT paused_until FROM twilio.accounts WHERE account_sid = $1", account_sid)

    async def save_pause(self, account_sid: str, until: datetime) -> None:
        """Remember Twilio's Retry-After for the account. One try only: the fetches that are
        waiting on Twilio must not also wait on the database."""
        try:
            await self._pool.execute(
                "INSERT INTO twilio.accounts AS a (account_sid, paused_until) VALUES ($1, $2) "
                "ON CONFLICT (account_sid) DO UPDATE SET paused_until = excluded.paused_until, updated_at = now() "
                "WHERE a.paused_until IS NULL OR a.paused_until < excluded.paused_until",
                account_sid, until,
            )
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            log.warning("store.pause_not_saved", account=account_sid, cause=describe(exc))

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

    async def refresh_materialized_view(self, view: str) -> None:
        """REFRESH a materialized view of schema twilio: CONCURRENTLY once it holds data (readers
        keep reading the previous rows), plainly if it never did. Retried while the database is away."""
        if not view.isidentifier():
            raise ValueError(view)

        async def once() -> None:
            async with self._pool.acquire() as conn:
                populated = await conn.fetchval(
                    "SELECT ispopulated FROM pg_matviews WHERE schemaname = $1 AND matviewname = $2", SCHEMA, view)
                if populated is None:
                    raise errors.StoreError(f"{SCHEMA}.{view} is not a materialized view: run `python -m sync migrate`")
                how = "CONCURRENTLY " if populated else ""
                await conn.execute(f'REFRESH MATERIALIZED VIEW {how}{SCHEMA}."{view}"', timeout=REFRESH_TIMEOUT)

        await self._retrying(once, f"refresh {SCHEMA}.{view}")

    # ---- the driver edge -------------------------------------------------------------------

    async def _retrying(self, operation, what: str):
        """Run `operation` until it succeeds, retrying while the database is away (restarting,
        failing over, out of connections); any other driver error becomes a StoreError."""

        async def once():
            try:
                return await operation()
            except TRANSIENT as exc:
                raise errors.StoreUnavailableError(f"cannot {what}: {describe(exc)}") from exc
            except asyncpg.PostgresError as exc:
                raise errors.StoreError(f"cannot {what}: {describe(exc)}") from exc

        def told(exc: BaseException, attempt: int) -> None:
            if self.on_retry is not None:
                self.on_retry(type(exc.__cause__ or exc).__name__)

        return await retrying(once, self._retry, errors.StoreUnavailableError, log=log, what=what, on_retry=told)

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._retrying(lambda: self._pool.fetch(query, *args), "read from the database")

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._retrying(lambda: self._pool.fetchrow(query, *args), "read from the database")

    async def _fetchval(self, query: str, *args: Any) -> Any:
        return await self._retrying(lambda: self._pool.fetchval(query, *args), "read from the database")

    async def _execute(self, query: str, *args: Any) -> str:
        return await self._retrying(lambda: self._pool.execute(query, *args), "write to the database")


# Errors of a database that is away for a while, not of what we asked: worth another try.
TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08: the connection broke
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # class 40: serialization failure, deadlock
    asyncpg.InterfaceError,  # a pooled connection the server closed
    # Releasing a connection that broke mid-statement fails in asyncpg's protocol state
    # ("cannot switch to state ..."); the pool has terminated it, a new one will be made.
    asyncpg.exceptions.InternalClientError,
)
# Errors about one value of one row: the row is kept aside and the page goes on.
ROW_REFUSALS = (
    asyncpg.DataError,  # class 22: a value the column type cannot hold
    asyncpg.IntegrityConstraintViolationError,  # class 23
    asyncpg.exceptions.ProgramLimitExceededError,  # class 54: e.g. too large for an index entry
)


async def _upsert(conn: asyncpg.Connection, source: Source, rows: list[tuple], *,
                  one_by_one: bool) -> tuple[list[asyncpg.Record], list[Rejected]]:
    """Upsert the new and changed rows; (RETURNING records, rows Postgres refused)."""
    if rows:
        # Unchanged records are dropped here, by digest: they are neither sent as parameters
        # nor touched (no row lock, no WAL), so a rescan costs reads only.
        stored = dict(await conn.fetch(digests_sql(source), [row[0] for row in rows]))
        rows = [row for row in rows if stored.get(row[0]) != row[DIGEST]]
    if not rows:
        return [], []
    if one_by_one:
        return await _upsert_each(conn, source, rows)
    return await conn.fetch(upsert_sql(source), *_columns_of(rows)), []


async def _keep_rejected(conn: asyncpg.Connection, source: Source, account_sid: str, rejected: list[Rejected],
                         scan_id: int | None) -> None:
    if rejected:
        await conn.executemany(
            "INSERT INTO twilio.rejected_records (account_sid, stream, record_key, reason, raw_text, digest, scan_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT ON CONSTRAINT rejected_records_once DO NOTHING",
            [(account_sid, source.stream, r.key, r.reason, r.raw_text, hashlib.sha256(r.raw_text.encode()).digest(),
              scan_id) for r in rejected],
        )


async def _upsert_each(conn: asyncpg.Connection, source: Source, rows: list[tuple]) -> tuple[list[asyncpg.Record], list[Rejected]]:
    """The page's upsert one row at a time, each in a savepoint, keeping the rows Postgres refuses aside."""
    sql = upsert_sql(source)
    results: list[asyncpg.Record] = []
    refused: list[Rejected] = []
    for row in rows:
        try:
            async with conn.transaction():
                results += await conn.fetch(sql, *_columns_of([row]))
        except ROW_REFUSALS as exc:
            raw, raw_text = row[RAW], row[RAW_TEXT]
            refused.append(Rejected(key=row[0], reason=f"Postgres refused it: {describe(exc)}", raw_text=raw_text or raw))
    return results, refused


def describe(exc: BaseException) -> str:
    """One line about a driver error, without the DSN (it may hold a password)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
