"""twilio.accounts also keeps what Accounts.json said of each account: its status, name, owner and
when it was listed.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-02

`backfill --subaccounts` and `run --subaccounts` list the main account and its subaccounts; an
account Twilio closed stops being scanned, and its archive stays, marked closed here. Its auth
token is in the listing too, and is never stored: these columns are all the listing leaves behind.
"""

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE twilio.accounts ADD COLUMN status text",
    "ALTER TABLE twilio.accounts ADD COLUMN friendly_name text",
    "ALTER TABLE twilio.accounts ADD COLUMN owner_account_sid text",
    "ALTER TABLE twilio.accounts ADD COLUMN first_listed_at timestamptz",
    "ALTER TABLE twilio.accounts ADD COLUMN last_listed_at timestamptz",
    """ALTER TABLE twilio.accounts ADD CONSTRAINT accounts_status_check
       CHECK (status IN ('active', 'suspended', 'closed'))""",
    """COMMENT ON COLUMN twilio.accounts.status IS
    'active, suspended or closed, as Accounts.json last listed the account; null for an account never listed (named in an accounts file). A closed account is no longer scanned; its archive stays.'""",
    "COMMENT ON COLUMN twilio.accounts.friendly_name IS 'The account''s friendly name at Twilio, as last listed.'",
    """COMMENT ON COLUMN twilio.accounts.owner_account_sid IS
    'The main account that owns it (its own SID for a main account), as last listed.'""",
    "COMMENT ON COLUMN twilio.accounts.first_listed_at IS 'When Accounts.json first listed the account.'",
    "COMMENT ON COLUMN twilio.accounts.last_listed_at IS 'When Accounts.json last listed the account.'",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE twilio.accounts DROP CONSTRAINT accounts_status_check")
    for column in ("last_listed_at", "first_listed_at", "owner_account_sid", "friendly_name", "status"):
        op.execute(f"ALTER TABLE twilio.accounts DROP COLUMN {column}")
