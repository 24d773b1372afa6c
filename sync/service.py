"""`run`: keep every stream of every account current, on a schedule, until told to stop.

Per (account, stream) one loop, and only while this replica holds the stream's lease
(twilio.leases), so replicas never scan the same stream at once and a survivor takes over a
dead replica's streams when their leases lapse. Each turn of a loop runs one scan:

- `full` when the last complete full scan is older than `full_interval` (or one is in
  flight): the whole retention window, for late changes; on a list whose deletions are
  proved by 404 (`Source.proves_deletions`: the legacy list) it also proves them (deletions.py);
- `recent` otherwise: the last `lookback` seconds, for new messages and fast status changes.

Both are checkpointed like a backfill, so a restart resumes the scan in flight. After the scan
of a list whose records are completed one by one (`Source.hydrated`: v1 Messages), new and
changed messages are fetched for their content (hydrate.py) until the next scan is due. What a
turn does is decided up front, as a `Turn`, from the stream's `Source`, never from its name. Once every stream the replica holds has completed a full scan (a
full cycle), the analysts' materialized views are refreshed (analytics.py). Stopping (SIGTERM, Ctrl-C) stops the fetching at once, lets the
pages already fetched commit for up to STOP_GRACE seconds, then abandons whatever is still
in flight: a page and its checkpoint commit together or not at all."""

from __future__ import annotations

import os
import secrets
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import anyio

from sync import analytics, deletions, errors, hydrate, logs, machinery, sources, worker
from sync.config import TwilioSettings
from sync.http import TwilioClient
from sync.metrics import Metrics
from sync.models import STREAMS, Window, default_window
from sync.privacy import KEEP, Bodies
from sync.progress import Progress
from sync.store import Store

log = logs.get(__name__)

LEASE_TTL = 30.0  # a dead replica's streams are taken over at most this long after it died
STOP_GRACE = 5.0  # pages already fetched may commit for this long after a stop; then abandoned


@dataclass(frozen=True)
class Schedule:
    interval: float = 60.0  # seconds between the starts of a stream's scans
    full_interval: float = 3600.0  # seconds between full scans of the retention window
    lookback: float = 3600.0  # how far back a recent scan reaches

    def __post_init__(self) -> None:
        if not (self.interval > 0 and self.full_interval > 0 and self.lookback > 0):
            raise errors.ConfigError("--interval, --full-interval and --lookback must be positive")


def scan_kind(last_full: datetime | None, now: datetime, schedule: Schedule) -> str:
    """`full` when no full scan completed within `full_interval` (none is in flight); else `recent`."""
    due = last_full is None or (now - last_full).total_seconds() >= schedule.full_interval
    return "full" if due else "recent"


@dataclass(frozen=True)
class Turn:
    """What one turn of a stream's loop does, decided before it scans; what a stream does
    differently is the `Source`'s to say, never its name."""

    kind: str  # "full" (the whole retention window) or "recent" (the last `lookback` seconds)
    window: Window
    # A full scan of a list whose deletions are proved by 404 (Source.proves_deletions): it keeps
    # the keys it sees, and its archived records it did not see are checked (deletions.py).
    prove_deletions: bool
    hydrate: bool  # after the scan, fetch the new and changed records for their content (hydrate.py)

    @classmethod
    def of(cls, source: sources.Source, kind: str, now: datetime, schedule: Schedule, *, hydrate: bool) -> Turn:
        window = default_window(now, None, None) if kind == "full" else \
            Window(now - timedelta(seconds=schedule.lookback), now)
        return cls(kind, window, prove_deletions=kind == "full" and source.proves_deletions,
                   hydrate=hydrate and source.hydrated)


