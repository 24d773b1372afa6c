"""The emulator's accounts: the main account's subaccounts, their Accounts.json records, and who
may read whose resources.

    GET  /2010-04-01/Accounts.json              the caller's account and its subaccounts, paged like
                                                the legacy Messages list (PageSize, Page, PageToken,
                                                next_page_uri); filters FriendlyName, Status
    GET  /2010-04-01/Accounts/{Sid}.json        one account's record
    POST /2010-04-01/Accounts.json              create a subaccount (FriendlyName), as Twilio does
    POST /2010-04-01/Accounts/{Sid}.json        Status=active|suspended|closed, FriendlyName
    POST /_emulator/accounts                    control, no credentials: {"friendly_name", "messages",
                                                "owner"} creates one; {"sid", "status"} changes one

The rules Twilio documents, and where it is silent what the emulator decides (docs/operations.md
says so):
- the main account's SID and Auth Token act for its subaccounts on 2010-04-01 paths; the main
  account's API keys do not (401, 20003), except to list and fetch the accounts themselves;
- v1 has no account in its path: the credentials choose the account, a subaccount's own;
- a closed account answers its resources with 401 and code 20003, the code whose page names
  "Account is suspended or closed" among its causes, and its own credentials stop working; its
  record stays readable to its owner, status closed. A suspended account stays readable.

Each subaccount's SID, Auth Token and data set derive from the seed and its place in the order
of creation, so the same emulator always serves the same accounts. This module owns the
records and the rules; the records of messages stay in data.py (`Emulator.open_account`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from . import errors, paging, queries
from .formats import DAY_MS, rfc2822

if TYPE_CHECKING:
    from .data import Account, Emulator

STATUSES = ("active", "suspended", "closed")
LIST_PATH = "/2010-04-01/Accounts.json"
CONTROL_PATH = "/_emulator/accounts"


@dataclass(frozen=True)
class Profile:
    """An account's record in Accounts.json, less its Auth Token (the `Account`'s)."""

    sid: str
    friendly_name: str
    status: str
    owner_account_sid: str
    created_ms: int
    updated_ms: int
    type: str = "Full"


def _derive(seed: int, *parts: object) -> str:
    return hashlib.blake2b(":".join(map(str, (seed, *parts))).encode(), digest_size=16).hexdigest()


class Directory:
    """Every account's record and owner; the emulator's lock guards them like its records."""

    def __init__(self, emu: Emulator, mains: list[Account], subaccounts: int = 0, messages: int = 50):
        self._emu = emu
        self.profiles: dict[str, Profile] = {}
        start = emu.clock_ms() - 400 * DAY_MS
        start -= start % 1000
        for n, account in enumerate(mains):
            self.profiles[account.sid] = Profile(account.sid, f"Main account {n + 1}", "active", account.sid,
                                                 start, start)
        for n in range(subaccounts):  # a day apart before now, so their order is stable
            self.create(messages=messages, created_ms=start + (n + 1) * DAY_MS)

    @property
    def main(self) -> str:
        return next(iter(self.profiles))

    def subaccounts(self, owner: str | None = None) -> list[Profile]:
        """The subaccounts of `owner` (default: the first main account), oldest first."""
        owner = owner or self.main
        return [p for p in self.profiles.values() if p.owner_account_sid == owner and p.sid != owner]

    def create(self, friendly_name: str | None = None, *, messages: int = 50, owner: str | None = None,
               created_ms: int | None = None) -> Account:
        """A new active subaccount of `owner` (default: the first main account) with `messages`
        records per API, created now unless `created_ms` says when."""
        from .data import Account  # data.py imports this module

        owner = owner or self.main
        if owner not in self.profiles or self.profiles[owner].owner_account_sid != owner:
            raise ValueError(f"{owner} is not a main account")
        n = len(self.subaccounts(owner))
        seed = self._emu.seed
        account = Account("AC" + _derive(seed, owner, "subaccount", n), _derive(seed, owner, "token", n))
        self._emu.open_account(account, messages, messages)
        created = self._emu.clock_ms() if created_ms is None else created_ms
        created -= created % 1000
        self.profiles[account.sid] = Profile(account.sid, friendly_name or f"Customer {n + 1}", "active", owner,
                                             created, created)
        return account

    def set_status(self, sid: str, status: str) -> Profile:
        """Suspend, close or reactivate a subaccount (a closed one stays closed, as at Twilio)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        profile = self.profiles[sid]
        if profile.owner_account_sid == sid:
            raise ValueError("a main account's status is not changed here")
        if profile.status == "closed" and status != "closed":
            raise ValueError("a closed account cannot be reopened")
        now = self._emu.clock_ms()
        updated = max(now - now % 1000, profile.updated_ms + 1000)
        profile = self.profiles[sid] = replace(profile, status=status, updated_ms=updated)
        return profile

    def closed(self, sid: str) -> bool:
        profile = self.profiles.get(sid)
        return profile is not None and profile.status == "closed"

    def record(self, sid: str) -> dict:
        """The account as Accounts.json serves it."""
        p = self.profiles[sid]
        uri = f"/2010-04-01/Accounts/{sid}"
        return {
            "auth_token": self._emu.accounts[sid].auth_token,
            "date_created": rfc2822(p.created_ms),
            "date_updated": rfc2822(p.updated_ms),
            "friendly_name": p.friendly_name,
            "owner_account_sid": p.owner_account_sid,
            "sid": sid,
            "status": p.status,
            "subresource_uris": {"messages": f"{uri}/Messages.json"},
            "type": p.type,
            "uri": f"{uri}.json",
        }

    def visible_to(self, caller: str) -> list[str]:
        """The accounts `caller` may list: a main account and its subaccounts, or itself alone."""
        if self.profiles.get(caller) is None or self.profiles[caller].owner_account_sid != caller:
            return [caller] if caller in self.profiles else []
        return [caller] + [p.sid for p in self.subaccounts(caller)]

    # ------------------------------------------------------------ who acts for whom

    def acting(self, username: str, password: str, path_sid: str | None, *, accounts_route: bool = False) -> str:
        """The account a request acts for: the path's when these credentials may read it, else
        the credentials' own (the handler then answers 404 for a path not its own)."""
        caller = self._emu.authenticate(username, password)
        if caller is None or self.closed(caller):
            raise errors.unauthenticated()
        if path_sid is None or path_sid == caller:
            return caller
        profile = self.profiles.get(path_sid)
        if profile is None or profile.owner_account_sid != caller:
            return caller
        if username != caller and not accounts_route:
            raise errors.unauthenticated()  # a main API key does not act for a subaccount
        if profile.status == "closed" and not accounts_route:
            raise errors.unauthenticated()
        return path_sid


