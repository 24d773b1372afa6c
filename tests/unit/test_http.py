"""The pure parts of the HTTP edge: Retry-After, Twilio's two error dialects, the auth header, JSON."""

from datetime import datetime, timezone

import pytest

from sync.http import basic_authorization, decode_json, describe_error, parse_retry_after
from sync.config import Secret


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


def test_a_lone_surrogate_escape_is_json_that_decodes():
    """orjson refuses "\\ud800" but JSON allows it: the page decodes (parsing.storable handles it later)."""
    assert decode_json(b'{"body": "a\\ud800b"}') == {"body": "a\ud800b"}


@pytest.mark.parametrize("body", [b'{"messages": [', b"<html>503</html>", b"\xff\xfe"])
def test_malformed_bodies_raise_value_error(body):
    """A truncated or non-JSON body is a ValueError (which the client retries), never a crash."""
    with pytest.raises(ValueError):
        decode_json(body)
