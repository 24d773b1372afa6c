"""What every stream shares: the row shape around a record, and turning a page into records and rows.

A stream's table is declared once, as a tuple of `Column`s (name, Postgres type, where in the
payload, how it is read); the typed tuple, the column list and the upsert (sync/sql/pages.py)
all derive from it. This module is the only one that knows a row's layout: the rest get a
row's key, digest and exact JSON from `Source`.

Pure, in two steps: a page body (already decoded JSON) goes in and a `models.Page` of `Served`
records comes out, each reduced to its key, digest, exact JSON and times (`parse_page`); the
store looks the digests up and has only the records new to it or changed typed into rows
(`rows`). Most records of a rescan are unchanged, and typing them was most of its parsing."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from sync import errors, parsing
from sync.models import COMMS_RETENTION, Page, Rejected, Served, Window
from sync.privacy import KEEP, Bodies
from sync.sources import decoding

# Every table ends with these, in this order (see docs/schema-contract.md); `row` fills them.
KEY, RAW, RAW_TEXT, PROBLEMS, DIGEST = 0, -4, -3, -2, -1  # their positions in a row (this module's own)
TAIL_COLUMNS = (("raw", "jsonb"), ("raw_text", "text"), ("parse_problems", "text[]"), ("raw_digest", "bytea"))

# A record's parts, as its stream's `parts` function lays them out for the columns to read:
# "record" (the payload), "account" (the account scanned), and any nested object a stream
# checks once for several columns (e.g. the v1 sender, "from").
Parts = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Column:
    """One typed column of a stream's table."""

    name: str
    type: str  # its Postgres type
    path: str  # where its value is in the payload, for people ("from.address", "len(to)")
    read: Callable[[Any, list[str]], Any]  # (the part it reads, problems) -> the typed value
    part: str = "record"  # which of the record's parts it reads: a key of Parts, or "*" for all of them
    # The field it reads, with column() its converter and documented values: `read` does the
    # same, and with these _typed writes the per-record reader out inline.
    key: str | None = None
    convert: Callable[[Any], Any] | None = None
    allowed: frozenset[str] | None = None


def reader(key: str, convert: Callable[[Any], Any]) -> Callable[[dict[str, Any], list[str]], Any]:
    """(obj, problems) -> obj[key] converted for a typed column; a value that does not convert is
    listed in parse_problems (under the field's name), never fatal."""

    def read(obj: dict[str, Any], problems: list[str]) -> Any:
        value = obj.get(key)
        if value is None:
            return None
        try:
            return convert(value)
        except (ValueError, TypeError, AttributeError) as exc:
            problems.append(f"{key}: {exc}")
            return None

    return read


def column(name: str, type: str, path: str, convert: Callable[[Any], Any], *,
           allowed: frozenset[str] | None = None) -> Column:
    """The column for a payload field, `part.field` or `field` (of the record), converted; with
    `allowed`, a value outside that documented enum is kept as sent (Twilio adds values) and listed."""
    part, _, key = path.rpartition(".")
    read = reader(key, convert)

    def read_known(obj: dict[str, Any], problems: list[str]) -> Any:
        value = read(obj, problems)
        if value is not None and value not in allowed:
            problems.append(f"{key}: not a documented value: {value!r}")
        return value

    return Column(name, type, path, read if allowed is None else read_known, part or "record", key, convert, allowed)


