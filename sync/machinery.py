"""One place builds the machinery of an account's scans: its Twilio client, wired to what
outlives the process (the account's Retry-After pause, kept in twilio.accounts) and to what
watches it (an `observe.Observer`: the service's metrics).

`backfill`, `run`, `demo`, the tests' backfill helper and the bench all get their client here,
so a pause one of them was told is honoured by all: a process started during a Retry-After
waits until it ends instead of asking again at once.

    async with machinery.twilio_client(account, store=store, observer=metrics) as client:
        ...  # scans, hydration, deletion checks
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sync.config import TwilioSettings
from sync.http import TwilioClient
from sync.observe import NOBODY, Observer, Observers

if TYPE_CHECKING:
    from sync.store import Store


@asynccontextmanager
async def twilio_client(account: TwilioSettings, *, store: Store | None = None, observer: Observer = NOBODY,
                        **options: Any) -> AsyncIterator[TwilioClient]:
    """A TwilioClient for `account`, open for the block.

    With `store`: it waits out the pause a previous process of this account was asked for, and
    keeps each new pause there for the next. `observer` is told every response and retry.
    `options` go to TwilioClient (retry policy, concurrency, timeout, transport); the concurrency budget's
    cap is the account's own (`account.concurrency`, --concurrency) unless `concurrency` is given."""
    if store is not None:
        observer = Observers(observer, PauseKeeper(store))
    options.setdefault("concurrency", account.concurrency)
    async with TwilioClient(account, observer=observer, **options) as client:
        if store is not None:
            client.pause_until(await store.accounts.paused_until(account.account_sid))
        yield client


async def open_store(dsn: str, *, observer: Observer = NOBODY) -> Store:
    """The archive, its retries told to `observer` (a Postgres restart, a failover)."""
    from sync.store import Store  # asyncpg and the SQL load only for the commands that need them

    return await Store.connect(dsn, observer=observer)


class PauseKeeper(Observer):
    """Keeps each Retry-After pause in twilio.accounts, for the next process of the account."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def pause(self, account_sid: str, until: datetime) -> None:
        await self._store.accounts.save_pause(account_sid, until)
