"""The job queue the replicas share the accounts through: pgqueuer, in the schema twilio_queue
(migration 0010 installs it; nothing here does).

One job per account, its dedupe key the account's SID, so an account is never queued or worked
twice at once however many replicas offer it. A job is one scan round of all the account's
streams (so its concurrency budget stays in one process); when the round ends the job puts
itself back on the queue, due when the next round is (`next_round`: pgqueuer's RetryRequested,
the same row again, so the dedupe key holds throughout). Any replica may take it then: the
replicas share the accounts as they come due. A replica that dies (kill -9) stops beating its
jobs' heartbeats, and after `heartbeat` seconds pgqueuer hands them to another, whose round
resumes the scans from their checkpoints.

    async with Queue.open(dsn) as queue:
        await queue.offer(["AC...", ...])          # at start and after each listing
        await queue.work(round_of, at_once=8, heartbeat=30.0, poll=15.0, stop=stop)

This room owns the queue's connection, its names and the translation of its errors into ours.
It may not scan or decide what a round does (service.py hands it the handler)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
import asyncpg
from pgqueuer import QueueManager
from pgqueuer.adapters.drivers.asyncpg import AsyncpgPoolDriver
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment, QueryQueueBuilder, QuerySchedulerBuilder
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.domain.errors import RetryRequested
from pgqueuer.domain.models import Job
from pgqueuer.domain.settings import DBSettings
from pgqueuer.domain.types import Channel, QueueExecutionMode

from sync import errors, logs

log = logs.get("sync.service")

SETTINGS = DBSettings(db_schema="twilio_queue")
ROUND = "scan_round"  # `run`: a scan round of one account
PASS = "backfill_pass"  # `backfill` over many accounts: one account's pass over the window
RESTART = 2.0  # after the queue's loop failed (the database went away), try again this much later
# pgqueuer logs every re-queue at INFO: one line per account per round is noise in our log.
logging.getLogger("pgqueuer").setLevel(logging.WARNING)


def queries(driver: AsyncpgPoolDriver) -> Queries:
    """pgqueuer's statements, every name in our schema."""
    return Queries(driver, qbe=QueryBuilderEnvironment(SETTINGS), qbq=QueryQueueBuilder(SETTINGS),
                   qbs=QuerySchedulerBuilder(SETTINGS))


def next_round(delay: float) -> RetryRequested:
    """Raised by a round's handler as it ends: the same job, due again in `delay` seconds."""
    return RetryRequested(delay=timedelta(seconds=max(0.0, delay)), reason="next round")


def account_of(job: Job) -> str:
    return (job.payload or b"").decode()


class Queue:
    """The queue over a small pool of its own (one connection listens for new jobs)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.queries = queries(AsyncpgPoolDriver(pool))

    @classmethod
    @asynccontextmanager
    async def open(cls, dsn: str) -> AsyncIterator[Queue]:
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, timeout=15)
        except (OSError, asyncpg.PostgresError) as exc:
            raise errors.StoreError(f"cannot open the job queue: {exc}") from exc
        try:
            yield cls(pool)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await pool.close()

    async def offer(self, account_sids: list[str], *, entrypoint: str = ROUND,
                    payloads: list[bytes] | None = None) -> int:
        """Put a job of each account on the queue unless one is already queued or being worked
        (the dedupe key: the SID for a round, "backfill:SID" for a pass); how many were new. The
        payload is the SID unless `payloads` are given (a pass carries its window)."""
        if not account_sids:
            return 0
        keys = list(account_sids) if entrypoint == ROUND else [f"backfill:{s}" for s in account_sids]
        try:
            added = await self.queries.enqueue([entrypoint] * len(account_sids),
                                               payloads or [s.encode() for s in account_sids],
                                               [0] * len(account_sids), dedupe_key=keys, on_conflict="skip")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StoreUnavailableError(f"cannot offer the accounts to the job queue: {exc}") from exc
        return sum(1 for job in added if job is not None)

    async def prune(self, older_than: timedelta) -> int:
        """Forget the queue's log of job events older than `older_than`; how many rows went.
        pgqueuer writes a row each time a job changes state (at least one a round) and never
        deletes one: at 500 accounts and a round a minute, 720,000 rows a day or more. Its per-second
        statistics go with them."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                gone = await conn.fetchval(
                    "WITH gone AS (DELETE FROM twilio_queue.pgqueuer_log WHERE created < now() - $1::interval "
                    "RETURNING 1) SELECT count(*) FROM gone", older_than)
                await conn.execute("DELETE FROM twilio_queue.pgqueuer_statistics WHERE created < now() - $1::interval",
                                   older_than)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.StoreUnavailableError(f"cannot prune the job queue's log: {exc}") from exc
        return gone

    async def work(self, handler: Callable[[Job], Awaitable[None]], *, at_once: int, heartbeat: float,
                   poll: float, stop: anyio.Event, entrypoint: str = ROUND, drain: bool = False) -> None:
        """Take jobs (at most `at_once` in hand) and run `handler` on each, until `stop`; the
        loop is started again when it fails (the database went away).

        `poll`: how often the queue is asked for due jobs besides its notifications. pgqueuer's
        trigger notifies on a new job but not on a re-queued one (a statement trigger sees no
        changed row), and its look-ahead for the next due job runs only when no job is in hand:
        without a poll, a round put back while this replica works others waits the whole
        dequeue timeout. `drain`: return once no job of `entrypoint` is left queued (a backfill).
        """
        while not stop.is_set():
            manager = QueueManager(self.queries, channel=Channel(SETTINGS.channel))
            manager.entrypoint(entrypoint)(handler)
            try:
                async with anyio.create_task_group() as tg:
                    async def stopper() -> None:
                        await stop.wait()
                        manager.shutdown.set()

                    tg.start_soon(stopper)
                    # One job a fetch: a replica that fetched several due rounds at once would
                    # take them all from the others (measured: 80% of the rounds to one of two).
                    await manager.run(batch_size=1, max_concurrent_tasks=max(at_once, 2),
                                      heartbeat_timeout=timedelta(seconds=heartbeat),
                                      dequeue_timeout=timedelta(seconds=max(0.1, min(heartbeat / 2, poll))),
                                      mode=QueueExecutionMode.drain if drain else QueueExecutionMode.continuous)
                    tg.cancel_scope.cancel()
                if drain:
                    return
            except Exception as exc:  # noqa: BLE001 - the library's loop, whatever ended it, starts again
                log.warning("queue.failed", cause=f"{type(exc).__name__}: {exc}")
                with anyio.move_on_after(RESTART):
                    await stop.wait()
