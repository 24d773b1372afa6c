"""The pure conversions behind the typed columns."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from sync import parsing

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fri, 24 May 2019 17:44:46 +0000", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
        ("Mon, 01 Jan 2024 00:00:00 +0000", datetime(2024, 1, 1, tzinfo=UTC)),
        ("Fri, 4 May 2019 17:44:46 +0000", datetime(2019, 5, 4, 17, 44, 46, tzinfo=UTC)),  # one-digit day
        ("Wed, 19 Jun 2019 22:04:00 -0000", datetime(2019, 6, 19, 22, 4, tzinfo=UTC)),  # "-0000": UTC
        ("Fri, 24 May 2019 19:44:46 +0200", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
        ("Fri, 24 May 2019 17:44:46 GMT", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
    ],
)
def test_rfc2822_reads_legacy_dates(text, expected):
    """Legacy timestamps in every RFC 2822 shape become the same instant."""
    assert parsing.rfc2822(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2019-05-24T17:44:46Z", "", "Fri, 32 May 2019 17:44:46 +0000"])
def test_rfc2822_rejects_other_text(text):
    """Text that is not an RFC 2822 date raises instead of becoming a wrong time."""
    with pytest.raises(ValueError):
        parsing.rfc2822(text)


@pytest.mark.parametrize("text", [
    "Fri, 24 May 2019 17:44:46 +0000", "Fri, 4 May 2019 17:44:46 +0000", "Wed, 19 Jun 2019 22:04:00 -0000",
    "Fri, 24 May 2019 19:44:46 +0200", "Thu, 29 Feb 2024 23:59:59 +0000", "Thu, 01 Jan 1970 00:00:00 +0000",
    "Wed, 31 Dec 1969 23:59:59 +0000", "Fri, 31 Dec 9999 23:59:59 +0000", "Fri, 24 May 2019 +1:44:46 +0000",
    "Fri, 24-May-2019 17:44:46 +0000", "Fri, 29 Feb 2019 17:44:46 +0000", "Fri, 24 May 2019 24:00:00 +0000",
    "Fri, 24 May 2019 23:59:60 +0000", "Fri, 24 Mai 2019 17:44:46 +0000", "yesterday", "", 20190524,
])
def test_rfc2822_seconds_is_the_timestamp_of_rfc2822(text):
    """The scan plan's times read without a datetime are the same floats, and fail where rfc2822 fails."""
    try:
        expected = parsing.rfc2822(text).timestamp()
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            parsing.rfc2822_seconds(text)
    else:
        assert parsing.rfc2822_seconds(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-18T12:00:00Z", datetime(2025, 6, 18, 12, tzinfo=UTC)),
        ("2025-06-18T12:00:00.123Z", datetime(2025, 6, 18, 12, 0, 0, 123000, tzinfo=UTC)),
        ("2025-06-18T14:00:00+02:00", datetime(2025, 6, 18, 12, tzinfo=UTC)),
    ],
)
def test_rfc3339_reads_v1_dates(text, expected):
    """v1 timestamps with Z, fractions or offsets become the same instant."""
    assert parsing.rfc3339(text) == expected


@pytest.mark.parametrize("text", ["2025-06-18", "2025-06-18T12:00:00", "Fri, 24 May 2019 17:44:46 +0000", "soon"])
def test_rfc3339_rejects_dates_without_time_or_offset(text):
    """A v1 timestamp without a time or an offset is not guessed at."""
    with pytest.raises(ValueError):
        parsing.rfc3339(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("-0.00750", Decimal("-0.00750")), ("0", Decimal(0)), (1, Decimal(1)), ("0.0079", Decimal("0.0079"))],
)
def test_decimal_keeps_every_digit_of_a_price(value, expected):
    """Prices are exact decimals, never floats."""
    assert parsing.decimal(value) == expected
    assert str(parsing.decimal(value)) == str(expected)


@pytest.mark.parametrize("value", ["free", "NaN", "Infinity", True, {"amount": 1}])
def test_decimal_rejects_non_prices(value):
    """Words, NaN, infinities and objects are not prices."""
    with pytest.raises(ValueError):
        parsing.decimal(value)


@pytest.mark.parametrize(("value", "expected"), [("1", 1), (3, 3), ("0", 0), ("30007", 30007)])
def test_integer_reads_counts_sent_as_strings(value, expected):
    """num_segments and num_media arrive as strings and become integers."""
    assert parsing.integer(value) == expected


@pytest.mark.parametrize("value", ["one", "1.5", True, 2**31, None])
def test_integer_rejects_what_an_integer_column_cannot_hold(value):
    """Non-integers and values beyond Postgres' integer range are refused, not truncated."""
    with pytest.raises(ValueError):
        parsing.integer(value)


def test_storable_replaces_nul_and_lone_surrogates_everywhere_and_counts_them():
    """NUL and lone surrogates in keys, nested strings and lists become U+FFFD, counted apart."""
    value = {"body": "a\x00b\ud800", "k\x00": ["x\udc00", 1, None], "n": {"deep": "\x00"}}
    cleaned, nuls, surrogates = parsing.storable(value)
    assert (nuls, surrogates) == (3, 2)
    assert cleaned == {"body": "a\ufffdb\ufffd", "k\ufffd": ["x\ufffd", 1, None], "n": {"deep": "\ufffd"}}


def test_storable_leaves_clean_values_alone():
    """A record with neither (emoji are valid pairs, not lone surrogates) comes back equal and uncounted."""
    value = {"body": "héllo 👍🏽", "n": [1, 2.5, True, None]}
    assert parsing.storable(value) == (value, 0, 0)
