"""The long-running service: leases, deletion proofs, status history, v1 message content.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

- twilio.leases: which `run` replica scans which (account, stream), so two never do at once.
- twilio.scan_seen: the keys a complete legacy scan has seen, the proof that a message it
  did not see is gone. UNLOGGED: it is scratch space, rebuilt by every full scan, and not
  worth WAL; a crash empties it, which the service detects (see Store.seen_set_intact).
- twilio.message_status_history: one row per observed status change, written by statement
  triggers in the page's own transaction, so it can never disagree with the rows.
- comms_messages gains what GET /v1/Messages/{id} adds to the list (content, attempts).
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LEASES = [
    """CREATE TABLE twilio.leases (
        account_sid text NOT NULL,
        stream text NOT NULL,
        holder text NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (account_sid, stream)
    )""",
    """COMMENT ON TABLE twilio.leases IS
    'Which running `twilio-archive run` replica scans each (account, stream). A replica renews its leases every few seconds; a lease that expires (its holder died) is taken over by another replica.'""",
    "COMMENT ON COLUMN twilio.leases.account_sid IS 'The Twilio account whose stream is leased.'",
    "COMMENT ON COLUMN twilio.leases.stream IS 'The leased stream: comms_messages, comms_operations or legacy_messages.'",
    """COMMENT ON COLUMN twilio.leases.holder IS
    'The replica holding the lease: host name, process id and a random suffix.'""",
    "COMMENT ON COLUMN twilio.leases.acquired_at IS 'When the current holder took the lease.'",
    """COMMENT ON COLUMN twilio.leases.expires_at IS
    'When the lease lapses unless renewed; after this any replica may take it.'""",
]

SEEN = [
    """CREATE UNLOGGED TABLE twilio.scan_seen (
        scan_id bigint NOT NULL,
        key text NOT NULL
    )""",
    "CREATE INDEX scan_seen_scan_key_idx ON twilio.scan_seen (scan_id, key)",
    """COMMENT ON TABLE twilio.scan_seen IS
    'Scratch space of the service: the keys each running full scan of the legacy list has seen. When the scan completes, archived messages it did not see are checked one by one and marked deleted; then its rows here are removed.'""",
    "COMMENT ON COLUMN twilio.scan_seen.scan_id IS 'The scan (twilio.scans.id) that saw the record.'",
    "COMMENT ON COLUMN twilio.scan_seen.key IS 'The sid of a record the scan was served.'",
]

SCANS = [
    """COMMENT ON COLUMN twilio.scans.kind IS
    'backfill (a one-off pass from the backfill command), recent (the service''s frequent scan of a short look-back) or full (the service''s periodic scan of the whole retention window, which also detects deletions).'""",
    "ALTER TABLE twilio.scans ADD COLUMN deleted integer NOT NULL DEFAULT 0",
    """COMMENT ON COLUMN twilio.scans.deleted IS
    'Archived messages this complete scan proved gone from Twilio and marked deleted (full scans of the legacy list only).'""",
]

CONTENT = [
    "ALTER TABLE twilio.comms_messages ADD COLUMN content jsonb",
    "ALTER TABLE twilio.comms_messages ADD COLUMN attempts jsonb",
    "ALTER TABLE twilio.comms_messages ADD COLUMN hydrated_at timestamptz",
    """COMMENT ON COLUMN twilio.comms_messages.content IS
    'The resolved content of the message (field content of GET /v1/Messages/{id}): text, media or channel modules. Null until fetched; see hydrated_at.'""",
    """COMMENT ON COLUMN twilio.comms_messages.attempts IS
    'The delivery attempts Twilio made (field attempts of GET /v1/Messages/{id}), as of hydrated_at.'""",
    """COMMENT ON COLUMN twilio.comms_messages.hydrated_at IS
    'When body, content and attempts were last fetched from GET /v1/Messages/{id}. Null while a new or changed message waits to be fetched.'""",
    # The service's queue of messages to fetch: small, and found without a scan of the table.
    "CREATE INDEX comms_messages_unhydrated_idx ON twilio.comms_messages (account_sid, created_at DESC) WHERE hydrated_at IS NULL",
]

HISTORY = [
    """CREATE TABLE twilio.message_status_history (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source text NOT NULL CONSTRAINT message_status_history_source_check CHECK (source IN ('comms', 'legacy')),
        message_id text NOT NULL,
        account_sid text,
        status text,
        previous_status text,
        changed_at timestamptz,
        observed_at timestamptz NOT NULL DEFAULT now()
    )""",
    # One index besides the key: every archived message adds a row here, so each index is paid
    # for on every page of a backfill. Questions by status join through message_id anyway.
    "CREATE INDEX message_status_history_message_idx ON twilio.message_status_history (message_id, observed_at)",
    """COMMENT ON TABLE twilio.message_status_history IS
    'One row per status the archive observed a message in, from both APIs: its first status when it was first archived, then one row per change. Statuses in the vocabulary of twilio.messages. Time from sent to delivered: join the sent and delivered rows of a message_id and subtract changed_at.'""",
    "COMMENT ON COLUMN twilio.message_status_history.id IS 'Number of the observation, increasing in the order they were made.'",
    "COMMENT ON COLUMN twilio.message_status_history.source IS 'legacy (twilio.legacy_messages) or comms (twilio.comms_messages).'",
    "COMMENT ON COLUMN twilio.message_status_history.message_id IS 'The message: sid of legacy rows, id of comms rows (twilio.messages.id).'",
    "COMMENT ON COLUMN twilio.message_status_history.account_sid IS 'The Twilio account of the message.'",
    """COMMENT ON COLUMN twilio.message_status_history.status IS
    'The status observed, lower-case as in twilio.messages (comms INBOUND is received).'""",
    """COMMENT ON COLUMN twilio.message_status_history.previous_status IS
    'The status archived before this one; null for the first observation of a message.'""",
    """COMMENT ON COLUMN twilio.message_status_history.changed_at IS
    'When the API said the message last changed as of this observation (legacy date_updated, comms updatedAt).'""",
    "COMMENT ON COLUMN twilio.message_status_history.observed_at IS 'When the archive stored the observation.'",
]


def _status(source: str, column: str) -> str:
    if source == "comms":
        return f"CASE WHEN upper({column}) = 'INBOUND' THEN 'received' ELSE lower({column}) END"
    return f"lower({column})"


def _triggers(source: str, table: str, key: str, updated: str) -> list[str]:
    # Statement triggers with transition tables: one INSERT ... SELECT per page, not one
    # trigger call per row. ON CONFLICT DO UPDATE fires the INSERT trigger for the rows it
    # inserted and the UPDATE trigger for the rows it updated.
    new, old = _status(source, "n.status"), _status(source, "o.status")
    return [
        f"""CREATE FUNCTION twilio.{table}_status_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO twilio.message_status_history (source, message_id, account_sid, status, changed_at)
            SELECT '{source}', n.{key}, n.account_sid, {new}, n.{updated} FROM new_rows AS n WHERE n.status IS NOT NULL;
            RETURN NULL;
        END $$""",
        f"""CREATE FUNCTION twilio.{table}_status_updated() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO twilio.message_status_history (source, message_id, account_sid, status, previous_status, changed_at)
            SELECT '{source}', n.{key}, n.account_sid, {new}, {old}, n.{updated}
            FROM new_rows AS n JOIN old_rows AS o ON o.{key} = n.{key}
            WHERE {new} IS DISTINCT FROM {old};
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER {table}_status_inserted AFTER INSERT ON twilio.{table}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION twilio.{table}_status_inserted()""",
        f"""CREATE TRIGGER {table}_status_updated AFTER UPDATE ON twilio.{table}
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION twilio.{table}_status_updated()""",
    ]


TRIGGERS = [
    *_triggers("legacy", "legacy_messages", "sid", "date_updated"),
    *_triggers("comms", "comms_messages", "id", "updated_at"),
]


def upgrade() -> None:
    for statement in (*LEASES, *SEEN, *SCANS, *CONTENT, *HISTORY, *TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    for table in ("legacy_messages", "comms_messages"):
        for event in ("inserted", "updated"):
            op.execute(f"DROP TRIGGER {table}_status_{event} ON twilio.{table}")
            op.execute(f"DROP FUNCTION twilio.{table}_status_{event}()")
    for statement in (
        "DROP TABLE twilio.message_status_history",
        "DROP INDEX twilio.comms_messages_unhydrated_idx",
        "ALTER TABLE twilio.comms_messages DROP COLUMN hydrated_at",
        "ALTER TABLE twilio.comms_messages DROP COLUMN attempts",
        "ALTER TABLE twilio.comms_messages DROP COLUMN content",
        "ALTER TABLE twilio.scans DROP COLUMN deleted",
        "DROP TABLE twilio.scan_seen",
        "DROP TABLE twilio.leases",
    ):
        op.execute(statement)
