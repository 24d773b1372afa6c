"""Shared fixtures: a real Postgres (TEST_DATABASE_URL, or a private embedded server), a
migrated template database built once, a fresh child database per test, and the emulator."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import anyio
import pytest

from sync import emulator as emulator_pkg
from sync import machinery, migrate, models, privacy, worker
from sync.config import Secret, TwilioSettings
from sync.progress import Progress
from sync.store import Store
from tests import pg

TEMPLATE = "twilio_archive_template"


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """A superuser DSN of a running Postgres for the whole session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    # Short path on purpose: the server's unix socket lives in its data dir (108-byte limit).
    with tempfile.TemporaryDirectory(prefix="twa-") as tmp:
        server = pg.start_server(tmp)
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest.fixture
def restartable_server():
    """A Postgres of the test's own (always embedded), so restarting it disturbs no other test."""
    with tempfile.TemporaryDirectory(prefix="twa-") as tmp:
        server = pg.start_server(tmp)
        try:
            yield server
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
async def template_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    """A database migrated to head once per session; tests clone it."""
    await pg.drop_database(pg_server_dsn, TEMPLATE)
    dsn = await pg.create_database(pg_server_dsn, TEMPLATE)
    await anyio.to_thread.run_sync(migrate.upgrade, dsn)
    yield dsn
    await pg.drop_database(pg_server_dsn, TEMPLATE)


@pytest.fixture
async def empty_database_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    name = pg.random_name("empty")
    dsn = await pg.create_database(pg_server_dsn, name)
    yield dsn
    await pg.drop_database(pg_server_dsn, name)


@pytest.fixture
async def db_dsn(pg_server_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = pg.random_name("test")
    dsn = await pg.clone_database(pg_server_dsn, name, TEMPLATE)
    yield dsn
    await pg.drop_database(pg_server_dsn, name)


@pytest.fixture
async def store(db_dsn: str) -> AsyncIterator[Store]:
    s = await Store.connect(db_dsn)
    yield s
    await s.close()


@pytest.fixture
def emu() -> emulator_pkg.Emulator:
    """A small deterministic data set; tests add, change and delete records in it."""
    return emulator_pkg.Emulator(seed=7, comms_messages=300, legacy_messages=300, legacy_days=30)


@pytest.fixture
async def base_url(emu: emulator_pkg.Emulator) -> AsyncIterator[str]:
    async with emulator_pkg.serve(emu, host="127.0.0.1", port=0) as url:
        yield url


def settings_for(base_url: str, *, username: str | None = None, password: str | None = None) -> TwilioSettings:
    return TwilioSettings(
        account_sid=emulator_pkg.DEFAULT_ACCOUNT_SID,
        username=username or emulator_pkg.DEFAULT_ACCOUNT_SID,
        password=Secret(password or emulator_pkg.DEFAULT_AUTH_TOKEN),
        comms_base_url=base_url,
        api_base_url=base_url,
    )


@pytest.fixture
def twilio(base_url: str) -> TwilioSettings:
    return settings_for(base_url)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def run_backfill(store: Store, twilio: TwilioSettings, *, streams=models.STREAMS, since=None, until=None,
                       page_size: int = 50, bodies=privacy.KEEP, **client_options) -> dict[str, worker.ScanResult]:
    """The worker's backfill exactly as the CLI runs it, with small pages so every test pages a lot."""
    now = utcnow()
    window = models.default_window(now, since, until)
    async with machinery.twilio_client(twilio, store=store, **client_options) as client:
        results = await worker.backfill(store, client, twilio.account_sid, streams, window,
                                        fixed_end=until is not None, now=now, progress=Progress(),
                                        options=worker.ScanOptions(page_size=page_size, bodies=bodies))
    return {r.stream: r for r in results}