def _typed(parts: Callable[[dict[str, Any], str, list[str]], Parts], columns: tuple[Column, ...],
           attrs: dict[str, str] | None = None) -> Callable[[Any, str, list[str]], tuple]:
    """The function that reads a record's columns, written out, as dataclasses writes an
    __init__: it runs for every record, and a loop calling each column's reader made parsing
    5-25% slower than the hand-written tuples it replaced. tests/unit/test_sources.py holds it
    to the columns' own readers. A `column()` is read inline (what
    `reader` and `read_known` do); any other calls its own `read`. With `attrs` (field -> attribute,
    decoding.record_struct), the record is a struct, not a dict, and its fields are read as attributes."""
    scope: dict[str, Any] = {"_parts": parts, "_text_error": _text_error}
    lines = ["def typed(record, account_sid, problems):", "    p = _parts(record, account_sid, problems)"]
    for i, c in enumerate(columns):
        source = "p" if c.part == "*" else "record" if c.part == "record" else f"p[{c.part!r}]"
        field = f"record.{attrs[c.key]}" if attrs is not None and source == "record" and c.key is not None else None
        if c.key is not None and c.convert is None:  # part_column, key_column
            lines.append(f"    c{i} = {field or f'{source}[{c.key!r}]'}")
            continue
        if c.convert is None:
            scope[f"_read{i}"] = c.read
            lines.append(f"    c{i} = _read{i}({source}, problems)")
            continue
        scope[f"_convert{i}"], scope[f"_allowed{i}"] = c.convert, c.allowed
        lines += _converted(i, c, field or f"{source}.get({c.key!r})")
        if c.allowed is not None:
            lines += [f"    if c{i} is not None and c{i} not in _allowed{i}:",
                      f"        problems.append({c.key + ': not a documented value: '!r} + repr(c{i}))"]
    lines.append(f"    return ({''.join(f'c{i}, ' for i in range(len(columns)))})")
    exec("\n".join(lines), scope)  # noqa: S102 - the text is ours, made of the declaration's names
    return scope["typed"]


def _converted(i: int, c: Column, value: str) -> list[str]:
    """The lines of `typed` that read column `i` (its field is the expression `value`) with its
    converter, as `reader` does."""
    if c.convert is parsing.text:
        # Most columns are text: the type check inline costs a fraction of a call to parsing.text.
        return [
            f"    c{i} = {value}",
            f"    if c{i} is not None and not isinstance(c{i}, str):",
            f"        problems.append({c.key + ': '!r} + str(_text_error(c{i})))",
            f"        c{i} = None",
        ]
    return [
        f"    c{i} = {value}",
        f"    if c{i} is not None:",
        "        try:",
        f"            c{i} = _convert{i}(c{i})",
        "        except (ValueError, TypeError, AttributeError) as exc:",
        f"            problems.append({c.key + ': '!r} + str(exc))",
        f"            c{i} = None",
    ]


def _text_error(value: Any) -> ValueError:
    """What parsing.text raises for a value that is not a string, for the inline check above."""
    try:
        parsing.text(value)
    except ValueError as exc:
        return exc
    raise AssertionError(f"parsing.text accepted {value!r}")


def record_parts(record: dict[str, Any], account_sid: str, problems: list[str]) -> Parts:
    return {"record": record, "account": account_sid}


def part_column(name: str, type: str, path: str, part: str) -> Column:
    """A column whose value is one of the record's parts as is (see the stream's `parts`)."""
    return Column(name, type, path, lambda parts, problems: parts[part], "*", key=part)


def key_column(name: str) -> Column:
    """The record's key: a string, or the record was rejected before it got here (keyed_row)."""
    return Column(name, "text", name, lambda record, problems: record[name], key=name)


def json_column(name: str) -> Column:
    def read(record: dict[str, Any], problems: list[str]) -> str | None:
        value = record.get(name)
        return None if value is None else json_text(value)

    return Column(name, "jsonb", name, read)


