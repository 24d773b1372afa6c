"""The emulated accounts' state: records, their sort indexes, queries and mutation.

One `Emulator` holds any number of accounts, each with its own legacy messages, v1 messages
and v1 Operations. A record is stored as the JSON bytes the API serves (encoded once) plus
the few facts queries need: sort key, creation instant, filter fields. Pages are joins of
those bytes. A mutation decodes the record, applies the change, re-encodes it with orjson
and refreshes the facts; nothing else is cached, so nothing else can go stale.

Payload dicts are not kept because memory is the cost that dominates at 200k records (a
dict per record is several times the size of its JSON); generated records' bytes live in
shared buffers and rows hold memoryview slices of them.

Indexes are sorted lists of keys (see paging.py), maintained on every insert, update and
delete. A lock makes reads and mutations atomic with respect to each other, so a test may
mutate from another thread while the server pages; on the event loop it is never contended.
"""

from __future__ import annotations

import copy
import datetime as dt
import gc
import json
import random
import threading
import time
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import accounts as accounts_
from . import generate, media, orders, paging
from .faults import FaultProfile, Faults
from .formats import DAY_MS, parse_rfc2822, parse_rfc3339, rfc2822, rfc3339, to_ms
from .generate import COMMS_RETENTION_MS, HOUR_MS, LEGACY_RETENTION_MS
from .paging import Key

DEFAULT_ACCOUNT_SID = "AC5e1f0c0ffee5e1f0c0ffee5e1f0c0ffe"
DEFAULT_AUTH_TOKEN = "0e7b0c1a7e5f4d3c2b1a09f8e7d6c5b4"
DEFAULT_API_KEY_SID = "SK5e1f0c0ffee5e1f0c0ffee5e1f0c0ffe"
DEFAULT_API_KEY_SECRET = "emulatorSecret0123456789abcdefgh"

# The legacy list's order is the emulator's `legacy_order` (see orders.py). By default it
# is date_sent descending, ties by sid ascending, with the null block first (as Postgres'
# `ORDER BY date_sent DESC` puts NULLs): a record with no (or an unparseable) date_sent
# precedes every sent one.
NULLS_FIRST = orders.NULLS_FIRST
LEGACY_ORDERS = orders.LEGACY_ORDERS
DEFAULT_LEGACY_ORDER = orders.DEFAULT_LEGACY_ORDER
# Page-boundary positions remembered per account (two per page served), oldest forgotten first.
RESUME_LIMIT = 200_000
# In an order not by date_sent, a DateSent filter matching at most 1/SPARSE of the list pages
# over its own records (found by the date_sent index, sorted per request); a wider one tests
# rows as it walks the list, and soon fills a page.
SPARSE = 8
V1_CHANNELS = frozenset(generate.V1_CHANNELS)
Blob = bytes | memoryview


def encode(payload: dict) -> bytes:
    """A record's JSON. A test may plant a lone UTF-16 surrogate, which JSON can carry as an
    escape (\\ud800) but orjson will not write: the stdlib writes it, escaped."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload).encode()


def decode(blob: Blob) -> dict:
    """A record's JSON back as a dict, what `encode` wrote included."""
    try:
        return orjson.loads(blob)
    except orjson.JSONDecodeError:
        return json.loads(bytes(blob))


@dataclass(frozen=True)
class Account:
    """A Twilio account: its SID, Auth Token, and API keys (key SID -> secret) that act for it."""

    sid: str
    auth_token: str
    api_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListRequest:
    """One authenticated request to a list route, as `Emulator.list_log` records it.

    `route` is the name `request_counts` uses: legacy_list, comms_list or operations_list.
    `date_sent` holds a legacy request's DateSent filters as sent, wire names and values
    (e.g. `(("DateSent>", "2025-06-11"),)`); it is empty when unfiltered and for v1 lists.
    Recorded before fault injection, so a request answered with a fault counts too.
    """

    account_sid: str
    route: str
    date_sent: tuple[tuple[str, str], ...] = ()
    page_token: bool = False  # a continuation page (PageToken / pageToken given)
    path: str = ""  # path and query string, as sent

    @property
    def date_filtered(self) -> bool:
        return bool(self.date_sent)


class LegacyRow:
    __slots__ = ("blob", "created", "from_", "key", "sent", "to")

    def __init__(self, key: Key, created: int, sent: int | None, to: object, from_: object, blob: Blob):
        self.key, self.created, self.sent, self.to, self.from_, self.blob = key, created, sent, to, from_, blob


class CommsRow:
    __slots__ = ("attempts", "blob", "channel", "content", "created", "key", "media", "op_id", "recipients", "status", "text")

    def __init__(self, key: Key, created: int, text: str, media: int, status: object = None,
                 channel: str | None = None, op_id: str | None = None, recipients: int = 0):  # fmt: skip
        self.key, self.created, self.text, self.media = key, created, text, media
        self.status, self.channel, self.op_id, self.recipients = status, channel, op_id, recipients
        self.content: Any = None  # set only when a test overrides `content`
        self.attempts: Any = None  # likewise `attempts`
        self.blob: Blob = b"{}"

    def learn(self, payload: dict) -> None:
        """Take the facts queries need from the payload."""
        self.status = payload.get("status")
        self.channel = message_channel(payload)
        self.op_id = _operation_id(payload)
        to = payload.get("to")
        self.recipients = len(to) if isinstance(to, list) else 0


