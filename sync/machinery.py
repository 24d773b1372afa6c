"""One place builds the machinery of an account's scans: its Twilio client, wired to what
outlives the process (the account's Retry-After pause, kept in twilio.accounts) and to what
watches it (the service's metrics).

`backfill`, `run`, `demo`, the tests' backfill helper and the bench all get their client here,
so a pause one of them was told is honoured by all: a process started during a Retry-After
waits until it ends instead of asking again at once.

    async with machinery.twilio_client(account, store=store, metrics=metrics) as client:
        ...  # scans, hydration, deletion checks
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sync.config import TwilioSettings
from sync.http import TwilioClient

if TYPE_CHECKING:
    from sync.metrics import Metrics
    from sync.store import Store


@asynccontextmanager
async def twilio_client(account: TwilioSettings, *, store: Store | None = None, metrics: Metrics | None = None,
                        **options: Any) -> AsyncIterator[TwilioClient]:
    """A TwilioClient for `account`, open for the block.

    With `store`: it waits out the pause a previous process of this account was asked for, and
    keeps each new pause there for the next. With `metrics`: every response and retry is
    counted. `options` go to TwilioClient (retry policy, concurrency, timeout)."""
    hooks = _metric_hooks(metrics) if metrics is not None else {}
    async with TwilioClient(account, **hooks, **options) as client:
        if store is not None:
            client.pause_until(await store.accounts.paused_until(account.account_sid))
            client.on_pause = functools.partial(store.accounts.save_pause, account.account_sid)
        yield client


def _metric_hooks(metrics: Metrics) -> dict[str, Any]:
    def on_response(api: str, status: int) -> None:
        label = "comms" if api == "comms" else "legacy"
        metrics.api_responses.labels(label, str(status)).inc()
        if status == 429:
            metrics.rate_limited.labels(label).inc()

    def on_retry(cause: str) -> None:
        metrics.retries.labels("twilio", cause).inc()

    return {"on_response": on_response, "on_retry": on_retry}


def watch_store(store: Store, metrics: Metrics) -> None:
    """Count the archive's retries (a Postgres restart, a failover) with Twilio's."""
    store.on_retry = lambda cause: metrics.retries.labels("postgres", cause).inc()