@dataclasses.dataclass(frozen=True)
class Source:
    """One Twilio list, and how its records become rows of one table."""

    stream: str  # also the table name in schema twilio
    api: str  # "comms" or "api": which configured base URL serves it
    items_key: str  # the envelope key holding the records
    key: str  # primary key column (and payload field)
    created_column: str  # the window applies to this column
    updated_column: str  # the newer payload wins on this column
    columns: tuple[Column, ...]  # the typed columns, key first (the tail columns follow)
    first_url: Callable[[str, Window, int], str]  # (account, window, page size) -> where a scan starts
    next_url: Callable[[str, dict[str, Any]], str | None]
    # (account, lo, hi, page size) -> the query over one range of the key the list is sliced by,
    # in epoch seconds (v1: created in [lo, hi); legacy: sent on the days [lo, hi), hi None: on from lo)
    range_url: Callable[[str, float, float | None, int], str]
    record_url: Callable[[str, str], str] | None = None  # (account, key) -> the one record's URL
    body_field: str | None = None  # the message text, which the privacy policy may hash or drop
    hydrated: bool = False  # its rows are completed by a fetch of each record after a scan (hydrate.py)
    # The list cannot be filtered by creation time (legacy): the scan plan reads its order from
    # each record's creation and send times (Page.times, sync/plan/), and slices it by this.
    sent_column: str | None = None
    # Lays a record out for its columns; checks a nested object once, however many columns read it.
    parts: Callable[[dict[str, Any], str, list[str]], Parts] = record_parts
    retention: timedelta = COMMS_RETENTION  # how far back the list keeps records: a scan asks no further
    # A record deleted from the list is proved gone by a 404 to `record_url`, after a full scan that
    # did not see it (deletions.py); the v1 lists say so in the record itself (deletedAt).
    proves_deletions: bool = False
    # Its records name their media in a list of their own, read once per record that has any (media.py).
    has_media: bool = False
    # Its rows are counted in twilio.daily_account_overview (a message list): whatever writes one
    # marks its (account, day of creation) owed, in the same transaction (sync/sql/views.py).
    in_overview: bool = False

    @functools.cached_property
    def typed(self) -> Callable[[dict[str, Any], str, list[str]], tuple]:
        """(record, account, problems) -> the typed columns' values, in the declared order."""
        return _typed(self.parts, self.columns)

    @functools.cached_property
    def typed_json(self) -> Callable[[str, str, list[str]], tuple]:
        """(a record's JSON, account, problems) -> `typed` of the decoded record: the same values
        and problems. A stream whose columns read the record itself (legacy) has it decoded straight
        into the fields they read (decoding.py): no dict, and the text fields' types checked while
        decoding, 4 to 6 us a record where decoding and typing took 6.4 to 10.3 (1,000 legacy
        records, measured apart). A record whose values do not fit those types goes the dict's way."""
        typed = self.typed
        if self.parts is not record_parts:
            return lambda raw, account_sid, problems: typed(orjson.loads(raw), account_sid, problems)
        struct, attrs = decoding.record_struct(_record_fields(self.columns))
        fast, decode = _typed(self.parts, self.columns, attrs), decoding.decoder(struct)

        def typed_json(raw: str, account_sid: str, problems: list[str]) -> tuple:
            try:
                record = decode(raw)
            except decoding.ERRORS:  # e.g. a number where text belongs: listed as the dict's way lists it
                return typed(orjson.loads(raw), account_sid, problems)
            return fast(record, account_sid, problems)

        return typed_json

    @functools.cached_property
    def all_columns(self) -> tuple[tuple[str, str], ...]:
        """(name, Postgres type) of every column of the table, in a row's order."""
        return tuple((c.name, c.type) for c in self.columns) + TAIL_COLUMNS

    @functools.cached_property
    def read_created(self) -> Callable[[dict[str, Any]], float | None]:
        """record -> its creation time in epoch seconds, None where absent or unreadable (its row will list why)."""
        return _time_reader(self, self.created_column)

    @functools.cached_property
    def read_sent(self) -> Callable[[dict[str, Any]], float | None] | None:
        return None if self.sent_column is None else _time_reader(self, self.sent_column)

    @functools.cached_property
    def overview_columns(self) -> tuple[int, int]:
        """The positions in a row of its account_sid and its creation time: what the overview groups by."""
        names = [name for name, _ in self.all_columns]
        return names.index("account_sid"), names.index(self.created_column)

    # A row's parts the store needs, read here so that no other module knows the row's layout.

    @staticmethod
    def key_of(row: tuple) -> str:
        return row[KEY]

    @staticmethod
    def digest_of(row: tuple) -> bytes:
        return row[DIGEST]

    @staticmethod
    def problems_of(row: tuple) -> list[str] | None:
        return row[PROBLEMS]

    @staticmethod
    def exact_json(row: tuple) -> str:
        """The record exactly as served (raw_text where raw had to be cleaned)."""
        return row[RAW_TEXT] or row[RAW]