class OpRow:
    __slots__ = ("blob", "created", "key", "members", "status", "unaddressable")

    def __init__(self, key: Key, created: int, status: object, unaddressable: int, blob: Blob):
        self.key, self.created, self.status, self.unaddressable, self.blob = key, created, status, unaddressable, blob
        self.members: set[str] = set()


class Book:
    """One account's records and indexes."""

    def __init__(self, account: Account, seed: int, mms_share: float = generate.MMS_SHARE):
        self.account = account
        self.legacy: dict[str, LegacyRow] = {}
        self.legacy_keys: list[Key] = []
        # (date_sent ms, sid) of every sent record, sorted; kept only when the list's order is
        # not by date_sent (otherwise legacy_keys answers DateSent filters itself).
        self.legacy_sent: list[Key] = []
        # Where each PA/PB token this account was handed points. A page's last record may
        # move (queued -> sent gives it a date_sent) or vanish before the next page is
        # asked for; resuming from where it *was* keeps the scan from skipping records.
        self.legacy_resume: dict[str, Key] = {}
        self.comms: dict[str, CommsRow] = {}
        self.comms_keys: list[Key] = []
        self.ops: dict[str, OpRow] = {}
        self.op_keys: list[Key] = []
        self.legacy_factory = generate.LegacyFactory(random.Random(f"{seed}:{account.sid}:legacy"), account.sid,
                                                     mms_share)
        self.comms_factory = generate.CommsFactory(random.Random(f"{seed}:{account.sid}:comms"))


class _Packer:
    """Encodes many records into one buffer, then gives each row a memoryview of its bytes.

    One buffer instead of a bytes object per record: fewer, larger allocations, which is
    a good part of the cost of loading 200k records.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.rows: list[Any] = []
        self.ends: list[int] = []

    def add(self, row: Any, data: bytes) -> None:
        self.buf += data
        self.rows.append(row)
        self.ends.append(len(self.buf))

    def seal(self) -> None:
        view = memoryview(self.buf)  # the buffer never grows again, so views stay valid
        start = 0
        for row, end in zip(self.rows, self.ends):
            row.blob = view[start:end]
            start = end
        self.rows, self.ends = [], []


def _remove(keys: list[Key], key: Key) -> None:
    i = bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        del keys[i]


def _operation_id(payload: dict) -> str | None:
    """The id of the OPERATION entry in `related`, tolerating whatever a test put there."""
    related = payload.get("related")
    if isinstance(related, list):
        for item in related:
            if isinstance(item, dict) and item.get("name") == "OPERATION" and isinstance(item.get("id"), str):
                return item["id"]
    return None


def message_channel(payload: dict) -> str | None:
    """SMS | RCS | WHATSAPP: the channel of our side of the message.

    That is the sender for outbound messages and the receiving sender for INBOUND ones,
    whose `from` is the contact (channel PHONE or WHATSAPP).
    """
    sender = payload.get("from")
    if isinstance(sender, dict) and sender.get("channel") in V1_CHANNELS:
        return sender["channel"]
    to = payload.get("to")
    if isinstance(to, list):
        for item in to:
            if isinstance(item, dict) and item.get("channel") in V1_CHANNELS:
                return item["channel"]
    return None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _fmt_v1(ms: int) -> str:
    return rfc3339(ms, millis=ms % 1000 != 0)


def _bump(old: object, now_ms: int, parse: Callable[[object], int | None], fmt: Callable[[int], str]) -> str:
    """A new updated-timestamp strictly later than the old one, so change detection sees it."""
    previous = parse(old)
    new = now_ms - now_ms % 1000
    if previous is not None and new <= previous:
        new = previous + 1000
    return fmt(new)


def _check_history(history: int, days: int, history_days: int) -> None:
    """Refuse a legacy history that is negative, or not between `legacy_days` and retention."""
    if history < 0:
        raise ValueError(f"legacy_history must be 0 or more, got {history}")
    retention_days = LEGACY_RETENTION_MS // DAY_MS
    if not 1 <= history_days <= retention_days or (history and history_days <= days):
        raise ValueError(
            f"legacy_history_days must be more than legacy_days ({days}) and at most {retention_days}, "
            f"got {history_days}"
        )


def _start_instant(now: dt.datetime | None) -> dt.datetime:
    """The emulator's `now`: the current UTC second when not given; a naive instant is UTC."""
    if now is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The load allocates millions of long-lived objects; letting the cyclic GC walk them
    again and again as they pile up would double the time it takes."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc_was_enabled:
            gc.enable()


