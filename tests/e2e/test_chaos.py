"""The chaos test: a backfill of tens of thousands of messages through a mixed fault profile,
two kill -9s of the worker and a Postgres restart, all real. The archive must equal what the
emulator holds, with no row written twice and no Retry-After ignored."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone

import anyio
import pytest

from sync import emulator, migrate
from sync.emulator import FaultProfile
from sync.store import Store
from tests import pg
from tests.archive import assert_archive_equals_emulator, committed_pages
from tests.cli import cli_env, held_after, sync_cli, until_held
from tests.service import eventually, query

pytestmark = pytest.mark.timeout(300)

MESSAGES = 15_000  # per API
PAGE_SIZE = "200"  # small pages: many requests, so every fault kind is drawn many times
PROFILE = FaultProfile(p429=0.10, retry_after=1, p503=0.05, drop=0.03, malformed=0.02)
LISTS = ("legacy_list", "comms_list", "operations_list")


async def killed_backfill(emu: emulator.Emulator, env: dict[str, str], dsn: str, *, meanwhile=None) -> None:
    """A backfill killed with SIGKILL once it has had 20 answers and waits for more (of some 250
    it needs); with `meanwhile`, that is awaited first (e.g. a Postgres restart), and 20 more
    answers are let through after it, before the kill."""
    async with held_after(emu, 20):
        proc = await anyio.open_process([sys.executable, "-m", "sync", "backfill", "--page-size", PAGE_SIZE], env=env)
        try:
            await until_held(emu, proc)
            if meanwhile is not None:
                await meanwhile()
                emu.faults.hold_after(20)
                await until_held(emu, proc)
            # The gate holds the request after the last answer, which may have been a Retry-After
            # the worker is still writing down: a kill -9 before that commit loses it, which no
            # process can help. So the kill waits for it.
            await eventually(lambda: pauses_kept(emu, dsn), what="the worker kept its Retry-After pause")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def pauses_kept(emu: emulator.Emulator, dsn: str) -> bool:
    """Whether the account's pause in the database lasts as long as every Retry-After given."""
    left = emu.faults.latest_deadline - time.monotonic()  # the emulator's clock is monotonic
    if left <= 0:
        return True
    rows = await query(dsn, "SELECT paused_until FROM twilio.accounts WHERE account_sid = $1",
                       emulator.DEFAULT_ACCOUNT_SID)
    return bool(rows) and rows[0][0] is not None and rows[0][0] >= datetime.now(timezone.utc) + timedelta(seconds=left)


async def test_mixed_faults_kills_and_a_postgres_restart_lose_and_duplicate_nothing(restartable_server):
    dsn = await pg.create_database(restartable_server.get_uri(), "archive")
    await anyio.to_thread.run_sync(migrate.upgrade, dsn)
    # Few messages with media: each list is a request of its own under the same faults, and at the
    # default share (7%) their 429s' one-second pauses made this test four times as long.
    emu = emulator.Emulator(seed=13, comms_messages=MESSAGES, legacy_messages=MESSAGES, legacy_days=7,
                            faults=PROFILE, fault_seed=13, mms_share=0.005)

    async def restart_postgres() -> None:
        await anyio.to_thread.run_sync(pg.restart_server, restartable_server)

    async with emulator.serve(emu) as url:
        env = cli_env(url, dsn)
        await killed_backfill(emu, env, dsn)
        await killed_backfill(emu, env, dsn, meanwhile=restart_postgres)
        assert await committed_pages(dsn) > 0
        final = await sync_cli("backfill", "--page-size", PAGE_SIZE, env=env)
        assert final.returncode == 0, final.stderr.decode()[-2000:]

    async with await Store.connect(dsn) as store:
        counts = await assert_archive_equals_emulator(store, emu)
        media = {r[0] for r in await store.fetch("SELECT sid FROM twilio.legacy_media")}
        assert media and media == {item["sid"] for m in emu.legacy_payloads() for item in emu.media.items(m)}
        # A clean run makes one request per page of one complete pass of each stream.
        last_passes = await store.fetch(
            "SELECT DISTINCT ON (stream) pages FROM twilio.scans ORDER BY stream, finished_at DESC")
        minimal = sum(p["pages"] for p in last_passes)
    faults = emu.faults
    assert faults.retry_after_violations == 0, faults.violations
    assert all(faults.injected[kind] > 0 for kind in ("429", "503", "drop", "malformed")), faults.injected
    made = sum(emu.request_counts[name] for name in LISTS)
    print(f"\nchaos: {sum(counts.values()):,} records archived; {made} list requests for {minimal} pages "
          f"({made / minimal:.2f}x); injected {dict(faults.injected)}; Retry-After violations 0")
