"""Keeping the analysts' materialized views current (migration 0005, docs/analysts.md).

`twilio.daily_account_overview` is materialized: over the whole history it costs about 10 s to
compute at 1M messages per API, too much for every dashboard read. `backfill` refreshes it when
its scans are done, if they wrote rows (or an earlier pass was interrupted: sync/backfill.py), and
`run` after each full cycle; this is the one place that does it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sync import logs
from sync.observe import NOBODY, Observer

if TYPE_CHECKING:  # the CLI imports this module on every command; the driver only when it runs
    from sync.store import Store

log = logs.get(__name__)

# The materialized views of schema twilio, in the order they are refreshed.
MATERIALIZED = ("daily_account_overview",)


async def refresh(store: Store, observer: Observer = NOBODY) -> dict[str, float]:
    """Refresh every materialized view (CONCURRENTLY: readers keep reading the previous rows
    meanwhile); the seconds each took. Retried while the database is away (the store's edge)."""
    took = {}
    for view in MATERIALIZED:
        started = time.monotonic()
        await store.views.refresh(view)
        took[view] = seconds = time.monotonic() - started
        observer.refreshed(view, seconds)
        log.info("analytics.refreshed", view=f"twilio.{view}", seconds=round(seconds, 3))
    return took