class Routes:
    """Handlers of the Accounts resource, wrapped by the server's `route` like every API route."""

    def __init__(self, emu: Emulator):
        self.emu = emu

    @property
    def directory(self) -> Directory:
        return self.emu.directory

    async def listing(self, request: web.Request, account: str) -> web.Response:
        q = request.query
        size = queries.parse_legacy_list({k: v for k, v in q.items() if k in ("PageSize", "Page", "PageToken")})
        echo = [(name, q[name]) for name in ("FriendlyName", "Status") if q.get(name)]
        status = q.get("Status")
        if status is not None and status not in STATUSES:
            raise errors.bad_request(f"Invalid Status: {status}", "Status")
        with self.emu._lock:
            sids = [s for s in self.directory.visible_to(account)
                    if (status is None or self.directory.profiles[s].status == status)
                    and (not q.get("FriendlyName") or self.directory.profiles[s].friendly_name == q["FriendlyName"])]
            start = 0
            if size.token is not None:
                after = size.token[2:] if size.token.startswith("PA") else None
                if after not in sids and after not in self.directory.profiles:
                    raise errors.bad_request(f"Invalid PageToken: {size.token}", "PageToken")
                start = sids.index(after) + 1 if after in sids else len(sids)
            chosen = sids[start:start + size.page_size]
            records = [self.directory.record(s) for s in chosen]
        more = start + size.page_size < len(sids)
        n, page = size.page_size, size.page
        body = {
            "accounts": records,
            "end": page * n + max(len(records) - 1, 0),
            "first_page_uri": paging.legacy_uri(LIST_PATH, echo, n, 0),
            "next_page_uri": paging.legacy_uri(LIST_PATH, echo, n, page + 1, f"PA{chosen[-1]}") if more else None,
            "page": page,
            "page_size": n,
            "previous_page_uri": (paging.legacy_uri(LIST_PATH, echo, n, page - 1, f"PB{chosen[0]}")
                                  if page > 0 and chosen else None),
            "start": page * n,
            "uri": paging.legacy_uri(LIST_PATH, echo, n, page, size.token),
        }
        return web.json_response(body=orjson.dumps(body))

    async def fetch(self, request: web.Request, account: str) -> web.Response:
        sid = request.match_info["account_sid"]
        if sid != account:
            raise errors.not_found(request.path)
        with self.emu._lock:
            return web.json_response(body=orjson.dumps(self.directory.record(sid)))

    async def create(self, request: web.Request, account: str) -> web.Response:
        form = await request.post()
        name = form.get("FriendlyName")
        with self.emu._lock:
            if self.directory.profiles[account].owner_account_sid != account:
                raise errors.ApiError(403, errors.AUTHENTICATE, "Subaccounts cannot create subaccounts")
            created = self.directory.create(name if isinstance(name, str) and name else None, owner=account)
            return web.json_response(body=orjson.dumps(self.directory.record(created.sid)), status=201)

    async def update(self, request: web.Request, account: str) -> web.Response:
        sid = request.match_info["account_sid"]
        if sid != account:
            raise errors.not_found(request.path)
        form = await request.post()
        status = form.get("Status")
        with self.emu._lock:
            if isinstance(status, str) and status:
                try:
                    self.directory.set_status(sid, status)
                except ValueError as exc:
                    raise errors.bad_request(str(exc), "Status") from None
            return web.json_response(body=orjson.dumps(self.directory.record(sid)))

    async def control(self, request: web.Request) -> web.Response:
        """Out-of-process tests create, suspend and close subaccounts here, with no credentials."""
        try:
            command = orjson.loads(await request.read())
            with self.emu._lock:
                if "sid" in command:
                    self.directory.set_status(str(command["sid"]), str(command["status"]))
                    sid = str(command["sid"])
                else:
                    sid = self.directory.create(command.get("friendly_name"), messages=int(command.get("messages", 50)),
                                                owner=command.get("owner")).sid
                return web.json_response(body=orjson.dumps(self.directory.record(sid)))
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.bad_request(f"bad control command: {exc}") from None


def add_routes(app: web.Application, api: Any, emu: Emulator) -> None:
    """Register the Accounts routes through the server's `route` wrapper (counting, auth, faults)."""
    routes = Routes(emu)
    r = app.router
    one = "/2010-04-01/Accounts/{account_sid}.json"
    r.add_get(LIST_PATH, api.route("accounts_listing", routes.listing), allow_head=False)
    r.add_post(LIST_PATH, api.route("accounts_create", routes.create))
    r.add_get(one, api.route("accounts_fetch", routes.fetch), allow_head=False)
    r.add_post(one, api.route("accounts_update", routes.update))
    r.add_post(CONTROL_PATH, routes.control)
