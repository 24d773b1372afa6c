"""twilio.legacy_media and twilio.legacy_media_lists: the media of legacy messages (see sync/media.py).

What is owed lives in the archive itself: a message with num_media above 0 whose list was not
read at that num_media (no legacy_media_lists row with it), so a killed process finds its
backlog again and nothing is kept in memory. A batch of lists read commits in one
transaction: their items, what they no longer serve marked deleted (never removed), their
rejects, and the rows saying they were read. It may not choose what to request (sync/media.py)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sync.models import Rejected
from sync.sources import media as source
from sync.sql.edge import Postgres

_COLUMNS = ", ".join(source.COLUMNS)
_UPSERT = (
    f"INSERT INTO twilio.legacy_media ({_COLUMNS}) "
    "VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7, $8::jsonb, $9::text[]) "
    "ON CONFLICT (sid) DO UPDATE SET account_sid = EXCLUDED.account_sid, message_sid = EXCLUDED.message_sid, "
    "content_type = EXCLUDED.content_type, date_created = EXCLUDED.date_created, "
    "date_updated = EXCLUDED.date_updated, uri = EXCLUDED.uri, raw = EXCLUDED.raw, "
    "parse_problems = EXCLUDED.parse_problems, "
    # A changed payload moves last_changed_at; an item served again after it was found gone is back.
    "last_changed_at = CASE WHEN legacy_media.raw IS DISTINCT FROM EXCLUDED.raw THEN now() "
    "ELSE legacy_media.last_changed_at END, deleted_at = NULL "
    "WHERE legacy_media.raw IS DISTINCT FROM EXCLUDED.raw OR legacy_media.deleted_at IS NOT NULL "
    "OR legacy_media.parse_problems IS DISTINCT FROM EXCLUDED.parse_problems"
)
# A message owes its media while it has some and its list was not read at its num_media.
_OWED = (
    "FROM twilio.legacy_messages AS m WHERE m.account_sid = $1 AND m.num_media > 0 AND m.deleted_at IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM twilio.legacy_media_lists AS l "
    "WHERE l.message_sid = m.sid AND l.num_media = m.num_media)"
)


@dataclasses.dataclass(frozen=True)
class ListRead:
    """One message's media list as read: every page's rows and rejects, or `gone` (a 404)."""

    account_sid: str
    message_sid: str
    num_media: int  # the message's num_media the list was read for
    rows: list[tuple] = dataclasses.field(default_factory=list)
    rejected: list[Rejected] = dataclasses.field(default_factory=list)
    gone: bool = False


@dataclasses.dataclass(frozen=True)
class Saved:
    items: int  # media items served (rows written or unchanged)
    marked: int  # items found gone by these reads, now marked deleted
    rejected: int  # items kept aside in twilio.rejected_records


class Media:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def owed(self, account_sid: str, limit: int) -> list[tuple[str, int]]:
        """(message sid, num_media) of messages whose media list is owed, oldest first."""
        rows = await self._db.fetch(f"SELECT m.sid, m.num_media {_OWED} ORDER BY m.date_created, m.sid LIMIT $2",
                                    account_sid, limit)
        return [(r[0], r[1]) for r in rows]

    async def due(self, account_sid: str, since: datetime, read_before: datetime, limit: int) -> list[tuple[str, int]]:
        """(message sid, num_media) of messages created since `since` whose list was last read
        before `read_before`: the re-check that finds deleted media, longest unread first."""
        rows = await self._db.fetch(
            "SELECT m.sid, m.num_media FROM twilio.legacy_media_lists AS l "
            "JOIN twilio.legacy_messages AS m ON m.sid = l.message_sid "
            "WHERE l.outcome = 'read' AND l.read_at < $3 AND l.account_sid = $1 AND m.num_media > 0 "
            "AND m.deleted_at IS NULL AND m.date_created >= $2 ORDER BY l.read_at, l.message_sid LIMIT $4",
            account_sid, since, read_before, limit,
        )
        return [(r[0], r[1]) for r in rows]

    async def save(self, reads: list[ListRead]) -> Saved:
        """The lists read, in one transaction (see the module's docstring)."""
        rows = [row for read in reads for row in read.rows]
        listed = [read.message_sid for read in reads if not read.gone]
        served = [row[0] for row in rows]
        rejects = [(read.account_sid, source.STREAM, r.key, r.reason, r.raw_text, source.digest(r.raw_text))
                   for read in reads for r in read.rejected]

        async def once() -> Saved:
            async with self._db.transaction() as conn:
                if rows:
                    await conn.executemany(_UPSERT, rows)
                marked = await conn.fetchval(
                    "WITH m AS (UPDATE twilio.legacy_media SET deleted_at = now() WHERE message_sid = ANY($1::text[]) "
                    "AND deleted_at IS NULL AND sid <> ALL($2::text[]) RETURNING 1) SELECT count(*) FROM m",
                    listed, served,
                )
                if rejects:
                    await conn.executemany(
                        "INSERT INTO twilio.rejected_records (account_sid, stream, record_key, reason, raw_text, digest) "
                        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ON CONSTRAINT rejected_records_once DO NOTHING",
                        rejects,
                    )
                await conn.executemany(
                    "INSERT INTO twilio.legacy_media_lists (message_sid, account_sid, num_media, outcome, items) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_sid) DO UPDATE SET "
                    "account_sid = EXCLUDED.account_sid, num_media = EXCLUDED.num_media, outcome = EXCLUDED.outcome, "
                    "items = EXCLUDED.items, read_at = now()",
                    [(r.message_sid, r.account_sid, r.num_media, "gone" if r.gone else "read",
                      len(r.rows) + len(r.rejected)) for r in reads],
                )
            return Saved(len(rows), marked, len(rejects))

        return await self._db.retrying(once, "save media lists")

    async def counts(self, account_sid: str | None = None) -> tuple[int, int, int]:
        """(media archived, of which marked deleted, messages whose media is owed), for one
        account or (None) every account the archive holds messages of."""
        if account_sid is not None:
            accounts = [account_sid]
        else:
            accounts = [r[0] for r in await self._db.fetch(
                "SELECT DISTINCT account_sid FROM twilio.legacy_media_lists UNION "
                "SELECT DISTINCT account_sid FROM twilio.legacy_messages WHERE num_media > 0")]
        archived = deleted = owed = 0
        for account in accounts:
            row = await self._db.fetchrow(
                "SELECT count(*), count(deleted_at) FROM twilio.legacy_media WHERE account_sid = $1", account)
            archived, deleted = archived + row[0], deleted + row[1]
            owed += await self._db.fetchval(f"SELECT count(*) {_OWED}", account)
        return archived, deleted, owed
