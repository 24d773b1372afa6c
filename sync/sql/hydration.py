"""comms_messages.hydrated_at: the v1 messages waiting for their content (see sync/hydrate.py), and
their content stored, with the overview's days it changes marked (sync/sql/views.py)."""

from __future__ import annotations

from datetime import datetime

from sync.sql import views
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

    async def save(self, hydrated: list[tuple[str, datetime, str | None, str | None, str | None]]) -> None:
        """Store (id, last_changed_at, body, content json, attempts json) for messages that did
        not change since they were read; a message that did waits for the next fetch. One
        statement, which also marks the overview's days of the messages stored (a body is counted
        there: redacted, and the length analysts read in message_facts)."""
        if not hydrated:
            return
        await self._db.execute(
            "WITH stored AS (UPDATE twilio.comms_messages AS m "
            "SET body = h.body, content = h.content::jsonb, attempts = h.attempts::jsonb, hydrated_at = now() "
            "FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[]) "
            "AS h(id, changed, body, content, attempts) "
            "WHERE m.id = h.id AND m.last_changed_at = h.changed AND m.hydrated_at IS NULL "
            "RETURNING m.account_sid, m.created_at) "
            + views.mark_sql("stored", "created_at"),
            *(list(column) for column in zip(*hydrated)), what="save message content",
        )
