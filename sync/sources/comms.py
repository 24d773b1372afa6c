"""The v1 Comms lists: Messages (`/v1/Messages`) and Message Operations (`/v1/Messages/Operations`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from sync import pagination, parsing
from sync.models import COMMS_MESSAGES, COMMS_OPERATIONS, Window
from sync.sources.base import Column, Parts, Source, column, json_column, key_column, part_column, reader

# The documented enums (reference/twilio_comms_v1_messages.json: MessageStatus and
# CommunicationOperationStatus); others are kept as sent and listed in parse_problems.
MESSAGE_STATUSES = frozenset({"SCHEDULED", "QUEUED", "SENT", "DELIVERED", "READ", "UNDELIVERED", "FAILED",
                              "CANCELED", "GROUP", "INBOUND"})
OPERATION_STATUSES = frozenset({"SCHEDULED", "PROCESSING", "COMPLETED", "CANCELED"})


def _operation_id(related: Any) -> str:
    for item in related:
        if isinstance(item, dict) and str(item.get("name", "")).upper() == "OPERATION":
            return parsing.text(item["id"])
    raise ValueError("no OPERATION entry")


def _recipients(to: Any) -> list:
    if not isinstance(to, list):
        raise ValueError(f"not a list: {to!r}")
    return to


_read_recipients = reader("to", _recipients)


def _message_parts(record: dict[str, Any], account_sid: str, problems: list[str]) -> Parts:
    """The sender, the first recipient and the operation, each checked once."""
    sender = record.get("from")
    if sender is not None and not isinstance(sender, dict):
        problems.append(f"from: not an object: {sender!r}")
        sender = None
    recipients = _read_recipients(record, problems) or []
    first = recipients[0] if recipients and isinstance(recipients[0], dict) else {}
    related = record.get("related")
    operation_id = None
    if isinstance(related, list) and related:
        try:
            operation_id = _operation_id(related)
        except (ValueError, KeyError):
            pass  # messages need not belong to an operation
    return {"record": record, "account": account_sid, "from": sender or {}, "to[0]": first,
            "to": recipients, "operation_id": operation_id}


text, rfc3339 = parsing.text, parsing.rfc3339


def _head(statuses: frozenset[str]) -> tuple[Column, ...]:
    """The columns every v1 table starts with: its id, the account scanned (v1 payloads carry
    none), its status."""
    return (key_column("id"), part_column("account_sid", "text", "(the account scanned)", "account"),
            column("status", "text", "status", text, allowed=statuses))


MESSAGE_COLUMNS = (
    *_head(MESSAGE_STATUSES),
    column("from_address", "text", "from.address", text),
    column("from_channel", "text", "from.channel", text),
    column("from_sender_id", "text", "from.senderId", text),
    column("to_address", "text", "to[0].address", text),
    column("to_channel", "text", "to[0].channel", text),
    Column("recipient_count", "integer", "len(to)", lambda recipients, problems: len(recipients), part="to"),
    part_column("operation_id", "text", "related[name=OPERATION].id", "operation_id"),
    json_column("tags"),
    column("scheduled_for", "timestamptz", "scheduledFor", rfc3339),
    column("created_at", "timestamptz", "createdAt", rfc3339),
    column("updated_at", "timestamptz", "updatedAt", rfc3339),
    column("deleted_at", "timestamptz", "deletedAt", rfc3339),
)


_STATS = ("total", "recipients", "attempts", "scheduled", "queued", "sent", "delivered", "read",
          "undelivered", "unaddressable", "failed", "canceled")


def _operation_parts(record: dict[str, Any], account_sid: str, problems: list[str]) -> Parts:
    stats = record.get("stats")
    if stats is not None and not isinstance(stats, dict):
        problems.append(f"stats: not an object: {stats!r}")
        stats = None
    return {"record": record, "account": account_sid, "stats": stats or {}}


OPERATION_COLUMNS = (
    *_head(OPERATION_STATUSES),
    *(column(f"stats_{name}", "integer", f"stats.{name}", parsing.integer) for name in _STATS),
    column("created_at", "timestamptz", "createdAt", rfc3339),
    column("updated_at", "timestamptz", "updatedAt", rfc3339),
)


def window_url(path: str, window: Window, page_size: int) -> str:
    """The list at `path` created inside `window`."""
    # startDate/endDate are documented as "after" and "before" without saying whether the
    # bounds are inclusive; asking one second wider and filtering locally cannot miss a record.
    query = {
        "startDate": _rfc3339(window.start - timedelta(seconds=1)),
        "endDate": _rfc3339(window.end + timedelta(seconds=1)),
        "pageSize": str(page_size),
    }
    return f"{path}?{urlencode(query)}"


def _rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _first(path: str):
    def first_url(account_sid: str, window: Window, page_size: int) -> str:
        return window_url(path, window, page_size)

    return first_url


def _range(path: str):
    def range_url(account_sid: str, lo: float, hi: float | None, page_size: int) -> str:
        """The list created in [lo, hi) (epoch seconds): a v1 slice."""
        assert hi is not None  # a v1 range always has its end: the window's
        window = Window(datetime.fromtimestamp(lo, timezone.utc), datetime.fromtimestamp(hi, timezone.utc))
        return window_url(path, window, page_size)

    return range_url


def message_url(account_sid: str, message_id: str) -> str:
    return f"/v1/Messages/{quote(message_id, safe='')}"


MESSAGES = Source(
    stream=COMMS_MESSAGES,
    api="comms",
    items_key="messages",
    key="id",
    created_column="created_at",
    updated_column="updated_at",
    columns=MESSAGE_COLUMNS,
    parts=_message_parts,
    first_url=_first("/v1/Messages"),
    next_url=pagination.comms_next_url,
    range_url=_range("/v1/Messages"),
    record_url=message_url,
    hydrated=True,
    in_overview=True,
)

OPERATIONS = Source(
    stream=COMMS_OPERATIONS,
    api="comms",
    items_key="operations",
    key="id",
    created_column="created_at",
    updated_column="updated_at",
    columns=OPERATION_COLUMNS,
    parts=_operation_parts,
    first_url=_first("/v1/Messages/Operations"),
    next_url=pagination.comms_next_url,
    range_url=_range("/v1/Messages/Operations"),
)
