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
    """The server goes down while the worker has pages to save and comes back: the worker retries
    the save, goes on, and the archive is exact."""
    dsn = await pg.create_database(restartable_server.get_uri(), "archive")
    await anyio.to_thread.run_sync(migrate.upgrade, dsn)
    emu = emulator.Emulator(seed=5, comms_messages=3000, legacy_messages=3000, legacy_days=7,
                            faults=FaultProfile(slow=1.0, slow_seconds=0.03))

    def retried() -> bool:
        return any("retry what='save a page" in r.getMessage() for r in caplog.records)

    async with emulator.serve(emu) as url, await Store.connect(dsn) as store:
        with caplog.at_level(logging.WARNING, logger="sync.store"):
            async with anyio.create_task_group() as tg:
                # The gate stops the backfill half-way (of some 130 requests), so the server goes
                # down in its middle however loaded the machine, and answers flow again only then.
                emu.faults.hold_after(40)
                tg.start_soon(lambda: run_backfill(store, settings_for(url)))
                while (pages_before_restart := await committed_pages(dsn)) < 20 or not emu.faults.held:
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(pg.stop_server, restartable_server)
                emu.faults.release()
                while not retried():
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(pg.restart_server, restartable_server)
        await assert_archive_equals_emulator(store, emu)
    assert pages_before_restart < await committed_pages(dsn), "the backfill went on after the restart"
