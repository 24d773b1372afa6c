"""`run`: keep every stream of every account current, on a schedule, until told to stop.

The work goes through the job queue (queue.py): one job per account, each run of it one round
of the account's three streams, a turn each (turns.py: the scan schedule.py chose, and what its
end sets off); at its end the job is put back, due at the next round, for whichever replica takes
it then. So any number of replicas share the accounts, and a dead one's accounts are taken over
after the queue's heartbeat timeout. Which accounts it may work, and their offers to the queue, are
known.py's. This room owns the accounts' clients and the credentials' first check, a round, the heartbeat /healthz reads, the gauges,
/readyz's answer and the stop. Stopping (SIGTERM, Ctrl-C: cli.py sets `stop`) stops the fetching
at once, lets the pages already fetched commit for up to STOP_GRACE seconds, then abandons
whatever is still in flight: a page and its checkpoint commit together or not at all. It may not
scan, decide what a turn does, or reach the queue but through `Queue`."""

from __future__ import annotations

import os
import random
import secrets
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import anyio
import anyio.abc

from sync import errors, logs, machinery, sources, worker
# run's defaults (discovery, accounts at once, heartbeat) are in config.py, where the CLI reads them.
from sync.config import ACCOUNTS_AT_ONCE, DISCOVERY_INTERVAL, HEARTBEAT, TwilioSettings
from sync.http import TwilioClient
from sync.known import Known
from sync.metrics import ALL_ACCOUNTS, Metrics
from sync.models import STREAMS
from sync.privacy import KEEP, Bodies
from sync.roster import Roster
from sync.schedule import Schedule, StreamHealth, overdue
from sync.store import Store
from sync.turns import Key, Turns

log = logs.get(__name__)

STOP_GRACE = 5.0  # pages already fetched may commit for this long after a stop; then abandoned
QUEUE_LOG_KEPT = timedelta(days=1)  # the job queue's log of job events is kept this long


