"""The worker's decisions, against in-memory stand-ins of our own store and client
(tests/fakes.py): which chains run, what each saves, restarts, stops, errors and the pages in
hand. The same scans run against Postgres and the emulator in tests/integration/."""

from __future__ import annotations

import gc
import random
import weakref
from collections import Counter
from datetime import datetime, timedelta, timezone

import anyio
import pytest

from sync import chains, errors, sources, worker
from sync.models import HEAD, Slice, Window
from sync.progress import Progress
from tests import fakes

NOW = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
WINDOW = Window(NOW - timedelta(days=7), NOW)
COMMS = sources.BY_STREAM["comms_messages"]
LEGACY = sources.BY_STREAM["legacy_messages"]
P = 50


def v1_records(count: int = 1_000, seed: int = 1) -> list[dict]:
    """A v1 list over the window, newest first, created on whole seconds."""
    rng = random.Random(seed)
    now = NOW.timestamp()
    records = [{"sid": f"c{i:08d}", "created": float(int(now - rng.uniform(10, 7 * 86_400 - 10))), "sent": None}
               for i in range(count)]
    return sorted(records, key=lambda r: -r["created"])


def legacy_records(count: int = 300) -> list[dict]:
    """A legacy list in creation order, every message sent a second after it was created."""
    now = NOW.timestamp()
    return [{"sid": f"SM{i:032x}", "created": now - 1_000 * i - 60, "sent": now - 1_000 * i - 59} for i in range(count)]


def in_window(records: list[dict]) -> set[str]:
    start, end = WINDOW.start.timestamp(), WINDOW.end.timestamp()
    return {r["sid"] for r in records if start <= r["created"] < end}


async def scan(store: fakes.Store, client: fakes.Client, source=COMMS, stop: anyio.Event | None = None
               ) -> worker.ScanResult:
    """One scan of the source's window, opened (or resumed) and run as backfill runs it."""
    opened, resumed = await worker.open_scan(store, source, fakes.ACCOUNT, "backfill", WINDOW, fixed_end=True,
                                             page_size=P, now=NOW)
    options = worker.ScanOptions(page_size=P, stop=stop)
    return await worker.run_scan(store, client, source, opened, Progress(), resumed=resumed, options=options)


async def test_a_dense_window_is_read_in_slices_each_record_saved_once():
    """The head splits off slices; every record of the window is saved, by one chain only."""
    records = v1_records()
    store, client = fakes.Store(), fakes.Client(fakes.Twilio(records))
    result = await scan(store, client)
    saved = Counter(key for _, keys in store.pages.saved for key in keys)
    assert result.complete and set(saved) == in_window(records)
    assert max(saved.values()) == 1
    assert {type(chain) for chain, _ in store.pages.saved} == {type(HEAD), Slice}
    assert result.inserted == len(in_window(records))


async def test_every_ticket_is_given_back_when_the_scan_ends():
    """Pages in hand are bounded while the scan runs and all given back after it."""
    store, client = fakes.Store(), fakes.Client(fakes.Twilio(v1_records()), concurrency=1)
    await scan(store, client)
    assert client.budget.pages.held == 0


async def test_a_stale_token_sends_the_chain_back_to_the_top_of_its_query():
    """The chain starts its query again, its checkpoint moved back with it, and the scan completes."""
    records = legacy_records()
    twilio = fakes.Twilio(records)
    twilio.stale.add(f"PA{2 * P}")
    store, client = fakes.Store(), fakes.Client(twilio)
    result = await scan(store, client, LEGACY)
    assert result.complete and store.scans.restarts == [(1, HEAD)]
    assert sum(1 for url in twilio.requests if "PageToken" not in url) == 2  # the top, twice
    assert set(store.pages.rows["legacy_messages"]) == in_window(records)


async def test_a_chain_that_keeps_going_stale_gives_up():
    """After MAX_RESTARTS restarts in one run the scan fails with a SourceError, not a restart loop."""
    twilio = fakes.Twilio(legacy_records())
    store, client = fakes.Store(), fakes.Client(twilio)
    twilio.before_answer = lambda url: twilio.stale.add(f"PA{P}")  # the second page never answers
    with pytest.raises(errors.SourceError, match="gave up after"):
        await scan(store, client, LEGACY)
    assert len(store.scans.restarts) == chains.MAX_RESTARTS
    assert client.budget.pages.held == 0