def _record_fields(columns: tuple[Column, ...]) -> dict[str, Any]:
    """The JSON fields the columns read, with the type a struct may check while decoding: the key
    and text fields are strings (a record where one is not goes the dict's way), the rest as sent.
    A column with its own reader names its field by its path (e.g. legacy's account_sid, tags)."""
    fields: dict[str, Any] = {}
    for c in columns:
        if c.part == "record" and c.key is not None:
            fields[c.key] = str if c.convert is None else (str | None) if c.convert is parsing.text else Any
        elif c.path.isidentifier():
            fields.setdefault(c.path, Any)
    return fields


def _time_reader(source: Source, name: str) -> Callable[[dict[str, Any]], float | None]:
    """The time in column `name` in epoch seconds: the column's value (a time column reads one
    field of the record by a converter).timestamp(), or None where that is None or fails, without
    listing a problem: the record's row does that."""
    [c] = [c for c in source.columns if c.name == name]
    if c.part != "record" or c.key is None or c.convert is None:
        raise ValueError(f"{source.stream}.{name}: a time column must read a field of the record by a converter")
    key, convert = c.key, parsing.seconds(c.convert)

    def read(record: dict[str, Any]) -> float | None:
        value = record.get(key)
        if value is None:
            return None
        try:
            return convert(value)
        except (ValueError, TypeError, AttributeError):
            return None

    return read


_BACKSLASH = ord("\\")  # how JSON escapes begin; an int, so that `in` looks for one byte


def served(source: Source, record: dict[str, Any]) -> Served:
    """A keyed record reduced to its stored JSON, digest and times: all a rescan needs of an
    unchanged record. Whatever cannot be stored as is is listed, never fatal."""
    raw_text = None
    problems: list[str] | None = None
    try:
        raw = orjson.dumps(record)
        # Only a record holding a backslash can hold the escape: one byte is a memchr, where the
        # six-byte search costs 0.5 to 0.9 us a record (digits, its last byte, are everywhere).
        unstorable = _BACKSLASH in raw and b"\\u0000" in raw
    except TypeError:  # orjson will not encode a lone surrogate
        unstorable = True
    if unstorable:  # or a body quoting the six characters \u0000, which storable() leaves alone
        cleaned, nuls, surrogates = parsing.storable(record)
        if nuls or surrogates:
            # The exact payload, ASCII-escaped so that Postgres can hold every character of it.
            raw_text, raw, record = json.dumps(record), orjson.dumps(cleaned), cleaned
            problems = []
        if nuls:
            problems.append(f"nul_replaced: {nuls} NUL character(s) stored as U+FFFD; exact JSON in raw_text")
        if surrogates:
            problems.append(f"surrogate_replaced: {surrogates} lone surrogate(s) stored as U+FFFD; exact JSON in raw_text")
    # The digest lets a rescan recognise an unchanged record by a 16-byte compare (see store.py).
    # Existing archives hold it: its bytes must stay these.
    digest = hashlib.md5(raw if raw_text is None else raw + raw_text.encode(), usedforsecurity=False).digest()
    sent = None if source.read_sent is None else source.read_sent(record)
    return Served(record[source.key], digest, source.read_created(record), sent, raw.decode(), raw_text, problems)


