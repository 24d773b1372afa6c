"""What of a message's text reaches the archive (sync.privacy), and how it is configured."""

import hashlib
import hmac

import pytest

from sync import errors
from sync.config import Secret
from sync.privacy import Bodies


def test_hash_is_an_hmac_with_the_configured_key():
    """Equal texts give equal hashes under one key, and the key is what makes them: no key, no match."""
    bodies = Bodies("hash", Secret("k"))
    expected = "hmac-sha256:" + hmac.new(b"k", "code 1234".encode(), hashlib.sha256).hexdigest()
    assert bodies.apply("code 1234") == expected
    assert Bodies("hash", Secret("other")).apply("code 1234") != expected


@pytest.mark.parametrize("mode", ["hash", "drop"])
@pytest.mark.parametrize("body", ["", None])
def test_an_empty_or_missing_body_stays_as_it_is(mode, body):
    """An empty body is how Twilio shows a redaction: hashing or dropping it would hide that."""
    assert Bodies(mode, Secret("k")).apply(body) == body


def test_drop_keeps_no_text_and_keep_keeps_it_all():
    assert Bodies("drop").apply("hello") is None
    assert Bodies().apply("hello") == "hello"


def test_the_mode_comes_from_the_flag_or_the_environment():
    env = {"TWILIO_ARCHIVE_BODIES": "drop"}
    assert Bodies.from_env(env).mode == "drop"
    assert Bodies.from_env(env, "keep").mode == "keep"
    assert Bodies.from_env({}).mode == "keep"


@pytest.mark.parametrize(("env", "flag"), [({}, "hash"), ({"TWILIO_ARCHIVE_BODIES": "shred"}, None)])
def test_hash_without_a_key_or_an_unknown_mode_is_a_config_error(env, flag):
    """An unkeyed hash of a short text can be reversed by trying candidates: refused, as is a typo."""
    with pytest.raises(errors.ConfigError):
        Bodies.from_env(env, flag)


def test_the_key_never_shows_in_a_repr():
    assert "s3cret" not in repr(Bodies.from_env({"TWILIO_ARCHIVE_BODY_KEY": "s3cret"}, "hash"))
