"""The status history's first row of a message is derived from the message, not inserted.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Since 0004, an AFTER INSERT trigger on each message table wrote a row into
twilio.message_status_history for every new message: its first status. That row, its two index
entries and the transition table the trigger reads cost Postgres about 16 us of CPU a new record,
27% of all it spends on a backfill (issue 19). Yet the row says nothing the message does not: its
status, date_updated (comms updated_at) and first_seen_at, as long as they are still what they were
when the message was first archived, which holds for every message that never changed since (old
messages are final, so nearly every row a backfill writes).

- twilio.message_status_changes (the former table, renamed with its sequence, index and
  constraints) keeps the change rows, and the first observations of messages that changed,
  materialized by the UPDATE triggers from the OLD row just before the change would hide them.
- legacy_messages and comms_messages gain first_observation_id: the number of the message's first
  observation, taken from the same sequence as the change rows when the row is inserted, so ids
  still increase in the order observations were made. A COPY keeps its multi-insert under a nextval
  default.
- twilio.message_status_history becomes a view with the same columns, rows and values as the
  table: the derived first rows of messages with no row in message_status_changes, and all of
  message_status_changes. message_facts is redefined (same text) so it reads the view, not the
  renamed table; its dependants (daily_account_overview, number_overview, error_overview) keep
  their definitions.

Existing data stays as it is: every row of the table is kept in message_status_changes, and a
message archived before 0011 has no first_observation_id, so the view derives no row for it (its
first row, when it has one, is among the kept ones). The upgrade is then only catalog changes, with
no row rewritten, however big the archive: giving each old message its number and deleting the
first rows the view could derive would write every message row once (34 s and 661 MB of WAL at
200,000 messages per API, measured) to save space, not to change what analysts read.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SEQUENCE = "twilio.message_status_history_id_seq"  # the identity sequence keeps its 0004 name
COLUMNS = "id, source, message_id, account_sid, status, previous_status, changed_at, observed_at"

# (source, table, key, updated): what 0004's triggers wrote for each API.
TABLES = (("legacy", "legacy_messages", "sid", "date_updated"), ("comms", "comms_messages", "id", "updated_at"))


def _status(source: str, column: str) -> str:
    """A status in the vocabulary of twilio.messages, exactly as 0004 wrote it."""
    if source == "comms":
        return f"CASE WHEN upper({column}) = 'INBOUND' THEN 'received' ELSE lower({column}) END"
    return f"lower({column})"


def _changed(source: str, key: str) -> str:
    """SQL true when the message (alias m) has a row in message_status_changes."""
    return (f"EXISTS (SELECT 1 FROM twilio.message_status_changes AS c "
            f"WHERE c.message_id = m.{key} AND c.source = '{source}')")


def _derived(source: str, table: str, key: str, updated: str) -> str:
    """The first observations a table's rows derive: one per message that has a status, a number
    (messages archived before 0004 have none) and no row in message_status_changes."""
    return (f"SELECT m.first_observation_id AS id, '{source}'::text AS source, m.{key} AS message_id, "
            f"m.account_sid, {_status(source, 'm.status')} AS status, NULL::text AS previous_status, "
            f"m.{updated} AS changed_at, m.first_seen_at AS observed_at\n"
            f"    FROM twilio.{table} AS m\n"
            f"    WHERE m.status IS NOT NULL AND m.first_observation_id IS NOT NULL AND NOT {_changed(source, key)}")


RENAME = [
    "ALTER TABLE twilio.message_status_history RENAME TO message_status_changes",
    "ALTER INDEX twilio.message_status_history_message_idx RENAME TO message_status_changes_message_idx",
    "ALTER TABLE twilio.message_status_changes RENAME CONSTRAINT message_status_history_pkey TO message_status_changes_pkey",
    "ALTER TABLE twilio.message_status_changes RENAME CONSTRAINT message_status_history_source_check"
    " TO message_status_changes_source_check",
    """COMMENT ON TABLE twilio.message_status_changes IS
    'Where twilio.message_status_history keeps what a message row cannot derive: one row per status change the archive observed, and the first observation of each message that changed since it was first archived (written from the old row, just before the change). Read twilio.message_status_history, not this table.'""",
    "COMMENT ON COLUMN twilio.message_status_changes.id IS 'Number of the observation (see twilio.message_status_history.id).'",
    "COMMENT ON COLUMN twilio.message_status_changes.observed_at IS 'When the archive stored the observation (see twilio.message_status_history.observed_at).'",
]


def _number(table: str) -> list[str]:
    return [
        # No default yet: adding the column is then a catalog change, not a rewrite of the table.
        f"ALTER TABLE twilio.{table} ADD COLUMN first_observation_id bigint",
        f"""COMMENT ON COLUMN twilio.{table}.first_observation_id IS
    'Number (twilio.message_status_history.id) of the first observation of the message, its status when first archived; taken when the row is inserted. Null for messages archived before migration 0011, whose first observation, if any, is a row of twilio.message_status_changes.'""",
    ]


def _default(table: str) -> str:
    # Set after the column exists, so that only rows inserted from now on take a number: adding a
    # column with a volatile default would rewrite the table.
    return f"ALTER TABLE twilio.{table} ALTER COLUMN first_observation_id SET DEFAULT nextval('{SEQUENCE}')"


HISTORY = [
    f"""CREATE VIEW twilio.message_status_history AS
    {_derived(*TABLES[0])}
    UNION ALL
    {_derived(*TABLES[1])}
    UNION ALL
    SELECT {COLUMNS} FROM twilio.message_status_changes""",
    """COMMENT ON VIEW twilio.message_status_history IS
    'One row per status the archive observed a message in, from both APIs: its first status when it was first archived, then one row per change. Statuses in the vocabulary of twilio.messages. Time from sent to delivered: join the sent and delivered rows of a message_id and subtract changed_at. A view: the first row of a message that never changed is derived from its message row (status, date_updated or updatedAt, first_seen_at); the rest is kept in twilio.message_status_changes.'""",
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

# 0005's message_facts, word for word but for delivered_at. A rename leaves a view pointing at the
# renamed table, so it is redefined; its columns do not change, so its dependants keep their
# definitions. delivered_at reads what the view twilio.message_status_history would give, without
# reading the view: the delivered rows of message_status_changes when the message has any row there,
# else its derived first row, which is delivered when the message's own status is (and it has a
# number). One probe of the small changes index a message, as 0005 made one of the history's;
# reading the view instead probed it and the message table again (EXPLAIN in docs/operations.md).
FINAL = "('read', 'undelivered', 'failed', 'canceled', 'received', 'partially_delivered')"
HASHED = "'hmac-sha256:%'"


def _numbered(table: str, key: str, updated: str) -> str:
    return (f"(SELECT n.{updated} FROM twilio.{table} AS n "
            f"WHERE n.{key} = m.id AND n.first_observation_id IS NOT NULL)")


def _message_facts(delivered: str) -> str:
    return f"""CREATE OR REPLACE VIEW twilio.message_facts AS
    SELECT
        m.source,
        m.id,
        m.account_sid,
        m.channel,
        m.direction,
        m.status,
        m.from_address,
        m.to_address,
        CASE WHEN m.direction = 'inbound' THEN m.to_address ELSE m.from_address END AS own_address,
        CASE WHEN m.direction = 'inbound' THEN m.from_address ELSE m.to_address END AS counterpart,
        m.created_at,
        (m.created_at AT TIME ZONE 'UTC')::date AS day,
        date_trunc('week', m.created_at AT TIME ZONE 'UTC')::date AS week,
        date_trunc('month', m.created_at AT TIME ZONE 'UTC')::date AS month,
        CASE WHEN m.body NOT LIKE {HASHED} THEN char_length(m.body) END AS body_chars,
        CASE WHEN m.body NOT LIKE {HASHED} THEN regexp_count(m.body, '\\S+') END AS body_words,
        m.body = '' AND coalesce(m.num_media, 0) = 0 AS body_redacted,
        m.num_segments AS segments,
        m.num_media,
        m.price,
        -m.price AS spend,
        m.price_unit,
        m.error_code,
        m.status IN {FINAL} OR (m.status = 'delivered' AND m.channel = 'sms') AS is_final,
        d.delivered_at,
        extract(epoch FROM d.delivered_at - m.created_at)::double precision AS seconds_to_delivered,
        m.deleted_at,
        m.deleted_at IS NOT NULL AS deleted
    FROM twilio.messages AS m
    LEFT JOIN LATERAL (
{delivered}
    ) AS d ON true"""


MESSAGE_FACTS = _message_facts(f"""        SELECT CASE
            WHEN count(*) > 0 THEN min(h.changed_at) FILTER (WHERE h.status = 'delivered')
            WHEN m.status = 'delivered' THEN CASE m.source
                WHEN 'legacy' THEN {_numbered('legacy_messages', 'sid', 'date_updated')}
                ELSE {_numbered('comms_messages', 'id', 'updated_at')} END
        END AS delivered_at
        FROM twilio.message_status_changes AS h
        WHERE h.message_id = m.id AND h.source = m.source""")

MESSAGE_FACTS_0005 = _message_facts("""        SELECT min(h.changed_at) AS delivered_at
        FROM twilio.message_status_history AS h
        WHERE h.message_id = m.id AND h.source = m.source AND h.status = 'delivered'""")


def _statement_trigger(table: str, event: str, body: str) -> list[str]:
    """A statement-level AFTER trigger `{table}_status_{event}` with transition tables, as 0004
    made them (one INSERT ... SELECT per statement, not one call per row), running `body`."""
    referencing = "NEW TABLE AS new_rows" if event == "inserted" else "OLD TABLE AS old_rows NEW TABLE AS new_rows"
    return [
        f"""CREATE FUNCTION twilio.{table}_status_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
{body}
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER {table}_status_{event} AFTER {"INSERT" if event == "inserted" else "UPDATE"} ON twilio.{table}
        REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION twilio.{table}_status_{event}()""",
    ]


def _change_rows(history: str, source: str, key: str, updated: str) -> str:
    """0004's change row: one per updated message whose status changed, into `history`."""
    new, old = _status(source, "n.status"), _status(source, "o.status")
    return f"""            INSERT INTO twilio.{history} (source, message_id, account_sid, status, previous_status, changed_at)
            SELECT '{source}', n.{key}, n.account_sid, {new}, {old}, n.{updated}
            FROM new_rows AS n JOIN old_rows AS o ON o.{key} = n.{key}
            WHERE {new} IS DISTINCT FROM {old};"""


