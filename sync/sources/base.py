"""What every stream shares: the row shape around a record, and turning a page into rows.

Pure: a page body (already decoded JSON) goes in, a `models.Page` comes out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from sync import errors, parsing
from sync.models import Page, Window

# Every table ends with these, in this order (see docs/schema-contract.md).
TAIL_COLUMNS = (("raw", "jsonb"), ("raw_text", "text"), ("parse_problems", "text[]"))


@dataclasses.dataclass(frozen=True)
class Source:
    """One Twilio list, and how its records become rows of one table."""

    stream: str  # also the table name in schema twilio
    api: str  # "comms" or "api": which configured base URL serves it
    items_key: str  # the envelope key holding the records
    key: str  # primary key column (and payload field)
    created_column: str  # the window applies to this column
    updated_column: str  # the newer payload wins on this column
    columns: tuple[tuple[str, str], ...]  # (name, postgres type) of the typed columns, key first
    typed: Callable[[dict[str, Any], str, list[str]], tuple]  # record, account -> typed values
    first_url: Callable[[str, Window, int], str]
    next_url: Callable[[str, dict[str, Any]], str | None]

    @property
    def all_columns(self) -> tuple[tuple[str, str], ...]:
        return self.columns + TAIL_COLUMNS

    @property
    def created_index(self) -> int:
        return [name for name, _ in self.columns].index(self.created_column)


def field(record: dict[str, Any], name: str, convert: Callable[[Any], Any], problems: list[str]) -> Any:
    """record[name] converted for a typed column; a value that does not convert is reported, not fatal."""
    value = record.get(name)
    if value is None:
        return None
    try:
        return convert(value)
    except (ValueError, TypeError, AttributeError) as exc:
        problems.append(f"{name}: {exc}")
        return None


def to_row(source: Source, record: Any, account_sid: str) -> tuple | None:
    """The table row for one record, or None when it has no usable key."""
    if not isinstance(record, dict) or not isinstance(record.get(source.key), str) or not record[source.key]:
        return None
    raw = orjson.dumps(record)
    raw_text = None
    problems: list[str] = []
    if b"\\u0000" in raw:
        cleaned, count = parsing.without_nul(record)
        if count:
            raw_text, raw, record = raw.decode(), orjson.dumps(cleaned), cleaned
            problems.append(f"nul_replaced: {count} NUL character(s) stored as U+FFFD; exact JSON in raw_text")
    typed = source.typed(record, account_sid, problems)
    return typed + (raw.decode(), raw_text, "\n".join(problems) if problems else None)


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def parse_page(source: Source, body: Any, account_sid: str, window: Window, current_url: str) -> Page:
    """Rows for every record of the page created inside the window, and where to go next."""
    if not isinstance(body, dict):
        raise errors.RetryableSourceError(f"malformed page: expected a JSON object, got {type(body).__name__}")
    items = body.get(source.items_key)
    if not isinstance(items, list):
        raise errors.RetryableSourceError(f"malformed page: no '{source.items_key}' list")
    next_url = source.next_url(current_url, body)
    created_at = source.created_index
    rows: dict[str, tuple] = {}  # by key: a page listing a record twice must not upsert it twice
    outside = problems = unkeyed = 0
    reached: datetime | None = None
    for record in items:
        row = to_row(source, record, account_sid)
        if row is None:
            unkeyed += 1
            continue
        created: datetime | None = row[created_at]
        reached = created or reached
        if created is not None and not window.contains(created):
            outside += 1
            continue
        if row[-1] is not None:
            problems += 1
        rows[row[0]] = row
    return Page(
        rows=list(rows.values()),
        next_url=next_url,
        seen=len(items),
        outside_window=outside,
        problems=problems,
        unkeyed=unkeyed,
        reached=reached,
    )
