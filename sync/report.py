"""What the commands print about the archive: the table of a pass (`backfill`, `demo`) and the
status report (`status`): per stream its rows, its last complete scan and what it cost, and the
scan in flight. Reads through the store; writes nothing."""

from __future__ import annotations

from datetime import datetime, timezone

from sync import database, media, models, worker
from sync.config import Settings


def print_results(results: list[worker.ScanResult], seconds: float, media_run: media.MediaRun | None = None) -> None:
    """One line per stream of a pass, its media lists when it read any, then the pass's total."""
    print(f"{'stream':<18} {'pages':>6} {'fetched':>9} {'new':>9} {'changed':>8} {'problems':>8} {'fetched/s':>10}")
    for r in results:
        rate = r.seen / r.seconds if r.seconds > 0 else 0.0
        resumed = "  (resumed)" if r.resumed else ""
        print(f"{r.stream:<18} {r.pages:>6} {r.seen:>9,} {r.inserted:>9,} {r.updated:>8,} {r.problems:>8,} {rate:>10,.0f}{resumed}")
    if media_run is not None:
        _print_media(media_run)
    total = sum(r.seen for r in results)
    print(f"done in {seconds:.1f} s: {total:,} records fetched, {total / max(seconds, 1e-9):,.0f} records/s")


def _print_media(m: media.MediaRun) -> None:
    """The media lists a pass read, when it read any."""
    if m.lists:
        print(f"media: {m.lists:,} lists read in {m.requests:,} requests, {m.items:,} items"
              + (f", {m.gone:,} lists gone (404)" if m.gone else "") + (f", {m.marked:,} marked deleted" if m.marked else "")
              + (f", {m.rejected:,} rejected" if m.rejected else "") + (f", {m.problems:,} with problems" if m.problems else ""))


def print_accounts(done) -> None:
    """A pass over many accounts (`backfill.AccountsPass`): each account's table, the closed
    accounts skipped, the accounts that failed (one line each), then the total."""
    for sid, results in sorted(done.results.items()):
        print(f"account {sid}")
        print_results(results, sum(r.seconds for r in results) / max(len(results), 1))
    for sid in done.closed:
        print(f"account {sid}: closed at Twilio, skipped (its archive stays)")
    for sid, cause in sorted(done.failed.items()):
        print(f"account {sid}: failed: {cause}")
    _print_media(done.media)
    total = sum(r.seen for results in done.results.values() for r in results)
    print(f"{len(done.results)} accounts archived, {len(done.closed)} closed, {len(done.failed)} failed, in "
          f"{done.seconds:.1f} s: {total:,} records fetched")


async def print_status(settings: Settings, *, demo: bool) -> None:
    """The status of the archive `database.choose_archive` picks, with what its reader should
    know about that choice. `--demo` says where the demo's archive is first, even when there is
    none yet (the error follows)."""
    if demo:
        print(database.demo_location(settings))
    choice = await database.choose_archive(settings, demo=demo)
    if choice.instead:
        # Right after `demo`: its archive is the only one there is, so show it, and say so.
        print("no archive yet in the embedded Postgres (`python -m sync migrate`, then `backfill`, make one)")
        print(database.demo_location(settings))
    await print_streams(choice.dsn)
    if choice.demo_too:
        print("\nthe demo's archive is there too: `python -m sync status --demo`, `python -m sync psql --demo`")


async def print_streams(dsn: str) -> None:
    """Per stream of the archive at `dsn`: rows, last complete scan, its cost, the scan in flight."""
    from sync.store import Store

    async with await Store.connect(dsn) as store:
        await store.status.check_schema()
        entries = await store.status.streams()
        archived, deleted, owed = await store.media.counts()
        accounts = await store.status.accounts()
    now = datetime.now(timezone.utc)
    for e in entries:
        print(f"{e['stream']}: {e['rows']:,} rows; newest record {_ago(e['newest'], now)}")
        _print_complete(e["complete"], now)
        if e["running"] is not None:
            _print_running(e["running"], now)
    print(f"media: {archived:,} items archived ({deleted:,} marked deleted); "
          f"{owed:,} messages owe their media list")
    if len(accounts) > 1 or any(a["status"] for a in accounts):
        _print_accounts(accounts, now)


def _print_accounts(accounts: list, now: datetime) -> None:
    """One line per account: its status at Twilio, every stream's last complete scan, rows, and
    the replica that took its last round."""
    print(f"\naccounts ({len(accounts)}):")
    for a in accounts:
        name = f" {a['friendly_name']!r}" if a["friendly_name"] else ""
        worked = f"; last round by {a['last_worked_by']} {_ago(a['last_worked_at'], now)}" if a["last_worked_by"] else ""
        print(f"  {a['account_sid']}{name}: {a['status'] or 'not listed'}; {a['rows']:,} rows; "
              f"last complete scan of every stream {_ago(a['done'], now)}{worked}")


def _print_complete(done: models.Scan | None, now: datetime) -> None:
    if done is None:
        print("  last complete scan: none yet")
        return
    print(f"  last complete scan: #{done.id} ({done.kind}) finished {_ago(done.finished_at, now)}, "
          f"window [{_iso(done.window.start)}, {_iso(done.window.end)}), {done.counts.seen:,} records, "
          f"{done.counts.inserted:,} new, {done.counts.updated:,} changed")
    print(f"  its cost: {done.counts.pages:,} list requests"
          + (f" in {done.slices:,} time slices and its head" if done.slices else "")
          + f", {done.counts.outside:,} records read outside the window"
          + (f"; list order {done.list_order}" if done.list_order else ""))


def _print_running(run: models.Scan, now: datetime) -> None:
    print(f"  in flight: #{run.id} ({run.kind}) started {_ago(run.started_at, now)}, {run.counts.pages} pages saved, "
          f"{run.counts.seen:,} records; resumes at {run.cursor or 'its slices (the head is read)'}"
          + (f" ({run.plan['phase']} phase)" if run.plan and run.plan.get("phase") != "list" else "")
          + (f"; time slices: {run.slices_done:,} of {run.slices:,} read" if run.slices else ""))


def _iso(when: datetime | None) -> str:
    return "-" if when is None else when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{_iso(when)} ({seconds / size:.1f} {unit} ago)"
    return f"{_iso(when)} ({seconds:.0f} s ago)"
