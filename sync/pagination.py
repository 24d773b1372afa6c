"""Page positions for both APIs, as pure functions: which URL comes next, and is it safe.

A position is stored as a URL relative to the API's base URL (path and query). The legacy
API hands out `next_page_uri` ready-made and we follow it verbatim; the v1 API hands out a
`pagination.next` token that goes into the `pageToken` query parameter, as its docs say.
Either way a link is only ever resolved against the configured base URL, so credentials
never travel to a host the operator did not name."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from sync import errors
from sync.models import Window


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


def _rfc3339(when) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def comms_first_url(path: str, window: Window, page_size: int) -> str:
    # startDate/endDate are documented as "after" and "before" without saying whether the
    # bounds are inclusive; asking one second wider and filtering locally cannot miss a record.
    from datetime import timedelta

    query = {
        "startDate": _rfc3339(window.start - timedelta(seconds=1)),
        "endDate": _rfc3339(window.end + timedelta(seconds=1)),
        "pageSize": str(page_size),
    }
    return f"{path}?{urlencode(query)}"


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


def legacy_first_url(account_sid: str, page_size: int) -> str:
    # No DateSent filter on purpose: messages never sent have a null date_sent, and whether a
    # DateSent filter matches them is undocumented. The window is applied to date_created locally.
    return f"/2010-04-01/Accounts/{account_sid}/Messages.json?{urlencode({'PageSize': page_size})}"


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
