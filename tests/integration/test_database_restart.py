"""Postgres restarting under a running backfill: the worker waits, reconnects and goes on from
its checkpoint; no half-written page is ever visible and no row is written twice."""

from __future__ import annotations

import logging

import anyio

from sync import emulator, migrate
from sync.emulator import FaultProfile
from sync.store import Store
from tests import pg
from tests.archive import assert_archive_equals_emulator, committed_pages
from tests.conftest import run_backfill, settings_for


async def test_a_postgres_restart_mid_backfill_is_waited_out_and_nothing_is_lost(restartable_server, caplog):
    dsn = await pg.create_database(restartable_server.get_uri(), "archive")
    await anyio.to_thread.run_sync(migrate.upgrade, dsn)
    # Slow answers stretch the run so that the restart lands in its middle.
    emu = emulator.Emulator(seed=5, comms_messages=3000, legacy_messages=3000, legacy_days=7,
                            faults=FaultProfile(slow=1.0, slow_seconds=0.03))
    pages_before_restart = 0
    async with emulator.serve(emu) as url, await Store.connect(dsn) as store:
        with caplog.at_level(logging.WARNING, logger="sync.store"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: run_backfill(store, settings_for(url)))
                while (pages_before_restart := await committed_pages(dsn)) < 20:
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(pg.restart_server, restartable_server)
        assert any("retry what='save a page" in r.getMessage() for r in caplog.records), "the restart was not noticed"
        await assert_archive_equals_emulator(store, emu)
    assert pages_before_restart < await committed_pages(dsn), "the backfill went on after the restart"
