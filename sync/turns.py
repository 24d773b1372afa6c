"""One turn of a stream, in a round of its account (service.py): its scan, and what the scan's end sets off.

A turn opens (or resumes) the scan its `schedule.Turn` says, runs it like a backfill (so a
restart resumes it), and once it completes: proves the list's deletions when the turn says so
(deletions.py), counts it, marks the stream healthy, and fetches new and changed records for
their content until the next scan is due (hydrate.py), or reads the media lists its messages
owe and those due for a re-check (media.py). Once every stream this replica took turns of has
completed a full scan (a full cycle), the analysts' daily overview is refreshed
(analytics.py). It may not choose the kind or window of a scan (schedule.py),
nor take or put back the account's job (service.py, queue.py); a scan stopped by the service's
`stop` ends its turn early."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import anyio

from sync import analytics, deletions, errors, hydrate, logs, media, sources, worker
from sync.config import TwilioSettings
from sync.http import TwilioClient
from sync.metrics import Metrics
from sync.privacy import Bodies
from sync.progress import Progress
from sync.schedule import Schedule, StreamHealth, Turn, scan_kind
from sync.store import Store

log = logs.get("sync.service")  # the name it had before the split: log filters name it

Key = tuple[str, str]  # (account sid, stream)


@dataclass
class Turns:
    store: Store
    metrics: Metrics
    schedule: Schedule
    health: dict[Key, StreamHealth]  # the streams this replica took turns of (the service's)
    stop: anyio.Event
    bodies: Bodies
    hydrate: bool
    page_size: int
    media_interval: float | None = 86_400.0  # re-read a media list after this many seconds; None: no media
    _fully_scanned: set[Key] = field(default_factory=set)  # full scans complete since the last refresh
    _refreshing: bool = False
    _refreshed_at: float = field(default_factory=time.monotonic)

    async def take(self, account: TwilioSettings, client: TwilioClient, stream: str) -> None:
        """One turn of `stream`; a failed scan is counted and raised (a `SyncError`)."""
        source = sources.BY_STREAM[stream]
        account_sid = account.account_sid
        now = datetime.now(timezone.utc)
        turn = Turn.of(source, await self.kind(account_sid, stream, now), now, self.schedule, hydrate=self.hydrate)
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
        if source.has_media and self.media_interval is not None and not self.stop.is_set():
            await self._until_next_scan(media.follow(self.store, client, account_sid, observer=self.metrics,
                                                     recheck=timedelta(seconds=self.media_interval),
                                                     until=anyio.current_time() + self.schedule.interval))

    async def kind(self, account_sid: str, stream: str, now: datetime) -> str:
        """A full scan in flight is resumed first; else `schedule.scan_kind` says."""
        if await self.store.scans.running(account_sid, stream, "full") is not None:
            return "full"  # resume it
        return scan_kind(await self.store.scans.last_complete(account_sid, stream, "full"), now, self.schedule)

    async def _full_scan_done(self, key: Key) -> None:
        """Once every stream this replica took turns of has completed a full scan since the last refresh
        (a full cycle, so about once per full_interval), refresh the analysts' daily overview.
        Not while stopping; a failed refresh is logged and tried again after the next full scan."""
        self._fully_scanned.add(key)
        # With other replicas, another one may be scanning some of those streams now: a full
        # interval after the last refresh, a full scan here is cycle enough.
        cycle_done = bool(self.health) and set(self.health) <= self._fully_scanned or \
            time.monotonic() - self._refreshed_at >= self.schedule.full_interval
        if self.stop.is_set() or not cycle_done or self._refreshing:
            return
        self._refreshing = True
        try:
            await analytics.refresh(self.store, self.metrics)
            self._fully_scanned.clear()
            self._refreshed_at = time.monotonic()
        except errors.StoreError as exc:
            log.error("analytics.refresh_failed", cause=str(exc))
        finally:
            self._refreshing = False

    async def _until_next_scan(self, work: Awaitable[object]) -> None:
        """Run `work` (which stops itself once the next scan is due) unless the service stops first."""
        with anyio.CancelScope() as scope:
            async def stop_early() -> None:
                await self.stop.wait()
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_early)
                await work
                tg.cancel_scope.cancel()

    async def _hydrate(self, account_sid: str, client: TwilioClient) -> None:
        """Until the queue is empty or the next scan is due (scans keep the archive current)."""
        await self._until_next_scan(hydrate.hydrate(self.store, client, account_sid, bodies=self.bodies,
                                                    until=anyio.current_time() + self.schedule.interval,
                                                    observer=self.metrics))
