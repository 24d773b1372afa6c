"""Records that could not be stored, and where an operator finds every problem.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

twilio.rejected_records keeps, whole, each record that cannot become a row of its table (no
usable id, or a value Postgres refused), so nothing Twilio served is lost. The view
twilio.record_problems lists those together with the stored records whose fields could not
all be typed. Scans count restarts (a page token Twilio stopped accepting) and rejections;
twilio.accounts remembers a Retry-After across restarts of the worker.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STREAMS = "('comms_messages', 'comms_operations', 'legacy_messages')"

REJECTED = [
    f"""CREATE TABLE twilio.rejected_records (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_sid text NOT NULL,
        stream text NOT NULL CONSTRAINT rejected_records_stream_check CHECK (stream IN {STREAMS}),
        record_key text,
        reason text NOT NULL,
        raw_text text NOT NULL,
        digest bytea NOT NULL,
        scan_id bigint REFERENCES twilio.scans (id) ON DELETE SET NULL,
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT rejected_records_once UNIQUE (account_sid, stream, digest)
    )""",
    """COMMENT ON TABLE twilio.rejected_records IS
    'Records Twilio served that could not become a row of their table: without a usable id, or with a value Postgres refused. Kept whole, once each, so that nothing served is lost; see also the view twilio.record_problems.'""",
    """COMMENT ON COLUMN twilio.rejected_records.id IS
    'Number of the rejection, increasing in the order they were first seen.'""",
    """COMMENT ON COLUMN twilio.rejected_records.account_sid IS
    'The Twilio account whose list served the record (starts with AC).'""",
    """COMMENT ON COLUMN twilio.rejected_records.stream IS
    'Which Twilio list served it, named after the table it was meant for: legacy_messages, comms_messages or comms_operations.'""",
    """COMMENT ON COLUMN twilio.rejected_records.record_key IS
    'The record''s id or SID when it had one (a record Postgres refused); null for a record without a usable id.'""",
    """COMMENT ON COLUMN twilio.rejected_records.reason IS
    'Why the record could not be stored, in one line (for a refusal, Postgres''s own error).'""",
    """COMMENT ON COLUMN twilio.rejected_records.raw_text IS
    'The record exactly as Twilio served it, as JSON text with every non-ASCII character escaped, so that even NUL and lone surrogates survive.'""",
    """COMMENT ON COLUMN twilio.rejected_records.digest IS
    'SHA-256 of raw_text: the same record served again by a later scan is not kept twice.'""",
    """COMMENT ON COLUMN twilio.rejected_records.scan_id IS
    'The pass (twilio.scans.id) that first met the record.'""",
    """COMMENT ON COLUMN twilio.rejected_records.first_seen_at IS
    'When the archive first met the record.'""",
]

SCANS = [
    "ALTER TABLE twilio.scans ADD COLUMN restarts integer NOT NULL DEFAULT 0, ADD COLUMN rejected bigint NOT NULL DEFAULT 0",
    """COMMENT ON COLUMN twilio.scans.restarts IS
    'How often the pass started again from its first page because Twilio no longer accepted its page token; what it had archived was kept.'""",
    """COMMENT ON COLUMN twilio.scans.rejected IS
    'Number of records the pass could not store in their table; they are in twilio.rejected_records.'""",
]

# The view reads only rows with problems; partial indexes keep that cheap on a big archive.
# Twilio's Retry-After binds the account, not the process: a worker killed while asked to wait
# must not be replaced by one that asks again at once.
ACCOUNTS = [
    """CREATE TABLE twilio.accounts (
        account_sid text PRIMARY KEY,
        paused_until timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    """COMMENT ON TABLE twilio.accounts IS
    'What the archiver remembers per Twilio account between runs.'""",
    """COMMENT ON COLUMN twilio.accounts.account_sid IS
    'The Twilio account (starts with AC).'""",
    """COMMENT ON COLUMN twilio.accounts.paused_until IS
    'Twilio asked (Retry-After) for no requests of this account before this time; a restarted worker waits for it too.'""",
    """COMMENT ON COLUMN twilio.accounts.updated_at IS
    'When this row last changed.'""",
]

PROBLEM_INDEXES = [
    "CREATE INDEX legacy_messages_problems_idx ON twilio.legacy_messages (first_seen_at) WHERE parse_problems IS NOT NULL",
    "CREATE INDEX comms_messages_problems_idx ON twilio.comms_messages (first_seen_at) WHERE parse_problems IS NOT NULL",
    "CREATE INDEX comms_operations_problems_idx ON twilio.comms_operations (first_seen_at) WHERE parse_problems IS NOT NULL",
]

VIEW = [
    """CREATE VIEW twilio.record_problems AS
    SELECT 'legacy_messages'::text AS stream, sid AS record_key, account_sid, true AS stored,
           parse_problems AS problems, first_seen_at
      FROM twilio.legacy_messages WHERE parse_problems IS NOT NULL
    UNION ALL
    SELECT 'comms_messages', id, account_sid, true, parse_problems, first_seen_at
      FROM twilio.comms_messages WHERE parse_problems IS NOT NULL
    UNION ALL
    SELECT 'comms_operations', id, account_sid, true, parse_problems, first_seen_at
      FROM twilio.comms_operations WHERE parse_problems IS NOT NULL
    UNION ALL
    SELECT stream, record_key, account_sid, false, ARRAY[reason], first_seen_at
      FROM twilio.rejected_records""",
    """COMMENT ON VIEW twilio.record_problems IS
    'Every record the archive could not take exactly as served, one row each: stored records with fields that could not be typed (their parse_problems), and records kept aside in twilio.rejected_records.'""",
    """COMMENT ON COLUMN twilio.record_problems.stream IS
    'The table the record belongs to: legacy_messages, comms_messages or comms_operations.'""",
    """COMMENT ON COLUMN twilio.record_problems.record_key IS
    'The record''s id or SID (sid for legacy_messages, id otherwise); null for a record without a usable id.'""",
    """COMMENT ON COLUMN twilio.record_problems.account_sid IS
    'The Twilio account the record belongs to.'""",
    """COMMENT ON COLUMN twilio.record_problems.stored IS
    'True when the record is in its table (with the affected typed columns null); false when it is only in twilio.rejected_records.'""",
    """COMMENT ON COLUMN twilio.record_problems.problems IS
    'What went wrong, one entry per problem, such as date_sent: not an RFC 2822 date, nul_replaced, or status: not a documented value.'""",
    """COMMENT ON COLUMN twilio.record_problems.first_seen_at IS
    'When the archive first met the record.'""",
]


def upgrade() -> None:
    for statement in (*REJECTED, *SCANS, *ACCOUNTS, *PROBLEM_INDEXES, *VIEW):
        op.execute(statement)


def downgrade() -> None:
    for statement in (
        "DROP VIEW twilio.record_problems",
        "DROP INDEX twilio.comms_operations_problems_idx",
        "DROP INDEX twilio.comms_messages_problems_idx",
        "DROP INDEX twilio.legacy_messages_problems_idx",
        "DROP TABLE twilio.accounts",
        "ALTER TABLE twilio.scans DROP COLUMN rejected, DROP COLUMN restarts",
        "DROP TABLE twilio.rejected_records",
    ):
        op.execute(statement)
