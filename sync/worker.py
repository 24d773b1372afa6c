"""Scans: page through a Twilio list and archive it, resumably. Backfill runs one per stream.

A scan is chains of pages read at once: its head (the list from its top) and the time slices
the scan plan splits off as the pages show where the records are (sync/plan.py); every request
of the account waits for a place in its one concurrency budget (sync/budget.py), the first
pages and the longest chains first. A chain fetches page N+1 while it saves page N, with the
position after it and the slices it split off, and no further ahead: memory holds two pages
per chain whatever the account's size, and no checkpoint ever runs ahead of what is stored."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from sync import errors, logs, pagination, plan, sources
from sync.http import TwilioClient
from sync.models import Counts, Page, Scan, Window
from sync.observe import NOBODY, Observer
from sync.privacy import KEEP, Bodies
from sync.progress import Progress, StreamProgress
from sync.store import Store

log = logs.get(__name__)

PAGE_SIZE = 1000  # the largest page both APIs serve: fewest round trips
MAX_RESTARTS = 3  # stale page tokens in one run before we stop trusting the API


@dataclass(frozen=True)
class ScanResult:
    stream: str
    scan_id: int
    resumed: bool
    counts: Counts  # this run's; pages are list requests that returned a page (retries not counted)
    seconds: float
    complete: bool = True  # False: stopped on request, resumable from its checkpoint
    order: str | None = None  # the legacy list's order, as the pages showed it (plan.ORDERS)

    # The figures the CLI prints and the tests check, by their names there.

    @property
    def pages(self) -> int:
        return self.counts.pages

    @property
    def seen(self) -> int:
        return self.counts.seen

    @property
    def inserted(self) -> int:
        return self.counts.inserted

    @property
    def updated(self) -> int:
        return self.counts.updated

    @property
    def problems(self) -> int:
        return self.counts.flagged

    @property
    def outside(self) -> int:
        """Records read that were created outside the window: the cost of the list's order."""
        return self.counts.outside


def stream_window(stream: str, window: Window, now) -> Window:
    """Never ask for more than the stream's list keeps (`Source.retention`: v1 7 days, legacy 400)."""
    return window.clamped(sources.BY_STREAM[stream].retention, now)


def resumable(running: Window, requested: Window, *, fixed_end: bool) -> bool:
    """Whether an interrupted scan serves a new request: it reaches back at least as far, and
    ends where the user fixed the end (with no --until the end is "now", new on every run)."""
    return running.start <= requested.start and (not fixed_end or running.end == requested.end)


async def open_scan(store: Store, source: sources.Source, account_sid: str, kind: str,
                    window: Window, *, fixed_end: bool, page_size: int, now) -> tuple[Scan, bool]:
    """Resume the stream's interrupted scan, or start a new one. Returns (scan, resumed)."""
    effective = stream_window(source.stream, window, now)
    running = await store.scans.running(account_sid, source.stream, kind)
    if running is not None:
        if resumable(running.window, effective, fixed_end=fixed_end):
            return running, True
        await store.scans.end(running.id, "abandoned", "superseded by a scan over another window")
        log.info("scan.abandoned", stream=source.stream, scan=running.id, reason="other-window")
    first = plan.first_state(source, account_sid, effective, page_size)
    return await store.scans.start(account_sid, source.stream, kind, effective, first), False


@dataclass(frozen=True)
class ScanOptions:
    """How a scan pages, beyond its window. The defaults are the backfill's."""

    page_size: int = PAGE_SIZE
    bodies: Bodies = KEEP
    # A full scan keeps the keys it sees, to prove at its end which archived records are gone.
    keep_seen: bool = False
    # Set to stop: no page is fetched after it, the pages already fetched are saved.
    stop: anyio.Event | None = None
    # Told of each saved page (the service's metrics).
    observer: Observer = NOBODY


