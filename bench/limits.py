"""The two limits a backfill cannot beat, measured apart in this process with the sync code itself.

fetch limit: every page of every stream fetched and parsed exactly as the worker's producer
does (TwilioClient.get_page with sources.parse_page), all streams at once, nothing written.

write limit: the same parsed pages upserted exactly as the worker's consumer does
(store.pages.save, one page per transaction, in order, under a scan row so the checkpoint
moves), all streams at once, with no fetching in the timed part. Pages are fetched a chunk at
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
from sync.models import Page, Scan, Window
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


class Pager:
    """One stream's pages, fetched, parsed and planned the way the worker's chains do, but one
    page at a time: the head's and then each slice's it split off, in turn.

    `next()` returns (chain, before, step, page): the chain (0 the head, then the slices in the
    order they were split off), the checkpoint before the page and the plan's step after it,
    which store.pages.save moves between."""

    def __init__(self, client: TwilioClient, stream: str, account_sid: str, window: Window) -> None:
        now = datetime.now(UTC)
        self.client = client
        self.source = sources.BY_STREAM[stream]
        self.account_sid = account_sid
        # Each list is asked only for what it keeps, as the worker asks.
        self.window = worker.stream_window(stream, window, now)
        self.plan = plan.Plan(self.source, account_sid, self.window, worker.PAGE_SIZE, client.base_url(self.source.api))
        self.chains = [self.plan.first()]

    @property
    def done(self) -> bool:
        return all(state.done for state in self.chains)

    async def next(self) -> Planned | None:
        chain = next((i for i, state in enumerate(self.chains) if not state.done), None)
        if chain is None:
            return None
        before = self.chains[chain]
        fetched, page = await self.client.get_page(self.source.api, before.url, self._parse,
                                                   retry_url=plan.retry_url)
        step = self.plan.advance(before, fetched, page)
        self.chains[chain] = step.state
        self.chains += step.spawn
        return chain, before, step, sources.owned(self.source, page, step.state.owns)

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
            while (item := await pager.next()) is not None:
                page = item[-1]
                figure.records += page.seen
                figure.rows += len(page.rows)
                figure.pages += 1
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
        scans = {s: await store.scans.start(running.account_sid, s, kind, p.window, p.chains[0])
                 for s, p in pagers.items()}
        conn = await asyncpg.connect(dsn)
        try:
            await procs.checkpoint(conn)  # as before each CLI run, so that the figures compare
        finally:
            await conn.close()
        for stream in scans:
            limit.streams[stream] = StreamFigure()
        ids: dict[tuple[str, int], int | None] = {(s, 0): None for s in scans}
        while any(not p.done for p in pagers.values()):
            chunks = await _fetch_chunk(pagers)
            before = meter.sample()
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for stream, pages in chunks.items():
                    tg.start_soon(_write, store, stream, scans[stream], pages, limit.streams[stream], ids)
            limit.seconds += time.perf_counter() - started
            cpu = usage.plus(cpu, before, meter.sample())
    return limit, usage.between(usage.ZERO, cpu, limit.seconds)


Planned = tuple[int, plan.State, plan.Step, Page]


async def _fetch_chunk(pagers: dict[str, Pager]) -> dict[str, list[Planned]]:
    chunks: dict[str, list[Planned]] = {s: [] for s in pagers}

    async def one(stream: str) -> None:
        while len(chunks[stream]) < CHUNK_PAGES and (item := await pagers[stream].next()) is not None:
            chunks[stream].append(item)

    async with anyio.create_task_group() as tg:
        for stream in pagers:
            tg.start_soon(one, stream)
    return {s: pages for s, pages in chunks.items() if pages}


async def _write(store: Store, stream: str, scan: Scan, pages: list[Planned], figure: StreamFigure,
                 ids: dict[tuple[str, int], int | None]) -> None:
    """Save the pages in order, each under its chain's row (`ids`: the pager's chain -> its
    slice's id, the head None), as the worker saves them."""
    source = sources.BY_STREAM[stream]
    started = time.perf_counter()
    for chain, before, step, page in pages:
        written, slices = await store.pages.save(source, scan, ids.get((stream, chain)), before, step.state, page,
                                                 spawn=step.spawn)
        by_url = {state.url: new for new, state in slices}
        known = sum(1 for key in ids if key[0] == stream)  # the pager numbers new chains on from here
        for offset, state in enumerate(step.spawn):
            ids[(stream, known + offset)] = by_url[state.url]
        figure.records += page.seen
        figure.rows += written.inserted + written.updated
        figure.pages += 1
    figure.seconds += time.perf_counter() - started
