"""A digest of each stored payload, so a rescan skips unchanged records without reading them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Comparing the digest of what a scan received with the stored one is one index lookup per
record; comparing `raw` itself needs the payload parsed into jsonb and, through ON CONFLICT,
a row lock on every unchanged row, which writes a full-page image to the WAL after each
checkpoint. Rows stored before this revision have no digest until their next scan sets it.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("legacy_messages", "comms_messages", "comms_operations")
COMMENT = (
    "'MD5 of the payload as the archiver received and serialized it (raw, and raw_text when there is one). "
    "A scan that receives the same digest leaves the row alone. Null for rows stored before this column "
    "existed, until their next scan.'"
)


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE twilio.{table} ADD COLUMN raw_digest bytea")
        op.execute(f"COMMENT ON COLUMN twilio.{table}.raw_digest IS {COMMENT}")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE twilio.{table} DROP COLUMN raw_digest")
