"""The media of legacy messages: the Media subresource of a 2010-04-01 Message.

    GET    /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json        the list
    GET    /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json  one item
    DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json  delete it

A message's items are made from its SID, its `num_media` and its creation second, the same
every time (so a 200k-message data set costs nothing until a list is asked for); what is
deleted, through the DELETE route or `Media.delete`, is remembered by SID. Deleting an item
leaves the message's `num_media` as it was: only a read of the list shows it gone. A message
the caller cannot see (another account's, deleted, past retention) has no media list: 404.
The list pages as the Messages list does (`PA<sid>`/`PB<sid>` tokens, PageSize up to 1000) and filters
by `DateCreated` (=, `<` on or before, `>` on or after, whole GMT days). This module may not
touch the messages themselves (data.py) nor decide authentication (server.py).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from . import errors, paging
from .formats import day_bounds, parse_filter_date, parse_rfc2822, rfc2822
from .generate import Picker
from .queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

if TYPE_CHECKING:
    from .data import Emulator

DATE_CREATED_FILTERS = ("DateCreated", "DateCreated<", "DateCreated>")
# What MMS and WhatsApp messages carry, by share (permille of items).
_CONTENT_TYPE = Picker({"image/jpeg": 520, "image/png": 150, "image/gif": 80, "video/mp4": 90,
                        "application/pdf": 70, "text/vcard": 50, "audio/mpeg": 40})  # fmt: skip


class _Draw:
    """A `random.random`-like source drawn from a hash, for Picker: one item, one draw."""

    def __init__(self, digest: bytes) -> None:
        self.value = int.from_bytes(digest[16:20], "big") / 2**32

    def random(self) -> float:
        return self.value


class Media:
    """The media items of every account's legacy messages, and which were deleted."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._deleted: set[str] = set()
        self._lock = threading.Lock()

    def items(self, message: Mapping[str, object]) -> list[dict]:
        """The items a message's list serves now, in the list's order (as made: oldest first)."""
        sid, account = message.get("sid"), message.get("account_sid")
        created = parse_rfc2822(message.get("date_created"))
        try:
            count = int(str(message.get("num_media")))
        except ValueError:
            return []
        if not isinstance(sid, str) or not isinstance(account, str) or created is None:
            return []
        made = [self._item(account, sid, created, i) for i in range(min(count, MAX_PAGE_SIZE))]
        with self._lock:
            return [item for item in made if item["sid"] not in self._deleted]

    def _item(self, account: str, message_sid: str, created_ms: int, i: int) -> dict:
        digest = hashlib.sha256(f"{self.seed}:{message_sid}:{i}".encode()).digest()
        sid = "ME" + digest[:16].hex()
        return {
            "account_sid": account,
            "content_type": _CONTENT_TYPE(_Draw(digest)),
            "date_created": rfc2822(created_ms),
            "date_updated": rfc2822(created_ms + 1000),
            "parent_sid": message_sid,
            "sid": sid,
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{message_sid}/Media/{sid}.json",
        }

    def delete(self, media_sid: str) -> None:
        """Delete an item (as DELETE .../Media/{Sid}.json does): its list no longer serves it."""
        with self._lock:
            self._deleted.add(media_sid)


def _date_range(query: Mapping[str, str]) -> tuple[list[tuple[str, str]], int | None, int | None]:
    """The DateCreated filters as given (for page URIs) and the epoch-ms range they ask for."""
    echo = [(name, query[name]) for name in DATE_CREATED_FILTERS if query.get(name)]
    first = last = None
    for name, value in echo:
        day = parse_filter_date(value)
        if day is None:
            raise errors.bad_request(f"Invalid {name}: {value}", name)
        start, end = day_bounds(day)
        if name != "DateCreated<":
            first = start if first is None else max(first, start)
        if name != "DateCreated>":
            last = end if last is None else min(last, end)
    return echo, first, last


def _page_size(query: Mapping[str, str]) -> int:
    raw = query.get("PageSize")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise errors.bad_request(f"Invalid PageSize: {raw}", "PageSize", errors.PAGE_SIZE_TOO_LARGE
                                 if raw.isdigit() and int(raw) > MAX_PAGE_SIZE else errors.INVALID_PARAMETER)
    return int(raw)


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


class Routes:
    """The handlers of the Media subresource, over one Emulator (server.py adds them to its app)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def _message(self, request: web.Request, account: str) -> dict:
        """The message the path names, if the caller's account may see it; else 404."""
        if request.match_info["account_sid"] != account:
            raise errors.not_found(request.path)
        blob = self.emu.legacy_record(account, request.match_info["sid"])
        if blob is None:
            raise errors.not_found(request.path)
        return orjson.loads(blob)

    async def list(self, request: web.Request, account: str) -> web.Response:
        message = self._message(request, account)
        query = request.query
        echo, first, last = _date_range(query)
        size = _page_size(query)
        raw_page = query.get("Page", "0")
        if not raw_page.isdigit():
            raise errors.bad_request(f"Invalid Page: {raw_page}", "Page")
        page, token = int(raw_page), query.get("PageToken") or None
        items = [m for m in self.emu.media.items(message)
                 if (first is None or parse_rfc2822(m["date_created"]) >= first)
                 and (last is None or parse_rfc2822(m["date_created"]) <= last)]  # fmt: skip
        start_at = 0
        if token is not None:
            direction, at = paging.parse_legacy_token(token)
            sids = [m["sid"] for m in items]
            if at not in sids:
                raise errors.bad_request(f"Invalid PageToken: {token}", "PageToken")
            # PA<sid>: the page after that item; PB<sid>: the page before it (previous_page_uri).
            start_at = sids.index(at) + 1 if direction == "after" else max(0, sids.index(at) - size)
        elif page > 0:
            raise errors.bad_request("PageToken is required for paging.", "PageToken")
        shown = items[start_at:start_at + size]
        more = start_at + size < len(items)
        path = request.path
        body = {
            "first_page_uri": paging.legacy_uri(path, echo, size, 0),
            "end": page * size + max(len(shown) - 1, 0),
            "previous_page_uri": (paging.legacy_uri(path, echo, size, page - 1, f"PB{shown[0]['sid']}")
                                  if page > 0 and shown else None),
            "media_list": shown,
            "uri": paging.legacy_uri(path, echo, size, page, token),
            "page_size": size,
            "start": page * size,
            "next_page_uri": paging.legacy_uri(path, echo, size, page + 1, f"PA{shown[-1]['sid']}") if more else None,
            "page": page,
        }
        return _json(orjson.dumps(body))

    def _item(self, request: web.Request, account: str) -> dict:
        message = self._message(request, account)
        media_sid = request.match_info["media_sid"]
        for item in self.emu.media.items(message):
            if item["sid"] == media_sid:
                return item
        raise errors.not_found(request.path)

    async def fetch(self, request: web.Request, account: str) -> web.Response:
        return _json(orjson.dumps(self._item(request, account)))

    async def delete(self, request: web.Request, account: str) -> web.Response:
        self.emu.media.delete(self._item(request, account)["sid"])
        return web.Response(status=204)

    def table(self) -> list[tuple[str, str, str, Handler]]:
        """(method, path under a message, route name, handler) for server.create_app."""
        return [
            ("GET", "/{sid}/Media.json", "media_list", self.list),
            ("GET", "/{sid}/Media/{media_sid}.json", "media_fetch", self.fetch),
            ("DELETE", "/{sid}/Media/{media_sid}.json", "media_delete", self.delete),
        ]
