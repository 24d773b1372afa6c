"""The 2010-04-01 Messages list (`/2010-04-01/Accounts/{AccountSid}/Messages.json`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sync import pagination, parsing
from sync.models import LEGACY_MESSAGES, Window
from sync.sources.base import Source, field, json_text, known

COLUMNS = (
    ("sid", "text"),
    ("account_sid", "text"),
    ("messaging_service_sid", "text"),
    ("direction", "text"),
    ("from_address", "text"),
    ("to_address", "text"),
    ("body", "text"),
    ("status", "text"),
    ("num_segments", "integer"),
    ("num_media", "integer"),
    ("price", "numeric"),
    ("price_unit", "text"),
    ("error_code", "integer"),
    ("error_message", "text"),
    ("api_version", "text"),
    ("date_created", "timestamptz"),
    ("date_sent", "timestamptz"),
    ("date_updated", "timestamptz"),
    ("tags", "jsonb"),
    ("uri", "text"),
)


# The documented values (doc 001); others are kept as sent and listed in parse_problems.
STATUSES = frozenset({"queued", "sending", "sent", "failed", "delivered", "undelivered", "receiving", "received",
                      "accepted", "scheduled", "read", "partially_delivered", "canceled"})


def typed(record: dict[str, Any], account_sid: str, problems: list[str]) -> tuple:
    text, rfc2822 = parsing.text, parsing.rfc2822
    tags = record.get("tags")
    return (
        record["sid"],
        field(record, "account_sid", text, problems) or account_sid,
        field(record, "messaging_service_sid", text, problems),
        field(record, "direction", text, problems),
        field(record, "from", text, problems),
        field(record, "to", text, problems),
        field(record, "body", text, problems),
        known(field(record, "status", text, problems), STATUSES, "status", problems),
        field(record, "num_segments", parsing.integer, problems),
        field(record, "num_media", parsing.integer, problems),
        field(record, "price", parsing.decimal, problems),
        field(record, "price_unit", text, problems),
        field(record, "error_code", parsing.integer, problems),
        field(record, "error_message", text, problems),
        field(record, "api_version", text, problems),
        field(record, "date_created", rfc2822, problems),
        field(record, "date_sent", rfc2822, problems),
        field(record, "date_updated", rfc2822, problems),
        None if tags is None else json_text(tags),
        field(record, "uri", text, problems),
    )


def first_url(account_sid: str, window: Window, page_size: int) -> str:
    return pagination.legacy_first_url(account_sid, page_size)


def next_url(current: str, body: dict[str, Any]) -> str | None:
    return pagination.legacy_next_url(body)


def record_url(account_sid: str, sid: str) -> str:
    return f"/2010-04-01/Accounts/{quote(account_sid)}/Messages/{quote(sid, safe='')}.json"


SOURCE = Source(
    stream=LEGACY_MESSAGES,
    api="api",
    items_key="messages",
    key="sid",
    created_column="date_created",
    updated_column="date_updated",
    columns=COLUMNS,
    typed=typed,
    first_url=first_url,
    next_url=next_url,
    record_url=record_url,
    body_field="body",
    sent_column="date_sent",
)
