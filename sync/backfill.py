"""One pass over a window, as `backfill` and `demo` run it (and the tests that want the
command's own pass): the store, the account's client, the progress line on stderr, then the
materialized overviews brought up to what the pass archived."""

from __future__ import annotations

import time
from datetime import datetime

import anyio

from sync import analytics, machinery, models, privacy, worker
from sync.config import TwilioSettings


async def run(dsn: str, twilio: TwilioSettings, streams, window: models.Window, *, fixed_end: bool, now: datetime,
              page_size: int = worker.PAGE_SIZE, bodies: privacy.Bodies = privacy.KEEP) -> tuple[list, float]:
    """Backfill `streams` of the account over `window`; each stream's ScanResult and the seconds taken."""
    from sync.progress import Progress

    started = time.monotonic()
    progress = Progress()
    async with await machinery.open_store(dsn) as store:
        await store.status.check_schema()
        async with machinery.twilio_client(twilio, store=store) as client, anyio.create_task_group() as tg:
            tg.start_soon(progress.render)
            results = await worker.backfill(store, client, twilio.account_sid, streams, window,
                                            fixed_end=fixed_end, now=now, progress=progress,
                                            options=worker.ScanOptions(page_size=page_size, bodies=bodies))
            tg.cancel_scope.cancel()
        progress.finish()
        # The scans are done: bring the materialized overviews up to what they archived.
        await analytics.refresh(store)
    return results, time.monotonic() - started
