"""The two limits a backfill cannot beat, measured apart in this process with the sync code itself.

fetch limit: every page of every stream fetched and parsed exactly as the worker's producer
does (TwilioClient.get_page with sources.parse_page, the scan plan's time slices each read as a
chain of its own, all at once), all streams at once, nothing written.

write limit: the same parsed pages upserted exactly as the worker's consumer does
(store.pages.save, one page per transaction, each chain in order, under a scan row so the
checkpoints move and the slices are created), all streams at once, with no fetching in the timed part. Pages are fetched a chunk at
a time between timed writes, so memory stays bounded at any --messages. Measured twice on
the same database: new rows (the backfill case), then unchanged rows (the rescan case)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import asyncpg

from bench import procs, usage
from bench.procs import Emulator
from sync import machinery, models, plan, sources, worker
from sync.config import Secret, TwilioSettings
from sync.http import TwilioClient
from sync.models import HEAD, ChainId, Page, Scan, Window
from sync.store import Store

CHUNK_PAGES = 20  # pages per stream held in memory between timed writes (~20,000 records)


@dataclass
class StreamFigure:
    records: int = 0  # records the API served (what the CLI calls "fetched")
    rows: int = 0  # fetch: rows parsed inside the window; write: rows inserted or updated
    pages: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Limit:
    streams: dict[str, StreamFigure] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of all streams together

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams.values())

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def client_for(running: Emulator, store: Store | None = None):
    """The client the CLI would build (sync.machinery), pointed at the bench's emulator."""
    settings = TwilioSettings(account_sid=running.account_sid, username=running.account_sid,
                              password=Secret(running.auth_token), comms_base_url=running.base_url,
                              api_base_url=running.base_url)
    return machinery.twilio_client(settings, store=store)


@dataclass
class Planned:
    """One page of one chain, as the worker's producer hands it to its consumer."""

    chain: int  # the Pager's own number for the chain: 0 the head, then its slices as they are split off
    before: plan.State  # the chain's checkpoint before the page ...
    step: plan.Step  # ... after it, and the slices the page splits off
    page: Page  # only the rows this chain owns (sources.owned), as the worker saves them
    children: list[int]  # the Pager's numbers for step.spawn, in its order


class Pager:
    """One stream's pages, fetched, parsed and planned the way the worker's producer does: the
    head chain and every slice a page splits off (sync/plan/), each a chain of its own.

    `read(chain, state)` fetches a chain's next page; `open` holds the chains not yet done,
    for a caller that reads them one at a time."""

    def __init__(self, client: TwilioClient, stream: str, account_sid: str, window: Window) -> None:
        now = datetime.now(UTC)
        self.client = client
        self.source = sources.BY_STREAM[stream]
        self.account_sid = account_sid
        # Each list is asked only for what it keeps, as the worker asks.
        self.window = worker.stream_window(stream, window, now)
        self.plan = plan.Plan(self.source, account_sid, self.window, worker.PAGE_SIZE, client.base_url(self.source.api))
        self.first = self.plan.first()
        self.open: list[tuple[int, plan.State]] = [] if self.first.done else [(0, self.first)]
        self._chains = 1

    async def read(self, chain: int, state: plan.State) -> Planned:
        fetched, page = await self.client.get_page(self.source.api, state.url, self._parse, retry_url=plan.retry_url)
        step = self.plan.advance(state, fetched, page)
        page = sources.owned(self.source, page, step.state.owns)
        children = list(range(self._chains, self._chains + len(step.spawn)))
        self._chains += len(step.spawn)
        return Planned(chain, state, step, page, children)

    async def take(self, most: int) -> list[Planned]:
        """Up to `most` pages, one chain at a time (a parent's page always before its slices')."""
        pages: list[Planned] = []
        while self.open and len(pages) < most:
            chain, state = self.open.pop(0)
            item = await self.read(chain, state)
            pages.append(item)
            if not item.step.state.done:
                self.open.insert(0, (chain, item.step.state))
            self.open += [(c, s) for c, s in zip(item.children, item.step.spawn) if not s.done]
        return pages

    def _parse(self, fetched: str, body: object) -> tuple[str, Page]:
        # `fetched` is the URL the client really asked (it may shrink a page that keeps failing).
        return fetched, sources.parse_page(self.source, body, self.account_sid, self.window, fetched)


