"""The real CLI, `python -m sync backfill`, run as a child process against the emulator.

backfill: from an empty database. rescan: the same window again, nothing changed; it must
write no rows. resume: a backfill killed with SIGKILL several times, then run again to the end;
what did each kill cost in requests, against the pages in hand it may lose (PAGES_IN_HAND x
--concurrency)? Each kill comes at the emulator's gate (its control route's "hold_after"): the
killed run gets an equal share of the clean run's requests answered, and is killed once a later
request of it is held, so it surely had work left, however loaded the machine.

Per-stream figures come from twilio.scans, which the worker keeps in the same transaction as
each page: records_seen over finished_at - started_at. Requests come from the emulator's own
count when it reports one (GET /_emulator/faults), otherwise from the pages in twilio.scans,
which cannot see a page fetched but never saved (so a crash looks cheaper than it was)."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import asyncpg

from bench import BenchError, procs
from bench.child import Child, Exit
from bench.console import say
from sync import models

POLL_SECONDS = 0.02  # how often the resume phase asks the emulator whether its gate holds a request


@dataclass(frozen=True)
class ScanFigure:
    """One row of twilio.scans: one pass over one stream."""

    id: int
    stream: str
    status: str
    pages: int
    records: int
    inserted: int
    updated: int
    seconds: float  # started_at -> finished_at

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Run:
    """One CLI run to completion."""

    exit: Exit
    scans: list[ScanFigure]
    span_seconds: float  # the first scan's start to the last scan's end: the archiving itself
    emulator_requests: int | None  # None: the emulator does not report its request count
    wal_bytes: int | None = None  # WAL the whole server wrote meanwhile (the embedded one serves only us)
    wal_full_pages: int | None = None  # of which full-page images: the first change of a page after a checkpoint
    rows_with_new_versions: int | None = None  # rescan only: rows whose xmin is newer than the run

    @property
    def records(self) -> int:
        return sum(s.records for s in self.scans)

    @property
    def pages(self) -> int:
        return sum(s.pages for s in self.scans)

    @property
    def rows_written(self) -> int:
        return sum(s.inserted + s.updated for s in self.scans)

    @property
    def requests(self) -> int:
        return self.emulator_requests if self.emulator_requests is not None else self.pages

    @property
    def rate(self) -> float:
        return self.records / self.span_seconds if self.span_seconds > 0 else 0.0


@dataclass(frozen=True)
class Kill:
    """One run of the resume phase killed with SIGKILL at the emulator's gate."""

    exit: Exit
    requests: int  # the emulator answered, in this run
    pages_saved: int  # pages this run committed (twilio.scans.pages)
    records_at_kill: int  # archived in all, after it

    @property
    def lost(self) -> int:
        """Requests answered whose pages were not saved: the pages in hand at the kill."""
        return self.requests - self.pages_saved


@dataclass
class Resume:
    kills: list[Kill]
    in_hand: int  # the bound on each kill's loss: PAGES_IN_HAND x the CLI's --concurrency
    second: Run
    requests: int  # every run, counted like the clean run's
    clean_requests: int
    seconds: float  # every run's wall time
    clean_seconds: float
    rows: dict[str, int] = field(default_factory=dict)  # archived rows per table after every run
    clean_rows: dict[str, int] = field(default_factory=dict)

    @property
    def lost_per_kill(self) -> float:
        return (self.requests - self.clean_requests) / max(len(self.kills), 1)


