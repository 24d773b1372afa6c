"""A legacy message's media list (`/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json`).

Pure: the list's URLs, and a page body turned into rows of twilio.legacy_media and rejects.
The account SID is always the message's own, given by the caller, never guessed: a
subaccount's message is read as that subaccount. It may not import the store, the worker
or the client (sync/media.py does the I/O)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from sync import errors, pagination, parsing
from sync.models import Rejected
from sync.sources.base import reader

STREAM = "legacy_media"
ITEMS_KEY = "media_list"
# Twilio's default, five times the 10 items a message carries at most: one request per message,
# and a page small enough that an API refusing large pages (500s) is rarely met.
PAGE_SIZE = 50

# (column, payload field, converter), in the table's order after sid, account_sid, message_sid.
_TYPED = (
    ("content_type", reader("content_type", parsing.text)),
    ("date_created", reader("date_created", parsing.rfc2822)),
    ("date_updated", reader("date_updated", parsing.rfc2822)),
    ("uri", reader("uri", parsing.text)),
)
COLUMNS = ("sid", "account_sid", "message_sid", *(name for name, _ in _TYPED), "raw", "parse_problems")


def list_url(account_sid: str, message_sid: str, page_size: int = PAGE_SIZE) -> str:
    return (f"/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages/{quote(message_sid, safe='')}"
            f"/Media.json?{urlencode([('PageSize', str(page_size))])}")


@dataclasses.dataclass(frozen=True)
class MediaPage:
    """One page of a media list: its rows (in COLUMNS' order), its rejects, the next page's URL."""

    rows: list[tuple]
    rejected: list[Rejected]
    next_url: str | None

    @property
    def problems(self) -> int:
        """Rows stored with something that could not be typed (parse_problems)."""
        return sum(1 for row in self.rows if row[-1] is not None)


def raw_text(item: Any) -> str:
    """An item as JSON text that survives anything (NUL, lone surrogates): ASCII-escaped."""
    return json.dumps(item, ensure_ascii=True)


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def to_row(item: Any, account_sid: str, message_sid: str) -> tuple | Rejected:
    """A media item as a row, or a `Rejected` when it has no usable sid. A field that cannot be
    typed leaves its column null and is listed in parse_problems; the item stays whole in raw."""
    if not isinstance(item, dict):
        return Rejected(None, f"media item is {type(item).__name__}, not an object", raw_text(item))
    sid = item.get("sid")
    if not isinstance(sid, str) or not sid or parsing.NUL in sid:
        return Rejected(None, "media item without a usable sid", raw_text(item))
    problems: list[str] = []
    typed = [read(item, problems) for _, read in _TYPED]
    typed = [parsing.storable(v)[0] if isinstance(v, str) else v for v in typed]
    parent = item.get("parent_sid")
    if parent is not None and parent != message_sid:
        problems.append(f"parent_sid: {parent!r} is not the message whose list served it")
    stored, nuls, surrogates = parsing.storable(item)
    if nuls or surrogates:
        problems.append("nul_replaced" if nuls else "surrogate_replaced")
    raw = orjson.dumps(stored).decode()
    return (sid, account_sid, message_sid, *typed, raw, problems or None)


def parse_page(body: Any, account_sid: str, message_sid: str) -> MediaPage:
    """A page body as rows and rejects; an envelope without its list is malformed (retried)."""
    if not isinstance(body, dict) or not isinstance(body.get(ITEMS_KEY), list):
        raise errors.RetryableSourceError(f"malformed page: no '{ITEMS_KEY}' list")
    rows: list[tuple] = []
    rejected: list[Rejected] = []
    for item in body[ITEMS_KEY]:
        made = to_row(item, account_sid, message_sid)
        (rejected if isinstance(made, Rejected) else rows).append(made)
    return MediaPage(rows, rejected, pagination.legacy_next_url(body))
