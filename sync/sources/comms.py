"""The v1 Comms lists: Messages (`/v1/Messages`) and Message Operations (`/v1/Messages/Operations`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sync import pagination, parsing
from sync.models import COMMS_MESSAGES, COMMS_OPERATIONS, Window
from sync.sources.base import Source, field, json_text, known

MESSAGE_COLUMNS = (
    ("id", "text"),
    ("account_sid", "text"),
    ("status", "text"),
    ("from_address", "text"),
    ("from_channel", "text"),
    ("from_sender_id", "text"),
    ("to_address", "text"),
    ("to_channel", "text"),
    ("recipient_count", "integer"),
    ("operation_id", "text"),
    ("tags", "jsonb"),
    ("scheduled_for", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("deleted_at", "timestamptz"),
)


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


def message_typed(record: dict[str, Any], account_sid: str, problems: list[str]) -> tuple:
    text, rfc3339 = parsing.text, parsing.rfc3339
    sender = record.get("from")
    if sender is not None and not isinstance(sender, dict):
        problems.append(f"from: not an object: {sender!r}")
        sender = None
    sender = sender or {}
    recipients = field(record, "to", _recipients, problems) or []
    first = recipients[0] if recipients and isinstance(recipients[0], dict) else {}
    related = record.get("related")
    operation_id = None
    if isinstance(related, list) and related:
        try:
            operation_id = _operation_id(related)
        except (ValueError, KeyError):
            pass  # messages need not belong to an operation
    tags = record.get("tags")
    return (
        record["id"],
        account_sid,
        known(field(record, "status", text, problems), MESSAGE_STATUSES, "status", problems),
        field(sender, "address", text, problems),
        field(sender, "channel", text, problems),
        field(sender, "senderId", text, problems),
        field(first, "address", text, problems),
        field(first, "channel", text, problems),
        len(recipients),
        operation_id,
        None if tags is None else json_text(tags),
        field(record, "scheduledFor", rfc3339, problems),
        field(record, "createdAt", rfc3339, problems),
        field(record, "updatedAt", rfc3339, problems),
        field(record, "deletedAt", rfc3339, problems),
    )


_STATS = ("total", "recipients", "attempts", "scheduled", "queued", "sent", "delivered", "read",
          "undelivered", "unaddressable", "failed", "canceled")

OPERATION_COLUMNS = (
    ("id", "text"),
    ("account_sid", "text"),
    ("status", "text"),
    *((f"stats_{name}", "integer") for name in _STATS),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)


def operation_typed(record: dict[str, Any], account_sid: str, problems: list[str]) -> tuple:
    stats = record.get("stats")
    if stats is not None and not isinstance(stats, dict):
        problems.append(f"stats: not an object: {stats!r}")
        stats = None
    stats = stats or {}
    return (
        record["id"],
        account_sid,
        known(field(record, "status", parsing.text, problems), OPERATION_STATUSES, "status", problems),
        *(field(stats, name, parsing.integer, problems) for name in _STATS),
        field(record, "createdAt", parsing.rfc3339, problems),
        field(record, "updatedAt", parsing.rfc3339, problems),
    )


def _first(path: str):
    def first_url(account_sid: str, window: Window, page_size: int) -> str:
        return pagination.comms_first_url(path, window, page_size)

    return first_url


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
    typed=message_typed,
    first_url=_first("/v1/Messages"),
    next_url=pagination.comms_next_url,
    record_url=message_url,
    hydrated=True,
)

OPERATIONS = Source(
    stream=COMMS_OPERATIONS,
    api="comms",
    items_key="operations",
    key="id",
    created_column="created_at",
    updated_column="updated_at",
    columns=OPERATION_COLUMNS,
    typed=operation_typed,
    first_url=_first("/v1/Messages/Operations"),
    next_url=pagination.comms_next_url,
)
