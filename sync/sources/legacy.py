"""The 2010-04-01 Messages list (`/2010-04-01/Accounts/{AccountSid}/Messages.json`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from sync import pagination, parsing
from sync.models import LEGACY_MESSAGES, LEGACY_RETENTION, Window
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


DAY = 86_400.0


def list_url(account_sid: str, page_size: int, filters: tuple[tuple[str, str], ...] = ()) -> str:
    """The one place the legacy list's URLs are built: its filters, then its page size."""
    query = urlencode([*filters, ("PageSize", str(page_size))])
    return f"/2010-04-01/Accounts/{account_sid}/Messages.json?{query}"


def first_url(account_sid: str, window: Window, page_size: int) -> str:
    # No DateSent filter on purpose: messages never sent have a null date_sent, and whether a
    # DateSent filter matches them is undocumented. The window is applied to date_created locally.
    return list_url(account_sid, page_size)


def range_url(account_sid: str, lo: float, hi: float | None, page_size: int) -> str:
    """The list sent on the days [lo, hi) (epoch seconds of whole UTC days; hi None: from lo on).
    The DateSent filters take GMT days, the `<` and `>` forms inclusive ("on or before/after")."""
    first = datetime.fromtimestamp(lo, timezone.utc).date()
    if hi is None:
        return list_url(account_sid, page_size, (("DateSent>", first.isoformat()),))
    last = datetime.fromtimestamp(hi - DAY, timezone.utc).date()
    if last == first:
        return list_url(account_sid, page_size, (("DateSent", first.isoformat()),))
    return list_url(account_sid, page_size, (("DateSent<", last.isoformat()), ("DateSent>", first.isoformat())))


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
    range_url=range_url,
    record_url=record_url,
    body_field="body",
    sent_column="date_sent",
    retention=LEGACY_RETENTION,
    proves_deletions=True,
    has_media=True,
    in_overview=True,
)
