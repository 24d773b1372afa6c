"""Scans read their window in time slices, each with its own checkpoint.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

A scan's head (the list from its top) keeps its checkpoint in twilio.scans. When a page shows
that the query below it holds more than a few pages, the scan hands the older part of its range
to slices: queries of their own (v1 startDate/endDate, legacy DateSent days) read at the same
time. Each slice's position is saved in the transaction of its page, and a slice is created in
the transaction of the page that split it off, so a crash neither loses a range nor reads a
finished slice again (sync/plan.py).
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE twilio.scan_slices (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        scan_id bigint NOT NULL REFERENCES twilio.scans(id) ON DELETE CASCADE,
        cursor text,
        plan jsonb NOT NULL,
        pages integer NOT NULL DEFAULT 0,
        records_seen bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    )""",
    "CREATE INDEX scan_slices_scan_idx ON twilio.scan_slices (scan_id)",
    """COMMENT ON TABLE twilio.scan_slices IS
    'The time slices of a scan: each a query over part of its range, read in parallel with the others, resumed from its own checkpoint.'""",
    "COMMENT ON COLUMN twilio.scan_slices.scan_id IS 'The scan (twilio.scans.id) the slice belongs to.'",
    "COMMENT ON COLUMN twilio.scan_slices.cursor IS 'The next request of the slice, relative to the API''s base URL; null once the slice is read.'",
    """COMMENT ON COLUMN twilio.scan_slices.plan IS
    'The rest of the slice''s checkpoint: its range (epoch seconds of createdAt, or of date_sent for the legacy list), the floor below which other slices read, and the order its pages showed.'""",
    "COMMENT ON COLUMN twilio.scan_slices.pages IS 'List requests of the slice that returned a page.'",
    "COMMENT ON COLUMN twilio.scan_slices.records_seen IS 'Records the slice''s pages served.'",
    "COMMENT ON COLUMN twilio.scan_slices.finished_at IS 'When its last page was saved.'",
    "COMMENT ON COLUMN twilio.scan_slices.id IS 'The slice''s number, for logs (the scan.restart event''s slice).'",
    "COMMENT ON COLUMN twilio.scan_slices.created_at IS 'When the page that split it off was saved.'",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE twilio.scan_slices")