@dataclass
class StreamHealth:
    """What /readyz reports about one (account, stream) this replica holds."""

    last_success: float | None = None  # time.monotonic() of the last complete scan
    last_error: str | None = None


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
    health: dict[tuple[str, str], StreamHealth] = field(default_factory=dict)
    heartbeat: float = field(default_factory=time.monotonic)
    stop: anyio.Event = field(default_factory=anyio.Event)
    _busy: dict[tuple[str, str], bool] = field(default_factory=dict)  # a scan is in flight
    _asked: set[tuple[str, str]] = field(default_factory=set)  # streams whose lease we have asked for
    _fully_scanned: set[tuple[str, str]] = field(default_factory=set)  # full scans complete since the last refresh
    _refreshing: bool = False

    # ---- the whole service ------------------------------------------------------------------

    async def run(self) -> None:
        """Until `stop` is set; then stop within STOP_GRACE seconds (plus the lease release)."""
        log.info("service.start", holder=self.holder, accounts=len(self.accounts), interval=self.schedule.interval,
                 full_interval=self.schedule.full_interval, lookback=self.schedule.lookback, hydrate=self.hydrate)
        self._zero_series()
        try:
            async with AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(
                               machinery.twilio_client(a, store=self.store, observer=self.metrics))
                           for a in self.accounts]
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._beat)
                    tg.start_soon(self._renew)
                    tg.start_soon(self._gauges)
                    for account, client in zip(self.accounts, clients):
                        tg.start_soon(self._account, account, client)
                    await self.stop.wait()
                    log.info("service.stopping", grace=STOP_GRACE)
                    # The loops see `stop` and end their scans; what is not done by then is
                    # abandoned mid-transaction, which rolls the page and its checkpoint back.
                    with anyio.move_on_after(STOP_GRACE):
                        while any(self._busy.values()):
                            await anyio.sleep(0.05)
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    await self.store.leases.release(self.holder)
                except errors.StoreError as exc:
                    log.warning("service.leases_not_released", cause=str(exc))
            log.info("service.stopped", holder=self.holder)

    def _zero_series(self) -> None:
        """Every series an alert watches exists from the start at 0: `increase()` misses a
        counter's first step, and a sum over no series is no alert at all (a stream no replica
        holds must show as 0, not vanish)."""
        m = self.metrics
        for api in ("comms", "legacy"):
            m.rate_limited.labels(api)
        for account in self.accounts:
            sid = account.account_sid
            for outcome in ("ok", "gone"):
                m.hydrations.labels(sid, outcome)
            for stream in STREAMS:
                m.lease_held.labels(sid, stream).set(0)
                for counter in (m.pages, m.records_fetched, m.records_rejected, m.records_deleted):
                    counter.labels(sid, stream)
                for kind in ("recent", "full"):
                    for outcome in ("complete", "failed"):
                        m.scans.labels(sid, stream, kind, outcome)

    async def _account(self, account: TwilioSettings, client: TwilioClient) -> None:
        """Check the credentials with one small request, then keep the account's streams current.
        Credentials Twilio refuses end the service (one line, non-zero exit): no scan could
        ever succeed. Twilio being unreachable does not: the scans retry it."""
        try:
            await client.get_json("api", sources.legacy.list_url(account.account_sid, 1))
        except errors.FatalSourceError as exc:
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

    async def _renew(self) -> None:
        """Keep our leases alive; forget the ones another replica has taken (after we were
        away longer than LEASE_TTL): its scans fence ours off (ScanMovedError)."""
        while True:
            await anyio.sleep(self.lease_ttl / 3)
            try:
                held = await self.store.leases.renew(self.holder, self.lease_ttl)
            except errors.StoreError as exc:
                log.warning("lease.renew_failed", cause=str(exc))
                continue
            for key in [k for k in self.health if k not in held]:
                self._lost(key)

    def _lost(self, key: tuple[str, str]) -> None:
        if self.health.pop(key, None) is not None:
            self.metrics.lease_held.labels(*key).set(0)
            log.warning("lease.lost", account=key[0], stream=key[1])

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
        if len(self._asked) < len(self.accounts) * len(STREAMS):
            problems.append("starting: not every stream's lease has been asked for yet")
        try:
            await self.store.ping()
        except errors.StoreError as exc:
            problems.append(str(exc))
        now = time.monotonic()
        allowed = max(3 * self.schedule.interval, 300.0)  # a full scan of a busy account takes minutes
        for (account_sid, stream), h in sorted(self.health.items()):
            error = f": {h.last_error}" if h.last_error else ""
            if h.last_success is None:
                problems.append(f"{account_sid} {stream}: no scan has completed yet{error}")
            elif now - h.last_success > allowed:
                problems.append(f"{account_sid} {stream}: no scan completed in {now - h.last_success:.0f} s{error}")
        return problems

    # ---- one stream -----------------------------------------------------------------------

    async def _stream(self, account: TwilioSettings, client: TwilioClient, stream: str) -> None:
        key = (account.account_sid, stream)
        while not self.stop.is_set():
            if key not in self.health:
                got = await self._acquire(key)
                self._asked.add(key)
                if not got:
                    await self._sleep(self.lease_ttl / 3)
                    continue
            started = time.monotonic()
            self._busy[key] = True
            try:
                await self._turn(account, client, stream)
            except errors.ScanMovedError as exc:
                log.warning("scan.fenced", account=key[0], stream=key[1], cause=str(exc))
                self._lost(key)
            except errors.SyncError as exc:
                log.error("scan.failed", account=key[0], stream=key[1], cause=str(exc))
                if key in self.health:
                    self.health[key].last_error = str(exc)
            finally:
                self._busy[key] = False
            await self._sleep(self.schedule.interval - (time.monotonic() - started))

    async def _acquire(self, key: tuple[str, str]) -> bool:
        try:
            got = await self.store.leases.acquire(*key, self.holder, self.lease_ttl)
        except errors.StoreError as exc:
            log.warning("lease.acquire_failed", account=key[0], stream=key[1], cause=str(exc))
            return False
        if got:
            self.health[key] = StreamHealth()
            self.metrics.lease_held.labels(*key).set(1)
            log.info("lease.acquired", account=key[0], stream=key[1], holder=self.holder)
        return got

    async def _sleep(self, seconds: float) -> None:
        with anyio.move_on_after(max(0.0, seconds)):
            await self.stop.wait()

    async def _turn(self, account: TwilioSettings, client: TwilioClient, stream: str) -> None:
        source = sources.BY_STREAM[stream]
        account_sid = account.account_sid
        now = datetime.now(timezone.utc)
        turn = Turn.of(source, await self._kind(account_sid, stream, now), now, self.schedule, hydrate=self.hydrate)
        kind = turn.kind
        scan, resumed = await worker.open_scan(self.store, source, account_sid, kind, turn.window, fixed_end=False,
                                               page_size=self.page_size, now=now)
        if turn.prove_deletions and not resumed:
            await self.store.deletions.clear_seen(account_sid, stream)
        options = worker.ScanOptions(
            page_size=self.page_size, bodies=self.bodies, stop=self.stop,
            keep_seen=turn.prove_deletions,
            observer=self.metrics,
        )
        try:
            result = await worker.run_scan(self.store, client, source, scan, Progress(), resumed=resumed,
                                           options=options)
        except errors.SyncError:
            self.metrics.scan_ended(account_sid, stream, kind, "failed", 0.0)
            raise
        if not result.complete:
            return  # stopped: the scan stays running and the next start resumes it
        if turn.prove_deletions:
            marked = await deletions.mark_deleted(self.store, client, source, scan, bodies=self.bodies)
            self.metrics.deleted(account_sid, stream, marked)
        self.metrics.scan_ended(account_sid, stream, kind, "complete", result.seconds, order=result.order)
        health = self.health.get((account_sid, stream))
        if health is not None:
            health.last_success, health.last_error = time.monotonic(), None
        if kind == "full":
            await self._full_scan_done((account_sid, stream))
        if turn.hydrate and not self.stop.is_set():
            await self._hydrate(account_sid, client)

    async def _full_scan_done(self, key: tuple[str, str]) -> None:
        """Once every stream this replica holds has completed a full scan since the last refresh
        (a full cycle, so about once per full_interval), refresh the analysts' materialized views.
        Not while stopping; a failed refresh is logged and tried again after the next full scan."""
        self._fully_scanned.add(key)
        every_lease_asked = len(self._asked) == len(self.accounts) * len(STREAMS)
        cycle_done = every_lease_asked and set(self.health) <= self._fully_scanned
        if self.stop.is_set() or not cycle_done or self._refreshing:
            return
        self._refreshing = True
        try:
            await analytics.refresh(self.store, self.metrics)
            self._fully_scanned.clear()
        except errors.StoreError as exc:
            log.error("analytics.refresh_failed", cause=str(exc))
        finally:
            self._refreshing = False

    async def _kind(self, account_sid: str, stream: str, now: datetime) -> str:
        if await self.store.scans.running(account_sid, stream, "full") is not None:
            return "full"  # resume it
        return scan_kind(await self.store.scans.last_complete(account_sid, stream, "full"), now, self.schedule)

    async def _hydrate(self, account_sid: str, client: TwilioClient) -> None:
        """Until the queue is empty or the next scan is due (scans keep the archive current)."""
        with anyio.CancelScope() as scope:
            async def stop_early() -> None:
                await self.stop.wait()
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_early)
                await hydrate.hydrate(self.store, client, account_sid, bodies=self.bodies,
                                      until=anyio.current_time() + self.schedule.interval, observer=self.metrics)
                tg.cancel_scope.cancel()
