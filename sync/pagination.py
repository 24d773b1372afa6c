"""Page positions for both APIs, as pure functions: which URL comes next, and is it safe.

A position is stored as a URL relative to the API's base URL (path and query). The legacy
API hands out `next_page_uri` ready-made and we follow it verbatim; the v1 API hands out a
`pagination.next` token that goes into the `pageToken` query parameter, as its docs say.
Either way a link is only ever resolved against the configured base URL, so credentials
never travel to a host the operator did not name. A `LoopGuard` turns a position handed out
twice into an error instead of a scan that never ends.

The first request of each list is built by its source (`first_url`, `range_url` in
sync/sources/); this module only reads and follows the links the API hands out."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from sync import errors


def resolve(base_url: str, ref: str) -> str:
    """The absolute URL for `ref` (relative, or absolute on the base URL's own origin)."""
    if not isinstance(ref, str) or not ref:
        raise errors.RetryableSourceError(f"malformed page link {ref!r}")
    parts = urlsplit(ref)
    base = urlsplit(base_url)
    if parts.scheme or parts.netloc:
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            raise errors.ForeignURLError(
                f"refusing to follow a page link to {parts.scheme}://{parts.netloc}: "
                f"credentials are only sent to {base_url}"
            )
        ref = urlunsplit(("", "", parts.path, parts.query, ""))
    elif not ref.startswith("/"):
        raise errors.RetryableSourceError(f"malformed page link {ref!r}")
    return urljoin(base_url + "/", ref)


def relative(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def comms_next_url(current: str, body: dict[str, Any]) -> str | None:
    """The URL of the page after `current`, from the envelope's `pagination.next`."""
    pagination = body.get("pagination")
    if not isinstance(pagination, dict):
        raise errors.RetryableSourceError("malformed page: no 'pagination' object")
    token = pagination.get("next")
    if token is None or token == "":
        return None
    if not isinstance(token, str):
        raise errors.RetryableSourceError(f"malformed page: pagination.next is {type(token).__name__}")
    if token.startswith(("/", "http://", "https://")):
        # Some Twilio APIs put a whole URL in `next`; follow it as a link, not a token.
        return token
    parts = urlsplit(current)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "pageToken"]
    query.append(("pageToken", token))
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def legacy_next_url(body: dict[str, Any]) -> str | None:
    """`next_page_uri`, verbatim: it carries the filters, page size and token."""
    if "next_page_uri" not in body:
        raise errors.RetryableSourceError("malformed page: no 'next_page_uri'")
    nxt = body["next_page_uri"]
    if nxt is None or nxt == "":
        return None
    if not isinstance(nxt, str):
        raise errors.RetryableSourceError(f"malformed page: next_page_uri is {type(nxt).__name__}")
    return nxt


_PAGE_SIZE_PARAMS = ("pageSize", "PageSize")  # v1, legacy
_TOKEN_PARAMS = ("pageToken", "PageToken")


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def page_token(url: str) -> str | None:
    """The page token a URL carries (v1 `pageToken` or legacy `PageToken`), if any."""
    query = _query(url)
    return next((query[p] for p in _TOKEN_PARAMS if query.get(p)), None)


def query_of(url: str) -> str:
    """The query a URL pages through: its path and filters, without its position (token, Page)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in (*_TOKEN_PARAMS, "Page")]
    return urlunsplit(("", "", parts.path, urlencode(kept), ""))


def page_size(url: str) -> int | None:
    query = _query(url)
    for name in _PAGE_SIZE_PARAMS:
        if query.get(name, "").isdigit():
            return int(query[name])
    return None


def with_page_size(url: str, size: int) -> str:
    """The same request asking for `size` records. Both APIs' tokens name a position (the
    record after which to go on), not an offset, so a page token stays valid at any size."""
    parts = urlsplit(url)
    query = [(k, str(size) if k in _PAGE_SIZE_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class LoopGuard:
    """The positions a scan's chains have followed in this process: the same one twice is a
    loop, not progress. The one mutable part of a scan's paging, kept apart from the scan plan
    (sync/plan/), which stays a pure function of a chain's saved state and its page."""

    def __init__(self) -> None:
        self._followed: set[tuple[str, str, str]] = set()

    def follow(self, phase: str, url: str | None, link: str | None) -> None:
        """A chain of `phase` goes on to `url` after a page whose link was `link`. The token names
        a position in its query: a legacy next_page_uri also carries `Page`, which grows even when
        the token repeats, so whole URLs would hide a loop; and the same token may well come back
        in another query (a slice, the list read again from its top)."""
        if url is None or url != link:
            return  # not the link verbatim: a new query, or done
        token = page_token(link)
        position = (phase, query_of(link), token or link)
        if position in self._followed:
            raise errors.PaginationLoopError(f"the API handed out the same page token twice ({token or link}): "
                                             "a loop, not progress")
        self._followed.add(position)

    def forget(self) -> None:
        """A chain starts again from its top (its token went stale): its positions come back."""
        self._followed.clear()
