"""Which accounts a command archives: the one of the environment, those an accounts file names,
and with `--subaccounts` every account Accounts.json lists, what that listing said kept in
twilio.accounts (status, name, owner; never a token).

`backfill` calls `current` once; `run` calls it again every discovery interval (service.py), so a
new subaccount is archived without a restart and a closed one stops being scanned. It owns the
listing's round trip (the main account's client, the store) and may not scan or decide when it
is called."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync import discovery, logs, machinery
from sync.config import TwilioSettings

if TYPE_CHECKING:
    from sync.store import Store

log = logs.get(__name__)


@dataclass(frozen=True)
class Roster:
    """Where the accounts come from: `main` (the environment's credentials), `named` (an accounts
    file, may be empty) and whether the listing adds the main account's subaccounts."""

    main: TwilioSettings | None
    named: tuple[TwilioSettings, ...] = ()
    subaccounts: bool = False

    def fixed(self) -> list[TwilioSettings]:
        """The accounts without a listing: the file's, else the environment's one."""
        if self.named:
            return list(self.named)
        return [self.main] if self.main is not None else []

    async def current(self, store: Store) -> discovery.Chosen:
        """The accounts to archive now, and the closed ones to report (the listing's, kept in
        twilio.accounts). A listing Twilio refuses raises FatalSourceError: the main account's
        credentials are wrong, so no account of it could be read."""
        if not self.subaccounts or self.main is None:
            return discovery.Chosen(self.fixed(), [])
        async with machinery.twilio_client(self.main, store=store) as client:
            listing = await discovery.fetch_listing(client, self.main.account_sid)
        await store.accounts.save_listing(listing)
        chosen = discovery.choose(self.main, listing, list(self.named))
        log.info("accounts.listed", accounts=len(listing), scanned=len(chosen.accounts), closed=len(chosen.closed))
        return chosen
