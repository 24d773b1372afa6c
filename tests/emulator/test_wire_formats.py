"""Pure pieces: timestamp formats, filter dates, page tokens and page URIs, as parametrized tables."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.emulator import errors, paging, queries
from sync.emulator.formats import (
    parse_filter_date,
    parse_rfc2822,
    parse_rfc3339,
    rfc2822,
    rfc3339,
)

MAY_24 = 1558719886000  # Fri, 24 May 2019 17:44:46 UTC


@pytest.mark.parametrize(
    ("ms", "text"),
    [(MAY_24, "Fri, 24 May 2019 17:44:46 +0000"), (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
     (951782400000, "Tue, 29 Feb 2000 00:00:00 +0000")],
)  # fmt: skip
def test_rfc2822_round_trips(ms, text):
    """Legacy timestamps are RFC 2822 in GMT, as in Twilio's fixtures."""
    assert rfc2822(ms) == text and parse_rfc2822(text) == ms


@pytest.mark.parametrize(
    ("ms", "millis", "text"),
    [(MAY_24, False, "2019-05-24T17:44:46Z"), (MAY_24 + 7, True, "2019-05-24T17:44:46.007Z")],
)
def test_rfc3339_round_trips(ms, millis, text):
    """v1 timestamps are RFC 3339 UTC, with or without milliseconds."""
    assert rfc3339(ms, millis) == text and parse_rfc3339(text) == ms


@pytest.mark.parametrize(
    "value", ["2019-05-24", "2019-05-24 17:44:46", "2019-05-24T17:44:46+02:00", "", None, 12, "Fri, 24 May 2019"]
)
def test_parse_rfc3339_wants_a_full_timestamp_with_offset(value):
    """Anything but an RFC 3339 date-time with an offset is not a v1 date."""
    assert (parse_rfc3339(value) is not None) == (value == "2019-05-24T17:44:46+02:00")


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2019-06-11", dt.date(2019, 6, 11)),
        ("2019-06-11T23:59:59Z", dt.date(2019, 6, 11)),  # what the twilio SDK sends for a datetime
        ("06/11/2019 22:05:25 MST", dt.date(2019, 6, 11)),  # the forms in Twilio's own fixtures
        ("2019-06-11 22:05:25.000", dt.date(2019, 6, 11)),
        ("Wed, 19 Jun 2019 22:04:00 -0000", dt.date(2019, 6, 19)),
        ("2019-02-30", None),
        ("yesterday", None),
    ],
)
def test_date_sent_filter_values_name_a_day(value, day):
    """DateSent values are day-granular; the day is taken as written."""
    assert parse_filter_date(value) == day


@pytest.mark.parametrize(
    ("token", "parsed"),
    [("PASMded05904ccb347238880ca9264e8fe1c", ("after", "SMded05904ccb347238880ca9264e8fe1c")),
     ("PBMMc26223853f8c46b4ab7dfaa6abba0a26", ("before", "MMc26223853f8c46b4ab7dfaa6abba0a26"))],
)  # fmt: skip
def test_legacy_tokens_are_page_after_or_before_a_sid(token, parsed):
    """PA<sid> pages after a record, PB<sid> before it."""
    assert paging.parse_legacy_token(token) == parsed


@pytest.mark.parametrize("token", ["SMded05904ccb347238880ca9264e8fe1c", "PA", "PC123", ""])
def test_malformed_legacy_tokens_are_400(token):
    with pytest.raises(errors.ApiError) as caught:
        paging.parse_legacy_token(token)
    assert caught.value.status == 400


def test_legacy_uri_encodes_like_twilio():
    """Filters first, then PageSize, Page, PageToken; + and > percent-encoded, spaces as +."""
    uri = paging.legacy_uri(
        "/2010-04-01/Accounts/ACx/Messages.json",
        [("To", "+123456789"), ("DateSent>", "06/11/2019 22:05:25 MST")],
        25,
        1,
        "PASMx",
    )
    assert uri == (
        "/2010-04-01/Accounts/ACx/Messages.json?To=%2B123456789&DateSent%3E=06%2F11%2F2019+22%3A05%3A25+MST"
        "&PageSize=25&Page=1&PageToken=PASMx"
    )


def test_cursors_round_trip_and_refuse_tampering_and_other_scopes():
    """A v1 token decodes only in the scope (list + account) it was issued for, and only untouched."""
    secret = b"s"
    token = paging.encode_cursor(secret, "messages:AC1", (-5, "comms_message_x"), {"status": "SENT"}, 10)
    assert paging.decode_cursor(secret, "messages:AC1", token) == paging.Cursor((-5, "comms_message_x"), {"status": "SENT"}, 10)
    for scope, text in (("operations:AC1", token), ("messages:AC2", token), ("messages:AC1", token[:-2] + "AA")):
        with pytest.raises(errors.ApiError):
            paging.decode_cursor(secret, scope, text)


@pytest.mark.parametrize(
    ("query", "sent_range"),
    [
        ({}, None),
        ({"DateSent": "2019-05-24"}, (1558656000000, 1558742399999)),
        ({"DateSent<": "2019-05-24"}, (None, 1558742399999)),
        ({"DateSent>": "2019-05-24"}, (1558656000000, None)),
        ({"DateSent>": "2019-05-24", "DateSent<": "2019-05-23"}, (1558656000000, 1558655999999)),
    ],
)
def test_date_sent_filters_become_inclusive_ranges(query, sent_range):
    """=, < and > bound date_sent by whole GMT days, inclusively; combined they intersect."""
    assert queries.parse_legacy_list(query).sent_range == sent_range


def test_end_date_is_exclusive_and_must_follow_start_date():
    """startDate..endDate is half-open; endDate <= startDate is a 400."""
    q = queries.parse_comms_list({"startDate": "2019-05-24T17:44:46Z", "endDate": "2019-05-24T17:44:47Z"}, "messages")
    assert q.created_range == (MAY_24, MAY_24 + 999)
    with pytest.raises(errors.ApiError):
        queries.parse_comms_list({"startDate": "2019-05-24T17:44:46Z", "endDate": "2019-05-24T17:44:46Z"}, "messages")
