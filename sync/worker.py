"""Scans: page through a Twilio list and archive it, resumably. Backfill runs one per stream.

Per stream, a producer fetches and parses page N+1 while a consumer writes page N; the
buffer between them holds one page, so memory stays bounded whatever the account's size.
Pages are written strictly in order, each with the position after it, so the checkpoint
never runs ahead of what is stored."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from sync import errors, logs, plan, sources
from sync.http import TwilioClient
from sync.models import COMMS_RETENTION, LEGACY_RETENTION, Counts, Page, Scan, Window
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
    """The v1 lists keep 7 days and the legacy list 400: never ask for more than is kept."""
    retention = LEGACY_RETENTION if stream == "legacy_messages" else COMMS_RETENTION
    return window.clamped(retention, now)


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
    first = plan.State(source.first_url(account_sid, effective, page_size))
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
    saved = _Saved(plan.State.from_json(scan.cursor, scan.plan))
    restarts = 0
    log.info("scan.start", account=scan.account_sid, stream=source.stream, kind=scan.kind, scan=scan.id,
             window=scan.window, cursor=scan.cursor, phase=saved.state.phase)
    while True:
        try:
            await _pages(store, client, source, scan, scan_plan, saved, counters, options)
            break
        except errors.StalePageTokenError as exc:
            # The position is lost, not the work: every page saved so far stays archived, and
            # a second pass over them writes nothing (unchanged rows are skipped).
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise errors.SourceError(f"{source.stream}: gave up after {MAX_RESTARTS} restarts: {exc}") from exc
            again = scan_plan.restart(saved.state)
            await store.scans.restart(scan, saved.state, again)
            saved.state = again
            log.warning("scan.restart", stream=source.stream, scan=scan.id, restarts=restarts, cause=str(exc))
    finished = saved.state.done
    counters.done = finished
    order = saved.state.order if source.sent_column is not None else None
    result = ScanResult(stream=source.stream, scan_id=scan.id, resumed=resumed, counts=counters.counts,
                        seconds=time.monotonic() - started, complete=finished, order=order)
    log.info("scan.complete" if finished else "scan.stopped", account=scan.account_sid, stream=result.stream,
             kind=scan.kind, scan=result.scan_id, pages=result.pages, seen=result.seen, outside=result.outside,
             order=order, inserted=result.inserted, updated=result.updated, problems=result.problems,
             restarts=restarts, seconds=round(result.seconds, 2))
    return result


@dataclass
class _Saved:
    """The scan's state as last committed."""

    state: plan.State


async def _pages(store: Store, client: TwilioClient, source: sources.Source, scan: Scan, scan_plan: plan.Plan,
                 saved: _Saved, counters: StreamProgress, options: ScanOptions) -> None:
    """Fetch and save the scan's pages from its checkpoint on, until the plan is done or
    `options.stop` is set; `saved.state` is always what the database holds."""
    send, receive = anyio.create_memory_object_stream[tuple[plan.State, plan.State, Page]](1)
    failed: list[Exception] = []

    def parse(fetched: str, body: object) -> tuple[str, Page]:
        return fetched, sources.parse_page(source, body, scan.account_sid, scan.window, fetched, options.bodies)

    async def produce() -> None:
        state = saved.state
        async with send:
            try:
                while not state.done:
                    fetched, page = await client.get_page(source.api, state.url, parse, retry_url=plan.retry_url)
                    step = scan_plan.advance(state, fetched, page)
                    if step.warning:
                        log.warning("scan.unbounded", account=scan.account_sid, stream=source.stream, scan=scan.id,
                                    reason=step.warning)
                    if page.rejected:
                        log.warning("scan.rejected", stream=source.stream, count=len(page.rejected), cursor=state.url)
                    await send.send((state, step.state, page))
                    state = step.state
            except Exception as exc:  # noqa: BLE001 - re-raised below, once the fetched pages are saved
                failed.append(exc)

    async def consume() -> None:
        async with receive:
            async for before, after, page in receive:
                written = await store.pages.save(source, scan, before, after, page, seen=options.keep_seen)
                saved.state = after
                counts = Counts.of_page(page, written)
                counters.counts += counts
                counters.reached = page.reached or counters.reached
                options.observer.page_saved(scan.account_sid, source.stream, counts)

    async with anyio.create_task_group() as tg:
        producer = anyio.CancelScope()

        async def fetching() -> None:
            with producer:
                await produce()

        async def stop_fetching() -> None:
            # Stop asking for pages, at once (even mid-retry); the consumer saves what came.
            await options.stop.wait()
            producer.cancel()

        async def saving() -> None:
            await consume()
            tg.cancel_scope.cancel()  # the scan is over: the stop watcher is not needed

        tg.start_soon(fetching)
        tg.start_soon(saving)
        if options.stop is not None:
            tg.start_soon(stop_fetching)
    if failed:
        raise failed[0]


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
