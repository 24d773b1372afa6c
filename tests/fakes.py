"""In-memory stand-ins for our own interfaces, for unit tests of the worker's and the service's
decisions without Postgres or HTTP: `Store` (the surface `sync.store.Store` gives them:
`scans`, `pages`, `deletions`, `hydration`, `media`, `ping`) and `Client` (the surface of
`sync.http.TwilioClient`: `get_page`, `get_json`, `base_url`, `budget`), serving a `Twilio` of
records held in memory. They keep the contracts the real ones keep (a checkpoint moves only
from where the chain is; a page's rows and its checkpoint go together) and nothing more: the
real ones are tested against Postgres and the emulator."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio

from sync import errors, sources
from sync.budget import Budget
from sync.models import ChainId, Counts, Head, Page, PageWrite, Scan, Slice, Window
from sync.plan import State
from sync.sources import Source

ACCOUNT = "AC" + "a" * 32
DAY = 86_400.0


# ---- the store ---------------------------------------------------------------------------------


class Scans:
    def __init__(self) -> None:
        self.rows: dict[int, Scan] = {}
        self.slices_of: dict[int, dict[int, State]] = {}  # scan id -> slice id -> state (url None: read)
        self.finished: dict[tuple[str, str, str], datetime] = {}  # last complete scan of each kind
        self.restarts: list[tuple[int, ChainId]] = []
        self._ids = itertools.count(1)

    async def running(self, account_sid: str, stream: str, kind: str) -> Scan | None:
        return next((s for s in self.rows.values() if (s.account_sid, s.stream, s.kind, s.status)
                     == (account_sid, stream, kind, "running")), None)

    async def start(self, account_sid: str, stream: str, kind: str, window: Window, state: State) -> Scan:
        scan = Scan(id=next(self._ids), account_sid=account_sid, stream=stream, kind=kind, window=window,
                    status="running", cursor=state.url, counts=Counts(), restarts=0, deleted=0,
                    started_at=datetime.now(timezone.utc), finished_at=None, plan=state.to_json())
        self.rows[scan.id] = scan
        self.slices_of[scan.id] = {}
        return scan

    async def last_complete(self, account_sid: str, stream: str, kind: str) -> datetime | None:
        return self.finished.get((account_sid, stream, kind))

    async def end(self, scan_id: int, status: str, error: str | None = None) -> None:
        self.rows[scan_id] = dataclasses.replace(self.rows[scan_id], status=status)

    async def restart(self, scan: Scan, chain: ChainId, before: State, after: State) -> None:
        self.move(scan, chain, before, after)
        self.restarts.append((scan.id, chain))

    async def slices(self, scan: Scan) -> list[tuple[Slice, State]]:
        return [(Slice(i), s) for i, s in self.slices_of[scan.id].items() if not s.done]

    async def finish(self, scan: Scan) -> bool:
        row = self.rows[scan.id]
        if row.status != "running" or row.cursor is not None or any(await self.slices(scan)):
            return row.status == "complete"
        self.rows[scan.id] = dataclasses.replace(row, status="complete")
        self.finished[(row.account_sid, row.stream, row.kind)] = datetime.now(timezone.utc)
        return True

    def head(self, scan: Scan) -> State:
        row = self.rows[scan.id]
        return State.from_json(row.cursor, row.plan)

    def move(self, scan: Scan, chain: ChainId, before: State, after: State) -> None:
        """The compare-and-set the real checkpoint is: only from where the chain is."""
        if self.rows[scan.id].status != "running":
            raise errors.ScanMovedError(f"scan {scan.id} is not running")
        if isinstance(chain, Head):
            if self.rows[scan.id].cursor != before.url:
                raise errors.ScanMovedError(f"scan {scan.id}'s head is not at {before.url}")
            self.rows[scan.id] = dataclasses.replace(self.rows[scan.id], cursor=after.url, plan=after.to_json())
        else:
            if self.slices_of[scan.id][chain.id].url != before.url:
                raise errors.ScanMovedError(f"slice {chain.id} is not at {before.url}")
            self.slices_of[scan.id][chain.id] = after


class Pages:
    def __init__(self, scans: Scans) -> None:
        self.scans = scans
        self.rows: dict[str, dict[str, tuple]] = {}  # stream -> key -> row
        self.saved: list[tuple[ChainId, list[str]]] = []  # (chain, keys) of each page, in order
        self.seen: set[str] = set()
        self.fail: Exception | None = None  # raised by the next save
        self._slice_ids = itertools.count(1)

    async def save(self, source: Source, scan: Scan, chain: ChainId, before: State, after: State, page: Page, *,
                   spawn: tuple[State, ...] = (), seen: bool = False) -> tuple[PageWrite, list[tuple[Slice, State]]]:
        await anyio.sleep(0)  # a save is I/O: other tasks run meanwhile
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail
        self.scans.move(scan, chain, before, after)
        table = self.rows.setdefault(source.stream, {})
        inserted = sum(1 for key in page.keys if key not in table)
        table.update(zip(page.keys, sources.rows(source, scan.account_sid, page.records)))
        if seen:
            self.seen.update(page.keys)
        self.saved.append((chain, list(page.keys)))
        slices = [(Slice(next(self._slice_ids)), state) for state in spawn]
        self.scans.slices_of[scan.id].update((s.id, state) for s, state in slices)
        return PageWrite(inserted=inserted, updated=len(page.keys) - inserted), slices


class Deletions:
    def __init__(self) -> None:
        self.cleared: list[tuple[str, str]] = []
        self.marked: list[str] = []

    async def clear_seen(self, account_sid: str, stream: str) -> None:
        self.cleared.append((account_sid, stream))

    async def seen_set_intact(self, scan: Scan) -> bool:
        return True

    async def candidates(self, source: Source, scan: Scan, most: int) -> list[str]:
        return []

    async def mark(self, source: Source, scan: Scan, gone: list[str]) -> int:
        self.marked += gone
        return len(gone)


class Hydration:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def waiting(self, account_sid: str, since: datetime, most: int) -> list[tuple[str, datetime]]:
        self.asked.append(account_sid)
        return []


class Media:
    """No legacy message owes media here: the turn asks, and is told so."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def owed(self, account_sid: str, most: int) -> list[tuple[str, int]]:
        self.asked.append(account_sid)
        return []

    async def due(self, account_sid: str, since: datetime, read_before: datetime, most: int) -> list[tuple[str, int]]:
        return []

    async def counts(self, account_sid: str | None = None) -> tuple[int, int, int]:
        return 0, 0, 0