async def test_a_failed_save_ends_the_scan_with_its_own_error():
    """A save's error reaches the caller as itself (not wrapped in a group), the tickets given back."""
    store, client = fakes.Store(), fakes.Client(fakes.Twilio(v1_records()))
    store.pages.fail = errors.ScanMovedError("moved by someone else")
    with pytest.raises(errors.ScanMovedError):
        await scan(store, client)
    assert client.budget.pages.held == 0


async def test_a_fetch_error_is_raised_after_the_page_before_it_is_saved():
    """A chain's failed request ends the scan only once the page fetched before it is saved."""
    records = legacy_records()
    twilio = fakes.Twilio(records)

    def fail_third(url: str) -> None:
        if f"PageToken=PA{2 * P}" in url:
            raise errors.FatalSourceError("HTTP 403", status=403)

    twilio.before_answer = fail_third
    store, client = fakes.Store(), fakes.Client(twilio)
    with pytest.raises(errors.FatalSourceError):
        await scan(store, client, LEGACY)
    assert [len(keys) for _, keys in store.pages.saved] == [P, P]
    assert store.scans.head(next(iter(store.scans.rows.values()))).url.endswith(f"PageToken=PA{2 * P}")


def hold_saves(store: fakes.Store, count, enough: int | None = None) -> list[tuple[int, int]]:
    """Hold each save until `count()` reaches `enough` (None: the number of slices the page
    splits off; a page that splits off none is not held), for at most 1,000 turns of the event
    loop (no clock); the list gets (`count()`, slices split off) as each commits."""
    real, counts = store.pages.save, []

    async def save(source, scan_, chain, before, after, page, *, spawn=(), seen=False):
        target = len(spawn) if enough is None else enough
        if target:
            for _ in range(1_000):
                if count() >= target:
                    break
                await anyio.sleep(0)
            counts.append((count(), len(spawn)))
        return await real(source, scan_, chain, before, after, page, spawn=spawn, seen=seen)

    store.pages.save = save
    return counts


async def test_a_slices_first_page_is_asked_for_while_the_page_that_split_it_off_is_saved():
    """The slices a page splits off do not wait for its save to ask for their first page: each
    goes out meanwhile, and is saved by its slice once the save has created it, each record once."""
    records = v1_records()
    twilio = fakes.Twilio(records)
    store, client = fakes.Store(), fakes.Client(twilio, concurrency=16)
    first_pages = hold_saves(store, lambda: sum(1 for url in twilio.requests if "pageToken" not in url) - 1)
    result = await scan(store, client)
    asked, split_off = first_pages[0]
    assert split_off > 0 and asked == split_off
    saved = Counter(key for _, keys in store.pages.saved for key in keys)
    assert result.complete and set(saved) == in_window(records) and max(saved.values()) == 1
    assert client.budget.pages.held == 0


async def test_a_chain_asks_on_while_the_pages_before_are_saved_within_the_pages_in_hand():
    """A chain read one page after another (the legacy head) asks for its next page as soon as
    a page is answered, not once the pages before are saved: with its first save held, it has
    as many pages in hand as the budget allows (3 x 1), no more, and saves them in order."""
    records = legacy_records()
    twilio = fakes.Twilio(records)
    store, client = fakes.Store(), fakes.Client(twilio, concurrency=1)
    asked = hold_saves(store, lambda: len(twilio.requests), enough=3)
    result = await scan(store, client, LEGACY)
    assert asked[0] == (3, 0)
    assert result.complete and [k for _, keys in store.pages.saved for k in keys] == [r["sid"] for r in records]


async def test_a_chain_whose_saves_keep_up_asks_before_the_page_before_is_saved():
    """Latency (issue 19): a chain asks for page N+1 as soon as page N is answered while page
    N-1 is still being saved: each save is held until the chain has asked for the page two after
    it, which a chain waiting for its previous save would never do (the hold gives up after
    1,000 turns of the event loop, and the count it saw shows it)."""
    records = legacy_records()
    twilio = fakes.Twilio(records)
    store, client = fakes.Store(), fakes.Client(twilio, concurrency=4)
    real, counts = store.pages.save, []

    async def save(source, scan_, chain, before, after, page, *, spawn=(), seen=False):
        target = len(counts) + 1 + 2  # this page's number, plus two
        for _ in range(1_000):
            if len(twilio.requests) >= target:
                break
            await anyio.sleep(0)
        counts.append((len(twilio.requests), target))
        return await real(source, scan_, chain, before, after, page, spawn=spawn, seen=seen)

    store.pages.save = save
    result = await scan(store, client, LEGACY)
    pages = len(twilio.requests)
    assert result.complete and pages >= 4
    assert all(count >= min(target, pages) for count, target in counts), counts