@dataclass
class Service:
    store: Store
    accounts: list[TwilioSettings]
    schedule: Schedule = Schedule()
    metrics: Metrics = field(default_factory=Metrics)
    bodies: Bodies = KEEP
    hydrate: bool = True
    media_interval: float | None = 86_400.0  # seconds between reads of a media list; None: no media (media.py)
    page_size: int = worker.PAGE_SIZE
    dsn: str = ""  # the queue's own connections go there
    heartbeat_timeout: float = HEARTBEAT  # a dead replica's accounts are taken over after this long
    accounts_at_once: int = ACCOUNTS_AT_ONCE
    roster: Roster | None = None  # with `subaccounts`, listed again every discovery_interval
    discovery_interval: float = DISCOVERY_INTERVAL
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
    heartbeat: float = field(default_factory=time.monotonic)
    stop: anyio.Event = field(default_factory=anyio.Event)
    turns: Turns = field(init=False)
    health: dict[Key, StreamHealth] = field(default_factory=dict)  # the streams whose turns this replica took
    fatal: errors.SyncError | None = None  # why the service stopped itself (refused credentials)
    _busy: dict[Key, bool] = field(default_factory=dict)  # a turn is in flight
    known: Known = field(init=False)  # the accounts this replica may work
    _clients: dict[str, TwilioClient] = field(default_factory=dict)  # one per account, for the service's life
    _checked: set[str] = field(default_factory=set)  # accounts whose credentials were not refused
    _rounds: int = 0  # rounds this replica completed
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.known = Known(self.accounts, self.metrics, self.roster, self.discovery_interval, self.heartbeat_timeout)
        self.turns = Turns(self.store, self.metrics, self.schedule, self.health, self.stop, bodies=self.bodies,
                           hydrate=self.hydrate, page_size=self.page_size,
                           media_interval=self.media_interval)

    # ---- the whole service ------------------------------------------------------------------

    async def run(self) -> None:
        """Until `stop` is set; then stop within STOP_GRACE seconds. Raises `fatal`, if set."""
        log.info("service.start", holder=self.holder, accounts=len(self.accounts), interval=self.schedule.interval,
                 full_interval=self.schedule.full_interval, lookback=self.schedule.lookback, hydrate=self.hydrate)
        from sync.queue import Queue

        assert self.dsn, "the service needs `dsn`: its job queue opens connections of its own"
        self._zero_series()
        async with Queue.open(self.dsn) as queue, AsyncExitStack() as clients:
            self._client_stack = clients
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._beat)
                tg.start_soon(self._gauges)
                tg.start_soon(self.known.keep, self.store, queue, self.stop, self._end)
                tg.start_soon(self._prune, queue)
                tg.start_soon(lambda: queue.work(self._round, at_once=self.accounts_at_once,
                                                 heartbeat=self.heartbeat_timeout,
                                                 poll=self._poll, stop=self.stop))
                await self.stop.wait()
                log.info("service.stopping", grace=STOP_GRACE)
                # The rounds see `stop`, end their scans and put their jobs back; what is not done
                # by then is abandoned mid-transaction, which rolls the page and its checkpoint back.
                with anyio.move_on_after(STOP_GRACE):
                    while any(self._busy.values()):
                        await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        log.info("service.stopped", holder=self.holder)
        if self.fatal is not None:
            raise self.fatal

    def _zero_series(self) -> None:
        """Every series an alert watches exists from the start at 0: `increase()` misses a
        counter's first step, and a sum over no series is no alert at all."""
        for api in ("comms", "legacy"):
            self.metrics.rate_limited.labels(api)
        for account in self.accounts:
            self.metrics.zero_account(account.account_sid)

    # ---- the accounts -----------------------------------------------------------------------

    def _end(self, exc: errors.SyncError) -> None:
        self.fatal = self.fatal or exc
        self.stop.set()

    async def _client(self, account: TwilioSettings) -> TwilioClient | None:
        """The account's client, made on its first round here after one small request checks
        its credentials: refused, an account named by hand ends the service (no scan of it could
        ever succeed); a listed one is reported alone and tried again next round. Twilio being
        unreachable ends nothing: the scans retry it."""
        sid = account.account_sid
        client = self._clients.get(sid)
        if client is None:
            client = self._clients[sid] = await self._client_stack.enter_async_context(
                machinery.twilio_client(account, store=self.store, observer=self.metrics))
        if sid in self._checked:
            return client
        try:
            await client.get_json("api", sources.legacy.list_url(sid, 1))
        except errors.FatalSourceError as exc:
            if sid in self.known.named:
                self._end(errors.FatalSourceError(f"account {sid}: {exc}", status=exc.status, code=exc.code))
            else:
                log.error("account.failed", account=sid, cause=str(exc))
            return None
        except errors.RetryableSourceError as exc:
            log.warning("service.twilio_unreachable", account=sid, cause=str(exc))
        self._checked.add(sid)
        return client

    @property
    def _poll(self) -> float:
        """How often the queue is asked for due rounds (queue.py says why it must be)."""
        return self.schedule.interval / 4

    # ---- one round of one account --------------------------------------------------------------

    async def _round(self, job) -> None:
        """One job of the queue: a turn of each of the account's streams at once, then the job
        back on the queue, due at the next round. An account this replica does not know (yet)
        goes back at once for another; one closed or no longer named ends its job."""
        from sync.queue import account_of, next_round

        sid = account_of(job)
        account = self.known.by_sid.get(sid)
        if account is None:
            if self.known.listed:
                log.info("round.dropped", account=sid, closed=sid in self.known.closed)
                return
            raise next_round(1.0)
        if self.stop.is_set():
            raise next_round(0.0)
        started = time.monotonic()
        try:
            client = await self._client(account)
        except errors.SyncError as exc:  # the database away while the client was made
            log.warning("round.not_started", account=sid, cause=str(exc))
            raise next_round(self.schedule.interval) from None
        if client is None:
            raise next_round(max(self.schedule.interval, 10.0))  # its credentials were refused
        log.info("round.start", account=sid, holder=self.holder)
        try:
            await self.store.accounts.worked(sid, self.holder)
        except errors.StoreError as exc:
            log.warning("round.not_noted", account=sid, cause=str(exc))
        async with anyio.create_task_group() as tg:
            for stream in STREAMS:
                tg.start_soon(self._turn, account, client, stream)
        self._rounds += 1
        self.metrics.rounds.inc()
        if self.stop.is_set():
            raise next_round(0.0)
        # Due at the next round, give or take half a poll: a round put back due at the very poll
        # of the replica that ran it (its polls keep time with its own rounds) went back to it
        # again and again, and the replica that started first kept most of the accounts.
        jitter = random.uniform(-0.5, 0.5) * self._poll
        raise next_round(self.schedule.interval - (time.monotonic() - started) + jitter)

    async def _turn(self, account: TwilioSettings, client: TwilioClient, stream: str) -> None:
        key = (account.account_sid, stream)
        health = self.health.setdefault(key, StreamHealth())
        health.started = time.monotonic()
        self._busy[key] = True
        try:
            await self.turns.take(account, client, stream)
        except errors.ScanMovedError as exc:
            log.warning("scan.fenced", account=key[0], stream=key[1], cause=str(exc))
        except errors.SyncError as exc:
            log.error("scan.failed", account=key[0], stream=key[1], cause=str(exc))
            health.last_error, health.failed_at = str(exc), time.monotonic()
        finally:
            self._busy[key] = False
            health.started = None

    # ---- liveness, gauges, readiness ------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            await anyio.sleep(1)

    async def _prune(self, queue) -> None:
        """Every hour, the queue's log of job events older than QUEUE_LOG_KEPT goes: it grows by a
        few rows a round and nothing else deletes it. Every replica prunes; deleting twice is harmless."""
        while True:
            try:
                gone = await queue.prune(QUEUE_LOG_KEPT)
                if gone:
                    log.info("queue.pruned", rows=gone)
            except errors.StoreError as exc:
                log.warning("queue.prune_failed", cause=str(exc))
            await anyio.sleep(3600)

    async def _gauges(self) -> None:
        while True:
            try:
                now = datetime.now(timezone.utc)
                ages: dict[tuple[str, str], float] = {}
                for account_sid, stream, newest in await self.store.status.newest_records(sorted(self.known.by_sid)):
                    if newest is not None:
                        key = (self.metrics.account(account_sid), stream)
                        # Over all accounts (account="*"): the newest record of any of them.
                        ages[key] = min(ages.get(key, float("inf")), (now - newest).total_seconds())
                for (account, stream), age in ages.items():
                    self.metrics.newest_record_age.labels(account, stream).set(age)
                allowed = max(3 * self.schedule.interval, 300.0)
                if not self.metrics.per_account:
                    archived, _, owed = await self.store.media.counts()
                    self.metrics.media_archived.labels(ALL_ACCOUNTS).set(archived)
                    self.metrics.media_owed.labels(ALL_ACCOUNTS).set(owed)
                self.metrics.accounts_unscanned.set(await self.store.accounts.unscanned(sorted(self.known.by_sid), allowed))
                self.metrics.ready.set(1 if await self.ready() == [] else 0)
            except errors.StoreError as exc:
                log.warning("service.gauges_failed", cause=str(exc))
            await anyio.sleep(min(15.0, self.schedule.interval))

    async def ready(self) -> list[str]:
        """Why this replica is not ready; empty when it is. Ready: the accounts are known, a
        round has completed here (or a heartbeat timeout has passed: a standby), the database answers,
        and no stream it works failed its last turn or has been scanning too long."""
        problems = []
        if not self.known.listed:
            problems.append("starting: the accounts have not been listed yet")
        elif self.known.by_sid and self._rounds == 0 and time.monotonic() - self._started < self.heartbeat_timeout:
            # Until then a replica may still be taking its first share; after it, one that got
            # none (more replicas than accounts) stands by, ready.
            problems.append("starting: no round of an account has completed on this replica yet")
        try:
            await self.store.ping()
        except errors.StoreError as exc:
            problems.append(str(exc))
        return problems + overdue(self.health, time.monotonic(), self.schedule)

    async def _sleep(self, seconds: float) -> None:
        with anyio.move_on_after(max(0.0, seconds)):
            await self.stop.wait()
