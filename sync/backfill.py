"""One pass over a window, as `backfill` and `demo` run it (and the tests that want the
command's own pass): the store, the account's client, the progress line on stderr, the media
owed by the legacy messages archived (media.py), then the analysts' daily overview brought up to
what the pass archived (and whatever else it owes).
Over many accounts (an accounts file, --subaccounts: `run_accounts`), a few accounts at once,
an account failing its own way reported and the others archived."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import anyio

from sync import analytics, chains, collector, errors, logs, machinery, media, models, privacy, worker
from sync.config import TwilioSettings
from sync.progress import Progress
from sync.roster import Roster

log = logs.get(__name__)

# Accounts a pass over many scans at once: each has its own concurrency budget, so this bounds
# the process' requests in flight and pages in hand to this many accounts' worth (--accounts-at-once).
ACCOUNTS_AT_ONCE = 4

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
        # The scans are done: bring the overview up to what they archived, and whatever else is
        # owed (an earlier pass killed before its refresh, `run`'s writes since its last cycle).
        # Owing nothing, a refresh costs a lock and an empty DELETE.
        await analytics.refresh(store)
    return results, time.monotonic() - started, media_run


@dataclass
class AccountsPass:
    """What a pass over many accounts did: each account's results, the closed ones skipped, and
    the accounts that failed their own way (one line each), which never stopped the others."""

    results: dict[str, list] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    media: media.MediaRun = field(default_factory=media.MediaRun)  # every account's media lists
    seconds: float = 0.0


async def run_accounts(dsn: str, roster: Roster, streams, window: models.Window, *, fixed_end: bool, now: datetime,
                       page_size: int = worker.PAGE_SIZE, bodies: privacy.Bodies = privacy.KEEP,
                       accounts_at_once: int = ACCOUNTS_AT_ONCE, with_media: bool = True) -> AccountsPass:
    """Backfill every account of `roster` (the listing's with --subaccounts) through the job queue,
    `accounts_at_once` of them at a time; then the overview's one refresh. Each account is one
    job carrying the window of the process that offered it first, so the same command started on
    several machines shares the accounts between them (each reports its own), and an account a
    dead machine was passing is taken up by another after the heartbeat timeout. With the legacy
    list (unless not `with_media`), each account's pass ends with the media its messages owe, read
    with that account's own client."""
    from sync.queue import PASS, Queue

    started = time.monotonic()
    done = AccountsPass()
    with collector.tuned():
        async with await machinery.open_store(dsn) as store, Queue.open(dsn) as queue:
            await store.status.check_schema()
            chosen = await roster.current(store)
            done.closed = chosen.closed
            known = {a.account_sid: a for a in chosen.accounts}
            job = {"since": window.start.isoformat(), "until": window.end.isoformat(), "fixed_end": fixed_end,
                   "now": now.isoformat(), "streams": list(streams), "media": with_media}
            await queue.offer(sorted(known), entrypoint=PASS,
                              payloads=[json.dumps({**job, "sid": sid}).encode() for sid in sorted(known)])
            bugs: list[BaseException] = []

            async def one(queued) -> None:
                spec = json.loads(queued.payload)
                account = known.get(spec["sid"])
                if account is None:
                    from sync.queue import next_round

                    raise next_round(1.0)  # offered by a process that knows an account this one does not
                try:
                    results, media_run = await _account_pass(store, account, spec, page_size, bodies)
                except Exception as exc:  # noqa: BLE001 - sorted: the account's own failure, or a bug
                    shown = chains.first_error(exc)
                    if not isinstance(shown, errors.SyncError):
                        bugs.append(exc)  # raised once the queue is drained: pgqueuer would only log it
                        shown = exc
                    done.failed[account.account_sid] = str(shown)
                    log.error("account.failed", account=account.account_sid, cause=str(shown))
                    return
                done.results[account.account_sid] = results
                done.media.add(media_run)

            await queue.work(one, at_once=accounts_at_once, heartbeat=PASS_HEARTBEAT, poll=1.0, stop=anyio.Event(),
                             entrypoint=PASS, drain=True)
            if bugs:
                raise bugs[0]
            await analytics.refresh(store)  # what the accounts' passes marked owed, as one pass does
    done.seconds = time.monotonic() - started
    return done


PASS_HEARTBEAT = 30.0  # a dead machine's account passes are taken up after this long


async def _account_pass(store: Store, account: TwilioSettings, spec: dict, page_size: int,
                        bodies: privacy.Bodies) -> tuple[list, media.MediaRun]:
    """One account's pass over the window its job carries, then the media its messages owe."""
    window = models.Window(datetime.fromisoformat(spec["since"]), datetime.fromisoformat(spec["until"]))
    streams = tuple(spec["streams"])
    async with machinery.twilio_client(account, store=store) as client:
        results = await worker.backfill(store, client, account.account_sid, streams, window,
                                        fixed_end=spec["fixed_end"], now=datetime.fromisoformat(spec["now"]),
                                        progress=Progress(), options=worker.ScanOptions(page_size=page_size, bodies=bodies))
        media_run = media.MediaRun()
        if spec.get("media", True) and models.LEGACY_MESSAGES in streams:
            media_run = await media.follow(store, client, account.account_sid)
    return results, media_run

