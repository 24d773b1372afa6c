"""The per-account concurrency budget over real HTTP against the emulator: the cap holds and is
used, Twilio's concurrency 429s shrink the window and it recovers, and a backfill under a low
concurrency limit still archives exactly."""

from __future__ import annotations

import anyio

from sync import emulator, machinery
from sync.emulator import DEFAULT_ACCOUNT_SID, FaultProfile
from sync.http import TwilioClient
from sync.observe import Observer
from sync.retry import Backoff
from tests.archive import assert_archive_equals_emulator
from tests.conftest import run_backfill, settings_for

# The real policy with shorter waits: a concurrency 429 carries no Retry-After, so backoff alone
# spaces the retries.
QUICK = Backoff(attempts=10, base=0.02, cap=0.5)
LIST = f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json?PageSize=5"


class Windows(Observer):
    """Keeps every window the budget reported."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def budget(self, account_sid: str, window: int, in_flight: int, concurrent: int | None) -> None:
        self.seen.append(window)


async def parallel(client: TwilioClient, n: int) -> None:
    """n requests of the account at once, each retried as the scans' are."""
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(client.get_json, "api", LIST)


async def test_the_cap_is_never_exceeded_and_is_used(emu, twilio):
    """40 requests at once on a budget of 5, each held by the emulator's latency: Twilio sees exactly
    5 in flight at the most (at most 5: the cap holds; 5: the requests did run in parallel)."""
    emu.faults.profile = FaultProfile(latency=0.2)
    async with machinery.twilio_client(twilio, concurrency=5) as client:
        await parallel(client, 40)
        assert client.budget.capacity == 5 and client.budget.in_flight == 0
    assert emu.faults.peak_in_flight == {DEFAULT_ACCOUNT_SID: 5}
    assert emu.faults.requests == 40


async def test_429s_shrink_the_window_and_it_recovers_when_the_limit_lifts(emu, twilio):
    """Over a limit of 3, a budget of 8 backs off and every request still succeeds; once the limit is
    lifted, the answers bring the window back to 8."""
    emu.faults.profile = FaultProfile(latency=0.05, concurrency_limit=3)
    windows = Windows()
    async with machinery.twilio_client(twilio, concurrency=8, retry=QUICK, observer=windows) as client:
        await parallel(client, 40)
        assert emu.faults.injected["concurrency"] > 0, "the limit was never reached: the test proves nothing"
        assert client.budget.lowest <= 4 and min(windows.seen) == client.budget.lowest
        assert client.budget.peak_concurrent >= 3  # Twilio-Concurrent-Requests was read

        emu.faults.profile = FaultProfile(latency=0.05)
        emu.faults.reset_counts()
        # From a window of 1, 1 + 2 + ... + 7 = 28 answers bring it to 8: 40 are enough.
        await parallel(client, 40)
        assert client.budget.capacity == 8 and windows.seen[-1] == 8
    assert emu.faults.injected == {} and emu.faults.peak_in_flight[DEFAULT_ACCOUNT_SID] <= 8
    assert emu.faults.retry_after_violations == 0


async def test_a_backfill_under_a_low_concurrency_limit_archives_exactly(store, emu, twilio):
    """Every stream, hydration included, against a limit of 2 with a budget of 8: the 429s are
    absorbed and the archive equals the emulator's data."""
    emu.faults.profile = FaultProfile(latency=0.02, concurrency_limit=2)
    await run_backfill(store, twilio, retry=QUICK, concurrency=8)
    assert emu.faults.injected["concurrency"] > 0, "the limit was never reached: the test proves nothing"
    assert emu.faults.retry_after_violations == 0
    await assert_archive_equals_emulator(store, emu)


async def test_a_sliced_backfill_fills_the_budget_and_never_exceeds_it(store):
    """Time slices are what puts requests in flight: a backfill of every stream at a budget of 4,
    each request held by the emulator's latency, has Twilio see exactly 4 at once at the most
    (never more; and 4, because the slices ran in parallel), and archives exactly."""
    emu = emulator.Emulator(seed=11, comms_messages=2_000, legacy_messages=2_000, legacy_days=7,
                            legacy_order="sent-created", faults=FaultProfile(latency=0.02))
    async with emulator.serve(emu) as url:
        results = await run_backfill(store, settings_for(url), concurrency=4)
    slices = await store.fetchval("SELECT count(*) FROM twilio.scan_slices")
    assert slices >= 4, "the window was not sliced: the test proves nothing"
    assert emu.faults.peak_in_flight == {DEFAULT_ACCOUNT_SID: 4}
    assert all(r.complete for r in results.values())
    await assert_archive_equals_emulator(store, emu)
