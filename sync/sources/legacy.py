"""The 2010-04-01 Messages list (`/2010-04-01/Accounts/{AccountSid}/Messages.json`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sync import pagination, parsing
from sync.models import LEGACY_MESSAGES, Window
from sync.sources.base import Column, Parts, Source, column, json_column, key_column, reader

# The documented values (doc 001); others are kept as sent and listed in parse_problems.
STATUSES = frozenset({"queued", "sending", "sent", "failed", "delivered", "undelivered", "receiving", "received",
                      "accepted", "scheduled", "read", "partially_delivered", "canceled"})


_payload_account = reader("account_sid", parsing.text)


def _account(parts: Parts, problems: list[str]) -> str:
    # The payload's own, which names a subaccount's messages; else the account scanned.
    return _payload_account(parts["record"], problems) or parts["account"]


text, integer, rfc2822 = parsing.text, parsing.integer, parsing.rfc2822
COLUMNS = (
    key_column("sid"),
    Column("account_sid", "text", "account_sid", _account, part="*"),
    column("messaging_service_sid", "text", "messaging_service_sid", text),
    column("direction", "text", "direction", text),
    column("from_address", "text", "from", text),
    column("to_address", "text", "to", text),
    column("body", "text", "body", text),
    column("status", "text", "status", text, allowed=STATUSES),
    column("num_segments", "integer", "num_segments", integer),
    column("num_media", "integer", "num_media", integer),
    column("price", "numeric", "price", parsing.decimal),
    column("price_unit", "text", "price_unit", text),
    column("error_code", "integer", "error_code", integer),
    column("error_message", "text", "error_message", text),
    column("api_version", "text", "api_version", text),
    column("date_created", "timestamptz", "date_created", rfc2822),
    column("date_sent", "timestamptz", "date_sent", rfc2822),
    column("date_updated", "timestamptz", "date_updated", rfc2822),
    json_column("tags"),
    column("uri", "text", "uri", text),
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
    first_url=first_url,
    next_url=next_url,
    record_url=record_url,
    body_field="body",
    sent_column="date_sent",
)