async def test_a_slices_first_page_is_let_go_once_saved_while_its_chain_reads_on():
    """Memory (issue 19): the first page a slice asked for early (`_early`) is freed once saved,
    not kept for as long as the slice's chain runs: every running slice held one (twice the
    peak RSS of a backfill against an API that answers at once)."""
    twilio = fakes.Twilio(v1_records())
    store, client = fakes.Store(), fakes.Client(twilio, concurrency=16)
    real, firsts, kept = store.pages.save, {}, []

    async def save(source, scan_, chain, before, after, page, *, spawn=(), seen=False):
        if isinstance(chain, Slice):
            if chain not in firsts:
                firsts[chain] = weakref.ref(page)
            elif firsts[chain] is not None:  # its second page: the first is saved, nothing needs it
                gc.collect()
                kept.append(firsts[chain]() is not None)
                firsts[chain] = None
        return await real(source, scan_, chain, before, after, page, spawn=spawn, seen=seen)

    store.pages.save = save
    result = await scan(store, client)
    assert result.complete and kept and not any(kept)


async def test_a_repeated_page_token_fails_the_scan_as_a_loop():
    """The worker's loop guard: a list handing out the same token twice fails, never spins."""
    twilio = fakes.Twilio(legacy_records())
    real = twilio.body

    def looping(url: str) -> dict:
        body = real(url)
        if body["next_page_uri"] is not None:
            body["next_page_uri"] = body["next_page_uri"].replace(f"PA{2 * P}", f"PA{P}")
        return body

    twilio.body = looping
    with pytest.raises(errors.PaginationLoopError):
        await scan(fakes.Store(), fakes.Client(twilio), LEGACY)


async def test_a_stop_fetches_nothing_more_saves_what_came_and_resumes_later():
    """Stopped mid-scan: no request after the stop, the scan stays running, and a new run finishes it."""
    records = legacy_records()
    twilio = fakes.Twilio(records)
    stop = anyio.Event()
    twilio.before_answer = lambda url: stop.set() if f"PageToken=PA{P}" in url else None
    store, client = fakes.Store(), fakes.Client(twilio)
    stopped = await scan(store, client, LEGACY, stop=stop)
    assert not stopped.complete and len(twilio.requests) == 2
    assert client.budget.pages.held == 0
    twilio.before_answer = lambda url: None
    resumed = await scan(store, client, LEGACY)
    assert resumed.complete and resumed.resumed
    assert set(store.pages.rows["legacy_messages"]) == in_window(records)


async def test_an_interrupted_scan_is_resumed_unless_asked_to_reach_further_back():
    """open_scan resumes a running scan over the same window; one reaching further back replaces it."""
    store = fakes.Store()
    narrow = Window(WINDOW.start + timedelta(days=1), WINDOW.end)

    async def open_(window: Window):
        return await worker.open_scan(store, COMMS, fakes.ACCOUNT, "backfill", window, fixed_end=True,
                                      page_size=P, now=NOW)

    first, resumed = await open_(narrow)
    same, again = await open_(narrow)
    wider, replaced = await open_(WINDOW)
    assert (resumed, again, same.id) == (False, True, first.id)
    assert replaced is False and wider.id != first.id and store.scans.rows[first.id].status == "abandoned"


@pytest.mark.parametrize(("source", "days"), [(COMMS, 7), (LEGACY, 400)])
def test_a_streams_window_is_clamped_to_what_its_source_keeps(source, days):
    """Never ask for more than the list keeps: the Source's retention, not its name."""
    asked = Window(NOW - timedelta(days=1_000), NOW)
    clamped = worker.stream_window(source.stream, asked, NOW)
    assert timedelta(days=days - 1) < NOW - clamped.start <= timedelta(days=days)
