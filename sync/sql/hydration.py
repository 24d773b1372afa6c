"""comms_messages.hydrated_at: the v1 messages waiting for their content (see sync/hydrate.py)."""

from __future__ import annotations

from datetime import datetime

from sync.sql.edge import Postgres


class Hydration:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def waiting(self, account_sid: str, since: datetime, limit: int) -> list[tuple[str, datetime]]:
        """New and changed v1 messages still retained at Twilio, newest first: (id, last_changed_at)."""
        rows = await self._db.fetch(
            "SELECT id, last_changed_at FROM twilio.comms_messages "
            "WHERE account_sid = $1 AND hydrated_at IS NULL AND created_at >= $2 ORDER BY created_at DESC LIMIT $3",
            account_sid, since, limit,
        )
        return [(r[0], r[1]) for r in rows]

    async def save(self, hydrated: list[tuple[str, datetime, object, str | None, str | None]]) -> None:
        """Store (id, last_changed_at, body, content json, attempts json) for messages that did
        not change since they were read; a message that did waits for the next fetch."""
        await self._db.executemany(
            "UPDATE twilio.comms_messages SET body = $3, content = $4::jsonb, attempts = $5::jsonb, hydrated_at = now() "
            "WHERE id = $1 AND last_changed_at = $2 AND hydrated_at IS NULL",
            hydrated, what="save message content",
        )
