"""Settings from the environment: validation and secret masking."""

import pytest

from sync import errors, models
from sync.config import Settings

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "s3cr3t-t0ken-value"


def test_credentials_never_show_in_repr_or_str():
    """Neither the auth token nor a database password appears in repr() or str() of settings."""
    settings = Settings.from_env(
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "DATABASE_URL": "postgresql://u:dbpass99@h/db"}
    )
    for shown in (repr(settings), str(settings), repr(settings.twilio), f"{settings.twilio.password}"):
        assert TOKEN not in shown
        assert "dbpass99" not in shown
    assert settings.twilio.password.reveal() == TOKEN


def test_api_key_is_the_username_when_given():
    """With TWILIO_API_KEY + TWILIO_API_SECRET the key authenticates, the account SID stays the path."""
    settings = Settings.from_env(
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_API_KEY": "SK" + "1" * 32, "TWILIO_API_SECRET": "sec"}
    )
    assert settings.twilio.username == "SK" + "1" * 32
    assert settings.twilio.account_sid == SID


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TWILIO_ACCOUNT_SID is not set"),
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "32 hex digits"),
        ({"TWILIO_ACCOUNT_SID": SID}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_API_KEY": "SKx"}, "set together"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_API_BASE_URL": "http://api.example.com"}, "https"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_COMMS_BASE_URL": "ftp://x"}, "https://host"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_API_BASE_URL": "https://h/path"}, "no path"),
    ],
)
def test_bad_twilio_settings_say_what_is_wrong(env, message):
    """Each misconfiguration is reported in words naming the variable, when a command needs Twilio."""
    settings = Settings.from_env(env)
    with pytest.raises(errors.ConfigError, match=message):
        settings.require_twilio()


def test_plain_http_is_allowed_for_loopback_only():
    """The emulator on localhost may be plain http; any other host must be https."""
    settings = Settings.from_env(
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_API_BASE_URL": "http://127.0.0.1:8080/",
         "TWILIO_COMMS_BASE_URL": "http://localhost:9"}
    )
    assert settings.require_twilio().api_base_url == "http://127.0.0.1:8080"
    assert settings.twilio.comms_base_url == "http://localhost:9"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2025-06-18", "2025-06-18T00:00:00+00:00"),
        ("2025-06-18T12:30:00Z", "2025-06-18T12:30:00+00:00"),
        ("2025-06-18T14:30:00+02:00", "2025-06-18T12:30:00+00:00"),
    ],
)
def test_since_accepts_dates_and_rfc3339(text, iso):
    """--since takes a date (00:00 UTC) or an RFC 3339 timestamp."""
    assert models.parse_instant(text, "--since").isoformat() == iso


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "2025-06-18T12:30:00", "18/06/2025", ""])
def test_malformed_since_is_a_config_error(text):
    """A malformed or offset-less --since is refused with a message naming the flag."""
    with pytest.raises(errors.ConfigError, match="--since"):
        models.parse_instant(text, "--since")


def test_a_window_older_than_retention_is_clamped_inside_it():
    """A v1 window reaching past 7 days starts just inside the retention edge; a recent one is kept."""
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
    old = models.Window(now - timedelta(days=30), now)
    clamped = old.clamped(models.COMMS_RETENTION, now)
    assert now - models.COMMS_RETENTION < clamped.start - timedelta(seconds=1) < now - models.COMMS_RETENTION + timedelta(minutes=1)
    assert clamped.end == now
    recent = models.Window(now - timedelta(days=2), now)
    assert recent.clamped(models.COMMS_RETENTION, now) == recent


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://u:pw5ecret@h/db", "postgresql://"), ("postgresql://u:pw5ecret@h:port/db", "port"), ("garbage", "postgresql://")],
)
def test_a_malformed_database_url_is_refused_without_echoing_it(url, message):
    """A DATABASE_URL that cannot be Postgres is a config error that does not repeat the password."""
    with pytest.raises(errors.ConfigError, match=message) as caught:
        Settings.from_env({"DATABASE_URL": url})
    assert "pw5ecret" not in str(caught.value)
