"""The pure parts of the HTTP edge: backoff, Retry-After, and Twilio's two error dialects."""

from datetime import datetime, timezone

import pytest

from sync.http import RetryPolicy, basic_authorization, describe_error, parse_retry_after
from sync.config import Secret


@pytest.mark.parametrize("attempt", range(12))
@pytest.mark.parametrize("retry_after", [None, 0.0, 1.0, 45.0])
def test_backoff_is_capped_and_never_sooner_than_retry_after(attempt, retry_after):
    """Every delay is at least Retry-After and, without one, at most the cap."""
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    for _ in range(20):
        delay = policy.delay(attempt, retry_after)
        assert delay >= (retry_after or 0.0)
        assert delay <= max(30.0, retry_after or 0.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("0", 0.0), (" 2.5 ", 2.5), ("-3", 0.0), (None, None), ("", None), ("soon", None),
     ("Sun, 22 Nov 2026 12:00:30 GMT", 30.0)],
)
def test_retry_after_reads_seconds_and_http_dates(header, seconds):
    """Retry-After as delta-seconds or an HTTP date; nonsense is ignored rather than obeyed."""
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after(header, now) == seconds


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}',
         (20003, "Authenticate")),
        (b'{"errors":[{"code":20429,"message":"Too many requests","info_url":"x","context":null}]}',
         (20429, "Too many requests")),
        (b"<html>Bad Gateway</html>", (None, "<html>Bad Gateway</html>")),
        (b"[]", (None, "")),
    ],
)
def test_error_bodies_of_both_apis_give_code_and_message(body, expected):
    """The legacy {code, message} and v1 {errors: [...]} bodies both yield Twilio's code and message."""
    assert describe_error(400, body) == expected


def test_the_authorization_header_is_itself_a_secret():
    """The Basic header is masked in reprs and only revealed to be sent."""
    header = basic_authorization("AC" + "0" * 32, Secret("tok3n"))
    assert repr(header) == str(header) == "Secret('********')"
    assert header.reveal().startswith("Basic ")
