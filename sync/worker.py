"""Scans: page through a Twilio list and archive it, resumably. Backfill runs one per stream.

A scan is chains of pages read at once: its head (the list from its top) and the time slices
the scan plan splits off as the pages show where the records are (sync/plan/); every request
of the account waits for a place in its one concurrency budget (sync/budget.py), the first
pages and the longest chains first. A chain asks for page N+1 once page N is answered and saves
its pages in order, each with the position after it and the slices it split off: memory holds
the account's pages in hand (budget.PAGES_IN_HAND x the cap) whatever its size, and no
checkpoint ever runs ahead of what is stored.

This module opens a scan (or resumes it), runs its chains (sync/chains.py) until none is left,
and ends it; `backfill` runs one scan per stream at once."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from sync import chains, logs, plan, sources
from sync.http import TwilioClient
from sync.models import HEAD, ChainId, Counts, Scan, Window
from sync.observe import NOBODY, Observer
from sync.privacy import KEEP, Bodies
from sync.progress import Progress
from sync.store import Store

log = logs.get(__name__)

PAGE_SIZE = 1000  # the largest page both APIs serve: fewest round trips


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
    running = chains.Chains(store, client, source, scan, scan_plan, counters, options)
    log.info("scan.start", account=scan.account_sid, stream=source.stream, kind=scan.kind, scan=scan.id,
             window=scan.window, cursor=scan.cursor, phase=running.head.phase)
    pending: list[tuple[ChainId, plan.State]] = [] if running.head.done else [(HEAD, running.head)]
    while True:
        pending += await store.scans.slices(scan)
        if not pending or running.stopping:
            break
        await running.run(pending)
        # Normally every slice has run by now; one whose page's commit answer was lost has not.
        pending = []
    finished = await store.scans.finish(scan)  # also when stopped: its last chain may have just ended
    counters.done = finished
    order = running.head.order if source.sent_column is not None else None
    result = ScanResult(stream=source.stream, scan_id=scan.id, resumed=resumed, counts=counters.counts,
                        seconds=time.monotonic() - started, complete=finished, order=order)
    log.info("scan.complete" if finished else "scan.stopped", account=scan.account_sid, stream=result.stream,
             kind=scan.kind, scan=result.scan_id, pages=result.pages, seen=result.seen, outside=result.outside,
             order=order, slices=counters.slices_done, inserted=result.inserted, updated=result.updated,
             problems=result.problems, restarts=running.restarts, seconds=round(result.seconds, 2))
    return result


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
