"""Deleted legacy messages: marked, never removed, and only on proof.

A message Twilio deleted simply stops being listed. A complete full scan keeps every key it
was served (twilio.scan_seen); archived messages of its window that it never saw are only
candidates, because a list that reorders while it is paged (a queued message gets its
date_sent) can hide a record from one pass. Each candidate is therefore fetched by its SID:
a 404 proves it gone and it is marked deleted; a record that answers is stored as served."""

from __future__ import annotations


import anyio

from sync import errors, logs
from sync.http import TwilioClient
from sync.models import Rejected, Scan
from sync.privacy import KEEP, Bodies
from sync.sources import Source
from sync.sources.base import keyed_row
from sync.store import Store

log = logs.get(__name__)

# More candidates than this after one scan is not deletion but a problem elsewhere (an
# account switched, a list that misbehaved); fetching them all would be a request storm.
MAX_CANDIDATES = 5_000
CONCURRENCY = 4


async def mark_deleted(store: Store, client: TwilioClient, source: Source, scan: Scan, *,
                       bodies: Bodies = KEEP) -> int:
    """After `scan` completed: mark the archived records it proved gone; how many."""
    if not await store.deletions.seen_set_intact(scan):
        log.warning("deletions.skipped", account=scan.account_sid, stream=source.stream, scan=scan.id,
                    reason="database-restarted-during-scan")
        return await store.deletions.mark(source, scan, [])  # marks none; drops the scan's seen keys
    candidates = await store.deletions.candidates(source, scan, MAX_CANDIDATES + 1)
    if len(candidates) > MAX_CANDIDATES:
        log.warning("deletions.skipped", account=scan.account_sid, stream=source.stream, scan=scan.id,
                    reason="too-many-candidates", candidates_over=MAX_CANDIDATES)
        return await store.deletions.mark(source, scan, [])
    gone: list[str] = []
    present: list[tuple] = []
    limiter = anyio.CapacityLimiter(CONCURRENCY)

    async def check(key: str) -> None:
        async with limiter:
            try:
                record = await client.get_json(source.api, source.record_url(scan.account_sid, key))
            except errors.FatalSourceError as exc:
                if exc.status == 404:
                    gone.append(key)
                    return
                raise
        row = keyed_row(source, record, scan.account_sid, bodies)
        if isinstance(row, Rejected) or row[0] != key:
            log.warning("deletions.unexpected", account=scan.account_sid, stream=source.stream, key=key)
            return
        present.append(row)

    async with anyio.create_task_group() as tg:
        for key in candidates:
            tg.start_soon(check, key)
    if present:
        # Listed nowhere in this pass, yet there: the list moved under the scan. Store it as served.
        await store.pages.save_records(source, scan.account_sid, present)
    marked = await store.deletions.mark(source, scan, gone)
    log.info("deletions.checked", account=scan.account_sid, stream=source.stream, scan=scan.id,
             candidates=len(candidates), deleted=marked, still_there=len(present))
    return marked
