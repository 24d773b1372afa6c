"""The latency phase (issue 11): a backfill against an API that takes its time to answer.

Twilio answers a list page in hundreds of milliseconds, the emulator in one. With
`--latency-ms N` the bench starts a second emulator holding the issue's data set (messages
created over the last 7 days, the legacy list in date_sent order) and, at 0 ms and then at each
latency, sets that latency on the emulator for the whole step (its fault control, not per
request) and measures, over one fixed 7-day window:

serial bound: each list read one page at a time from its first URL following its next links,
the three lists side by side, nothing written: the best a reader without time slices can do.
The v1 lists from `Source.first_url` over the window; the legacy list unfiltered from the top,
until the first record sent more than `plan.SENT_MARGIN` before the window start, where a
reader of a date_sent-ordered list may stop (the simplest reader exact on that order).

backfill: the real `python -m sync backfill --concurrency C` into a fresh database: its
archiving time (first scan start to last scan end, as the zero-latency backfill's), records/s,
requests, and the most requests the emulator saw in flight at once for the account (its
counters reset just before). speedup = serial bound / backfill archiving time.

Both read the same records: the rows archived per table must equal the rows the bound found
inside the window."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from bench import BenchError, procs, runs, usage
from bench.console import say
from bench.limits import client_for
from sync import models, plan, sources, worker
from sync.models import Page, Window

LEGACY_DAYS = 7  # the data set: every message in the last 7 days ...
LEGACY_ORDER = "sent-created"  # ... and the legacy list in date_sent order, the null block first


@dataclass
class ListRead:
    """One list read one page at a time."""

    pages: int = 0
    records: int = 0  # records served
    rows: int = 0  # of which created inside the window
    seconds: float = 0.0  # from the bound's start to this list's last page


@dataclass
class Bound:
    streams: dict[str, ListRead]
    seconds: float  # the lists side by side: the slowest one's
    requests: int | None  # the emulator's count
    peak_in_flight: int | None

    @property
    def pages(self) -> int:
        return sum(s.pages for s in self.streams.values())

    @property
    def rows(self) -> dict[str, int]:
        return {stream: s.rows for stream, s in self.streams.items()}


@dataclass
class AtLatency:
    """The serial bound and the backfill at one latency."""

    latency_ms: int
    bound: Bound
    backfill: runs.Run
    peak_in_flight: int | None  # the backfill's, for the account
    rows: dict[str, int]  # archived rows per table after the backfill

    @property
    def speedup(self) -> float | None:
        span = self.backfill.span_seconds
        return self.bound.seconds / span if span > 0 else None

    @property
    def process_speedup(self) -> float | None:
        """The same over the CLI process's whole life (start-up, migrations check, view refresh)."""
        seconds = self.backfill.exit.seconds
        return self.bound.seconds / seconds if seconds > 0 else None

    @property
    def mean_in_flight(self) -> float | None:
        """Requests x latency / backfill time: how many were in flight on average (0 ms: none)."""
        span = self.backfill.span_seconds
        return self.backfill.requests * self.latency_ms / 1000 / span if span > 0 and self.latency_ms else None

    @property
    def pages_x_latency(self) -> float:
        return self.bound.pages * self.latency_ms / 1000


@dataclass
class Phase:
    messages: int
    concurrency: int
    since: str
    until: str
    legacy_order: str = LEGACY_ORDER
    legacy_days: int = LEGACY_DAYS
    runs: list[AtLatency] = field(default_factory=list)


