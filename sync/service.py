"""`run`: keep every stream of every account current, on a schedule, until told to stop.

Per (account, stream) one loop, and only while this replica holds the stream's lease
(leases.py), so replicas never scan the same stream at once. Each pass of a loop is one turn
(turns.py): the scan schedule.py chose, and what its end sets off. This room owns the loops
themselves: the accounts' clients, the credentials' first check, a stream's loop (ask for its
lease, take a turn, wait for the next), the heartbeat /healthz reads, the gauges, /readyz's
answer and the stop. Stopping (SIGTERM, Ctrl-C: cli.py sets `stop`) stops the fetching at
once, lets the pages already fetched commit for up to STOP_GRACE seconds, then abandons
whatever is still in flight: a page and its checkpoint commit together or not at all. It may
not scan, decide what a turn does, or touch a lease but through `Leases`."""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import anyio
import anyio.abc

from sync import errors, logs, machinery, sources, worker
from sync.config import TwilioSettings
from sync.http import TwilioClient
from sync.leases import LEASE_TTL, Leases
from sync.metrics import Metrics
from sync.models import STREAMS
from sync.privacy import KEEP, Bodies
from sync.roster import Roster
from sync.schedule import Schedule, overdue
from sync.store import Store
from sync.turns import Turns

log = logs.get(__name__)

STOP_GRACE = 5.0  # pages already fetched may commit for this long after a stop; then abandoned
DISCOVERY_INTERVAL = 300.0  # with --subaccounts: a new subaccount is archived within this long