def _updated_trigger(source: str, table: str, key: str, updated: str) -> list[str]:
    new, old = _status(source, "n.status"), _status(source, "o.status")
    # Before a change hides it, the first observation of a message that has none kept yet is
    # written from the OLD row, as the view showed it; then the change row, as in 0004. Only
    # what the derived row shows counts: a deletion mark or a new body keeps it derived.
    shown = " OR ".join(f"n.{c} IS DISTINCT FROM o.{c}" for c in (updated, "account_sid", "first_seen_at",
                                                                  "first_observation_id"))
    first = f"""            INSERT INTO twilio.message_status_changes ({COLUMNS}) OVERRIDING SYSTEM VALUE
            SELECT o.first_observation_id, '{source}', o.{key}, o.account_sid, {old}, NULL, o.{updated}, o.first_seen_at
            FROM old_rows AS o JOIN new_rows AS n ON n.{key} = o.{key}
            WHERE o.status IS NOT NULL AND o.first_observation_id IS NOT NULL
              AND ({new} IS DISTINCT FROM {old} OR {shown})
              AND NOT EXISTS (SELECT 1 FROM twilio.message_status_changes AS c
                              WHERE c.message_id = o.{key} AND c.source = '{source}');"""
    return _statement_trigger(table, "updated", first + "\n" + _change_rows("message_status_changes", source, key, updated))


