"""What a stream's turn does and when, decided without I/O: the service's schedule.

Each turn of a stream's loop runs one scan:

- `full` when the last complete full scan is older than `full_interval` (or one is in
  flight): the whole retention window, for late changes; on a list whose deletions are
  proved by 404 (`Source.proves_deletions`: the legacy list) it also proves them (deletions.py);
- `recent` otherwise: the last `lookback` seconds, for new messages and fast status changes.

After the scan of a list whose records are completed one by one (`Source.hydrated`: v1
Messages), new and changed messages are fetched for their content (hydrate.py). What a turn
does is decided up front, as a `Turn`, from the stream's `Source`, never from its name. How
late a held stream's last complete scan may be before the replica is not ready is decided here
too (`overdue`). Nothing here reads the clock, the store or the network: the callers hand in `now`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sync import errors, sources
from sync.models import Window, default_window


@dataclass(frozen=True)
class Schedule:
    interval: float = 60.0  # seconds between the starts of a stream's scans
    full_interval: float = 3600.0  # seconds between full scans of the retention window
    lookback: float = 3600.0  # how far back a recent scan reaches

    def __post_init__(self) -> None:
        if not (self.interval > 0 and self.full_interval > 0 and self.lookback > 0):
            raise errors.ConfigError("--interval, --full-interval and --lookback must be positive")


def scan_kind(last_full: datetime | None, now: datetime, schedule: Schedule) -> str:
    """`full` when no full scan completed within `full_interval` (none is in flight); else `recent`."""
    due = last_full is None or (now - last_full).total_seconds() >= schedule.full_interval
    return "full" if due else "recent"


@dataclass(frozen=True)
class Turn:
    """What one turn of a stream's loop does, decided before it scans; what a stream does
    differently is the `Source`'s to say, never its name."""

    kind: str  # "full" (the whole retention window) or "recent" (the last `lookback` seconds)
    window: Window
    # A full scan of a list whose deletions are proved by 404 (Source.proves_deletions): it keeps
    # the keys it sees, and its archived records it did not see are checked (deletions.py).
    prove_deletions: bool
    hydrate: bool  # after the scan, fetch the new and changed records for their content (hydrate.py)

    @classmethod
    def of(cls, source: sources.Source, kind: str, now: datetime, schedule: Schedule, *, hydrate: bool) -> Turn:
        window = default_window(now, None, None) if kind == "full" else \
            Window(now - timedelta(seconds=schedule.lookback), now)
        return cls(kind, window, prove_deletions=kind == "full" and source.proves_deletions,
                   hydrate=hydrate and source.hydrated)


@dataclass
class StreamHealth:
    """What /readyz reports about one (account, stream) whose turns this replica takes."""

    last_success: float | None = None  # time.monotonic() of the last complete scan here
    last_error: str | None = None  # why the last turn here failed; None once one succeeds
    failed_at: float | None = None  # time.monotonic() of that failure
    started: float | None = None  # time.monotonic() the turn in flight here began; None between turns


def overdue(health: dict[tuple[str, str], StreamHealth], now: float, schedule: Schedule) -> list[str]:
    """Why the streams this replica works keep it from being ready (`now` on time.monotonic()):
    one line per stream whose last turn here failed, or whose turn in flight has gone on for
    more than a few intervals without a scan completing. A stream another replica works now
    is none of this replica's business: between turns only a recent failure counts."""
    problems = []
    allowed = max(3 * schedule.interval, 300.0)  # a full scan of a busy account takes minutes
    for (account_sid, stream), h in sorted(health.items()):
        if h.last_error and (h.failed_at is None or now - h.failed_at <= allowed):
            problems.append(f"{account_sid} {stream}: its last scan failed: {h.last_error}")
        elif h.started is not None and now - max(h.started, h.last_success or h.started) > allowed:
            done = "no scan has completed yet" if h.last_success is None else \
                f"no scan completed in {now - max(h.started, h.last_success):.0f} s"
            problems.append(f"{account_sid} {stream}: {done}")
    return problems