class Emulator:
    """The state behind the emulated Twilio APIs, plus the Python hooks tests use to change it.

    `comms_messages` / `legacy_messages` count the records each account's lists show (for
    `legacy_days` up to 400); a few more, past retention, exist only to be hidden.
    `legacy_history` more legacy records are created between `legacy_days` and
    `legacy_history_days` (at most 400) days ago: the months a real account keeps behind the
    7-day window, all in final statuses, about one in ten never sent (null date_sent).
    `legacy_order` is one of `LEGACY_ORDERS` (orders.py): how the legacy list is sorted;
    `self.legacy_order` is then that `orders.LegacyOrder`.
    `list_log` records every authenticated list request (`ListRequest`: account, route,
    DateSent filters); `list_requests()` counts them, e.g. to hold a scan to a budget.
    Timestamps are relative to `now` (default: the current UTC time, truncated to seconds);
    the emulator's clock then runs on from `now` in real time.
    `mms_share` (0..1, default 0.07) of the legacy messages carry 1 to 10 media items, which
    `self.media` serves and deletes (media.py).
    `faults` (default: none) is the profile of `self.faults`, whose random draws start from
    `fault_seed`; tests may also switch profiles or queue faults there while serving.
    """

    def __init__(
        self,
        seed: int = 0,
        comms_messages: int = 500,
        legacy_messages: int = 500,
        now: dt.datetime | None = None,
        legacy_days: int = 30,
        accounts: list[Account] | None = None,
        *,
        faults: FaultProfile | None = None,
        fault_seed: int = 0,
        legacy_order: str = DEFAULT_LEGACY_ORDER,
        legacy_history: int = 0,
        legacy_history_days: int = 400,
        mms_share: float = generate.MMS_SHARE,
        subaccounts: int = 0,
        subaccount_messages: int | None = None,
    ):
        self.legacy_order = orders.legacy_order(legacy_order)
        _check_history(legacy_history, legacy_days, legacy_history_days)
        now = _start_instant(now)
        self.seed = seed
        self.now = now
        self.legacy_days = legacy_days
        self._now_ms = to_ms(now)
        self._t0 = time.monotonic()
        self._lock = threading.RLock()
        self.token_secret = f"twilio-archive-emulator:{seed}".encode()
        self.request_counts: Counter[str] = Counter()
        # Every authenticated list request, in arrival order (see `list_requests`).
        self.list_log: list[ListRequest] = []
        self.faults = Faults(faults or FaultProfile(), seed=fault_seed)
        self.media = media.Media(seed)  # the legacy messages' media items (media.py)
        self.mms_share = mms_share
        if accounts is None:
            accounts = [Account(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, {DEFAULT_API_KEY_SID: DEFAULT_API_KEY_SECRET})]
        self.accounts: dict[str, Account] = {a.sid: a for a in accounts}
        self._books: dict[str, Book] = {}
        for account in accounts:
            self.open_account(account, comms_messages, legacy_messages, legacy_history, legacy_history_days)
        # Who owns whom, and each account's Accounts.json record (accounts.py): the first
        # account is the main one of `subaccounts` generated subaccounts, each with its own
        # data set of `subaccount_messages` per API (default: as many as the main one's).
        self.directory = accounts_.Directory(self, accounts, subaccounts,
                                             comms_messages if subaccount_messages is None else subaccount_messages)

    def open_account(self, account: Account, comms_messages: int, legacy_messages: int, legacy_history: int = 0,
                     legacy_history_days: int = 400) -> None:
        """Give `account` its own generated records (deterministic from the seed and its SID)."""
        book = Book(account, self.seed, self.mms_share)
        with _no_cyclic_gc():
            self._load_legacy(book, legacy_messages, legacy_history, legacy_history_days)
            self._load_comms(book, comms_messages)
        with self._lock:
            self.accounts[account.sid] = account
            self._books[account.sid] = book

    # ------------------------------------------------------------ clock and accounts

    def clock_ms(self) -> int:
        """The emulator's current instant: `now` plus the time elapsed since construction."""
        return self._now_ms + int((time.monotonic() - self._t0) * 1000)

    def authenticate(self, username: str, password: str) -> str | None:
        """The account SID these Basic credentials act for, or None."""
        account = self.accounts.get(username)
        if account is not None:
            return account.sid if account.auth_token == password else None
        for account in self.accounts.values():
            secret = account.api_keys.get(username)
            if secret is not None:
                return account.sid if secret == password else None
        return None

    def note_list_request(self, request: ListRequest) -> None:
        """Record a list request (the server calls this once per authenticated list request)."""
        self.list_log.append(request)

    def list_requests(self, route: str, account_sid: str | None = None, *, date_filtered: bool | None = None) -> int:
        """How many authenticated requests `route` ("legacy_list", "comms_list",
        "operations_list") has had: for one account unless `account_sid` is None; only
        DateSent-filtered (True) or unfiltered (False) ones when `date_filtered` says so."""
        return sum(
            1
            for r in list(self.list_log)
            if r.route == route
            and (account_sid is None or r.account_sid == account_sid)
            and (date_filtered is None or r.date_filtered == date_filtered)
        )

    def _book(self, account_sid: str | None) -> Book:
        if account_sid is None:
            return next(iter(self._books.values()))
        try:
            return self._books[account_sid]
        except KeyError:
            raise KeyError(f"no such account: {account_sid}") from None

    def _find(self, table: str, ident: str) -> tuple[Book, Any]:
        for book in self._books.values():
            row = getattr(book, table).get(ident)
            if row is not None:
                return book, row
        raise KeyError(ident)

    # ------------------------------------------------------------ bulk load

    def _load_legacy(self, book: Book, n: int, history: int, history_days: int) -> None:
        rows = book.legacy
        packer = _Packer()
        buf, order, ends = packer.buf, packer.rows, packer.ends  # inlined add(): 200k calls
        key = self.legacy_order.key
        for rec in book.legacy_factory.bulk(n, self._now_ms, self.legacy_days, history, history_days):
            sid, sent, created = rec.sid, rec.sent_ms, rec.created_ms
            row = rows[sid] = LegacyRow(key(sent, created, sid), created, sent, rec.to, rec.from_, b"")
            buf += rec.json.encode()
            order.append(row)
            ends.append(len(buf))
        packer.seal()
        book.legacy_keys = sorted(row.key for row in rows.values())
        if not self.legacy_order.by_sent:
            book.legacy_sent = sorted((row.sent, sid) for sid, row in rows.items() if row.sent is not None)

    def _load_comms(self, book: Book, n: int) -> None:
        packer = _Packer()
        comms = book.comms

        def load(messages: Iterable[generate.CommsMessage]) -> None:  # packer.add() inlined: 200k calls
            buf, order, ends = packer.buf, packer.rows, packer.ends
            for m in messages:
                row = comms[m.id] = CommsRow(
                    (-m.created_ms, m.id), m.created_ms, m.text, m.media, m.status, m.channel, m.op_id, m.recipients
                )
                buf += m.json.encode()
                order.append(row)
                ends.append(len(buf))

        for item in book.comms_factory.bulk(n, self._now_ms):
            if isinstance(item, generate.CommsMessage):
                load((item,))
                continue
            members = [(m.status, m.recipients, generate.attempt_count(m.status, m.id)) for m in item.messages]
            status = generate.operation_status([m.status for m in item.messages])
            payload = {
                "id": item.id,
                "status": status,
                "stats": generate.operation_stats(members, item.unaddressable),
                "createdAt": rfc3339(item.created_ms),
                "updatedAt": _fmt_v1(max(m.updated_ms for m in item.messages)),
            }
            op = book.ops[item.id] = OpRow((-item.created_ms, item.id), item.created_ms, status, item.unaddressable, b"")
            op.members.update(m.id for m in item.messages)
            packer.add(op, orjson.dumps(payload))
            load(item.messages)
        packer.seal()
        book.comms_keys = sorted(row.key for row in comms.values())
        book.op_keys = sorted(row.key for row in book.ops.values())

    # ------------------------------------------------------------ legacy queries

    def legacy_page(
        self,
        account_sid: str,
        *,
        to: str | None,
        from_: str | None,
        sent_range: tuple[int | None, int | None] | None,
        token: tuple[str, str] | None,
        size: int,
    ) -> tuple[list[Blob], str | None, str | None, bool] | None:
        """One legacy list page: (record JSON, first sid, last sid, more after it?).

        `sent_range` bounds date_sent (epoch ms, inclusive) and is None when no DateSent
        filter is given: only then do null date_sent records appear. A filtered list keeps
        the list's order: an index range where the order is by date_sent, a row-by-row test
        otherwise. `token` is ("after" | "before", sid). Returns None when the token names a
        record this account never had.
        """
        with self._lock:
            book = self._books[account_sid]
            keys, lo, hi, per_row = self._legacy_span(book, sent_range)
            cutoff = self.clock_ms() - LEGACY_RETENTION_MS
            accept = _legacy_filter(book.legacy, cutoff, to, from_, sent_range if per_row else None)
            walked = _legacy_walk(book, keys, lo, hi, token, size, accept)
            if walked is None:
                return None
            found, more = walked
            if not found:
                return [], None, None, False
            head, tail = found[0], found[-1]
            _remember(book.legacy_resume, head.key, tail.key)
            return [r.blob for r in found], head.key[1], tail.key[1], more

    def _legacy_span(
        self, book: Book, sent_range: tuple[int | None, int | None] | None
    ) -> tuple[list[Key], int, int, bool]:
        """Where a legacy page is looked for: (keys, lo, hi, test each row's date_sent?).

        Unfiltered, the whole list. In an order by date_sent, the filter's index range. In
        another order, a sparse filter's own records in the list's order, else the whole
        list with each row's date_sent tested as it is walked.
        """
        keys = book.legacy_keys
        if sent_range is None:
            return keys, 0, len(keys), False
        first, last = sent_range
        if self.legacy_order.by_sent:
            lo, hi = paging.index_range(keys, *orders.sent_bounds(first, last))
            return keys, lo, hi, False
        i, j = paging.index_range(book.legacy_sent, first, last)
        if (j - i) * SPARSE <= len(keys):
            own = sorted(book.legacy[sid].key for _, sid in book.legacy_sent[i:j])
            return own, 0, len(own), False
        return keys, 0, len(keys), True

    def legacy_record(self, account_sid: str, sid: str) -> Blob | None:
        """A legacy message's JSON, or None if absent or past retention."""
        with self._lock:
            row = self._books[account_sid].legacy.get(sid)
            if row is None or row.created < self.clock_ms() - LEGACY_RETENTION_MS:
                return None
            return row.blob

    def legacy_payloads(self, account_sid: str | None = None) -> list[dict]:
        """Every legacy record the list endpoint would serve now, in its order, as fresh dicts."""
        with self._lock:
            book = self._book(account_sid)
            cutoff = self.clock_ms() - LEGACY_RETENTION_MS
            rows = (book.legacy[k[1]] for k in book.legacy_keys)
            return [decode(r.blob) for r in rows if r.created >= cutoff]

    # ------------------------------------------------------------ legacy mutation

    def add_legacy_message(self, account_sid: str | None = None, **fields: Any) -> dict:
        """Insert a legacy message created now: a delivered SMS unless `fields` say otherwise."""
        with self._lock:
            book = self._book(account_sid)
            now = self.clock_ms()
            created = _or(parse_rfc2822(fields.get("date_created")), now)
            sid = fields["sid"] if isinstance(fields.get("sid"), str) else None
            if sid is not None and sid in book.legacy:
                raise ValueError(f"legacy message {sid} already exists")
            status = fields["status"] if fields.get("status") in generate.LEGACY_STATUSES else "delivered"
            rec = book.legacy_factory.record(created - created % 1000, max(now, created), status, sid)
            payload = orjson.loads(rec.json)
            payload.update(copy.deepcopy(fields))
            return decode(self._insert_legacy(book, payload, sid or payload["sid"], now))

    def _insert_legacy(self, book: Book, payload: dict, sid: str, now: int) -> bytes:
        blob = encode(payload)
        created = _or(parse_rfc2822(payload.get("date_created")), now)
        sent = parse_rfc2822(payload.get("date_sent"))
        key = self.legacy_order.key(sent, created, sid)
        row = book.legacy[sid] = LegacyRow(key, created, sent, payload.get("to"), payload.get("from"), blob)
        insort(book.legacy_keys, row.key)
        if sent is not None and not self.legacy_order.by_sent:
            insort(book.legacy_sent, (sent, sid))
        return blob

    def create_legacy_message(
        self, account_sid: str, to: str, from_: str | None, body: str, service: str | None, media: int
    ) -> bytes:
        """A message as `POST .../Messages.json` creates it: queued, or accepted via a Messaging Service."""
        with self._lock:
            book = self._books[account_sid]
            now = self.clock_ms()
            now -= now % 1000
            sid = generate.message_sid(book.legacy_factory.rng, mms=media > 0)
            payload = orjson.loads(book.legacy_factory.record(now, now, "accepted" if service else "queued", sid).json)
            payload.update(
                {
                    "body": body,
                    "direction": "outbound-api",
                    "from": from_,
                    "messaging_service_sid": service,
                    "num_media": str(media),
                    # A service picks the sender (and so the encoding) later, hence "0".
                    "num_segments": "0" if service and not from_ else str(generate.segments(body)),
                    "tags": {},
                    "to": to,
                }
            )
            return self._insert_legacy(book, payload, sid, now)

    def update_legacy_message(self, sid: str, **fields: Any) -> dict:
        """Change fields of a legacy message; date_updated moves forward unless given."""
        with self._lock:
            book, row = self._find("legacy", sid)
            payload = orjson.loads(row.blob)
            if "sid" in fields and fields["sid"] != payload.get("sid"):
                raise ValueError("a message's sid cannot change")
            fields = copy.deepcopy(fields)
            if "date_updated" not in fields:
                fields["date_updated"] = _bump(payload.get("date_updated"), self.clock_ms(), parse_rfc2822, rfc2822)
            payload.update(fields)
            row.blob = encode(payload)
            row.created = _or(parse_rfc2822(payload.get("date_created")), row.created)
            old_sent, row.sent = row.sent, parse_rfc2822(payload.get("date_sent"))
            if row.sent != old_sent and not self.legacy_order.by_sent:
                if old_sent is not None:
                    _remove(book.legacy_sent, (old_sent, sid))
                if row.sent is not None:
                    insort(book.legacy_sent, (row.sent, sid))
            row.to, row.from_ = payload.get("to"), payload.get("from")
            # A new date_sent (queued -> sent) or date_created may move the record; a token
            # naming it still resumes from where it was served (legacy_resume).
            key = self.legacy_order.key(row.sent, row.created, sid)
            if key != row.key:
                _remove(book.legacy_keys, row.key)
                row.key = key
                insort(book.legacy_keys, key)
            return payload

    def delete_legacy_message(self, sid: str) -> None:
        """Remove a legacy message: it vanishes from lists and fetches, with no tombstone."""
        with self._lock:
            book, row = self._find("legacy", sid)
            del book.legacy[sid]
            _remove(book.legacy_keys, row.key)
            if row.sent is not None and not self.legacy_order.by_sent:
                _remove(book.legacy_sent, (row.sent, sid))
            # A token naming it keeps working: the scan resumes where the record stood.
            book.legacy_resume.setdefault(sid, row.key)

    # ------------------------------------------------------------ v1 queries

    def comms_page(
        self,
        account_sid: str,
        route: str,
        *,
        created_range: tuple[int | None, int | None],
        filters: dict[str, str],
        after: Key | None,
        size: int,
    ) -> tuple[list[Blob], Key | None, bool]:
        """One v1 page of `route` ("messages" or "operations"): (record JSON, last key, more?).

        `created_range` is [first, last] epoch ms, inclusive; retention narrows it further.
        """
        with self._lock:
            book = self._books[account_sid]
            first, last = created_range
            cutoff = self.clock_ms() - COMMS_RETENTION_MS
            first = cutoff if first is None else max(first, cutoff)
            accept: Callable[[Key], Any]
            if route == "operations":
                keys = book.op_keys
                accept = _operation_filter(book.ops, filters.get("status"))
            else:
                keys = book.comms_keys
                op_id = filters.get("operationId")
                if op_id is not None:
                    op = book.ops.get(op_id)
                    members: Iterable[str] = op.members if op is not None else ()
                    keys = sorted(book.comms[m].key for m in members if m in book.comms)
                accept = _message_filter(book.comms, filters)
            lo, hi = paging.index_range(keys, None if last is None else -last, -first)
            found, last_key, more = paging.page_after(keys, lo, hi, after, size, accept)
            return [r.blob for r in found], last_key, more

    def comms_record(self, account_sid: str, message_id: str) -> bytes | None:
        """A v1 message as Fetch returns it (metadata + content + attempts), or None."""
        with self._lock:
            row = self._books[account_sid].comms.get(message_id)
            if row is None or row.created < self.clock_ms() - COMMS_RETENTION_MS:
                return None
            payload = orjson.loads(row.blob)
            return orjson.dumps({**payload, "content": self._content(row, payload), "attempts": self._attempts(row, payload)})

    def operation_record(self, account_sid: str, operation_id: str) -> Blob | None:
        """A v1 Operation's JSON, or None if absent or past retention."""
        with self._lock:
            row = self._books[account_sid].ops.get(operation_id)
            if row is None or row.created < self.clock_ms() - COMMS_RETENTION_MS:
                return None
            return row.blob

    def comms_payloads(self, account_sid: str | None = None) -> list[dict]:
        """Every v1 message the list endpoint would serve now (metadata only), in its order."""
        with self._lock:
            book = self._book(account_sid)
            return [orjson.loads(book.comms[k[1]].blob) for k in self._visible(book.comms_keys)]

    def operation_payloads(self, account_sid: str | None = None) -> list[dict]:
        """Every v1 Operation the list endpoint would serve now, in its order."""
        with self._lock:
            book = self._book(account_sid)
            return [orjson.loads(book.ops[k[1]].blob) for k in self._visible(book.op_keys)]

    def _visible(self, keys: list[Key]) -> list[Key]:
        lo, hi = paging.index_range(keys, None, -(self.clock_ms() - COMMS_RETENTION_MS))
        return keys[lo:hi]

    def _content(self, row: CommsRow, payload: dict) -> Any:
        if row.content is not None:
            return row.content
        expires = rfc3339(self.clock_ms() // 1000 * 1000 + HOUR_MS)
        created, mid = str(payload.get("createdAt")), str(payload.get("id"))
        return generate.comms_content(row.text, row.media, row.channel, created, expires, mid)

    def _attempts(self, row: CommsRow, payload: dict) -> Any:
        """Attempts as Twilio would report them for the message's current status."""
        if row.attempts is not None:
            return row.attempts
        mid = str(payload.get("id"))
        status = payload.get("status")
        n = generate.attempt_count(status, mid)
        sender, to = payload.get("from"), payload.get("to")
        if isinstance(sender, dict):
            sender = {k: sender[k] for k in ("address", "channel", "senderId") if k in sender}
        if isinstance(to, list):
            to = [{k: c[k] for k in ("address", "channel") if k in c} if isinstance(c, dict) else c for c in to]
        failing = status in ("FAILED", "UNDELIVERED")
        base = row.created - row.created % 1000
        return [
            {
                "from": sender,
                "to": to,
                "status": status if i == n - 1 else "FAILED",
                "attemptedAt": rfc3339(base + 1000 * (i + 1)),
                "infoUrl": f"https://console.twilio.com/us1/monitor/logs/comms-messages/{mid}?attempt={i + 1}",
                "error": generate.message_error(mid) if failing or i < n - 1 else None,
            }
            for i in range(n)
        ]

    # ------------------------------------------------------------ v1 mutation

    def add_comms_message(self, account_sid: str | None = None, **fields: Any) -> dict:
        """Insert a v1 message created now: a DELIVERED SMS unless `fields` say otherwise.

        Unless `fields` give `related`, an outbound message gets a new one-message
        Operation; an INBOUND one gets none. `content` and `attempts` set what Fetch shows.
        """
        with self._lock:
            book = self._book(account_sid)
            now = self.clock_ms()
            created = _or(parse_rfc3339(fields.get("createdAt")), now)
            status = fields.get("status", "DELIVERED")
            gen_status = status if status in generate.V1_STATUSES else "DELIVERED"
            op_id = None
            if "related" not in fields and gen_status != "INBOUND":
                op_id = "comms_operation_" + generate.ulid(created, book.comms_factory.rng)
            channel = message_channel(fields) or "SMS"
            m = book.comms_factory.single(created, max(now, created), gen_status, channel, op_id)
            mid = fields["id"] if isinstance(fields.get("id"), str) else m.id
            if mid in book.comms:
                raise ValueError(f"v1 message {mid} already exists")
            fields = copy.deepcopy(fields)
            content, attempts = fields.pop("content", None), fields.pop("attempts", None)
            payload = orjson.loads(m.json)
            payload.update(fields)
            created = _or(parse_rfc3339(payload.get("createdAt")), now)
            row = book.comms[mid] = CommsRow((-created, mid), created, m.text, m.media)
            row.learn(payload)
            row.content, row.attempts, row.blob = content, attempts, encode(payload)
            insort(book.comms_keys, row.key)
            if op_id is not None and row.op_id == op_id:
                op_created = created - created % 1000
                op_payload = {"id": op_id, "status": None, "stats": None, "createdAt": rfc3339(op_created), "updatedAt": payload.get("updatedAt")}
                op = book.ops[op_id] = OpRow((-op_created, op_id), op_created, None, 0, orjson.dumps(op_payload))
                insort(book.op_keys, op.key)
                op.members.add(mid)
                self._refresh_operation(book, op, bump=False)
            self._join_operation(book, row, None)
            return payload

    def update_comms_message(self, message_id: str, **fields: Any) -> dict:
        """Change fields of a v1 message (`content` and `attempts` change what Fetch shows);
        updatedAt moves forward unless given. Its Operation's stats follow."""
        with self._lock:
            book, row = self._find("comms", message_id)
            payload = orjson.loads(row.blob)
            if "id" in fields and fields["id"] != payload.get("id"):
                raise ValueError("a message's id cannot change")
            fields = copy.deepcopy(fields)
            if "content" in fields:
                row.content = fields.pop("content")
            if "attempts" in fields:
                row.attempts = fields.pop("attempts")
            if "updatedAt" not in fields:
                fields["updatedAt"] = _bump(payload.get("updatedAt"), self.clock_ms(), parse_rfc3339, _fmt_v1)
            payload.update(fields)
            row.blob = encode(payload)
            old_op = row.op_id
            row.learn(payload)
            self._rekey(book.comms_keys, row, _or(parse_rfc3339(payload.get("createdAt")), row.created), message_id)
            self._join_operation(book, row, old_op)
            return payload

    def update_operation(self, operation_id: str, **fields: Any) -> dict:
        """Change fields of a v1 Operation; updatedAt moves forward unless given."""
        with self._lock:
            book, row = self._find("ops", operation_id)
            payload = orjson.loads(row.blob)
            if "id" in fields and fields["id"] != payload.get("id"):
                raise ValueError("an operation's id cannot change")
            fields = copy.deepcopy(fields)
            if "updatedAt" not in fields:
                fields["updatedAt"] = _bump(payload.get("updatedAt"), self.clock_ms(), parse_rfc3339, _fmt_v1)
            payload.update(fields)
            row.blob, row.status = encode(payload), payload.get("status")
            self._rekey(book.op_keys, row, _or(parse_rfc3339(payload.get("createdAt")), row.created), operation_id)
            return payload

    @staticmethod
    def _rekey(keys: list[Key], row: CommsRow | OpRow, created: int, ident: str) -> None:
        row.created = created
        if row.key != (-created, ident):
            _remove(keys, row.key)
            row.key = (-created, ident)
            insort(keys, row.key)

    def _join_operation(self, book: Book, row: CommsRow, old_op: str | None) -> None:
        """Move a message between Operations as its `related` says; refresh their stats."""
        mid = row.key[1]
        if old_op is not None and old_op != row.op_id and old_op in book.ops:
            book.ops[old_op].members.discard(mid)
            self._refresh_operation(book, book.ops[old_op])
        if row.op_id is not None and row.op_id in book.ops:
            book.ops[row.op_id].members.add(mid)
            self._refresh_operation(book, book.ops[row.op_id])

    def _refresh_operation(self, book: Book, op: OpRow, bump: bool = True) -> None:
        """Recompute stats and status from the messages; bump updatedAt when they change."""
        members = [book.comms[m] for m in op.members if m in book.comms]
        stats = generate.operation_stats(
            [
                (m.status, m.recipients, len(m.attempts) if isinstance(m.attempts, list) else generate.attempt_count(m.status, m.key[1]))
                for m in members
            ],
            op.unaddressable,
        )
        status = generate.operation_status([m.status for m in members])
        payload = orjson.loads(op.blob)
        if payload.get("stats") == stats and payload.get("status") == status:
            return
        payload["status"], payload["stats"] = status, stats
        if bump:
            payload["updatedAt"] = _bump(payload.get("updatedAt"), self.clock_ms(), parse_rfc3339, _fmt_v1)
        op.blob, op.status = orjson.dumps(payload), status


def _legacy_filter(
    table: dict[str, LegacyRow],
    cutoff: int,
    to: str | None,
    from_: str | None,
    sent_range: tuple[int | None, int | None] | None,
) -> Callable[[Key], LegacyRow | None]:
    """The accept() for a legacy list: within retention, To and From matching; `sent_range`
    (given only when the walk must test it row by row) bounds date_sent, a null one excluded."""
    first, last = sent_range if sent_range is not None else (None, None)

    def accept(key: Key) -> LegacyRow | None:
        row = table[key[1]]
        if row.created < cutoff or (to is not None and row.to != to) or (from_ is not None and row.from_ != from_):
            return None
        if sent_range is not None:
            sent = row.sent
            if sent is None or (first is not None and sent < first) or (last is not None and sent > last):
                return None
        return row

    return accept


def _legacy_walk(
    book: Book,
    keys: list[Key],
    lo: int,
    hi: int,
    token: tuple[str, str] | None,
    size: int,
    accept: Callable[[Key], LegacyRow | None],
) -> tuple[list[LegacyRow], bool] | None:
    """The rows of a legacy page and whether more follow; None when the token names a record
    this account never had. A token resumes from where its record stood when it was handed out."""
    if token is None:
        found, _, more = paging.page_after(keys, lo, hi, None, size, accept)
        return found, more
    direction, sid = token
    rows = book.legacy
    at = book.legacy_resume.get(sid) or (rows[sid].key if sid in rows else None)
    if at is None:
        return None
    if direction == "after":
        found, _, more = paging.page_after(keys, lo, hi, at, size, accept)
        return found, more
    found, _, last_key = paging.page_before(keys, lo, hi, at, size, accept)
    return found, last_key is not None and paging.any_after(keys, hi, last_key, accept)


def _remember(resume: dict[str, Key], *at: Key) -> None:
    """Keep where a page's boundary records stand, for the tokens naming them."""
    for key in at:
        resume[key[1]] = key
    if len(resume) > RESUME_LIMIT:  # forget the oldest: they fall back to the record's key
        del resume[next(iter(resume))]


def _operation_filter(table: dict[str, OpRow], status: str | None) -> Callable[[Key], OpRow | None]:
    if status is None:
        return lambda key: table[key[1]]

    def accept(key: Key) -> OpRow | None:
        row = table[key[1]]
        return row if row.status == status else None

    return accept


def _message_filter(table: dict[str, CommsRow], filters: dict[str, str]) -> Callable[[Key], CommsRow | None]:
    """The accept() for a v1 message list under the query's filters (all must match)."""
    status = filters.get("status")
    channel = filters.get("channel")
    profile = filters.get("profile")
    session = filters.get("sessionId")
    tags = [tuple(t.split(":", 1)) for t in filters["tags"].split(";") if t] if "tags" in filters else None
    if status is None and channel is None and profile is None and session is None and tags is None:
        return lambda key: table[key[1]]

    def accept(key: Key) -> CommsRow | None:
        row = table[key[1]]
        if (status is not None and row.status != status) or (channel is not None and row.channel != channel):
            return None
        if tags is None and profile is None and session is None:
            return row
        # Rare filters read the record itself rather than widening every row.
        p = orjson.loads(row.blob)
        if tags is not None:
            have = p.get("tags")
            if not isinstance(have, dict) or any(have.get(k) != v for k, v in tags):
                return None
        if profile is not None and not any(isinstance(x, dict) and x.get("profileId") == profile for x in _parties(p)):
            return None
        if session is not None and not any(
            isinstance(r, dict) and r.get("name") == "SESSION" and r.get("id") == session for r in p.get("related") or ()
        ):
            return None
        return row

    return accept


def _parties(payload: dict) -> Iterator[object]:
    yield payload.get("from")
    to = payload.get("to")
    if isinstance(to, list):
        yield from to