def _drop_triggers(*events: str) -> list[str]:
    return [statement for _, table, _, _ in TABLES for event in events for statement in (
        f"DROP TRIGGER {table}_status_{event} ON twilio.{table}",
        f"DROP FUNCTION twilio.{table}_status_{event}()",
    )]


def upgrade() -> None:
    for statement in (
        # 0004's four go first; the new UPDATE triggers come last.
        *_drop_triggers("inserted", "updated"),
        *RENAME,
        *(s for t in TABLES for s in _number(t[1])),
        *(_default(t[1]) for t in TABLES),
        *HISTORY,
        MESSAGE_FACTS,
        *(s for t in TABLES for s in _updated_trigger(*t)),
    ):
        op.execute(statement)


# --- downgrade: 0004's table and triggers, with every derived row written back ------------------


def _inserted_trigger_0004(source: str, table: str, key: str, updated: str) -> list[str]:
    new = _status(source, "n.status")
    return _statement_trigger(table, "inserted", f"""            INSERT INTO twilio.message_status_history (source, message_id, account_sid, status, changed_at)
            SELECT '{source}', n.{key}, n.account_sid, {new}, n.{updated} FROM new_rows AS n WHERE n.status IS NOT NULL;""")


def _updated_trigger_0004(source: str, table: str, key: str, updated: str) -> list[str]:
    return _statement_trigger(table, "updated", _change_rows("message_status_history", source, key, updated))


