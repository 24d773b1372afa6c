"""The overview's comment says when a backfill refreshes it: one that wrote nothing leaves it as it was.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Since 0005, a backfill that wrote no row and followed no interrupted one leaves
daily_account_overview as it was (a refresh recomputes the whole view to find it unchanged): the
comment 0005 gave it said a backfill always refreshes it.

No index changes, though two were tried for the Postgres CPU a new record costs (issue 19):
dropping legacy_messages_date_sent_idx (no analyst query nor archiver statement reads through it)
and making message_status_history_message_idx a hash on message_id (every query of it is an
equality on message_id). On 50,000 messages per API the bench's `write limit` looked about 6 us a
record cheaper for each; on 200,000, run alternately twice, the three schemas were within the
machine's noise of each other (38.6 to 43.0 us of Postgres CPU a new record), so the contract's
indexes stay as they are. EXPLAIN (FORMAT JSON) of the ten questions of docs/analysts.md, the
analysts' dashboard panels and bench/analytics.py's view queries on 100,000 messages per API gave
the same plans at 0007 and here (a comment changes no plan); the only indexes they use are
legacy_messages_error_code_idx and message_status_history_message_idx.
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
    op.execute(_comment(OVERVIEW_COMMENT))


def downgrade() -> None:
    op.execute(_comment(OVERVIEW_COMMENT_0005))
