"""Page positions for both APIs: token codecs, page URIs and keyset slicing. Pure, no I/O.

Every list is a sorted Python list of unique sort keys `(int, str)`, ascending in the order
the API serves (legacy: the emulator's `legacy_order`, see orders.py, by default
`(-date_sent_ms or NULLS_FIRST, sid)`; v1: `(-created_ms, id)`). A page
position is a key, never an offset, so records inserted or deleted elsewhere in the list
cannot shift a running scan: that is what "stable under concurrent inserts" means here.

Legacy tokens are `PA<sid>` ("page after this record") and `PB<sid>` ("page before it", used
by `previous_page_uri`), as in Twilio's own `next_page_uri` example. v1 tokens are opaque:
urlsafe base64 of a small JSON cursor (position, filters, page size) plus a keyed checksum,
so a forged, truncated or other-account token is a 400 rather than a silent restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson

from . import errors

Key = tuple[int, str]
Row = TypeVar("Row")

# ---------------------------------------------------------------- keyset slicing


def index_range(keys: Sequence[Key], first: int | None, last: int | None) -> tuple[int, int]:
    """Index bounds of the keys whose int part lies in [first, last] (None = unbounded)."""
    lo = 0 if first is None else bisect_left(keys, (first,))
    hi = len(keys) if last is None else bisect_left(keys, (last + 1,))
    return lo, hi


def page_after(
    keys: Sequence[Key],
    lo: int,
    hi: int,
    after: Key | None,
    size: int,
    accept: Callable[[Key], Row | None],
) -> tuple[list[Row], Key | None, bool]:
    """Up to `size` accepted rows after `after` within keys[lo:hi]: (rows, last key, more?).

    `more` is exact: the scan goes on past a full page until it finds one more accepted
    row, so the last page never advertises a next page that would come back empty.
    """
    i = lo if after is None else max(lo, bisect_right(keys, after))
    rows: list[Row] = []
    last: Key | None = None
    while i < hi:
        key = keys[i]
        i += 1
        row = accept(key)
        if row is None:
            continue
        if len(rows) == size:
            return rows, last, True
        rows.append(row)
        last = key
    return rows, last, False


def page_before(
    keys: Sequence[Key],
    lo: int,
    hi: int,
    before: Key,
    size: int,
    accept: Callable[[Key], Row | None],
) -> tuple[list[Row], Key | None, Key | None]:
    """Up to `size` accepted rows just before `before`, in list order: (rows, first key, last key)."""
    i = min(hi, bisect_left(keys, before))
    found: list[tuple[Key, Row]] = []
    while i > lo and len(found) < size:
        i -= 1
        row = accept(keys[i])
        if row is not None:
            found.append((keys[i], row))
    found.reverse()
    if not found:
        return [], None, None
    return [row for _, row in found], found[0][0], found[-1][0]


def any_after(keys: Sequence[Key], hi: int, after: Key, accept: Callable[[Key], Any]) -> bool:
    """Whether any accepted key follows `after` below index `hi`."""
    for i in range(bisect_right(keys, after), hi):
        if accept(keys[i]) is not None:
            return True
    return False


# ---------------------------------------------------------------- legacy PageToken

_LEGACY_TOKEN = re.compile(r"P([AB])(.+)")


def parse_legacy_token(token: str) -> tuple[str, str]:
    """`PA<sid>` -> ("after", sid); `PB<sid>` -> ("before", sid); anything else is a 400."""
    m = _LEGACY_TOKEN.fullmatch(token)
    if m is None:
        raise errors.bad_request(f"Invalid PageToken: {token}", "PageToken")
    return ("after" if m[1] == "A" else "before"), m[2]


def legacy_uri(path: str, filters: Sequence[tuple[str, str]], page_size: int, page: int, token: str | None = None) -> str:
    """A page URI relative to the API host, encoded as Twilio encodes it (`DateSent%3E=`, `%2B`)."""
    params = [*filters, ("PageSize", str(page_size)), ("Page", str(page))]
    if token is not None:
        params.append(("PageToken", token))
    return f"{path}?{urlencode(params)}"


# ---------------------------------------------------------------- v1 cursors


@dataclass(frozen=True)
class Cursor:
    """A decoded v1 page token: where the page starts, and the query it belongs to."""

    after: Key | None
    filters: dict[str, str]
    page_size: int


def _sign(secret: bytes, data: bytes) -> str:
    return hashlib.blake2b(data, key=secret[:64], digest_size=8).hexdigest()


def encode_cursor(secret: bytes, scope: str, after: Key | None, filters: dict[str, str], page_size: int) -> str:
    """An opaque token for a page position. `scope` (route + account) is signed, not stored."""
    body = {"k": list(after) if after else None, "f": filters, "n": page_size}
    data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    body["s"] = _sign(secret, scope.encode() + data)
    return base64.urlsafe_b64encode(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).rstrip(b"=").decode()


def decode_cursor(secret: bytes, scope: str, token: str) -> Cursor:
    """The cursor inside a token this emulator issued for `scope`; a 400 for anything else."""
    invalid = errors.bad_request("Invalid pageToken", "pageToken")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        sig = body.pop("s")
        data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        if not hmac.compare_digest(str(sig), _sign(secret, scope.encode() + data)):
            raise invalid
        k, filters, size = body["k"], body["f"], body["n"]
        after = None if k is None else (int(k[0]), str(k[1]))
        return Cursor(after, {str(a): str(b) for a, b in filters.items()}, int(size))
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, IndexError, orjson.JSONDecodeError):
        raise invalid from None
