"""Which accounts this replica may work, kept current, and each offered to the job queue.

Without --subaccounts they are fixed (the environment's, an accounts file's); with it, the roster
lists them again every discovery interval: a new account is offered to the queue at once, a closed
one is forgotten (its job ends the next time a replica takes it). Every known account is offered
again every heartbeat timeout, so a job lost (a bug in a round, the database away as the job was
put back) comes back; the queue's dedupe key makes the offers of many replicas one job.

It owns the known accounts and the listing's loop; it may not scan or run a round (service.py),
and reaches the queue only through `Queue.offer`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from sync import errors, logs
from sync.config import TwilioSettings
from sync.metrics import Metrics
from sync.roster import Roster

log = logs.get("sync.service")  # the service's events: log filters name it


@dataclass
class Known:
    accounts: list[TwilioSettings]  # the service's list, kept equal to `by_sid`'s values
    metrics: Metrics
    roster: Roster | None = None
    discovery_interval: float = 300.0
    heartbeat: float = 30.0
    by_sid: dict[str, TwilioSettings] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)  # named by hand: their refused credentials end the service
    listed: bool = False  # the first listing is done (or there is none to wait for)

    def __post_init__(self) -> None:
        self.listed = self.roster is None or not self.roster.subaccounts
        self.by_sid = {a.account_sid: a for a in self.accounts}
        self.named = set(self.by_sid) if self.listed else set()

    async def keep(self, store: Any, queue: Any, stop: anyio.Event,
                   end: Callable[[errors.SyncError], None]) -> None:
        """Until `stop`: list (with --subaccounts) every discovery interval and offer every known
        account every heartbeat timeout. The first listing refused calls `end` (the main
        credentials are wrong); a later one failing changes nothing."""
        next_listing = 0.0 if not self.listed else float("inf")
        while not stop.is_set():
            if time.monotonic() >= next_listing:
                next_listing = time.monotonic() + self.discovery_interval
                try:
                    await self._list(store)
                except errors.FatalSourceError as exc:
                    if not self.listed:
                        end(errors.FatalSourceError(f"listing the accounts: {exc}", status=exc.status, code=exc.code))
                        return
                    log.error("accounts.listing_failed", cause=str(exc))
                except errors.SyncError as exc:
                    log.warning("accounts.listing_failed", cause=str(exc))
            if self.listed:
                await self._offer(queue)
            with anyio.move_on_after(max(0.0, min(self.heartbeat, next_listing - time.monotonic()))):
                await stop.wait()

    async def _list(self, store: Any) -> None:
        assert self.roster is not None
        chosen = await self.roster.current(store)
        for sid in chosen.closed:
            if sid not in self.closed:
                log.warning("account.closed", account=sid)
        self.closed = set(chosen.closed)
        for account in chosen.accounts:
            if account.account_sid not in self.by_sid:
                self.metrics.zero_account(account.account_sid)
        self.by_sid = {a.account_sid: a for a in chosen.accounts}
        self.accounts[:] = chosen.accounts
        self.listed = True

    async def _offer(self, queue: Any) -> None:
        try:
            added = await queue.offer(sorted(self.by_sid))
        except errors.StoreError as exc:
            log.warning("queue.offer_failed", cause=str(exc))
        else:
            if added:
                log.info("queue.offered", accounts=added)
