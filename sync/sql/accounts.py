"""twilio.accounts: what outlives a process per account (Twilio's Retry-After pause)."""

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