COMMENTS_0004 = [
    """COMMENT ON TABLE twilio.message_status_history IS
    'One row per status the archive observed a message in, from both APIs: its first status when it was first archived, then one row per change. Statuses in the vocabulary of twilio.messages. Time from sent to delivered: join the sent and delivered rows of a message_id and subtract changed_at.'""",
    "COMMENT ON COLUMN twilio.message_status_history.id IS 'Number of the observation, increasing in the order they were made.'",
    "COMMENT ON COLUMN twilio.message_status_history.observed_at IS 'When the archive stored the observation.'",
]


def downgrade() -> None:
    for statement in (
        *_drop_triggers("updated"),
        # The derived rows, materialized while the view still tells which they are.
        *(f"INSERT INTO twilio.message_status_changes ({COLUMNS}) OVERRIDING SYSTEM VALUE {_derived(*t)}"
          for t in TABLES),
        # The table takes its name back, and message_facts is pointed at it before the view goes,
        # so no dependant of message_facts has to be rebuilt.
        "ALTER VIEW twilio.message_status_history RENAME TO message_status_history_0011",
        "ALTER TABLE twilio.message_status_changes RENAME TO message_status_history",
        MESSAGE_FACTS_0005,
        "DROP VIEW twilio.message_status_history_0011",
        "ALTER INDEX twilio.message_status_changes_message_idx RENAME TO message_status_history_message_idx",
        "ALTER TABLE twilio.message_status_history RENAME CONSTRAINT message_status_changes_pkey TO message_status_history_pkey",
        "ALTER TABLE twilio.message_status_history RENAME CONSTRAINT message_status_changes_source_check"
        " TO message_status_history_source_check",
        *COMMENTS_0004,
        "ALTER TABLE twilio.legacy_messages DROP COLUMN first_observation_id",
        "ALTER TABLE twilio.comms_messages DROP COLUMN first_observation_id",
        *(s for t in TABLES for s in (*_inserted_trigger_0004(*t), *_updated_trigger_0004(*t))),
    ):
        op.execute(statement)
