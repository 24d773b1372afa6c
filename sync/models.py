"""Plain values passed between the layers: streams, windows, scans, pages. No I/O."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, NamedTuple

from sync import errors

COMMS_MESSAGES = "comms_messages"
COMMS_OPERATIONS = "comms_operations"
LEGACY_MESSAGES = "legacy_messages"
STREAMS = (COMMS_MESSAGES, COMMS_OPERATIONS, LEGACY_MESSAGES)
# What `backfill --source` accepts, and the streams each choice means.
SOURCES = {
    "comms": (COMMS_MESSAGES,),
    "operations": (COMMS_OPERATIONS,),
    "legacy": (LEGACY_MESSAGES,),
    "all": STREAMS,
}

COMMS_RETENTION = timedelta(days=7)
LEGACY_RETENTION = timedelta(days=400)
RETENTION_MARGIN = timedelta(seconds=5)


@dataclasses.dataclass(frozen=True)
class Window:
    """The half-open range [start, end) of record creation times a scan archives."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.start >= self.end:
            raise errors.ConfigError(
                f"the window is empty: --since {self.start.isoformat()} is not before --until {self.end.isoformat()}"
            )

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def clamped(self, retention: timedelta, now: datetime) -> Window:
        """The part of the window an API with this retention can still serve (never empty).

        A few seconds inside the retention edge, because the v1 query asks one second wider
        than the window and must not ask for what is already older than the API keeps."""
        oldest = now - retention + RETENTION_MARGIN
        if self.start >= oldest:
            return self
        return Window(min(oldest, self.end - timedelta(seconds=1)), self.end)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_instant(value: str, flag: str) -> datetime:
    """`YYYY-MM-DD` (00:00 UTC) or an RFC 3339 timestamp with an offset, for --since / --until."""
    value = value.strip()
    try:
        if _DATE.match(value):
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
        if len(value) >= 20 and value[10] in "Tt":
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed.astimezone(timezone.utc)
    except ValueError:
        pass
    raise errors.ConfigError(
        f"{flag} {value!r} is not a date (YYYY-MM-DD) or an RFC 3339 timestamp (e.g. 2025-06-18T12:00:00Z)"
    )


def default_window(now: datetime, since: datetime | None, until: datetime | None) -> Window:
    """The retention window unless the user said otherwise: [now - 7 days, now)."""
    return Window(since or now - COMMS_RETENTION, until or now)


@dataclasses.dataclass(frozen=True)
class Counts:
    """What scanning did, as a scan's row in twilio.scans counts it: one saved page's
    (`of_page`), or the sum of a run's pages (the progress line, ScanResult, the metrics)."""

    pages: int = 0
    seen: int = 0  # records the API served
    inserted: int = 0  # rows written: new
    updated: int = 0  # rows written: changed
    problems: int = 0  # records stored with something that could not be parsed
    rejected: int = 0  # records kept aside in twilio.rejected_records
    outside: int = 0  # records served that were created outside the window (kept out of the archive)

    @classmethod
    def of_page(cls, page: Page, written: PageWrite) -> Counts:
        return cls(pages=1, seen=page.seen, inserted=written.inserted, updated=written.updated,
                   problems=written.problems, rejected=written.rejected, outside=page.outside_window)

    def __add__(self, other: Counts) -> Counts:
        return Counts(pages=self.pages + other.pages, seen=self.seen + other.seen,
                      inserted=self.inserted + other.inserted, updated=self.updated + other.updated,
                      problems=self.problems + other.problems, rejected=self.rejected + other.rejected,
                      outside=self.outside + other.outside)

    @property
    def flagged(self) -> int:
        """Records that need a look: stored with a problem, or kept aside."""
        return self.problems + self.rejected