def row(source: Source, account_sid: str, record: Served) -> tuple:
    """The table row of a served record: its typed columns, then raw, raw_text, parse_problems, raw_digest."""
    problems = list(record.problems) if record.problems else []
    # Decoded again from raw, which holds exactly what was decoded (JSON's values round-trip).
    typed = source.typed_json(record.raw, account_sid, problems)
    return typed + (record.raw, record.raw_text, problems or None, record.digest)


def rows(source: Source, account_sid: str, records: list[Served]) -> list[tuple]:
    """The table rows of served records: only records new to the table or changed need theirs."""
    return [row(source, account_sid, record) for record in records]


def rejected(record: Any, key: str) -> Rejected:
    """A record we cannot key, kept whole for the operator (it never reaches a table of records)."""
    text = json.dumps(record)  # ASCII-escaped: storable whatever it holds
    reason = f"no usable {key!r}" if isinstance(record, dict) else f"not a JSON object but {type(record).__name__}"
    return Rejected(key=None, reason=reason, raw_text=text)


def keyed(source: Source, record: Any, bodies: Bodies = KEEP) -> Served | Rejected:
    """One record as served, reduced (`served`), or why it cannot be archived (it has no usable key)."""
    if bodies.mode != "keep" and source.body_field is not None and isinstance(record, dict) and source.body_field in record:
        # Before anything else, so that the text reaches no table, rejected_records included.
        record = {**record, source.body_field: bodies.apply(record[source.body_field])}
    if not isinstance(record, dict) or not isinstance(record.get(source.key), str) or not record[source.key]:
        return rejected(record, source.key)
    return served(source, record)


def keyed_row(source: Source, record: Any, account_sid: str, bodies: Bodies = KEEP) -> tuple | Rejected:
    """The row for one record as served, or why it cannot have one (it has no usable key)."""
    kept = keyed(source, record, bodies)
    return kept if isinstance(kept, Rejected) else row(source, account_sid, kept)


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def owned(source: Source, page: Page, owns: Callable[[float | None, float | None], bool]) -> Page:
    """The page with only the records `owns(created, sent)` (epoch seconds) keeps: a chain of a
    sliced scan leaves a neighbour's records to the neighbour, so that each is saved once."""

    kept = [record for record in page.records if owns(record.created, record.sent)]
    return page if len(kept) == len(page.records) else dataclasses.replace(page, records=kept)


def parse_page(source: Source, body: Any, account_sid: str, window: Window, current_url: str,
               bodies: Bodies = KEEP) -> Page:
    """Every record of the page created inside the window, reduced for the store's digest
    compare (`served`; typed later, and only if new or changed), and where to go next."""
    if not isinstance(body, dict):
        raise errors.RetryableSourceError(f"malformed page: expected a JSON object, got {type(body).__name__}")
    items = body.get(source.items_key)
    if not isinstance(items, list):
        raise errors.RetryableSourceError(f"malformed page: no '{source.items_key}' list")
    next_url = source.next_url(current_url, body)
    records: dict[str, Served] = {}  # by key: a page listing a record twice must not upsert it twice
    outside = 0
    bad: list[Rejected] = []
    reached: float | None = None
    times: list[tuple[float | None, float | None]] = []  # each record's place in the list's order
    # The window in epoch seconds: timestamp() rounds correctly, so for times to the microsecond
    # these compare as the datetimes do (floats near now are 0.24 us apart).
    start, end = window.start.timestamp(), window.end.timestamp()
    for item in items:
        record = keyed(source, item, bodies)
        if isinstance(record, Rejected):
            bad.append(record)  # without its times it tells nothing about the order
            continue
        created = record.created
        times.append((created, record.sent))
        if created is not None:
            reached = created
            if not start <= created < end:
                outside += 1
                continue
        records[record.key] = record
    return Page(records=list(records.values()), next_url=next_url, seen=len(items), outside_window=outside,
                rejected=bad, reached=None if reached is None else datetime.fromtimestamp(reached, timezone.utc),
                times=times)