async def run_scan(store: Store, client: TwilioClient, source: sources.Source, scan: Scan,
                   progress: Progress, *, resumed: bool, options: ScanOptions = ScanOptions()) -> ScanResult:
    started = time.monotonic()
    counters = progress.stream(source.stream)  # this run's figures, shown live and returned
    scan_plan = plan.Plan(source, scan.account_sid, scan.window, options.page_size, client.base_url(source.api))
    chains = _Chains(store, client, source, scan, scan_plan, counters, options)
    log.info("scan.start", account=scan.account_sid, stream=source.stream, kind=scan.kind, scan=scan.id,
             window=scan.window, cursor=scan.cursor, phase=chains.head.phase)
    pending = [] if chains.head.done else [(None, chains.head)]
    while True:
        pending += await store.scans.slices(scan)
        if not pending or chains.stopping:
            break
        await chains.run(pending)
        # Normally every slice has run by now; one whose page's commit answer was lost has not.
        pending = []
    finished = await store.scans.finish(scan)  # also when stopped: its last chain may have just ended
    counters.done = finished
    order = chains.head.order if source.sent_column is not None else None
    result = ScanResult(stream=source.stream, scan_id=scan.id, resumed=resumed, counts=counters.counts,
                        seconds=time.monotonic() - started, complete=finished, order=order)
    log.info("scan.complete" if finished else "scan.stopped", account=scan.account_sid, stream=result.stream,
             kind=scan.kind, scan=result.scan_id, pages=result.pages, seen=result.seen, outside=result.outside,
             order=order, slices=counters.slices_done, inserted=result.inserted, updated=result.updated,
             problems=result.problems, restarts=chains.restarts, seconds=round(result.seconds, 2))
    return result


class _Chains:
    """A scan's chains of pages, read at once: each from its checkpoint until its plan is done or
    `options.stop` is set, each slice a page splits off started as soon as it is saved."""

    def __init__(self, store: Store, client: TwilioClient, source: sources.Source, scan: Scan, scan_plan: plan.Plan,
                 counters: StreamProgress, options: ScanOptions) -> None:
        self.store, self.client, self.source, self.scan, self.plan = store, client, source, scan, scan_plan
        self.counters, self.options = counters, options
        self.head = plan.State.from_json(scan.cursor, scan.plan)  # as last committed
        self.guard = pagination.LoopGuard()  # the positions the scan's chains have followed
        self.restarts = 0
        self.stopping = False  # no chain fetches another page
        self.failed: list[Exception] = []
        self._fetching: set[anyio.CancelScope] = set()
        self._group: TaskGroup | None = None

    async def run(self, pending: list[tuple[int | None, plan.State]]) -> None:
        async with anyio.create_task_group() as outer:
            if self.options.stop is not None:
                outer.start_soon(self._stop_when_told, self.options.stop)
            async with anyio.create_task_group() as self._group:
                for chain, state in pending:
                    self._start(chain, state)
            outer.cancel_scope.cancel()  # every chain is over: the stop watcher is not needed
        if self.failed:
            raise self.failed[0]

    def _start(self, chain: int | None, state: plan.State) -> None:
        assert self._group is not None
        if chain is not None:
            self.counters.running += 1
        self._group.start_soon(self._chain, chain, state)

    async def _stop_when_told(self, stop: anyio.Event) -> None:
        # Stop asking for pages, at once (even mid-retry); each chain saves what came.
        await stop.wait()
        self.stopping = True
        for scope in self._fetching:
            scope.cancel()

    async def _chain(self, chain: int | None, state: plan.State) -> None:
        saved = _Saved(state)
        try:
            await self._read(chain, saved)
        except Exception as exc:  # noqa: BLE001 - raised by run() once the other chains have saved what they fetched
            self.failed.append(exc)
            self.stopping = True
        finally:
            if chain is not None:
                self.counters.running -= 1
                self.counters.slices_done += int(saved.state.done)

    async def _read(self, chain: int | None, saved: _Saved) -> None:
        restarts = 0
        while True:
            try:
                await self._pages(chain, saved)
                return
            except errors.StalePageTokenError as exc:
                # The position is lost, not the work: every page saved so far stays archived,
                # and a second pass over them writes nothing (unchanged rows are skipped).
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise errors.SourceError(f"{self.source.stream}: gave up after {MAX_RESTARTS} restarts: {exc}") from exc
                again = self.plan.restart(saved.state)
                self.guard.forget()
                await self.store.scans.restart(self.scan, chain, saved.state, again)
                saved.state = again
                self.restarts += 1
                log.warning("scan.restart", stream=self.source.stream, scan=self.scan.id, slice=chain,
                            restarts=restarts, cause=str(exc))

    async def _pages(self, chain: int | None, saved: _Saved) -> None:
        """Fetch and save the chain's pages from `saved.state` on, until its plan is done or the
        scan stops; `saved.state` is always what the database holds. Page N+1 is fetched while
        page N is saved and no further ahead, each within the account's pages in hand
        (Budget.pages) from before its request until it is saved."""
        pages = self.client.budget.pages
        send, receive = anyio.create_memory_object_stream[tuple[plan.State, plan.Step, Page]](0)
        failed: list[Exception] = []

        async def fetch() -> None:
            async with send:
                try:
                    state = saved.state
                    while not state.done and not self.stopping:
                        got = await self._fetch(state)
                        if got is None:
                            return
                        state, item = got[0].state, (state, *got)
                        del got  # a page is held in hand only: not while this chain waits for the next
                        try:
                            await send.send(item)
                        except BaseException:
                            pages.leave()  # never handed over
                            raise
                        del item
                except Exception as exc:  # noqa: BLE001 - raised below, once the fetched pages are saved
                    failed.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch)
            async with receive:
                async for item in receive:
                    try:
                        await self._save(chain, saved, *item)
                    finally:
                        pages.leave()
                        del item  # saved: let it go while the chain waits for its next page
        if failed:
            raise failed[0]

    async def _fetch(self, state: plan.State) -> tuple[plan.Step, Page] | None:
        """The chain's next page, planned and reduced to the records it owns, holding a place
        among the account's pages in hand (the caller's to give back); None when stopped."""
        source, scan, options = self.source, self.scan, self.options
        pages = self.client.budget.pages

        def parse(fetched: str, body: object) -> tuple[str, Page]:
            return fetched, sources.parse_page(source, body, scan.account_sid, scan.window, fetched, options.bodies)

        with anyio.CancelScope() as fetching:  # a stop cancels the wait and the fetch, never a save
            self._fetching.add(fetching)
            try:
                if self.stopping:
                    return None
                await pages.enter(state.priority)
                try:
                    fetched, page = await self.client.get_page(source.api, state.url, parse,
                                                               retry_url=plan.retry_url, priority=state.priority)
                    step = self.plan.advance(state, fetched, page)
                    self.guard.follow(step.state.phase, step.state.url, page.next_url)
                except BaseException:
                    pages.leave()
                    raise
            finally:
                self._fetching.discard(fetching)
        if fetching.cancelled_caught:
            return None
        if step.warning:
            log.warning("scan.unbounded", account=scan.account_sid, stream=source.stream, scan=scan.id,
                        reason=step.warning)
        if page.rejected:
            log.warning("scan.rejected", stream=source.stream, count=len(page.rejected), cursor=state.url)
        return step, sources.owned(source, page, step.state.owns)

    async def _save(self, chain: int | None, saved: _Saved, before: plan.State, step: plan.Step, page: Page) -> None:
        """One page with its chain's checkpoint and the slices it split off, which start at once."""
        scan, options = self.scan, self.options
        written, slices = await self.store.pages.save(self.source, scan, chain, before, step.state, page,
                                                      spawn=step.spawn, seen=options.keep_seen)
        saved.state = step.state
        if chain is None:
            self.head = step.state
            self.counters.reached = page.reached or self.counters.reached
        counts = Counts.of_page(page, written)
        self.counters.counts += counts
        options.observer.page_saved(scan.account_sid, self.source.stream, counts)
        for new, state in slices:
            self._start(new, state)


