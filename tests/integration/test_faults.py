"""Twilio misbehaving, on demand, against the real worker and a real Postgres: every fault the
emulator can inject is survived without losing or duplicating a record."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from sync import chains, errors
from sync.emulator import FaultProfile
from sync.http import TwilioClient
from sync.retry import Backoff
from tests import servers
from tests.archive import assert_archive_equals_emulator
from tests.conftest import run_backfill, settings_for, utcnow

# The real policy with shorter waits, so that tests which fail many requests stay quick;
# Retry-After still sets the floor.
QUICK = Backoff(attempts=10, base=0.02, cap=0.5)


async def backfill_error(coro) -> BaseException:
    """The error a failed backfill shows the user (task groups wrap it)."""
    with pytest.raises(BaseException) as info:
        await coro
    return chains.first_error(info.value)


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop", "malformed"])
async def test_a_retryable_fault_is_retried_and_nothing_is_lost(store, emu, twilio, kind):
    """429, 500, 503, a connection dropped mid-body or a malformed 200: retried until the page comes."""
    emu.faults.inject(kind, times=3)
    await run_backfill(store, twilio, retry=QUICK)
    assert emu.faults.injected[kind] == 3
    await assert_archive_equals_emulator(store, emu)
    assert emu.faults.retry_after_violations == 0


async def test_a_response_slower_than_the_timeout_is_retried(store, emu, twilio):
    """A request that outlives the client's timeout is abandoned and asked again."""
    emu.faults.profile = FaultProfile(slow_seconds=3.0)
    emu.faults.inject("slow", times=2)
    await run_backfill(store, twilio, retry=QUICK, timeout=1.0)
    assert emu.faults.injected["slow"] == 2
    await assert_archive_equals_emulator(store, emu)


async def test_retry_after_is_honoured_for_the_whole_account(store, emu, twilio):
    """Under a per-credential rate limit every 429's Retry-After is waited out, by all streams."""
    emu.faults.profile = FaultProfile(rate_limit=20, burst=4)
    await run_backfill(store, twilio)
    assert emu.faults.injected["rate_limit"] > 0, "the limit was never reached: the test proves nothing"
    assert emu.faults.retry_after_violations == 0, emu.faults.violations
    await assert_archive_equals_emulator(store, emu)


async def test_pages_too_large_for_the_server_are_asked_for_smaller(store, emu, twilio):
    """When a page size keeps failing with 500, the scan halves it until pages come, and goes on at that size."""
    emu.faults.profile = FaultProfile(max_page_size=130)
    # Back 31 days, so that the legacy scan needs every one of its 300 messages.
    results = await run_backfill(store, twilio, page_size=1000, retry=QUICK, since=utcnow() - timedelta(days=31))
    assert emu.faults.injected["page_size"] > 0
    await assert_archive_equals_emulator(store, emu)
    # 1000 -> 500 -> 250 -> 125: the 300 legacy messages then take 3 pages, not 1.
    assert results["legacy_messages"].pages == 3
    assert results["comms_messages"].pages == 3


@pytest.mark.parametrize(("stream", "path"), [("legacy_messages", "/Messages.json"), ("comms_messages", "/v1/Messages?")])
async def test_a_stale_page_token_restarts_the_scan_and_keeps_what_it_archived(store, emu, twilio, stream, path):
    """A page token Twilio no longer accepts sends the scan back to its window's first page;
    the pages already saved stay, and the second pass writes each row at most once."""
    emu.faults.inject("stale_token", times=1, path_contains=path)
    results = await run_backfill(store, twilio, streams=(stream,))
    assert emu.faults.injected["stale_token"] == 1
    counts = await assert_archive_equals_emulator(store, emu, streams=(stream,))
    scan = (await store.fetch("SELECT restarts, records_seen FROM twilio.scans WHERE stream = $1", stream))[0]
    assert scan["restarts"] == 1
    assert results[stream].seen > counts[stream], "the restart read the first pages again"


