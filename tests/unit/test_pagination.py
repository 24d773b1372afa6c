"""Page positions: following links verbatim, refusing foreign hosts, catching loops."""

from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from sync import errors, pagination
from sync.models import Window
from sync.sources import comms

BASE = "https://api.twilio.com"
LEGACY_NEXT = (
    "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json?To=%2B123456789&From=%2B987654321"
    "&DateSent%3E=2008-01-02&PageSize=2&Page=1&PageToken=PAMMc26223853f8c46b4ab7dfaa6abba0a26"
)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (LEGACY_NEXT, BASE + LEGACY_NEXT),
        (BASE + LEGACY_NEXT, BASE + LEGACY_NEXT),
        ("https://API.twilio.com/x?y=1", BASE + "/x?y=1"),
    ],
)
def test_resolve_follows_relative_and_same_origin_links_verbatim(ref, expected):
    """A next_page_uri is joined to the configured base URL without changing path or query."""
    assert pagination.resolve(BASE, ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        "https://evil.example.com" + LEGACY_NEXT,
        "http://api.twilio.com" + LEGACY_NEXT,  # a downgrade to plain http is another origin
        "//evil.example.com/steal",
        "https://api.twilio.com:8443/x",
    ],
)
def test_resolve_refuses_links_to_other_hosts(ref):
    """A link to any other origin is refused, so credentials never leave the configured host."""
    with pytest.raises(errors.ForeignURLError):
        pagination.resolve(BASE, ref)


def test_legacy_next_url_is_next_page_uri_verbatim():
    """The legacy paginator hands back next_page_uri unchanged, and None on the last page."""
    assert pagination.legacy_next_url({"next_page_uri": LEGACY_NEXT}) == LEGACY_NEXT
    assert pagination.legacy_next_url({"next_page_uri": None}) is None


def test_legacy_page_without_next_page_uri_is_malformed():
    """An envelope missing next_page_uri is a malformed page, not the end of the list."""
    with pytest.raises(errors.RetryableSourceError):
        pagination.legacy_next_url({"messages": []})


def test_comms_next_url_puts_the_token_in_page_token_and_keeps_filters():
    """v1 paging supplies pagination.next as pageToken, keeping the window and page size."""
    window = Window(datetime(2025, 6, 18, 12, tzinfo=timezone.utc), datetime(2025, 6, 19, tzinfo=timezone.utc))
    first = comms.window_url("/v1/Messages", window, 1000)
    second = pagination.comms_next_url(first, {"pagination": {"next": "tok1", "self": "t0"}})
    third = pagination.comms_next_url(second, {"pagination": {"next": "tok2", "self": "tok1"}})
    query = parse_qs(urlsplit(third).query)
    assert urlsplit(third).path == "/v1/Messages"
    assert query["pageToken"] == ["tok2"]
    assert query["pageSize"] == ["1000"]
    assert query["startDate"] == ["2025-06-18T11:59:59Z"]  # one second wider: bounds may be exclusive
    assert query["endDate"] == ["2025-06-19T00:00:01Z"]
    assert pagination.comms_next_url(third, {"pagination": {"next": None, "self": "tok2"}}) is None


def test_comms_next_given_as_a_url_is_followed_as_a_link():
    """When pagination.next is a URL rather than a token, it is followed as a link."""
    assert pagination.comms_next_url("/v1/Messages", {"pagination": {"next": "/v1/Messages?pageToken=x"}}) == (
        "/v1/Messages?pageToken=x"
    )


@pytest.mark.parametrize(
    ("url", "size", "expected"),
    [
        ("/2010-04-01/Accounts/AC1/Messages.json?PageSize=1000&Page=3&PageToken=PASM1",
         500, "/2010-04-01/Accounts/AC1/Messages.json?PageSize=500&Page=3&PageToken=PASM1"),
        ("/v1/Messages?startDate=2026-11-15T00%3A00%3A00Z&pageSize=1000&pageToken=abc",
         250, "/v1/Messages?startDate=2026-11-15T00%3A00%3A00Z&pageSize=250&pageToken=abc"),
    ],
)
def test_with_page_size_changes_only_the_size(url, size, expected):
    """Shrinking a page keeps its filters and its token (a position, valid at any size)."""
    assert pagination.with_page_size(url, size) == expected
    assert pagination.page_size(expected) == size


@pytest.mark.parametrize(
    ("url", "token"),
    [("/x.json?PageSize=50&PageToken=PASM1", "PASM1"), ("/v1/Messages?pageToken=t0k", "t0k"),
     ("/v1/Messages?pageSize=50", None), ("/x.json?PageToken=", None)],
)
def test_page_token_finds_either_apis_token(url, token):
    """A request carries a token (legacy PageToken, v1 pageToken) or it is a first page."""
    assert pagination.page_token(url) == token
