"""twilio.accounts: what outlives a process per account (Twilio's Retry-After pause), and what
Accounts.json last said of it (status, name, owner; never its auth token)."""

from __future__ import annotations

from datetime import datetime

from sync import errors
from sync.sql.edge import Postgres, describe, log


class Accounts:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def paused_until(self, account_sid: str) -> datetime | None:
        return await self._db.fetchval("SELECT paused_until FROM twilio.accounts WHERE account_sid = $1", account_sid)

    async def save_pause(self, account_sid: str, until: datetime) -> None:
        """Remember Twilio's Retry-After for the account. One try only: the fetches that are
        waiting on Twilio must not also wait on the database."""
        try:
            await self._db.execute(
                "INSERT INTO twilio.accounts AS a (account_sid, paused_until) VALUES ($1, $2) "
                "ON CONFLICT (account_sid) DO UPDATE SET paused_until = excluded.paused_until, updated_at = now() "
                "WHERE a.paused_until IS NULL OR a.paused_until < excluded.paused_until",
                account_sid, until, retry=False,
            )
        except errors.StoreError as exc:
            log.warning("store.pause_not_saved", account=account_sid, cause=describe(exc.__cause__ or exc))

    async def save_listing(self, listed: list) -> None:
        """Keep what a listing said of each account (`discovery.Listed`): status, name, owner and
        when it was listed, in one statement. The token it carried is not among the columns."""
        await self._db.execute(
            "INSERT INTO twilio.accounts AS a (account_sid, status, friendly_name, owner_account_sid, "
            "first_listed_at, last_listed_at) "
            "SELECT sid, status, name, owner, now(), now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
            "AS l(sid, status, name, owner) "
            "ON CONFLICT (account_sid) DO UPDATE SET status = excluded.status, friendly_name = excluded.friendly_name, "
            "owner_account_sid = excluded.owner_account_sid, last_listed_at = now(), updated_at = now(), "
            "first_listed_at = coalesce(a.first_listed_at, now())",
            [a.sid for a in listed], [a.status for a in listed], [a.friendly_name for a in listed],
            [a.owner_account_sid for a in listed],
        )

    async def listing(self) -> list:
        """Every account with what its last listing said, for `status`."""
        return await self._db.fetch(
            "SELECT account_sid, status, friendly_name, owner_account_sid, last_listed_at FROM twilio.accounts "
            "ORDER BY account_sid")

    async def worked(self, account_sid: str, holder: str) -> None:
        """Which replica took the account's last round, and when (for `status`)."""
        await self._db.execute(
            "INSERT INTO twilio.accounts AS a (account_sid, last_worked_by, last_worked_at) VALUES ($1, $2, now()) "
            "ON CONFLICT (account_sid) DO UPDATE SET last_worked_by = excluded.last_worked_by, "
            "last_worked_at = excluded.last_worked_at",
            account_sid, holder,
        )

    async def unscanned(self, account_sids: list[str], seconds: float) -> int:
        """How many of these accounts no replica has started a round of in the last `seconds`."""
        return await self._db.fetchval(
            "SELECT count(*) FROM unnest($1::text[]) AS k(sid) LEFT JOIN twilio.accounts a ON a.account_sid = k.sid "
            "WHERE a.last_worked_at IS NULL OR a.last_worked_at < now() - make_interval(secs => $2)",
            account_sids, seconds,
        )