class Runner:
    """Runs `python -m sync backfill` over one fixed window, so every run covers the same records."""

    def __init__(self, running: procs.Emulator, since: str, until: str, workdir: Path,
                 options: tuple[str, ...] = (), *, python: str | Path = sys.executable, cwd: Path | None = None) -> None:
        self.running = running
        self.python, self.cwd = python, cwd  # whose `python -m sync`: ours, or a baseline's (bench/baseline.py)
        self.label_prefix = ""  # of its output files under workdir
        # A fixed --until also makes the killed run resumable: the worker resumes only a scan
        # whose window end is the one asked for. `options`: more flags, e.g. ("--concurrency", "16").
        self.args = ["backfill", "--since", since, "--until", until, *options]
        self.workdir = workdir

    def env(self, dsn: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_") and k != "DATABASE_URL"}
        if self.cwd is not None:  # another release's tree: nothing of ours on its path
            env.pop("PYTHONPATH", None)
        env.update(DATABASE_URL=dsn, TWILIO_ACCOUNT_SID=self.running.account_sid,
                   TWILIO_AUTH_TOKEN=self.running.auth_token, TWILIO_COMMS_BASE_URL=self.running.base_url,
                   TWILIO_API_BASE_URL=self.running.base_url)
        return env

    def with_python(self, python: str | Path, cwd: Path) -> Runner:
        """The same runs with another release's interpreter, from its tree."""
        other = copy.copy(self)
        other.python, other.cwd, other.label_prefix = python, cwd, "baseline-"
        other.args = [a for a in self.args if a != "--no-media"]  # it predates media: it reads none
        return other

    def with_options(self, *options: str) -> Runner:
        """The same runs with more flags, e.g. ("--source", "legacy")."""
        other = copy.copy(self)
        other.args = [*self.args, *options]
        return other

    def child(self, dsn: str, label: str) -> Child:
        return Child(self.args, self.env(dsn), self.workdir, self.label_prefix + label, python=self.python, cwd=self.cwd)

    async def requests_so_far(self) -> int | None:
        return await anyio.to_thread.run_sync(procs.request_count, self.running)

    async def run(self, dsn: str, label: str, *, all_scans: bool = False) -> Run:
        """One run to completion; its scans are the rows it added (or, with all_scans, every row)."""
        async with _connected(dsn) as conn:
            after_id = 0 if all_scans else await conn.fetchval("SELECT coalesce(max(id), 0) FROM twilio.scans")
            if not all_scans:  # the second half of a resume goes on from where the first was killed
                await procs.checkpoint(conn)
            lsn = await conn.fetchval("SELECT pg_current_wal_lsn()")
            fpi = await _full_page_images(conn)
        before = await self.requests_so_far()
        with self.child(dsn, label) as child:
            exit = await child.wait()
            if exit.returncode != 0:
                raise BenchError(f"{label}: `python -m sync backfill` exited with status {exit.returncode}: "
                                 f"{child.failure()}")
        after = await self.requests_so_far()
        async with _connected(dsn) as conn:
            scans = await _scans(conn, after_id)
            wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::bigint", lsn)
            fpi_after = await _full_page_images(conn)
            span = await conn.fetchval(
                "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM twilio.scans WHERE id > $1",
                after_id)
        unfinished = [s.stream for s in scans if s.status != "complete"]
        if unfinished:
            raise BenchError(f"{label}: scans of {', '.join(unfinished)} did not complete")
        requests = after - before if before is not None and after is not None else None
        fpis = fpi_after - fpi if fpi is not None and fpi_after is not None else None
        return Run(exit, scans, span or 0.0, requests, wal_bytes=wal, wal_full_pages=fpis)


async def backfill(runner: Runner, dsn: str) -> Run:
    return await runner.run(dsn, "backfill")


async def rescan(runner: Runner, dsn: str) -> Run:
    """The same backfill again over the archive it made; counts row versions it created."""
    async with _connected(dsn) as conn:
        # A row version written after this transaction has a younger xmin than this xid.
        xid = int(await conn.fetchval("SELECT pg_current_xact_id()::text")) % 2**32
    result = await runner.run(dsn, "rescan")
    async with _connected(dsn) as conn:
        changed = 0
        for table in models.STREAMS:
            changed += await conn.fetchval(
                f"SELECT count(*) FROM twilio.{table} WHERE age(xmin) < age($1::text::xid)", str(xid))
    result.rows_with_new_versions = changed
    return result


async def resume(runner: Runner, dsn: str, clean: Run, clean_dsn: str, kills: int, in_hand: int) -> Resume:
    """`kills` runs killed at the gate, each after an equal share of the clean run's requests,
    then one run to the end; what it all cost in requests against the clean run."""
    if clean.emulator_requests is None:
        raise BenchError("resume: the emulator reports no request count, so its gate cannot time the kills")
    share = max(1, clean.emulator_requests // (kills + 1))
    before = await runner.requests_so_far()
    killed: list[Kill] = []
    async with _connected(dsn) as conn:
        await procs.checkpoint(conn)
        for n in range(kills):
            asked, saved = await runner.requests_so_far(), await _saved_pages(conn)
            await _gate(runner, {"hold_after": share})
            try:
                with runner.child(dsn, f"resume-killed-{n + 1}") as child:
                    while not (await _gate(runner))["held"]:
                        if not child.running():
                            raise BenchError("resume: the backfill finished before it could be killed; "
                                             "use more --messages or fewer kills")
                        await anyio.sleep(POLL_SECONDS)
                    exit = child.kill()
            finally:
                await _gate(runner, {"release": True})
            now_saved = await _saved_pages(conn)
            at_kill = await conn.fetchval("SELECT coalesce(sum(records_seen), 0)::bigint FROM twilio.scans")
            kill = Kill(exit, await runner.requests_so_far() - asked, now_saved - saved, at_kill)
            killed.append(kill)
            say(f"kill {n + 1}: after {exit.seconds:.1f} s, {kill.requests:,} requests answered, "
                f"{kill.pages_saved:,} pages saved ({kill.lost} lost; at most {in_hand} in hand), "
                f"{at_kill:,} of {clean.records:,} records archived")
    second = await runner.run(dsn, "resume-again", all_scans=True)
    after = await runner.requests_so_far()
    return Resume(kills=killed, in_hand=in_hand, second=second, requests=after - before,
                  clean_requests=clean.emulator_requests,
                  seconds=sum(k.exit.seconds for k in killed) + second.exit.seconds, clean_seconds=clean.exit.seconds,
                  rows=await row_counts(dsn), clean_rows=await row_counts(clean_dsn))


async def _gate(runner: Runner, command: dict | None = None) -> dict:
    return await anyio.to_thread.run_sync(procs.fault_control, runner.running, command)


async def _sessions_gone(conn: asyncpg.Connection, tries: int) -> None:
    """Wait (`tries` x 20 ms at most) until no other client session is left on the database."""
    for _ in range(tries):
        others = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        if not others:
            return
        await anyio.sleep(0.02)


async def _saved_pages(conn: asyncpg.Connection) -> int:
    """Pages every scan has saved, once a killed CLI's sessions are gone (a commit it sent before
    the kill counts for its run, not the next one)."""
    await _sessions_gone(conn, tries=500)
    return await conn.fetchval("SELECT coalesce(sum(pages), 0)::bigint FROM twilio.scans")


@asynccontextmanager
async def _connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    try:
        conn = await asyncpg.connect(dsn, timeout=15)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise BenchError(f"cannot connect to the benchmark database: {type(exc).__name__}: {exc}") from exc
    try:
        yield conn
    finally:
        await conn.close()


async def _full_page_images(conn: asyncpg.Connection) -> int | None:
    """The server's count of full-page images written to WAL, once the CLI's sessions are gone.

    A session reports its WAL statistics when it ends, and the server ends a session a moment
    after its client has gone: wait for that (at most 2 s), or the last pages are not counted."""
    await _sessions_gone(conn, tries=100)
    try:
        return await conn.fetchval("SELECT wal_fpi FROM pg_stat_wal")
    except asyncpg.PostgresError:  # an older server, or a view without this column
        return None


async def _scans(conn: asyncpg.Connection, after_id: int) -> list[ScanFigure]:
    rows = await conn.fetch(
        "SELECT id, stream, status, pages, records_seen, rows_inserted, rows_updated, "
        "extract(epoch FROM finished_at - started_at)::float8 AS seconds "
        "FROM twilio.scans WHERE id > $1 ORDER BY id", after_id)
    return [ScanFigure(r["id"], r["stream"], r["status"], r["pages"], r["records_seen"], r["rows_inserted"],
                       r["rows_updated"], r["seconds"] or 0.0) for r in rows]


async def row_counts(dsn: str) -> dict[str, int]:
    async with _connected(dsn) as conn:
        return {t: await conn.fetchval(f"SELECT count(*) FROM twilio.{t}") for t in models.STREAMS}
