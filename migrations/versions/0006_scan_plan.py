"""Scans keep their scan plan's state, and show what reading the list cost them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

A legacy scan reads the list from the top and decides from the pages where it can stop
(sync/plan.py). What it has learned (the phase, the order the pages showed so far) is part of
its checkpoint: saved with each page, so a scan resumed after a crash decides as the one that
stopped would have.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE twilio.scans ADD COLUMN plan jsonb, ADD COLUMN list_order text, "
    "ADD COLUMN outside_window bigint NOT NULL DEFAULT 0",
    """COMMENT ON COLUMN twilio.scans.plan IS
    'The rest of the checkpoint besides cursor: the scan plan''s phase (list: the unfiltered list from the top; sent: its sent part through a DateSent filter; all: the whole list) and the evidence of the list''s order read so far. Saved with each page.'""",
    """COMMENT ON COLUMN twilio.scans.list_order IS
    'Legacy scans: the order the list showed (created: by date_created; sent-created: by date_sent, the never-sent first by date_created; sent-nulls: by date_sent, the never-sent first in another order; unordered: none of these, so the whole list was read). Null for the v1 lists.'""",
    """COMMENT ON COLUMN twilio.scans.outside_window IS
    'Records the scan read that were created outside its window: what the list''s order cost it beyond the window itself.'""",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE twilio.scans DROP COLUMN plan, DROP COLUMN list_order, DROP COLUMN outside_window")