@dataclass
class _Saved:
    """A chain's state as last committed."""

    state: plan.State


async def backfill(store: Store, client: TwilioClient, account_sid: str, streams: tuple[str, ...],
                   window: Window, *, fixed_end: bool, now, progress: Progress,
                   options: ScanOptions = ScanOptions()) -> list[ScanResult]:
    """One pass over each stream's window, all streams at once; resumes interrupted passes."""
    opened = []
    for stream in streams:
        source = sources.BY_STREAM[stream]
        scan, resumed = await open_scan(store, source, account_sid, "backfill", window,
                                        fixed_end=fixed_end, page_size=options.page_size, now=now)
        opened.append((source, scan, resumed))
    results: list[ScanResult] = []

    async def one(source: sources.Source, scan: Scan, resumed: bool) -> None:
        results.append(await run_scan(store, client, source, scan, progress, resumed=resumed, options=options))

    async with anyio.create_task_group() as tg:
        for source, scan, resumed in opened:
            tg.start_soon(one, source, scan, resumed)
    return sorted(results, key=lambda r: streams.index(r.stream))


def first_error(exc: BaseException) -> BaseException:
    """The error to show from a task group's ExceptionGroup: a SyncError when there is one."""
    if isinstance(exc, BaseExceptionGroup):
        found = [first_error(e) for e in exc.exceptions]
        for e in found:
            if isinstance(e, errors.SyncError):
                return e
        return found[0]
    return exc
