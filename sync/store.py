"""The archive database, for its callers: one `Store` over the Postgres edge, with one
attribute per concern (the statements live in sync/sql/, the only SQL besides the migrations).

    async with await Store.connect(dsn) as store:
        await store.status.check_schema()
        written, slices = await store.pages.save(source, scan, None, before, after, page, spawn=step.spawn)

`pages` a page's rows with its checkpoint, `scans` the scans' rows, `deletions` what a full
scan proved gone, `hydration` the v1 messages waiting for their content, `leases` one replica
per stream, `accounts` an account's Retry-After pause, `status` the archive as a whole, `views`
the materialized views' refresh. The edge's `fetch`, `fetchval`, `execute` (retried) and `ping`
serve everything else."""

from __future__ import annotations

import asyncpg

from sync.observe import NOBODY, Observer
from sync.retry import Backoff
from sync.sql.accounts import Accounts
from sync.sql.deletions import Deletions
from sync.sql.edge import RECONNECT, Postgres
from sync.sql.hydration import Hydration
from sync.sql.leases import Leases
from sync.sql.pages import Pages
from sync.sql.scans import Scans
from sync.sql.status import Status
from sync.sql.views import Views


class Store(Postgres):
    def __init__(self, pool: asyncpg.Pool, *, retry: Backoff = RECONNECT, observer: Observer = NOBODY) -> None:
        super().__init__(pool, retry=retry, observer=observer)
        self.pages = Pages(self)
        self.scans = Scans(self)
        self.deletions = Deletions(self)
        self.hydration = Hydration(self)
        self.leases = Leases(self)
        self.accounts = Accounts(self)
        self.status = Status(self, self.scans)
        self.views = Views(self)
