"""twilio.leases: one replica per (account, stream)."""

from __future__ import annotations

from sync.sql.edge import Postgres


class Leases:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def acquire(self, account_sid: str, stream: str, holder: str, ttl: float) -> bool:
        """Take the lease if it is free, expired or already ours; whether we hold it now."""
        got = await self._db.fetchval(
            "INSERT INTO twilio.leases AS l (account_sid, stream, holder, expires_at) "
            "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) "
            "ON CONFLICT (account_sid, stream) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
            "acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE now() END "
            "WHERE l.holder = excluded.holder OR l.expires_at < now() RETURNING true",
            account_sid, stream, holder, ttl,
        )
        return bool(got)

    async def renew(self, holder: str, ttl: float) -> set[tuple[str, str]]:
        """Extend every unexpired lease we hold; the (account, stream) pairs still ours."""
        rows = await self._db.fetch(
            "UPDATE twilio.leases SET expires_at = now() + make_interval(secs => $2) "
            "WHERE holder = $1 AND expires_at >= now() RETURNING account_sid, stream",
            holder, ttl,
        )
        return {(r[0], r[1]) for r in rows}

    async def release(self, holder: str) -> None:
        """Let another replica take over at once (on a clean stop)."""
        await self._db.execute("UPDATE twilio.leases SET expires_at = now() - interval '1 second' WHERE holder = $1",
                               holder)
