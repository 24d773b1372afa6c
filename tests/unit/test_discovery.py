"""Which accounts a listing says to scan, with which credentials, and that a listed token never
shows itself: discovery.py's pure parts, and the TWILIO_ARCHIVE_SUBACCOUNTS switch."""

from __future__ import annotations

import dataclasses

import pytest

from sync import discovery, errors
from sync.config import Secret, Settings, TwilioSettings

MAIN = TwilioSettings(account_sid="AC" + "a" * 32, username="AC" + "a" * 32, password=Secret("main-token"),
                      comms_base_url="https://comms.twilio.com", api_base_url="https://api.twilio.com")
SUB = "AC" + "b" * 32


def item(sid: str, status: str = "active", token: str = "sub-token", owner: str = MAIN.account_sid) -> dict:
    return {"sid": sid, "status": status, "auth_token": token, "friendly_name": "x", "owner_account_sid": owner}


def listed(sid: str, status: str = "active") -> discovery.Listed:
    return discovery.parse_page({"accounts": [item(sid, status)], "next_page_uri": None})[0][0]


def test_a_page_gives_its_accounts_and_next_link():
    """Each item's sid, status, owner and token; next_page_uri followed verbatim."""
    page, link = discovery.parse_page({"accounts": [item(SUB)], "next_page_uri": "/2010-04-01/Accounts.json?Page=1"})
    assert [(a.sid, a.status, a.owner_account_sid) for a in page] == [(SUB, "active", MAIN.account_sid)]
    assert page[0].auth_token.reveal() == "sub-token" and link == "/2010-04-01/Accounts.json?Page=1"


@pytest.mark.parametrize("body", [{}, {"accounts": None}, {"accounts": [1]}, {"accounts": [item(SUB, "gone")]},
                                  {"accounts": [{"status": "active"}]}])
def test_a_page_without_the_documented_shape_is_retried(body):
    """A malformed listing is a RetryableSourceError, as a malformed Messages page is."""
    with pytest.raises(errors.RetryableSourceError):
        discovery.parse_page({**body, "next_page_uri": None})


def test_a_subaccount_reads_legacy_with_the_main_token_and_v1_with_its_own():
    """2010-04-01 with the main SID and token (its SID in the path), v1 with its own SID and token."""
    settings = discovery.credentials_for(listed(SUB), MAIN)
    assert settings.account_sid == SUB
    assert (settings.username, settings.password) == (MAIN.username, MAIN.password)
    assert settings.comms_credentials() == (SUB, Secret("sub-token"))


def test_with_a_main_api_key_a_subaccount_reads_both_apis_with_its_own_token():
    """Twilio does not let a main API key act for a subaccount: its own token reads both."""
    keyed = dataclasses.replace(MAIN, username="SK" + "c" * 32, password=Secret("key-secret"))
    settings = discovery.credentials_for(listed(SUB), keyed)
    assert (settings.username, settings.password) == (SUB, Secret("sub-token"))
    assert settings.comms_credentials() == (SUB, Secret("sub-token"))


def test_the_main_account_keeps_its_own_credentials():
    assert discovery.credentials_for(listed(MAIN.account_sid), MAIN) == MAIN


def test_closed_accounts_are_skipped_and_file_accounts_are_added_or_win():
    """Closed: reported, not scanned (even if named by hand). Named and listed: the file's
    credentials. Named only: added."""
    closed, open_, named_only = "AC" + "1" * 32, "AC" + "2" * 32, "AC" + "3" * 32
    by_hand = [dataclasses.replace(MAIN, account_sid=s, username=s, password=Secret("file"))
               for s in (closed, open_, named_only)]
    chosen = discovery.choose(MAIN, [listed(MAIN.account_sid), listed(closed, "closed"), listed(open_, "suspended")],
                              by_hand)
    assert [a.account_sid for a in chosen.accounts] == [MAIN.account_sid, open_, named_only]
    assert chosen.accounts[1].password == Secret("file") and chosen.closed == [closed]


def test_a_listed_token_never_shows_in_a_repr():
    """The Listed item and the settings built from it mask the subaccount's token."""
    shown = repr(listed(SUB)) + repr(discovery.credentials_for(listed(SUB), MAIN)) + str(listed(SUB))
    assert "sub-token" not in shown and "main-token" not in shown


@pytest.mark.parametrize(("value", "on"), [("true", True), ("1", True), ("YES", True), ("", False), ("false", False)])
def test_the_subaccounts_switch(value, on):
    assert Settings.from_env({"TWILIO_ARCHIVE_SUBACCOUNTS": value}).subaccounts is on


def test_a_bad_switch_is_one_config_error():
    with pytest.raises(errors.ConfigError, match="TWILIO_ARCHIVE_SUBACCOUNTS must be true or false"):
        Settings.from_env({"TWILIO_ARCHIVE_SUBACCOUNTS": "maybe"})
