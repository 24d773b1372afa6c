"""A new message costs Postgres less: one index fewer on legacy_messages, a hash index on the status
history; the overview's comment says when a backfill refreshes it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Every new message adds a row to twilio.message_status_history (its first status), and so an entry
to its index on (message_id, observed_at): a b-tree of random 34-character keys, whose inserts land
on random leaf pages that split and are written whole to the WAL after each checkpoint. Every
query of it looks a message up by equality (message_facts' delivered_at: message_id = m.id), so
a hash index on message_id serves them, for a fraction of the cost of an insert: bench `write
limit` on 50,000 messages per API, Postgres CPU a new record 32 to 39 us with the b-tree, 30 with
the hash index, 29 with no index at all. A message's few rows in order are found through it and
sorted (ORDER BY id or observed_at).

legacy_messages_date_sent_idx goes. Every new legacy message paid for an entry in it (about 6 us
of Postgres CPU of some 45 a new record, `write limit` of the bench on 50,000 messages per API),
and nothing reads through it: the analysts' questions are by day of creation, status, sender,
recipient and error code (the indexes the contract promises, all kept), and the archiver never
looks rows up by date_sent (the legacy list is filtered by DateSent at Twilio, not here).

Checked with EXPLAIN (FORMAT JSON) on 100,000 messages per API loaded as bench/analytics.py loads
them, before (0007) and after (0008), over the ten questions of docs/analysts.md, the analysts'
dashboard panels (deploy/grafana/twilio-archive-analysts.json, macros expanded as
tests/analysts.py does) and bench/analytics.py's view queries: the same plans on both sides (node
types, relations and index names), the only indexes used being legacy_messages_error_code_idx
(question 4, error_overview, the Top error codes panel) and message_status_history_message_idx
(question 6, message_facts, the Time to delivered panel), the latter a hash index scan after 0008
where it was a b-tree index scan. EXPLAIN (ANALYZE, BUFFERS) on 200,000 messages per API:
question 6 touched 873,488 buffers where it touched 1,611,608, the Time to delivered panel 290,118
where 528,296; their times the same within the machine's noise. A site whose own queries filter legacy messages by date_sent can create the
index again (CREATE INDEX CONCURRENTLY ... ON twilio.legacy_messages (date_sent)).

Since 0005, a backfill that wrote no row and followed no interrupted one leaves
daily_account_overview as it was (a refresh recomputes the whole view): its comment says so.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OVERVIEW = (
    "One row per account, UTC day of creation, API (source) and currency (price_unit): message counts by "
    "direction and by current status, segments, exact spend and time to delivered. A day whose messages carry "
    "several currencies has a row per currency, so spend is never summed across currencies; summed over all "
    "rows, messages equals count(*) of twilio.messages. A materialized view over twilio.message_facts, so as "
    "current as its last refresh: `backfill` refreshes it at its end {when}and `run` after each full cycle "
    "(every stream it holds fully scanned, about once per --full-interval). By hand: REFRESH MATERIALIZED VIEW "
    "CONCURRENTLY twilio.daily_account_overview (as its owner, the user that migrates; readers keep reading "
    "meanwhile)."
)
OVERVIEW_COMMENT = _OVERVIEW.format(when="when it wrote rows or followed an interrupted backfill (one that wrote "
                                         "nothing leaves it as it was), ")
OVERVIEW_COMMENT_0005 = _OVERVIEW.format(when="")


def _comment(text: str) -> str:
    return "COMMENT ON MATERIALIZED VIEW twilio.daily_account_overview IS '" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute("DROP INDEX twilio.legacy_messages_date_sent_idx")
    op.execute("DROP INDEX twilio.message_status_history_message_idx")
    op.execute("CREATE INDEX message_status_history_message_idx ON twilio.message_status_history USING hash (message_id)")
    op.execute(_comment(OVERVIEW_COMMENT))


def downgrade() -> None:
    op.execute(_comment(OVERVIEW_COMMENT_0005))
    op.execute("DROP INDEX twilio.message_status_history_message_idx")
    op.execute("CREATE INDEX message_status_history_message_idx ON twilio.message_status_history (message_id, observed_at)")
    op.execute("CREATE INDEX legacy_messages_date_sent_idx ON twilio.legacy_messages (date_sent)")
