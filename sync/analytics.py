"""Keeping the analysts' daily overview current (migrations 0005 and 0012, docs/analysts.md).

`twilio.daily_account_overview` is a table recomputed per (account, day): every writer of a
message row marks its day owed in the same transaction (sync/sql/views.py), and a refresh
recomputes the owed days only, so it costs in proportion to what changed since the last one, and
next to nothing when nothing did. `backfill` refreshes it when its scans are done
(sync/backfill.py), and `run` after each full cycle (sync/turns.py); this is the one place that
does it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sync import logs
from sync.observe import NOBODY, Observer

if TYPE_CHECKING:  # the CLI imports this module on every command; the driver only when it runs
    from sync.store import Store

log = logs.get(__name__)

OVERVIEW = "daily_account_overview"  # the name logs and metrics give it (its `view` label)


async def refresh(store: Store, observer: Observer = NOBODY) -> int:
    """Recompute the overview's owed (account, day)s (readers keep reading the previous rows
    meanwhile); how many. Retried while the database is away (the store's edge)."""
    started = time.monotonic()
    days = await store.views.refresh()
    seconds = time.monotonic() - started
    observer.refreshed(OVERVIEW, seconds, days)
    log.info("analytics.refreshed", view=f"twilio.{OVERVIEW}", seconds=round(seconds, 3), days=days)
    return days
