"""The pure parts of the service: log events, accounts files, v1 content, run's flags."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from sync import errors, logs
from sync.cli import build_parser
from sync.config import Secret, TwilioSettings, load_accounts
from sync.hydrate import content_text, hydration
from sync.models import Window
from sync.privacy import Bodies

SID = "AC" + "a" * 32
OTHER = "AC" + "b" * 32
DEFAULT = TwilioSettings(account_sid=SID, username=SID, password=Secret("parent-token"),
                         comms_base_url="https://comms.twilio.com", api_base_url="https://api.twilio.com")


def test_an_event_is_rendered_as_one_json_object_with_typed_fields():
    start, end = datetime(2026, 11, 20, 10, 41, 33, tzinfo=timezone.utc), datetime(2026, 11, 27, tzinfo=timezone.utc)
    event = logs.Event("scan.start", {"window": Window(start, end), "pages": 3, "seconds": 0.25,
                                      "cause": "HTTP 429: slow down", "token": Secret("s3cret")})
    record = logging.LogRecord("sync.worker", logging.INFO, __file__, 1, event, None, None)
    line = logs.JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line and "s3cret" not in line
    assert (entry["event"], entry["level"], entry["pages"], entry["seconds"], entry["cause"]) == (
        "scan.start", "info", 3, 0.25, "HTTP 429: slow down")
    assert entry["window"] == [start.isoformat(), end.isoformat()]


def test_a_librarys_own_record_is_kept_as_its_prose():
    """alembic and aiohttp log prose, not events: the JSON line keeps it whole under `log`."""
    record = logging.LogRecord("alembic.runtime.migration", logging.INFO, __file__, 1,
                               "Running upgrade %s -> %s, %s", ("0005", "0006", "scan plan"), None)
    entry = json.loads(logs.JsonFormatter().format(record))
    assert (entry["event"], entry["message"]) == ("log", "Running upgrade 0005 -> 0006, scan plan")


def test_an_accounts_file_gives_each_account_its_credentials(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text(f'[[account]]\nsid = "{SID}"\n\n[[account]]\nsid = "{OTHER}"\nauth_token_env = "ACME"\n')
    first, second = load_accounts(path, {"ACME": "acme-token"}, DEFAULT)
    assert (first.account_sid, first.username, first.password) == (SID, SID, Secret("parent-token"))
    assert (second.account_sid, second.username, second.password) == (OTHER, OTHER, Secret("acme-token"))
    assert second.api_base_url == DEFAULT.api_base_url


@pytest.mark.parametrize(("text", "env", "says"), [
    ('[[account]]\nsid = "AC12"\n', {}, "32 hex digits"),
    (f'[[account]]\nsid = "{SID}"\nauth_token_env = "MISSING"\n', {}, "not set in the environment"),
    (f'[[account]]\nsid = "{SID}"\ntoken = "x"\n', {}, "unknown key(s) token"),
    (f'[[account]]\nsid = "{SID}"\n[[account]]\nsid = "{SID}"\n', {}, "names an account twice"),
    ('sid = [', {}, "not valid TOML"),
    ('title = "no accounts"\n', {}, "at least one [[account]]"),
])
def test_a_bad_accounts_file_is_one_clear_error(tmp_path, text, env, says):
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    with pytest.raises(errors.ConfigError, match=says.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_accounts(path, env, DEFAULT)


def test_a_missing_accounts_file_says_so(tmp_path):
    with pytest.raises(errors.ConfigError, match="cannot read the accounts file"):
        load_accounts(tmp_path / "nope.toml", {}, DEFAULT)


@pytest.mark.parametrize(("content", "text"), [
    ({"text": "hi"}, "hi"),
    ({"modules": [{"whatsapp": {"type": "text", "text": {"body": "wa"}}}]}, "wa"),
    ({"modules": [{"rcs": {"text": "rcs text"}}]}, "rcs text"),
    ({"media": [{"fileName": "a.jpg"}]}, None),
    (None, None),
])
def test_the_text_of_every_content_shape_is_found(content, text):
    assert content_text(content) == text


def test_hydrated_text_follows_the_body_policy_everywhere():
    fetched = {"content": {"modules": [{"whatsapp": {"text": {"body": "code 123456"}}}]}, "attempts": []}
    _, _, body, content, attempts = hydration("m1", None, fetched, Bodies("hash", Secret("k")))
    assert body.startswith("hmac-sha256:") and "123456" not in content and "123456" not in body
    assert attempts == "[]"
    _, _, body, content, _ = hydration("m1", None, {"content": {"text": "a\x00b"}}, Bodies())
    assert body == "a\ufffdb" and "\\u0000" not in content


@pytest.mark.parametrize("flags", [["--interval", "0"], ["--interval", "soon"], ["--http-port", "70000"],
                                   ["--full-interval", "-5"], ["--heartbeat-seconds", "x"], ["--accounts-at-once", "0"]])
def test_bad_run_flags_are_refused(flags, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", *flags])
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_run_defaults_are_the_documented_ones():
    args = build_parser().parse_args(["run"])
    assert (args.interval, args.full_interval, args.http_port, args.http_host, args.hydrate) == (
        60.0, 3600.0, 8000, "127.0.0.1", True)


def test_metrics_put_every_account_under_one_label_unless_asked_per_account():
    """By default an account's samples go under account="*" (summed); --metrics-per-account names it."""
    from sync.metrics import Metrics
    from sync.models import Counts

    together, apart = Metrics(), Metrics(per_account=True)
    for metrics in (together, apart):
        for sid in ("AC1", "AC2"):
            metrics.page_saved(sid, "legacy_messages", Counts(pages=1, seen=10))
    assert together.pages.labels("*", "legacy_messages")._value.get() == 2
    assert {s.labels["account"] for s in together.pages.collect()[0].samples} == {"*"}
    assert {s.labels["account"] for s in apart.pages.collect()[0].samples} == {"AC1", "AC2"}
