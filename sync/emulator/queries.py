"""List query strings of both APIs, validated into plain values. Pure, no I/O.

Anything Twilio documents as invalid becomes an `errors.ApiError` 400 here, before the
emulator's state is touched. Unknown parameters are ignored, as Twilio ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import errors
from .formats import day_bounds, parse_filter_date, parse_rfc3339

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
LEGACY_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
DATE_SENT_FILTERS = ("DateSent", "DateSent<", "DateSent>")  # wire names of =, <= and >=
_DIGITS = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class LegacyQuery:
    """A validated `GET .../Messages.json` query."""

    echo: list[tuple[str, str]]  # the filters as given, in Twilio's order, for page URIs
    to: str | None
    from_: str | None
    sent_range: tuple[int | None, int | None] | None  # inclusive epoch ms; None = no DateSent filter
    page_size: int
    page: int
    token: str | None


def date_sent_filters(query: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The DateSent filters a legacy list query carries, as given (valid or not), in Twilio's order."""
    return tuple((name, query[name]) for name in DATE_SENT_FILTERS if query.get(name))


def parse_legacy_list(query: Mapping[str, str]) -> LegacyQuery:
    """Validate a legacy list query. DateSent filters are whole GMT days, bounds inclusive."""
    raw_size = query.get("PageSize")
    page_size = DEFAULT_PAGE_SIZE
    if raw_size is not None:
        if not _DIGITS.fullmatch(raw_size) or int(raw_size) < 1:
            raise errors.bad_request(f"Invalid PageSize: {raw_size}", "PageSize")
        page_size = int(raw_size)
        if page_size > MAX_PAGE_SIZE:
            raise errors.bad_request(
                "Page size too large. The maximum page size is 1000", "PageSize", errors.PAGE_SIZE_TOO_LARGE
            )
    raw_page = query.get("Page", "0")
    if not _DIGITS.fullmatch(raw_page):
        raise errors.bad_request(f"Invalid Page: {raw_page}", "Page")
    page = int(raw_page)
    token = query.get("PageToken") or None
    if page > 0 and token is None:
        # Absolute paging is long gone: Twilio answers Page>0 without a token with 20001.
        raise errors.bad_request("PageToken is required for paging.", "PageToken")

    echo = [(name, query[name]) for name in LEGACY_FILTERS if query.get(name)]
    first: int | None = None
    last: int | None = None
    for name, value in echo:
        if not name.startswith("DateSent"):
            continue
        day = parse_filter_date(value)
        if day is None:
            raise errors.bad_request(f"Invalid {name}: {value}", name)
        start, end = day_bounds(day)
        if name != "DateSent<":  # "=" and ">" (on or after) bound from below
            first = start if first is None else max(first, start)
        if name != "DateSent>":  # "=" and "<" (on or before) bound from above
            last = end if last is None else min(last, end)
    has_date = any(name.startswith("DateSent") for name, _ in echo)
    return LegacyQuery(
        echo=echo,
        to=query.get("To") or None,
        from_=query.get("From") or None,
        sent_range=(first, last) if has_date else None,
        page_size=page_size,
        page=page,
        token=token,
    )


MESSAGE_STATUSES = frozenset(
    {"QUEUED", "SENT", "SCHEDULED", "DELIVERED", "READ", "FAILED", "UNDELIVERED", "CANCELED", "GROUP", "INBOUND"}
)
OPERATION_STATUSES = frozenset({"SCHEDULED", "PROCESSING", "COMPLETED", "CANCELED"})
_ULID = r"[0-7][a-hjkmnpqrstv-z0-9]{25,34}"
_MESSAGE_FILTERS: dict[str, re.Pattern[str] | frozenset[str]] = {
    "operationId": re.compile(rf"comms_operation_{_ULID}"),
    "sessionId": re.compile(r"comms_session_[a-hjkmnpqrstv-z0-9]{26,34}"),
    "profile": re.compile(rf"mem_profile_{_ULID}"),
    "channel": frozenset({"SMS", "RCS", "WHATSAPP"}),
    "status": MESSAGE_STATUSES,
    "tags": re.compile(r"(?:[a-zA-Z0-9._~-]+:[a-zA-Z0-9._~-]+;){1,10}"),
}
_OPERATION_FILTERS: dict[str, re.Pattern[str] | frozenset[str]] = {"status": OPERATION_STATUSES}


@dataclass(frozen=True)
class CommsQuery:
    """A validated v1 list query (`/v1/Messages` or `/v1/Messages/Operations`)."""

    filters: dict[str, str]  # every filter given, raw; a page token pins them
    created_range: tuple[int | None, int | None]  # inclusive epoch ms
    page_size: int | None  # None when not given: a token's own size, else 50, applies
    token: str | None


def parse_comms_list(query: Mapping[str, str], route: str) -> CommsQuery:
    """Validate a v1 list query for `route` ("messages" or "operations")."""
    raw_size = query.get("pageSize")
    page_size = None
    if raw_size is not None:
        if not _DIGITS.fullmatch(raw_size) or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            raise errors.bad_request("pageSize must be an integer between 1 and 1000", "pageSize")
        page_size = int(raw_size)
    allowed = _MESSAGE_FILTERS if route == "messages" else _OPERATION_FILTERS
    filters = {name: query[name] for name in ("startDate", "endDate", *allowed) if name in query}
    return CommsQuery(filters, comms_filters(filters, route), page_size, query.get("pageToken") or None)


def comms_filters(filters: Mapping[str, str], route: str) -> tuple[int | None, int | None]:
    """Check each v1 filter; return the createdAt range they ask for.

    startDate is inclusive and endDate exclusive ("created after startDate and before
    endDate"), so consecutive windows [a, b), [b, c) neither overlap nor miss a record.
    """
    allowed = _MESSAGE_FILTERS if route == "messages" else _OPERATION_FILTERS
    for name, rule in allowed.items():
        value = filters.get(name)
        if value is None:
            continue
        ok = value in rule if isinstance(rule, frozenset) else rule.fullmatch(value) is not None
        if not ok:
            raise errors.bad_request(f"Invalid {name}: {value}", name)
    bounds = {}
    for name in ("startDate", "endDate"):
        value = filters.get(name)
        if value is not None:
            bounds[name] = parse_rfc3339(value)
            if bounds[name] is None:
                raise errors.bad_request(f"{name} must be an RFC 3339 date-time, e.g. 2025-06-18T12:00:00Z", name)
    start, end = bounds.get("startDate"), bounds.get("endDate")
    if start is not None and end is not None and end <= start:
        raise errors.bad_request("endDate must be greater than startDate", "endDate")
    return start, None if end is None else end - 1
