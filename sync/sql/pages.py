"""A page's rows, written in one transaction with its checkpoint.

Each page is a few round trips: the stored digests of its records; then, typed only now and
only they (sources.rows), the records the table does not hold copied straight into it (binary
COPY, the cheapest way in for both sides) and the changed ones copied into a temporary stage
table and moved from there by one `INSERT ... SELECT ... ON CONFLICT ... DO UPDATE ... WHERE`,
which never lets an older payload replace a newer one; then the scan's checkpoint. A rescan of
an unchanged window types and writes nothing, and a crash at any instant leaves either the page
and its checkpoint, or neither. The statements derive from the stream's column declaration
(sync/sources/base.py): a row's layout is known there, never here."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable

import asyncpg

from sync import errors, sources
from sync.models import ChainId, Counts, Head, Page, PageWrite, Rejected, Scan, Slice
from sync.plan import State
from sync.sources import Source
from sync.sql import deletions, scans, views
from sync.sql.edge import ROW_REFUSALS, SCHEMA, Postgres, describe, key_list


def stage_of(source: Source) -> str:
    """The stream's stage: a temporary table of the connection, in the table's row layout."""
    return f"twilio_archive_stage_{source.stream}"


@functools.cache
def stage_sql(source: Source) -> str:
    columns = ", ".join(f"{name} {kind}" for name, kind in source.all_columns)
    # A temporary table is the session's own, so concurrent pages never meet in it; created in
    # the transaction that uses it, it also works behind a pooler that hands out sessions per
    # transaction. Emptied by each upsert, and at commit whatever happens.
    return f"CREATE TEMP TABLE IF NOT EXISTS {stage_of(source)} ({columns}) ON COMMIT DELETE ROWS"


@functools.cache
def upsert_sql(source: Source, *, drain: bool) -> str:
    """The move from the stage into the table, counting (inserted, updated). With `drain`, the
    stage is emptied as it is read, for a transaction that upserts more than once (row by row)."""
    names = ", ".join(name for name, _ in source.all_columns)
    updates = ", ".join(f"{n} = excluded.{n}" for n, _ in source.all_columns if n != source.key)
    if source.hydrated:
        # A changed message is fetched again for its content and attempts (see hydrate.py).
        updates += ", hydrated_at = CASE WHEN t.raw IS DISTINCT FROM excluded.raw THEN NULL ELSE t.hydrated_at END"
    upd = source.updated_column
    # Rows whose digest matches never get here (see upsert). A differing digest over an
    # equal payload (a row stored before digests existed) only refreshes the digest: the row
    # keeps its last_changed_at and is not counted as changed. A page's one upsert reads the
    # stage as is (ON COMMIT DELETE ROWS empties it): deleting its rows one by one and keeping
    # them in the CTE cost Postgres more than writing them. Counted here, not by one
    # RETURNING record per row, which the client would have to decode.
    stage = f"pg_temp.{stage_of(source)}"
    rows = "staged" if drain else stage
    key = source.key
    # The overview's days of the rows actually written (sync/sql/views.py).
    marks = views.upsert_marks(source, rows) if source.in_overview else ""
    return (
        (f"WITH staged AS (DELETE FROM {stage} RETURNING *),\n" if drain else "WITH ")
        + f"written AS (\n"
        f"INSERT INTO {SCHEMA}.{source.stream} AS t ({names})\n"
        f"SELECT {names} FROM {rows}\n"
        f"ON CONFLICT ({key}) DO UPDATE SET {updates},\n"
        f"  last_changed_at = CASE WHEN t.raw IS DISTINCT FROM excluded.raw THEN now() ELSE t.last_changed_at END\n"
        f"WHERE t.raw_digest IS DISTINCT FROM excluded.raw_digest\n"
        f"  AND (excluded.{upd} IS NULL OR t.{upd} IS NULL OR excluded.{upd} >= t.{upd})\n"
        f"RETURNING (xmax = 0) AS inserted, (last_changed_at = now()) AS changed"
        + (f", t.{key}, t.account_sid, t.{source.created_column}" if source.in_overview else "") + f"){marks}\n"
        f"SELECT count(*) FILTER (WHERE inserted)::int, count(*) FILTER (WHERE changed AND NOT inserted)::int FROM written"
    )


@functools.cache
def digests_sql(source: Source, keys: str) -> str:
    """The stored digests of the keys that `keys` (the SQL of edge.key_list) lists, and whether each
    stored row lists problems: an unchanged record is counted by it, not typed again."""
    return (f"SELECT {source.key} AS key, raw_digest, parse_problems IS NOT NULL AS flagged "
            f"FROM {SCHEMA}.{source.stream} WHERE {source.key} = ANY({keys})")


@dataclasses.dataclass(frozen=True)
class Batch:
    """What an upsert compares and writes: each record's key and digest, and the rows of those
    at the given positions, made only when asked (a page's unchanged records never are)."""

    keys: list[str]
    digests: list[bytes]
    rows: Callable[[list[int]], list[tuple]]

    @classmethod
    def of_page(cls, source: Source, account_sid: str, page: Page) -> Batch:
        records = page.records
        return cls([r.key for r in records], [r.digest for r in records],
                   lambda wanted: sources.rows(source, account_sid, [records[i] for i in wanted]))

    @classmethod
    def of_rows(cls, source: Source, rows: list[tuple]) -> Batch:
        return cls([source.key_of(row) for row in rows], [source.digest_of(row) for row in rows],
                   lambda wanted: [rows[i] for i in wanted])


@dataclasses.dataclass(frozen=True)
class Upserted:
    inserted: int
    updated: int
    refused: list[Rejected]  # rows Postgres refused, to keep aside
    problems: int  # records stored with something that could not be parsed (PageWrite.problems)


class Pages:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def save(self, source: Source, scan: Scan, chain: ChainId, before: State, after: State, page: Page, *,
                   spawn: tuple[State, ...] = (), seen: bool = False) -> tuple[PageWrite, list[tuple[Slice, State]]]:
        """Upsert a page's rows, move its chain's checkpoint from `before`
        to `after` and create the slices it split off, atomically; (what was written, the new
        slices as (id, state)).

        Retried while the database is unreachable: the transaction either committed or did not,
        and a retry after a commit whose answer was lost sees the checkpoint already moved (its
        slices are then found by `Scans.slices`). With `seen`, the page's keys are kept for the
        scan's deletion check."""

        async def once() -> tuple[PageWrite, list[tuple[Slice, State]]]:
            try:
                return await self._write(source, scan, chain, before, after, page, spawn, seen=seen, one_by_one=False)
            except ROW_REFUSALS:
                # A value Postgres refuses aborts the whole statement; find it, row by row.
                return await self._write(source, scan, chain, before, after, page, spawn, seen=seen, one_by_one=True)

        return await self._db.retrying(once, f"save a page of {source.stream}")

    async def _write(self, source: Source, scan: Scan, chain: ChainId, before: State, after: State, page: Page,
                     spawn: tuple[State, ...], *, seen: bool, one_by_one: bool) -> tuple[PageWrite, list[tuple[Slice, State]]]:
        async with self._db.transaction() as conn:
            done = await upsert(conn, source, Batch.of_page(source, scan.account_sid, page), one_by_one=one_by_one)
            rejected = page.rejected + done.refused
            await keep_rejected(conn, source, scan.account_sid, rejected, scan.id)
            if seen:
                await deletions.keep_seen(conn, scan, page.keys + [r.key for r in page.rejected if r.key is not None])
            written = PageWrite(inserted=done.inserted, updated=done.updated, rejected=len(rejected),
                                problems=done.problems)
            # The list's order is what the head reads; a slice reads a filtered query.
            order = after.order if source.sent_column is not None and isinstance(chain, Head) else None
            if not await scans.move_checkpoint(conn, scan, chain, before, after, Counts.of_page(page, written), order):
                if await scans.committed_before(conn, scan, chain, after):
                    # An earlier try committed; we missed the answer. Its records are read, as stored.
                    return PageWrite(inserted=0, updated=0, rejected=0, problems=done.problems), []
                # Someone ended or moved this scan under us; committing would fork the checkpoint.
                raise errors.ScanMovedError(f"scan {scan.id} of {source.stream} was moved by someone else; not saving its page")
            slices = await scans.add_slices(conn, scan, spawn)
        return written, slices

    async def save_records(self, source: Source, account_sid: str, rows: list[tuple]) -> PageWrite:
        """Upsert rows fetched one by one (outside any scan), by the same rules as a page."""
        batch = Batch.of_rows(source, rows)

        async def write(one_by_one: bool) -> PageWrite:
            async with self._db.transaction() as conn:
                done = await upsert(conn, source, batch, one_by_one=one_by_one)
                await keep_rejected(conn, source, account_sid, done.refused, None)
            return PageWrite(inserted=done.inserted, updated=done.updated, rejected=len(done.refused),
                             problems=done.problems)

        async def once() -> PageWrite:
            try:
                return await write(False)
            except ROW_REFUSALS:
                return await write(True)

        return await self._db.retrying(once, f"save records of {source.stream}")


async def upsert(conn: asyncpg.Connection, source: Source, batch: Batch, *, one_by_one: bool) -> Upserted:
    """Upsert the new and changed records, typing only them."""
    if not batch.keys:
        return Upserted(0, 0, [], 0)
    # Unchanged records are dropped here, by digest: they are neither typed, sent nor touched (no
    # row lock, no WAL), so a rescan costs reads only.
    keys_sql, keys = key_list(batch.keys)
    stored = {key: (digest, flagged) for key, digest, flagged in await conn.fetch(digests_sql(source, keys_sql), keys)}
    new: list[int] = []
    changed: list[int] = []
    problems = 0
    for i, (key, digest) in enumerate(zip(batch.keys, batch.digests)):
        was = stored.get(key)
        if was is None:
            new.append(i)
        elif was[0] != digest:
            changed.append(i)
        else:
            problems += was[1]  # counted as its stored row says: the same payload, typed when it was stored
    if one_by_one:
        rows = batch.rows(sorted(new + changed))
        problems += sum(1 for row in rows if source.problems_of(row) is not None)
        await conn.execute(stage_sql(source))
        (inserted, updated), refused = await _upsert_each(conn, source, rows)
        return Upserted(inserted, updated, refused, problems)
    rows = batch.rows(new + changed)
    problems += sum(1 for row in rows if source.problems_of(row) is not None)
    inserted = updated = 0
    if new:
        inserted = await _insert(conn, source, rows[:len(new)])
        if source.in_overview:
            # Their days from the rows in hand: one small statement, no read of what was copied.
            await views.mark(conn, views.days_of(source, rows[:len(new)]))
    if changed:
        await conn.execute(stage_sql(source))
        more, updated = await _upsert(conn, source, rows[len(new):], drain=False)
        inserted += more
    return Upserted(inserted, updated, [], problems)


async def _insert(conn: asyncpg.Connection, source: Source, rows: list[tuple]) -> int:
    """Copy rows whose keys the table did not hold straight into it: no stage to fill and read,
    no speculative insertion of ON CONFLICT, which were a third of what Postgres did for a new
    row besides its trigger and indexes (a backfill's rows are nearly all new). Another transaction
    inserting one of these keys meanwhile makes the COPY fail on the key (a row refusal): the
    page is then written again row by row through the stage, whose upsert settles it."""
    status = await conn.copy_records_to_table(source.stream, schema_name=SCHEMA, records=rows,
                                              columns=[name for name, _ in source.all_columns])
    return int(status.rpartition(" ")[2])


async def _upsert(conn: asyncpg.Connection, source: Source, rows: list[tuple], *, drain: bool) -> tuple[int, int]:
    await conn.copy_records_to_table(stage_of(source), schema_name="pg_temp", records=rows,
                                     columns=[name for name, _ in source.all_columns])
    inserted, updated = await conn.fetchrow(upsert_sql(source, drain=drain))
    return inserted, updated


async def _upsert_each(conn: asyncpg.Connection, source: Source,
                       rows: list[tuple]) -> tuple[tuple[int, int], list[Rejected]]:
    """The page's upsert one row at a time, each in a savepoint, keeping the rows Postgres refuses aside."""
    inserted = updated = 0
    refused: list[Rejected] = []
    for row in rows:
        try:
            async with conn.transaction():
                one_inserted, one_updated = await _upsert(conn, source, [row], drain=True)
        except ROW_REFUSALS as exc:
            refused.append(Rejected(key=source.key_of(row), reason=f"Postgres refused it: {describe(exc)}",
                                    raw_text=source.exact_json(row)))
            continue
        inserted, updated = inserted + one_inserted, updated + one_updated
    return (inserted, updated), refused


async def keep_rejected(conn: asyncpg.Connection, source: Source, account_sid: str, rejected: list[Rejected],
                        scan_id: int | None) -> None:
    if rejected:
        await conn.executemany(
            "INSERT INTO twilio.rejected_records (account_sid, stream, record_key, reason, raw_text, digest, scan_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT ON CONSTRAINT rejected_records_once DO NOTHING",
            [(account_sid, source.stream, r.key, r.reason, r.raw_text, hashlib.sha256(r.raw_text.encode()).digest(),
              scan_id) for r in rejected],
        )
