"""Which accounts there are: the main account of the credentials and every subaccount
`GET /2010-04-01/Accounts.json` lists, each with the credentials Twilio accepts for it.

    listing = await discovery.fetch_listing(client, main.account_sid)
    chosen = discovery.choose(main, listing, named)   # what to scan, what is closed

Twilio's rules (docs/operations.md, "Subaccounts"): the main account's SID and auth token read a
subaccount's 2010-04-01 resources, its API keys do not; the v1 API has no account in its path,
so a subaccount's v1 lists are read with the subaccount's own SID and auth token, taken from its
listing item. That token lives in a `Secret` in memory only: it is never stored, logged or shown
in a repr (`Listed`'s own repr masks it, and `twilio.accounts` keeps the status alone).

Parsing a page is pure (`parse_page`); `fetch_listing` is the one function here with I/O, through
the client (which retries). It may not scan, write to the store, or decide when to list again
(service.py does)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sync import errors, pagination
from sync.config import Secret, TwilioSettings

LIST_PATH = "/2010-04-01/Accounts.json"
PAGE_SIZE = 1000  # Twilio allows 1,000 subaccounts by default: one page
STATUSES = ("active", "suspended", "closed")


@dataclass(frozen=True)
class Listed:
    """One account of the listing: what `twilio.accounts` keeps, and its token (masked)."""

    sid: str
    friendly_name: str
    status: str  # active | suspended | closed
    owner_account_sid: str
    auth_token: Secret = dataclasses.field(repr=False, compare=False)

    @property
    def scanned(self) -> bool:
        """A closed account answers its resources with an error: it is reported and skipped."""
        return self.status != "closed"


@dataclass(frozen=True)
class Chosen:
    """What one listing says to do: the accounts to scan, and the closed ones to report."""

    accounts: list[TwilioSettings]
    closed: list[str]


def first_url() -> str:
    return f"{LIST_PATH}?{urlencode([('PageSize', PAGE_SIZE)])}"


def parse_page(body: Any) -> tuple[list[Listed], str | None]:
    """A page of Accounts.json: its accounts and the next page's link. A page without the
    documented shape is retried (RetryableSourceError), as a malformed Messages page is."""
    if not isinstance(body, dict) or not isinstance(body.get("accounts"), list):
        raise errors.RetryableSourceError("malformed Accounts page: no 'accounts' list")
    listed = []
    for item in body["accounts"]:
        if not isinstance(item, dict):
            raise errors.RetryableSourceError("malformed Accounts page: an item is not an object")
        sid, status, token = item.get("sid"), item.get("status"), item.get("auth_token")
        if not isinstance(sid, str) or status not in STATUSES:
            raise errors.RetryableSourceError("malformed Accounts page: an item without sid or a known status")
        listed.append(Listed(sid=sid, friendly_name=str(item.get("friendly_name") or ""), status=status,
                             owner_account_sid=str(item.get("owner_account_sid") or sid),
                             auth_token=Secret(token if isinstance(token, str) else "")))
    return listed, pagination.legacy_next_url(body)


async def fetch_listing(client: Any, main_sid: str) -> list[Listed]:
    """Every account Accounts.json lists for the main account's credentials, page by page."""
    guard = pagination.LoopGuard()
    url: str | None = first_url()
    found: list[Listed] = []
    while url is not None:
        page, link = await client.get_page("api", url, lambda _url, body: parse_page(body))
        found.extend(page)
        guard.follow("accounts", link, link)
        url = link
    return [a for a in found if a.sid == main_sid or a.owner_account_sid == main_sid]


def credentials_for(listed: Listed, main: TwilioSettings) -> TwilioSettings:
    """The subaccount's settings: its legacy lists read with the main account's SID and auth token
    (the subaccount's SID in the path), its v1 lists with its own SID and token. When the main
    credentials are an API key, which Twilio does not let act for a subaccount, its own token
    reads both."""
    if listed.sid == main.account_sid:
        return main
    own = (listed.sid, listed.auth_token)
    legacy = (main.username, main.password) if main.username == main.account_sid else own
    return dataclasses.replace(main, account_sid=listed.sid, username=legacy[0], password=legacy[1],
                               comms_username=own[0], comms_password=own[1])


def choose(main: TwilioSettings, listing: list[Listed], named: list[TwilioSettings]) -> Chosen:
    """The accounts to scan: every listed account not closed, with the credentials each API
    accepts, then the accounts named by hand (an accounts file) that the listing lacks. An
    account both listed and named keeps the file's credentials: the operator chose them."""
    by_hand = {a.account_sid: a for a in named}
    accounts = [by_hand.pop(a.sid, None) or credentials_for(a, main) for a in listing if a.scanned]
    closed = [a.sid for a in listing if not a.scanned]
    for sid in closed:
        by_hand.pop(sid, None)
    return Chosen(accounts + list(by_hand.values()), closed)
