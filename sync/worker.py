"""Scans: page through a Twilio list and archive it, resumably. Backfill runs one per stream.

A scan is chains of pages read at once: its head (the list from its top) and the time slices
the scan plan splits off as the pages show where the records are (sync/plan/); every request
of the account waits for a place in its one concurrency budget (sync/budget.py), the first
pages and the longest chains first. A chain fetches page N+1 while it saves page N, with the
position after it and the slices it split off, and no further ahead: memory holds two pages
per chain whatever the account's size, and no checkpoint ever runs ahead of what is stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from sync import budget, errors, logs, pagination, plan, sources
from sync.http import TwilioClient
from sync.models import HEAD, ChainId, Counts, Head, Page, Scan, Slice, Window
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
    pending: list[tuple[ChainId, plan.State]] = [] if chains.head.done else [(HEAD, chains.head)]
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
    `options.stop` is set, each slice a page splits off started as soon as it is saved.

    Each page in hand is one task (`_page`) that holds the page's `budget.Ticket` from before its
    request until its save, and gives it back when it ends, however it ends. It starts the
    chain's next page as its own save starts: page N+1 is fetched while page N is saved, and no
    further ahead. The task groups carry the errors: a failing chain stops the others' requests,
    waits until they have saved the pages they hold, and ends the scan with its error."""

    def __init__(self, store: Store, client: TwilioClient, source: sources.Source, scan: Scan, scan_plan: plan.Plan,
                 counters: StreamProgress, options: ScanOptions) -> None:
        self.store, self.client, self.source, self.scan, self.plan = store, client, source, scan, scan_plan
        self.counters, self.options = counters, options
        self.head = plan.State.from_json(scan.cursor, scan.plan)  # as last committed
        self.guard = pagination.LoopGuard()  # the positions the scan's chains have followed
        self.restarts = 0
        self.stopping = False  # no chain fetches another page
        self._fetching: set[anyio.CancelScope] = set()
        self._running: set[anyio.Event] = set()  # one per chain not yet ended
        self._group: TaskGroup | None = None

    async def run(self, pending: list[tuple[ChainId, plan.State]]) -> None:
        try:
            async with anyio.create_task_group() as outer:
                if self.options.stop is not None:
                    outer.start_soon(self._stop_when_told, self.options.stop)
                async with anyio.create_task_group() as self._group:
                    for chain, state in pending:
                        self._start(chain, state)
                outer.cancel_scope.cancel()  # every chain is over: the stop watcher is not needed
        except ExceptionGroup as group:
            raise first_error(group)  # noqa: B904 - the group is its context

    def _start(self, chain: ChainId, state: plan.State) -> None:
        assert self._group is not None
        if isinstance(chain, Slice):
            self.counters.running += 1
        self._group.start_soon(self._chain, chain, state)

    async def _stop_when_told(self, stop: anyio.Event) -> None:
        # Stop asking for pages, at once (even mid-retry); each chain saves what came.
        await stop.wait()
        self.stopping = True
        for scope in self._fetching:
            scope.cancel()

    async def _chain(self, chain: ChainId, state: plan.State) -> None:
        saved = _Saved(state)
        ended = anyio.Event()
        self._running.add(ended)
        try:
            await self._read(chain, saved)
        except Exception:
            # Raised once the other chains have saved the pages they hold (raising at once would
            # cancel them mid-save); they fetch no more.
            self.stopping = True
            self._end(ended)
            while self._running:
                await next(iter(self._running)).wait()
            raise
        finally:
            self._end(ended)
            if isinstance(chain, Slice):
                self.counters.running -= 1
                self.counters.slices_done += int(saved.state.done)

    def _end(self, ended: anyio.Event) -> None:
        self._running.discard(ended)
        ended.set()

    async def _read(self, chain: ChainId, saved: _Saved) -> None:
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
                await self.store.scans.restart(self.scan, chain, saved.state, again)
                self.guard.forget()
                saved.state = again
                self.restarts += 1
                log.warning("scan.restart", stream=self.source.stream, scan=self.scan.id, slice=_slice_id(chain),
                            restarts=restarts, cause=str(exc))

    async def _pages(self, chain: ChainId, saved: _Saved) -> None:
        """Fetch and save the chain's pages from `saved.state` on, until its plan is done or the
        scan stops; `saved.state` is always what the database holds."""
        if saved.state.done:
            return
        try:
            async with anyio.create_task_group() as pages:
                pages.start_soon(self._page, pages, chain, saved, saved.state, None)
        except ExceptionGroup as group:
            raise first_error(group)  # noqa: B904 - the group is its context

    async def _page(self, pages: TaskGroup, chain: ChainId, saved: _Saved, state: plan.State,
                    previous: anyio.Event | None) -> None:
        """One page of the chain, from its request to its save, holding its ticket all along;
        `previous` is set once the page before it is saved: the saves, and the errors, go in order."""
        ticket = await self._ticket(state)
        if ticket is None:
            return  # stopped
        with ticket:
            try:
                got = await self._fetch(state)
            except Exception:
                if previous is not None:
                    await previous.wait()  # the page before is saved first, then the chain ends
                raise
            if got is None:
                return  # stopped
            if previous is not None:
                await previous.wait()
            step, page = got
            saved_here = anyio.Event()
            if not step.state.done and not self.stopping:
                pages.start_soon(self._page, pages, chain, saved, step.state, saved_here)
            await self._save(chain, saved, state, step, page)
            saved_here.set()

    async def _ticket(self, state: plan.State) -> budget.Ticket | None:
        """A place among the account's pages in hand for the chain's next page; None when stopped."""
        with self._stoppable():
            if not self.stopping:
                return await self.client.budget.pages.take(state.priority)
        return None

    async def _fetch(self, state: plan.State) -> tuple[plan.Step, Page] | None:
        """The chain's next page, planned and reduced to the records it owns; None when stopped."""
        source, scan, options = self.source, self.scan, self.options

        def parse(fetched: str, body: object) -> tuple[str, Page]:
            return fetched, sources.parse_page(source, body, scan.account_sid, scan.window, fetched, options.bodies)

        with self._stoppable():
            fetched, page = await self.client.get_page(source.api, state.url, parse, retry_url=plan.retry_url,
                                                       priority=state.priority)
            step = self.plan.advance(state, fetched, page)
            self.guard.follow(step.state.phase, step.state.url, page.next_url)
            if step.warning:
                log.warning("scan.unbounded", account=scan.account_sid, stream=source.stream, scan=scan.id,
                            reason=step.warning)
            if page.rejected:
                log.warning("scan.rejected", stream=source.stream, count=len(page.rejected), cursor=state.url)
            return step, sources.owned(source, page, step.state.owns)
        return None

    @contextmanager
    def _stoppable(self) -> Iterator[None]:
        """A block a stop cancels at once, even mid-retry: a request or the wait for its place,
        never a save."""
        with anyio.CancelScope() as scope:
            self._fetching.add(scope)
            try:
                yield
            finally:
                self._fetching.discard(scope)

    async def _save(self, chain: ChainId, saved: _Saved, before: plan.State, step: plan.Step, page: Page) -> None:
        """One page with its chain's checkpoint and the slices it split off, which start at once."""
        scan, options = self.scan, self.options
        written, slices = await self.store.pages.save(self.source, scan, chain, before, step.state, page,
                                                      spawn=step.spawn, seen=options.keep_seen)
        saved.state = step.state
        if isinstance(chain, Head):
            self.head = step.state
            self.counters.reached = page.reached or self.counters.reached
        counts = Counts.of_page(page, written)
        self.counters.counts += counts
        options.observer.page_saved(scan.account_sid, self.source.stream, counts)
        for new, state in slices:
            self._start(new, state)


def _slice_id(chain: ChainId) -> int | None:
    """What the logs call a chain: its slice's id, or none for the head."""
    return chain.id if isinstance(chain, Slice) else None


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
