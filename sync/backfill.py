"""One pass over a window, as `backfill` and `demo` run it (and the tests that want the
command's own pass): the store, the account's client, the progress line on stderr, the media
owed by the legacy messages archived (media.py), then the materialized overviews brought up to
what the pass archived, when it archived anything."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

import anyio

from sync import analytics, collector, machinery, media, models, privacy, worker
from sync.config import TwilioSettings
from sync.progress import Progress

if TYPE_CHECKING:
    from sync.store import Store


async def run(dsn: str, twilio: TwilioSettings, streams, window: models.Window, *, fixed_end: bool, now: datetime,
              page_size: int = worker.PAGE_SIZE, bodies: privacy.Bodies = privacy.KEEP,
              with_media: bool = True) -> tuple[list, float, media.MediaRun]:
    """Backfill `streams` of the account over `window`, then (with the legacy list, unless not
    `with_media`) the media its messages owe; each stream's ScanResult, the seconds taken, and
    what the media lists cost."""
    with collector.tuned():
        return await _pass(dsn, twilio, streams, window, fixed_end=fixed_end, now=now, page_size=page_size,
                           bodies=bodies, with_media=with_media)


async def _pass(dsn: str, twilio: TwilioSettings, streams, window: models.Window, *, fixed_end: bool, now: datetime,
                page_size: int, bodies: privacy.Bodies, with_media: bool) -> tuple[list, float, media.MediaRun]:
    started = time.monotonic()
    progress = Progress()
    async with await machinery.open_store(dsn) as store:
        await store.status.check_schema()
        interrupted = await interrupted_before(store, twilio.account_sid, streams)
        async with machinery.twilio_client(twilio, store=store) as client, anyio.create_task_group() as tg:
            tg.start_soon(progress.render)
            results = await worker.backfill(store, client, twilio.account_sid, streams, window,
                                            fixed_end=fixed_end, now=now, progress=progress,
                                            options=worker.ScanOptions(page_size=page_size, bodies=bodies))
            media_run = media.MediaRun()
            if with_media and models.LEGACY_MESSAGES in streams:
                # Every message it archived with media is owed its list now: read them all.
                media_run = await media.follow(store, client, twilio.account_sid)
            tg.cancel_scope.cancel()
        progress.finish()
        # The scans are done: bring the materialized overviews up to what they archived. A pass
        # that wrote no row leaves them as they are: a refresh recomputes a whole view (seconds at
        # a million messages) to find it unchanged. Unless an earlier pass was interrupted before
        # its refresh: this one resumed or replaced it, and what that one wrote is not in them yet.
        if interrupted or any(r.inserted or r.updated for r in results):
            await analytics.refresh(store)
    return results, time.monotonic() - started, media_run


async def interrupted_before(store: Store, account_sid: str, streams: tuple[str, ...]) -> bool:
    """Whether a backfill of these streams was left running (killed, or stopped) by an earlier pass."""
    for stream in streams:
        if await store.scans.running(account_sid, stream, "backfill") is not None:
            return True
    return False
