"""The archive database, for its callers: one `Store` made of the Postgres edge and one
attribute per concern (the statements live in sync/sql/, the only SQL besides the migrations).

    async with await Store.connect(dsn) as store:
        await store.status.check_schema()
        written, slices = await store.pages.save(source, scan, models.HEAD, before, after, page, spawn=step.spawn)

`pages` a page's rows with its checkpoint, `scans` the scans' rows, `deletions` what a full
scan proved gone, `hydration` the v1 messages waiting for their content, `media` the legacy
messages' media and the lists owed, `accounts` an account's Retry-After pause, its listing and the replica of its last round, `status` the archive as a whole, `views`
the daily overview's marks and refresh. Each concern holds the edge and nothing else, so every
statement goes through its one retry loop; `fetch`, `fetchrow`, `fetchval`, `execute` (retried)
and `ping` hand the edge's own to what no concern owns (the tests, the demo's example queries)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from sync.budget import Admission
from sync.observe import NOBODY, Observer
from sync.sql.accounts import Accounts
from sync.sql.deletions import Deletions
from sync.sql.edge import Postgres
from sync.sql.hydration import Hydration
from sync.sql.media import Media
from sync.sql.pages import Pages
from sync.sql.scans import Scans
from sync.sql.status import Status
from sync.sql.views import Views


class Store:
    """The concerns of the archive over one edge, which the store owns and closes."""

    def __init__(self, edge: Postgres, *, saves_at_once: int = 8) -> None:
        self.edge = edge
        # The pages' saves wait here, not in the pool's queue (first come, first served), so that
        # the chain on a scan's critical path saves first (`saving`).
        self._saves = Admission(lambda: saves_at_once)
        self.pages = Pages(edge)
        self.scans = Scans(edge)
        self.deletions = Deletions(edge)
        self.hydration = Hydration(edge)
        self.media = Media(edge)
        self.accounts = Accounts(edge)
        self.status = Status(edge, self.scans)
        self.views = Views(edge)

    @classmethod
    async def connect(cls, dsn: str, *, max_size: int = 8, observer: Observer = NOBODY) -> Store:
        """The archive at `dsn`, its retries told to `observer` (StoreError if it cannot connect)."""
        return cls(await Postgres.connect(dsn, max_size=max_size, observer=observer), saves_at_once=max_size)

    @asynccontextmanager
    async def saving(self, priority: float) -> AsyncIterator[None]:
        """A turn to save a page, at most one per pooled connection at once, the lowest `priority`
        first (a scan's chains pass their budget priority: the chain a scan waits on goes first,
        where the pool would serve the saves in the order they came)."""
        await self._saves.enter(priority)
        try:
            yield
        finally:
            self._saves.leave()

    async def close(self) -> None:
        await self.edge.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self.edge.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self.edge.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.edge.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        return await self.edge.execute(query, *args)

    async def ping(self) -> None:
        """Fails (StoreUnavailableError) unless the database answers now: no retrying."""
        await self.edge.ping()