@dataclass
class Service:
    store: Store
    accounts: list[TwilioSettings]
    schedule: Schedule = Schedule()
    metrics: Metrics = field(default_factory=Metrics)
    bodies: Bodies = KEEP
    hydrate: bool = True
    page_size: int = worker.PAGE_SIZE
    lease_ttl: float = LEASE_TTL  # renewed every third of it
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
    heartbeat: float = field(default_factory=time.monotonic)
    stop: anyio.Event = field(default_factory=anyio.Event)
    leases: Leases = field(init=False)
    turns: Turns = field(init=False)
    _busy: dict[tuple[str, str], bool] = field(default_factory=dict)  # a scan is in flight
    roster: Roster | None = None  # with `subaccounts`, the accounts are listed again every discovery_interval
    discovery_interval: float = DISCOVERY_INTERVAL
    _running: dict[str, anyio.CancelScope] = field(default_factory=dict)  # account sid -> its loops
    _listed: bool = False  # the first listing is done (or there is none to wait for)

    def __post_init__(self) -> None:
        self._listed = self.roster is None or not self.roster.subaccounts
        self.leases = Leases(self.store, self.metrics, self.holder, wanted=len(self.accounts) * len(STREAMS),
                             ttl=self.lease_ttl)
        self.turns = Turns(self.store, self.metrics, self.schedule, self.leases, self.stop, bodies=self.bodies,
                           hydrate=self.hydrate, page_size=self.page_size)

    # ---- the whole service ------------------------------------------------------------------

    async def run(self) -> None:
        """Until `stop` is set; then stop within STOP_GRACE seconds (plus the lease release)."""
        log.info("service.start", holder=self.holder, accounts=len(self.accounts), interval=self.schedule.interval,
                 full_interval=self.schedule.full_interval, lookback=self.schedule.lookback, hydrate=self.hydrate)
        self._zero_series()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._beat)
                tg.start_soon(self.leases.renew)
                tg.start_soon(self._gauges)
                if self.roster is not None and self.roster.subaccounts:
                    tg.start_soon(self._discover, tg)
                else:
                    for account in list(self.accounts):
                        self._start(tg, account, discovered=False)
                await self.stop.wait()
                log.info("service.stopping", grace=STOP_GRACE)
                # The loops see `stop` and end their scans; what is not done by then is
                # abandoned mid-transaction, which rolls the page and its checkpoint back.
                with anyio.move_on_after(STOP_GRACE):
                    while any(self._busy.values()):
                        await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        finally:
            await self.leases.release()
            log.info("service.stopped", holder=self.holder)

    def _zero_series(self) -> None:
        """Every series an alert watches exists from the start at 0: `increase()` misses a
        counter's first step, and a sum over no series is no alert at all (a stream no replica
        holds must show as 0, not vanish)."""
        m = self.metrics
        for api in ("comms", "legacy"):
            m.rate_limited.labels(api)
        for account in self.accounts:
            self._zero_account(account.account_sid)

    def _zero_account(self, sid: str) -> None:
        m = self.metrics
        for outcome in ("ok", "gone"):
            m.hydrations.labels(sid, outcome)
        for stream in STREAMS:
            m.lease_held.labels(sid, stream).set(0)
            for counter in (m.pages, m.records_fetched, m.records_rejected, m.records_deleted):
                counter.labels(sid, stream)
            for kind in ("recent", "full"):
                for outcome in ("complete", "failed"):
                    m.scans.labels(sid, stream, kind, outcome)

    # ---- the accounts -----------------------------------------------------------------------

    async def _discover(self, tg: anyio.abc.TaskGroup) -> None:
        """List the accounts every discovery interval: start the new ones, stop the closed ones.
        The first listing refused ends the service (the main credentials are wrong); a later one
        failing leaves the accounts as they were until the next."""
        assert self.roster is not None
        while not self.stop.is_set():
            try:
                chosen = await self.roster.current(self.store)
            except errors.FatalSourceError as exc:
                if not self._listed:
                    raise errors.FatalSourceError(f"listing the accounts: {exc}", status=exc.status,
                                                  code=exc.code) from exc
                log.error("accounts.listing_failed", cause=str(exc))
            except errors.SyncError as exc:
                log.warning("accounts.listing_failed", cause=str(exc))
            else:
                wanted = {a.account_sid for a in chosen.accounts}
                for sid in [s for s in self._running if s not in wanted]:
                    log.warning("account.stopped", account=sid, closed=sid in chosen.closed)
                    self._running.pop(sid).cancel()
                for sid in chosen.closed:
                    log.warning("account.closed", account=sid)
                self.accounts[:] = chosen.accounts
                for account in chosen.accounts:
                    if account.account_sid not in self._running:
                        self._zero_account(account.account_sid)
                        self._start(tg, account, discovered=True)
                self._listed = True
            await self._sleep(self.discovery_interval)

    def _start(self, tg: anyio.abc.TaskGroup, account: TwilioSettings, *, discovered: bool) -> None:
        scope = self._running[account.account_sid] = anyio.CancelScope()
        self.leases.wanted = len(self._running) * len(STREAMS)

        async def loops() -> None:
            with scope:
                try:
                    await self._account(account, discovered=discovered)
                finally:
                    if self._running.get(account.account_sid) is scope:
                        del self._running[account.account_sid]  # listed again, it starts again
                    for stream in STREAMS:
                        self.leases.lost((account.account_sid, stream))
                        self.leases.asked.discard((account.account_sid, stream))
                    self.leases.wanted = len(self._running) * len(STREAMS)

        tg.start_soon(loops)

    async def _account(self, account: TwilioSettings, *, discovered: bool) -> None:
        """Check the credentials with one small request, then keep the account's streams current.
        Credentials Twilio refuses for an account named by hand end the service (one line,
        non-zero exit): no scan could ever succeed. A listed account refused is reported alone
        and tried again after the next listing: the others go on. Twilio being unreachable
        ends nothing: the scans retry it."""
        async with machinery.twilio_client(account, store=self.store, observer=self.metrics) as client:
            try:
                await client.get_json("api", sources.legacy.list_url(account.account_sid, 1))
            except errors.FatalSourceError as exc:
                if discovered:
                    log.error("account.failed", account=account.account_sid, cause=str(exc))
                    return
                raise errors.FatalSourceError(f"account {account.account_sid}: {exc}", status=exc.status,
                                              code=exc.code) from exc
            except errors.RetryableSourceError as exc:
                log.warning("service.twilio_unreachable", account=account.account_sid, cause=str(exc))
            async with anyio.create_task_group() as tg:
                for stream in STREAMS:
                    tg.start_soon(self._stream, account, client, stream)

    async def _beat(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            await anyio.sleep(1)

    async def _gauges(self) -> None:
        while True:
            try:
                now = datetime.now(timezone.utc)
                for account_sid, stream, newest in await self.store.status.newest_records([a.account_sid for a in self.accounts]):
                    if newest is not None:
                        self.metrics.newest_record_age.labels(account_sid, stream).set((now - newest).total_seconds())
                self.metrics.ready.set(1 if await self.ready() == [] else 0)
            except errors.StoreError as exc:
                log.warning("service.gauges_failed", cause=str(exc))
            await anyio.sleep(min(15.0, self.schedule.interval))


    # ---- readiness ------------------------------------------------------------------------

    async def ready(self) -> list[str]:
        """Why this replica is not ready; empty when it is. Ready: the database answers, and
        every stream it holds had a scan complete within the last few intervals. A replica that
        holds no stream (a standby) is ready when the database is."""
        problems = []
        if not self._listed:
            problems.append("starting: the accounts have not been listed yet")
        if not self.leases.all_asked:
            problems.append("starting: not every stream's lease has been asked for yet")
        try:
            await self.store.ping()
        except errors.StoreError as exc:
            problems.append(str(exc))
        return problems + overdue(self.leases.health, time.monotonic(), self.schedule)

    # ---- one stream -----------------------------------------------------------------------

    async def _stream(self, account: TwilioSettings, client: TwilioClient, stream: str) -> None:
        key = (account.account_sid, stream)
        while not self.stop.is_set():
            if key not in self.leases.health and not await self.leases.acquire(key):
                await self._sleep(self.lease_ttl / 3)
                continue
            started = time.monotonic()
            self._busy[key] = True
            try:
                await self.turns.take(account, client, stream)
            except errors.ScanMovedError as exc:
                log.warning("scan.fenced", account=key[0], stream=key[1], cause=str(exc))
                self.leases.lost(key)
            except errors.SyncError as exc:
                log.error("scan.failed", account=key[0], stream=key[1], cause=str(exc))
                if key in self.leases.health:
                    self.leases.health[key].last_error = str(exc)
            finally:
                self._busy[key] = False
            await self._sleep(self.schedule.interval - (time.monotonic() - started))

    async def _sleep(self, seconds: float) -> None:
        with anyio.move_on_after(max(0.0, seconds)):
            await self.stop.wait()