async def measure(latencies: list[int], messages: int, concurrency: int, seed: int, server: procs.Server,
                  databases: procs.Databases, workdir: Path, timed, cpu: dict[str, usage.PhaseCpu]) -> Phase:
    """Every latency in turn on one emulator (one data set), stopped when done."""
    with procs.EmulatorProcess(messages, seed, workdir, label="emulator-latency",
                               options={"legacy-days": LEGACY_DAYS, "legacy-order": LEGACY_ORDER}) as proc:
        say(f"latency phase: a second emulator, {messages:,} messages per API over the last {LEGACY_DAYS} days, "
            f"the legacy list in {LEGACY_ORDER} order")
        with timed("latency setup"):
            running = await anyio.to_thread.run_sync(proc.ready)
        meter = usage.Meter(running.pid, server.pid)
        # The window both readers cover: the last 7 days, up to a second after the newest record.
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        since = until - models.COMMS_RETENTION
        window = Window(since, until)
        phase = Phase(messages, concurrency, _rfc3339(since), _rfc3339(until))
        runner = runs.Runner(running, phase.since, phase.until, workdir, ("--concurrency", str(concurrency), "--no-media"))
        # First at zero latency: the same data set's figures without waiting, to set the others beside.
        for ms in [0, *(ms for ms in latencies if ms != 0)]:
            await _control(running, {"reset": True, "profile": f"latency-ms={ms}"})
            with timed(f"serial bound at {ms} ms"):
                before, t0 = meter.sample(), time.perf_counter()
                bound = await serial_bound(running, window)
                cpu[f"serial bound at {ms} ms"] = usage.between(before, meter.sample(), time.perf_counter() - t0)
            say(f"serial bound at {ms} ms: {bound.pages:,} pages in {bound.seconds:.1f} s "
                f"(peak in flight {bound.peak_in_flight})")
            dsn = await databases.fresh(f"latency_{ms}")
            with timed(f"backfill at {ms} ms"):
                await _control(running, {"reset": True})
                before = meter.sample()
                backfill = await runner.run(dsn, f"backfill-{ms}ms")
                cpu[f"backfill at {ms} ms"] = usage.between(before, meter.sample(), backfill.exit.seconds,
                                                            child_cpu=backfill.exit.cpu_seconds)
                peak = _peak(await _control(running), running.account_sid)
                rows = await runs.row_counts(dsn)
            await databases.drop(dsn)
            figure = AtLatency(ms, bound, backfill, peak, rows)
            say(f"backfill at {ms} ms: {backfill.records:,} records in {backfill.span_seconds:.1f} s = "
                f"{backfill.rate:,.0f}/s, speedup {figure.speedup or 0:.2f}x over the serial bound, "
                f"peak in flight {peak}")
            if rows != bound.rows:
                raise BenchError(f"backfill at {ms} ms archived {rows} rows, the serial bound found {bound.rows} "
                                 "in the window")
            phase.runs.append(figure)
    return phase


async def serial_bound(running: procs.Emulator, window: Window) -> Bound:
    """The lists side by side, each one page at a time, parsed as the worker parses, nothing written."""
    await _control(running, {"reset": True})
    streams: dict[str, ListRead] = {}
    now = datetime.now(UTC)
    async with client_for(running) as client:
        started = time.perf_counter()

        async def one(stream: str) -> None:
            source = sources.BY_STREAM[stream]
            span = worker.stream_window(stream, window, now)
            figure = streams[stream] = ListRead()
            # Below this a date_sent-ordered list holds no record created in the window.
            floor = (span.start - plan.SENT_MARGIN).timestamp()
            url: str | None = source.first_url(running.account_sid, span, worker.PAGE_SIZE)

            def parse(fetched: str, body: object) -> Page:
                return sources.parse_page(source, body, running.account_sid, span, fetched)

            while url is not None:
                page = await client.get_page(source.api, url, parse)
                figure.pages += 1
                figure.records += page.seen
                figure.rows += len(page.records)
                url = page.next_url
                if source.sent_column is not None and any(sent is not None and sent < floor for _, sent in page.times):
                    break
            figure.seconds = time.perf_counter() - started

        async with anyio.create_task_group() as tg:
            for stream in models.STREAMS:
                tg.start_soon(one, stream)
        seconds = time.perf_counter() - started
    stats = await _control(running)
    requests = stats.get("requests")
    return Bound(streams, seconds, requests if isinstance(requests, int) else None,
                 _peak(stats, running.account_sid))


async def _control(running: procs.Emulator, command: dict | None = None) -> dict:
    return await anyio.to_thread.run_sync(procs.fault_control, running, command)


def _peak(stats: dict, credential: str) -> int | None:
    peaks = stats.get("peak_in_flight")
    if not isinstance(peaks, dict):
        return None
    peak = peaks.get(credential)
    if peak is None and peaks:  # the CLI signed in otherwise (an API key): it is the only client
        peak = max(peaks.values())
    return peak if isinstance(peak, int) else None


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
