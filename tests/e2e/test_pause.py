"""A Retry-After outlives the `run` process that was told it: a service restarted during the
pause waits it out before its first request (Twilio's limits are per account, not per process)."""

from __future__ import annotations

from datetime import datetime, timezone

import anyio
import pytest

from sync import emulator
from sync.emulator import FaultProfile
from tests.cli import cli_env
from tests.service import FAST, Service, eventually, query

pytestmark = pytest.mark.timeout(120)

PAUSE = 8  # seconds of Retry-After: longer than a kill -9 and a restart take


async def paused_until(dsn: str) -> datetime | None:
    rows = await query(dsn, "SELECT paused_until FROM twilio.accounts WHERE account_sid = $1",
                       emulator.DEFAULT_ACCOUNT_SID)
    return rows[0]["paused_until"] if rows else None


async def test_a_run_restarted_during_a_retry_after_makes_no_request_before_it_ends(db_dsn):
    emu = emulator.Emulator(seed=4, comms_messages=100, legacy_messages=100, legacy_days=7,
                            faults=FaultProfile(retry_after=PAUSE))
    emu.faults.inject("429", times=1)  # the first request of the first process
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn)
        first = await Service(env, *FAST).start()
        try:
            await eventually(lambda: paused_until(db_dsn), what="the first process kept the pause")
        finally:
            await first.kill()
        until = await paused_until(db_dsn)
        assert until > datetime.now(timezone.utc), "the pause was over before the restart"
        asked = sum(emu.request_counts.values())

        async with Service(env, *FAST) as second:
            while datetime.now(timezone.utc) < until:
                assert sum(emu.request_counts.values()) == asked, "a request before the Retry-After ended"
                await anyio.sleep(0.05)
            # Then it gets on with its work.
            await eventually(lambda: _scanned(second), what="a scan after the pause")
    assert emu.faults.retry_after_violations == 0, emu.faults.violations


async def _scanned(svc: Service) -> bool:
    return bool(svc.events("scan.complete"))
