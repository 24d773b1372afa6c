"""Keeping the analysts' materialized views current (migration 0005, docs/analysts.md).

`twilio.daily_account_overview` is materialized: over the whole history it costs about 10 s to
compute at 1M messages per API, too much for every dashboard read. `backfill` refreshes it when
its scans are done and `run` after each full cycle; this is the one place that does it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sync import logs

if TYPE_CHECKING:  # the CLI imports this module on every command; the driver only when it runs
    from sync.metrics import Metrics
    from sync.store import Store

log = logs.get(__name__)

# The materialized views of schema twilio, in the order they are refreshed.
MATERIALIZED = ("daily_account_overview",)


async def refresh(store: Store, metrics: Metrics | None = None) -> dict[str, float]:
    """Refresh every materialized view (CONCURRENTLY: readers keep reading the previous rows
    meanwhile); the seconds each took. Retried while the database is away (the store's edge)."""
    took = {}
    for view in MATERIALIZED:
        started = time.monotonic()
        await store.views.refresh(view)
        took[view] = seconds = time.monotonic() - started
        if metrics is not None:
            metrics.analytics_refresh_duration.labels(view).set(seconds)
            metrics.analytics_last_refresh.labels(view).set(time.time())
        log.info("analytics.refreshed", view=f"twilio.{view}", seconds=round(seconds, 3))
    return took