@dataclasses.dataclass(frozen=True)
class Scan:
    """One pass over one stream; while running, `cursor` and `plan` are its checkpoint: the next
    request, and the rest of its scan plan's state (sync/plan/, State.to_json)."""

    id: int
    account_sid: str
    stream: str
    kind: str
    window: Window
    status: str
    cursor: str | None
    counts: Counts  # its saved pages', summed in the transactions that saved them
    restarts: int
    deleted: int
    started_at: datetime
    finished_at: datetime | None
    plan: dict[str, Any] | None = None
    list_order: str | None = None  # the legacy list's order as the scan's pages showed it
    slices: int = 0  # time slices it split off (where the query counted them: Scans.latest)
    slices_done: int = 0  # of which read to their end

    @classmethod
    def from_row(cls, row: Any) -> Scan:
        return cls(
            id=row["id"],
            account_sid=row["account_sid"],
            stream=row["stream"],
            kind=row["kind"],
            window=Window(row["window_start"], row["window_end"]),
            status=row["status"],
            cursor=row["cursor"],
            counts=Counts(pages=row["pages"], seen=row["records_seen"], inserted=row["rows_inserted"],
                          updated=row["rows_updated"], problems=row["problems"], rejected=row["rejected"],
                          outside=row["outside_window"]),
            restarts=row["restarts"],
            deleted=row["deleted"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            plan=json.loads(row["plan"]) if row["plan"] else None,
            list_order=row["list_order"],
            slices=row.get("slices", 0),
            slices_done=row.get("slices_done", 0),
        )


class Served(NamedTuple):
    """One keyed record of a page, reduced to what the store compares and the scan plan reads. Its
    typed row (sources.rows) is made only if the archive does not hold it as it is: most records
    of a rescan are unchanged, and converting them was most of what parsing cost."""

    key: str
    digest: bytes  # of its exact JSON: what a rescan compares with the stored row's (sync/sources/base.py)
    # Its creation time and (legacy) date_sent in epoch seconds, None where absent or unreadable
    # (its row will say why): the scan plan's evidence, and what a chain owns.
    created: float | None
    sent: float | None
    # Its JSON as the raw column will hold it (characters Postgres refuses replaced), which its row
    # is typed from: not the decoded payload, whose dicts, held from the request to the save, made
    # the cyclic garbage collector cost more than typing the whole page did. A str: the bytes
    # orjson returns keep an 8 KB buffer whatever their length.
    raw: str
    raw_text: str | None  # the exact JSON, where raw had to be cleaned
    problems: list[str] | None  # found before typing (characters replaced); typing adds its own


@dataclasses.dataclass(frozen=True)
class Page:
    """One fetched page, parsed: the records to compare and save, and the position after it."""

    records: list[Served]  # created inside the window, one per key (a page may list one twice: the last copy)
    next_url: str | None
    seen: int  # records the API served on this page
    outside_window: int  # served but created outside the window (kept out of the archive)
    rejected: list[Rejected]  # records that could not be keyed: kept in twilio.rejected_records
    reached: datetime | None = None  # creation time of the page's last record: how far back the scan is
    # Each served record's (date_created, date_sent) in epoch seconds, None where absent (v1: no
    # date_sent), in the order served: the scan plan's evidence of the list's order (sync/plan/).
    times: list[tuple[float | None, float | None]] = dataclasses.field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [record.key for record in self.records]


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A record that cannot become a row of its table, kept whole so nothing is lost."""

    key: str | None  # its id / SID, when it had one
    reason: str
    raw_text: str  # the record's JSON


@dataclasses.dataclass(frozen=True)
class PageWrite:
    inserted: int
    updated: int
    rejected: int = 0  # records kept aside in twilio.rejected_records
    # Records stored with something that could not be parsed: an unchanged one as its stored row
    # says (it is not typed again), the others as typing them found.
    problems: int = 0


@dataclasses.dataclass(frozen=True)
class Head:
    """A scan's head chain, the list from its top: its checkpoint is its twilio.scans row's
    `cursor` and `plan`."""


@dataclasses.dataclass(frozen=True)
class Slice:
    """One of a scan's time slices: its checkpoint is its row of twilio.scan_slices."""

    id: int


HEAD = Head()
# Which of a scan's chains a checkpoint belongs to.
ChainId = Head | Slice