class Views:
    def __init__(self) -> None:
        self.refreshed = 0  # how many times the overview was refreshed

    async def refresh(self) -> int:
        self.refreshed += 1
        return 0


class Store:
    def __init__(self) -> None:
        self.scans = Scans()
        self.pages = Pages(self.scans)
        self.deletions = Deletions()
        self.hydration = Hydration()
        self.media = Media()
        self.views = Views()
        self.reachable = True
        self.save_priorities: list[float] = []

    async def ping(self) -> None:
        if not self.reachable:
            raise errors.StoreError("the database is away")

    @asynccontextmanager
    async def saving(self, priority: float) -> AsyncIterator[None]:
        self.save_priorities.append(priority)
        yield  # the fake's saves never wait for a connection


# ---- Twilio ------------------------------------------------------------------------------------


def _day(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()


def filtered(records: list[dict], query: dict[str, str]) -> list[dict]:
    """The records a list query's filters let through: legacy DateSent days (`<`, `>` inclusive),
    v1 startDate/endDate on the creation time."""
    rows = records
    low = max((_day(query[k]) for k in ("DateSent>", "DateSent") if k in query), default=None)
    high = min((_day(query[k]) + DAY for k in ("DateSent<", "DateSent") if k in query), default=None)
    if low is not None or high is not None:
        rows = [r for r in rows if r["sent"] is not None and (low is None or r["sent"] >= low)
                and (high is None or r["sent"] < high)]
    if "startDate" in query:  # v1: created after startDate, before endDate
        low, high = (datetime.fromisoformat(query[k]).timestamp() for k in ("startDate", "endDate"))
        rows = [r for r in rows if low <= r["created"] < high]
    return rows


class Twilio:
    """Both lists in memory, with their filters (legacy DateSent days, v1 startDate/endDate),
    paged by offset tokens. `records` are {"sid", "created", "sent"} in the order served."""

    def __init__(self, records: list[dict], *, account_sid: str = ACCOUNT) -> None:
        self.records = records
        self.account_sid = account_sid
        self.requests: list[str] = []
        self.stale: set[str] = set()  # page tokens to refuse once, as expired
        self.before_answer: Callable[[str], None] = lambda url: None  # a test's hook, e.g. to stop a scan

    def body(self, url: str) -> dict[str, Any]:
        self.requests.append(url)
        self.before_answer(url)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        token = query.get("PageToken") or query.get("pageToken")
        if token in self.stale:
            self.stale.discard(token)
            raise errors.StalePageTokenError(f"page token {token} expired", status=400)
        legacy = "PageSize" in query
        rows = filtered(self.records, query)
        size = int(query["PageSize" if legacy else "pageSize"])
        offset = int(token[2:]) if token else 0
        chunk = rows[offset:offset + size]
        more = offset + size < len(rows)
        kept = {k: v for k, v in query.items() if k not in ("PageToken", "pageToken", "Page")}
        if legacy:
            nxt = f"{parts.path}?{urlencode({**kept, 'PageToken': f'PA{offset + size}'})}" if more else None
            return {"messages": [self._legacy(r) for r in chunk], "next_page_uri": nxt}
        return {"messages": [self._comms(r) for r in chunk], "pagination": {"next": f"PA{offset + size}" if more else None}}

    def _legacy(self, r: dict) -> dict[str, Any]:
        def rfc2822(t: float | None) -> str | None:
            return None if t is None else format_datetime(datetime.fromtimestamp(t, timezone.utc), usegmt=True)

        return {"sid": r["sid"], "account_sid": self.account_sid, "status": "delivered" if r["sent"] else "queued",
                "date_created": rfc2822(r["created"]), "date_sent": rfc2822(r["sent"]),
                "date_updated": rfc2822(r["created"])}

    def _comms(self, r: dict) -> dict[str, Any]:
        created = datetime.fromtimestamp(r["created"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": r["sid"], "status": "DELIVERED", "createdAt": created, "updatedAt": created}


class Client:
    """The scan's side of TwilioClient, answering from a `Twilio` in memory."""

    def __init__(self, twilio: Twilio, *, concurrency: int = 4) -> None:
        self.twilio = twilio
        self.budget = Budget(concurrency)

    def base_url(self, api: str) -> str:
        return "https://comms.twilio.com" if api == "comms" else "https://api.twilio.com"

    async def get_page(self, api: str, ref: str, parse: Callable[[str, Any], Any], *,
                       retry_url: Callable[[str, int], str] | None = None, priority: float = 0.0) -> Any:
        async with self.budget.slot(priority) as slot:
            await anyio.sleep(0)  # a request is I/O: other tasks run meanwhile
            body = self.twilio.body(ref)
            self.budget.answered(slot, 200)
        return parse(ref, body)

    async def get_json(self, api: str, ref: str) -> Any:
        return await self.get_page(api, ref, lambda url, body: body)