async def fetch_limit(running: Emulator, window: Window) -> Limit:
    limit = Limit()
    async with client_for(running) as client:
        started = time.perf_counter()

        async def one(stream: str) -> None:
            figure = limit.streams[stream] = StreamFigure()
            pager = Pager(client, stream, running.account_sid, window)

            # Every chain at once, each slice as soon as the page splitting it off is read: the worker's pace.
            async def chain(number: int, state: plan.State, tg) -> None:
                while not state.done:
                    item = await pager.read(number, state)
                    figure.records += item.page.seen
                    figure.rows += len(item.page.records)
                    figure.pages += 1
                    for child, spawned in zip(item.children, item.step.spawn):
                        tg.start_soon(chain, child, spawned, tg)
                    state = item.step.state

            async with anyio.create_task_group() as tg:
                for number, state in pager.open:
                    tg.start_soon(chain, number, state, tg)
            figure.seconds = time.perf_counter() - started

        async with anyio.create_task_group() as tg:
            for stream in models.STREAMS:
                tg.start_soon(one, stream)
        limit.seconds = time.perf_counter() - started
    return limit


async def write_limit(running: Emulator, window: Window, dsn: str, kind: str,
                      meter: usage.Meter) -> tuple[Limit, usage.PhaseCpu]:
    """Every page written once into `dsn` under new scans of `kind`; only the writing is timed
    (and its CPU counted)."""
    limit = Limit()
    cpu = usage.ZERO
    async with await Store.connect(dsn) as store, client_for(running, store) as client:
        pagers = {s: Pager(client, s, running.account_sid, window) for s in models.STREAMS}
        scans = {s: await store.scans.start(running.account_sid, s, kind, p.window, p.first)
                 for s, p in pagers.items()}
        # The Pager's chain numbers -> the ids of their rows in twilio.scan_slices (None: the scan's head).
        slice_ids: dict[str, dict[int, ChainId]] = {s: {0: HEAD} for s in pagers}
        conn = await asyncpg.connect(dsn)
        try:
            await procs.checkpoint(conn)  # as before each CLI run, so that the figures compare
        finally:
            await conn.close()
        for stream in scans:
            limit.streams[stream] = StreamFigure()
        while any(p.open for p in pagers.values()):
            chunks = await _fetch_chunk(pagers)
            before = meter.sample()
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for stream, pages in chunks.items():
                    tg.start_soon(_write, store, stream, scans[stream], pages, limit.streams[stream],
                                  slice_ids[stream])
            limit.seconds += time.perf_counter() - started
            cpu = usage.plus(cpu, before, meter.sample())
    return limit, usage.between(usage.ZERO, cpu, limit.seconds)


async def _fetch_chunk(pagers: dict[str, Pager]) -> dict[str, list[Planned]]:
    chunks: dict[str, list[Planned]] = {}

    async def one(stream: str) -> None:
        chunks[stream] = await pagers[stream].take(CHUNK_PAGES)

    async with anyio.create_task_group() as tg:
        for stream in pagers:
            tg.start_soon(one, stream)
    return {s: pages for s, pages in chunks.items() if pages}


async def _write(store: Store, stream: str, scan: Scan, pages: list[Planned], figure: StreamFigure,
                 slice_ids: dict[int, ChainId]) -> None:
    source = sources.BY_STREAM[stream]
    started = time.perf_counter()
    for item in pages:
        written, slices = await store.pages.save(source, scan, slice_ids[item.chain], item.before, item.step.state,
                                                 item.page, spawn=item.step.spawn)
        by_url = {state.url: number for number, state in slices}
        for child, spawned in zip(item.children, item.step.spawn):
            slice_ids[child] = by_url[spawned.url]
        figure.records += item.page.seen
        figure.rows += written.inserted + written.updated
        figure.pages += 1
    figure.seconds += time.perf_counter() - started