async def test_a_page_token_that_never_works_stops_the_scan_with_a_clear_error(store, emu, twilio):
    """Restarts are bounded: a token refused on every pass ends the run with one clear error,
    after MAX_RESTARTS restarts of the chain it kept failing (others may have restarted too)."""
    emu.faults.inject("stale_token", times=100, path_contains="/Messages.json")
    error = await backfill_error(run_backfill(store, twilio, streams=("legacy_messages",)))
    assert isinstance(error, errors.SourceError) and f"after {chains.MAX_RESTARTS} restarts" in str(error)
    restarts = await store.fetchval("SELECT restarts FROM twilio.scans")
    assert chains.MAX_RESTARTS <= restarts < emu.faults.injected["stale_token"] < 100


async def test_when_retries_run_out_the_scan_resumes_from_its_checkpoints(store, emu, twilio):
    """Retries exhausted stop the run, not the archive: the other chains save what they fetched,
    and the next run goes on from every saved position, so that the two runs together ask for
    exactly the pages one clean run asks for."""
    since = utcnow() - timedelta(days=31)  # the whole list
    await run_backfill(store, twilio, streams=("legacy_messages",), since=since)
    clean = emu.request_counts["legacy_list"]
    await store.execute("TRUNCATE twilio.scans, twilio.legacy_messages CASCADE")  # the same pass again, from nothing

    emu.faults.inject("drop", times=3, path_contains="Messages.json?PageSize=50&Page=1&PageToken")  # the head's second page
    error = await backfill_error(run_backfill(store, twilio, streams=("legacy_messages",), since=since,
                                              retry=Backoff(attempts=3, base=0.01)))
    assert isinstance(error, errors.RetryableSourceError) and "gave up" in str(error)
    scan = (await store.fetch("SELECT status, pages FROM twilio.scans"))[0]
    assert scan["status"] == "running" and scan["pages"] >= 1
    failed_run = emu.request_counts["legacy_list"] - clean

    await run_backfill(store, twilio, streams=("legacy_messages",), since=since)
    resumed = emu.request_counts["legacy_list"] - clean - failed_run
    assert (failed_run - 3) + resumed == clean, "a saved page was fetched again, or one was skipped"
    await assert_archive_equals_emulator(store, emu, streams=("legacy_messages",))


async def test_other_client_errors_are_fatal_at_once(store, emu, base_url):
    """A 4xx that asking again cannot fix (here 404: an account path that is not ours) stops at
    once, with Twilio's code and message, after one request."""
    other = settings_for(base_url)
    other = other.__class__(**{**other.__dict__, "account_sid": "AC" + "0" * 32})
    error = await backfill_error(run_backfill(store, other, streams=("legacy_messages",)))
    assert isinstance(error, errors.FatalSourceError)
    assert "404" in str(error) and "20404" in str(error)
    assert emu.request_counts["legacy_list"] == 1


async def test_a_retry_after_outlives_the_run_that_was_told_it(store, emu, twilio):
    """A run that stops while Twilio has asked it to wait leaves the pause in twilio.accounts;
    the next run (a restarted worker) waits it out instead of asking again at once."""
    emu.faults.profile = FaultProfile(retry_after=2)
    emu.faults.inject("429", times=1)
    error = await backfill_error(run_backfill(store, twilio, streams=("legacy_messages",), retry=Backoff(attempts=1)))
    assert isinstance(error, errors.RetryableSourceError) and "429" in str(error)
    paused = await store.fetch("SELECT paused_until > now() AS ahead FROM twilio.accounts WHERE account_sid = $1",
                               twilio.account_sid)
    assert paused and paused[0]["ahead"]
    await run_backfill(store, twilio, streams=("legacy_messages",))
    assert emu.faults.retry_after_violations == 0, emu.faults.violations
    await assert_archive_equals_emulator(store, emu, streams=("legacy_messages",))


async def test_requests_in_flight_per_account_are_bounded():
    """However many pages are asked for at once, at most `concurrency` requests of one account are
    in flight: Twilio limits concurrent requests per account."""
    in_flight = peak = 0

    async def slow(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.05)
        in_flight -= 1
        return servers.json_body(b"{}")

    async with servers.serve(slow) as server, TwilioClient(settings_for(server.base_url), concurrency=3) as client:
        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(client.get_json, "api", f"/page/{i}")
    assert len(server.requests) == 12 and peak == 3
