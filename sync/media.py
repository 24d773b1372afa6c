"""The media of legacy messages: one media-list read per message that has media.

A legacy message says how many media items it carries (`num_media`); its items are in its own
list, `.../Messages/{MessageSid}/Media.json`. The messages whose list is owed are found in the
archive (sync/sql/media.py: num_media above 0, no list read at that num_media), oldest first,
so a kill or a restart loses nothing, and a plain SMS never costs a request. The requests go
through the account's client, so its concurrency budget and Retry-After apply as to the
scans. A 404 (the message was deleted or aged out) is recorded as a fact; an item that cannot
be parsed is kept (raw, or whole in twilio.rejected_records) and counted.

`follow` reads what is owed; with `recheck`, it then reads again the lists of the window's
messages last read longer ago than that, which marks the items Twilio no longer serves
(deleted_at) and never removes them. It may not decide when it runs (backfill.py, turns.py)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import anyio

from sync import errors, logs, pagination, plan
from sync.http import TwilioClient
from sync.models import LEGACY_RETENTION, RETENTION_MARGIN
from sync.observe import NOBODY, Observer
from sync.sources import media as source
from sync.sql.media import ListRead
from sync.store import Store

log = logs.get(__name__)

BATCH = 100  # lists read, then saved in one transaction
CONCURRENCY = 4  # lists in flight; the scans share the account's budget


@dataclasses.dataclass
class MediaRun:
    """What one `follow` did."""

    lists: int = 0  # media lists read (each page of one counted once)
    requests: int = 0  # requests made for them, pages included
    gone: int = 0  # lists answered 404
    items: int = 0  # media items served
    marked: int = 0  # items found gone and marked deleted
    rejected: int = 0  # items that could not become a row, kept in twilio.rejected_records
    problems: int = 0  # items stored with something that could not be typed

    def add(self, other: MediaRun) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


async def read_list(client: TwilioClient, account_sid: str, message_sid: str, num_media: int,
                    page_size: int = source.PAGE_SIZE) -> tuple[ListRead, MediaRun, int]:
    """Every page of one message's media list, as the message's own account; also the page size
    it ended with (smaller after 500s, which the next lists start from)."""
    run = MediaRun(lists=1)
    rows: list[tuple] = []
    rejected = []
    url: str | None = source.list_url(account_sid, message_sid, page_size)

    def parse(fetched: str, body: object) -> tuple[str, source.MediaPage]:
        return fetched, source.parse_page(body, account_sid, message_sid)

    while url is not None:
        run.requests += 1
        try:
            # After 500s a smaller page, as the scans ask.
            fetched, page = await client.get_page("api", url, parse, retry_url=plan.retry_url)
        except errors.FatalSourceError as exc:
            if exc.status != 404:
                raise
            run.gone += 1
            return ListRead(account_sid, message_sid, num_media, gone=True), run, page_size
        page_size = min(page_size, pagination.page_size(fetched) or page_size)
        rows += page.rows
        rejected += page.rejected
        run.problems += page.problems
        url = page.next_url
    return ListRead(account_sid, message_sid, num_media, rows, rejected), run, page_size


async def follow(store: Store, client: TwilioClient, account_sid: str, *, recheck: timedelta | None = None,
                 until: float | None = None, observer: Observer = NOBODY,
                 page_size: int = source.PAGE_SIZE) -> MediaRun:
    """Read the owed media lists of the account, then (with `recheck`) the lists due again,
    until none wait or `until` (an anyio.current_time() deadline) passes between batches."""
    done = MediaRun()
    now = datetime.now(timezone.utc)

    async def waiting() -> list[tuple[str, int]]:
        owed = await store.media.owed(account_sid, BATCH)
        if owed or recheck is None:
            return owed
        since = now - LEGACY_RETENTION + RETENTION_MARGIN  # older ones Twilio no longer has
        return await store.media.due(account_sid, since, now - recheck, BATCH)

    limiter = anyio.CapacityLimiter(CONCURRENCY)
    while until is None or anyio.current_time() < until:
        batch = await waiting()
        if not batch:
            break
        reads: list[ListRead] = []
        run = MediaRun()

        async def one(message_sid: str, num_media: int) -> None:
            nonlocal page_size
            async with limiter:
                read, counted, used = await read_list(client, account_sid, message_sid, num_media, page_size)
            page_size = min(page_size, used)
            reads.append(read)
            run.add(counted)
            observer.media_listed(account_sid, "gone" if read.gone else "read", len(read.rows), len(read.rejected))

        async with anyio.create_task_group() as tg:
            for message_sid, num_media in batch:
                tg.start_soon(one, message_sid, num_media)
        saved = await store.media.save(reads)
        run.items, run.marked, run.rejected = saved.items, saved.marked, saved.rejected
        done.add(run)
    archived, _, owed = await store.media.counts(account_sid)
    observer.media_counts(account_sid, archived, owed)
    if done.lists:
        log.info("media.done", account=account_sid, lists=done.lists, requests=done.requests, items=done.items,
                 gone=done.gone, marked=done.marked, rejected=done.rejected, problems=done.problems)
    return done
