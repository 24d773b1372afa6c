"""Initial schema: schema twilio, the record tables, scans, the messages view, the reader role.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand from docs/schema-contract.md; sync/store.py writes these column names.
Each statement is its own op.execute because asyncpg prepares what it runs, and a
prepared statement holds one command.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


SCHEMA = [
    "CREATE SCHEMA twilio",
    """COMMENT ON SCHEMA twilio IS
    'Archive of the Twilio account''s messages, copied from both of Twilio''s message APIs by twilio-archive.
Start with the view twilio.messages, which puts both APIs in one shape.'""",
]

LEGACY_MESSAGES = [
    """CREATE TABLE twilio.legacy_messages (
        sid text PRIMARY KEY,
        account_sid text,
        messaging_service_sid text,
        direction text,
        from_address text,
        to_address text,
        body text,
        status text,
        num_segments integer,
        num_media integer,
        price numeric,
        price_unit text,
        error_code integer,
        error_message text,
        api_version text,
        date_created timestamptz,
        date_sent timestamptz,
        date_updated timestamptz,
        tags jsonb,
        uri text,
        deleted_at timestamptz,
        raw jsonb NOT NULL,
        raw_text text,
        parse_problems text[],
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_changed_at timestamptz NOT NULL DEFAULT now()
    )""",
    """COMMENT ON TABLE twilio.legacy_messages IS
    'One row per message from the classic Programmable Messaging API (2010-04-01, /Accounts/{AccountSid}/Messages.json): SMS, MMS, WhatsApp, RCS and Messenger messages sent or received by the account. Rows are kept after Twilio deletes or ages out a message.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.sid IS
    'Twilio''s unique id of the message (payload field sid, starts with SM or MM).'""",
    """COMMENT ON COLUMN twilio.legacy_messages.account_sid IS
    'The Twilio account (or subaccount) that owns the message (payload field account_sid, starts with AC).'""",
    """COMMENT ON COLUMN twilio.legacy_messages.messaging_service_sid IS
    'The Messaging Service the message went through (payload field messaging_service_sid, starts with MG); null when sent from a number directly.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.direction IS
    'Twilio''s direction word (payload field direction): inbound for received messages; outbound-api, outbound-call or outbound-reply for messages the account sent.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.from_address IS
    'Sender (payload field from): a phone number in E.164 form such as +14155550100, a short code, an alphanumeric sender id, or a channel address such as whatsapp:+14155550100.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.to_address IS
    'Recipient (payload field to), in the same forms as from_address.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.body IS
    'Message text (payload field body). An empty string can mean the body was redacted at Twilio after sending.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.status IS
    'Delivery status as Twilio last reported it (payload field status): queued, sending, sent, delivered, read, undelivered, failed, accepted, scheduled, canceled, receiving, received.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.num_segments IS
    'Number of SMS segments the message was split into, which is what Twilio bills by (payload field num_segments, sent as a string).'""",
    """COMMENT ON COLUMN twilio.legacy_messages.num_media IS
    'Number of media attachments (payload field num_media, sent as a string); above 0 means MMS or media over WhatsApp.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.price IS
    'What Twilio charged for the message, in price_unit, exactly as reported (payload field price): Twilio writes charges as negative amounts such as -0.00750. Null until Twilio has priced the message.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.price_unit IS
    'Currency of price as an ISO 4217 code such as USD (payload field price_unit).'""",
    """COMMENT ON COLUMN twilio.legacy_messages.error_code IS
    'Twilio error code explaining a failed or undelivered message, such as 30007 for carrier filtering (payload field error_code); null when there was no error. Look codes up at twilio.com/docs/api/errors.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.error_message IS
    'Twilio''s text for error_code (payload field error_message); Twilio may reword it, so group by error_code instead.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.api_version IS
    'API version Twilio used to process the message (payload field api_version), normally 2010-04-01.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.date_created IS
    'When Twilio created the message record (RFC 2822 date_created from the 2010-04-01 API, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.legacy_messages.date_sent IS
    'When Twilio sent the message, or received it for inbound messages (RFC 2822 date_sent from the 2010-04-01 API, as timestamptz); null while the message has not been sent.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.date_updated IS
    'When Twilio last changed the message, for example a status change (RFC 2822 date_updated from the 2010-04-01 API, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.legacy_messages.tags IS
    'Key-value tags Twilio attached to the message (payload field tags, a JSON object); null when the payload has none.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.uri IS
    'Path of the message in the 2010-04-01 API (payload field uri), relative to https://api.twilio.com.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.deleted_at IS
    'When the archive established that Twilio deleted this message: set when a complete scan of the account no longer returned it. The row itself is never removed. Null while Twilio still lists it.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.raw IS
    'The message exactly as the 2010-04-01 list returned it, as JSON. Postgres cannot store the NUL character (U+0000) in jsonb, so any NUL is replaced here by U+FFFD and the untouched text is kept in raw_text.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.raw_text IS
    'The exact JSON text Twilio sent, kept only when raw had to be altered (it contained a NUL character); otherwise null.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.parse_problems IS
    'What could not be turned into the typed columns, one entry per problem, for example date_sent: unparseable ''xx'' or nul_replaced; the affected column is null and the original value is in raw. Null when the record was clean.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.first_seen_at IS
    'When the archive first stored this message.'""",
    """COMMENT ON COLUMN twilio.legacy_messages.last_changed_at IS
    'When the archive last stored a changed payload for this message (a status change, a redaction, a price arriving); equal to first_seen_at if it never changed.'""",
]

COMMS_MESSAGES = [
    """CREATE TABLE twilio.comms_messages (
        id text PRIMARY KEY,
        account_sid text NOT NULL,
        status text,
        from_address text,
        from_channel text,
        from_sender_id text,
        to_address text,
        to_channel text,
        recipient_count integer,
        operation_id text,
        tags jsonb,
        scheduled_for timestamptz,
        created_at timestamptz,
        updated_at timestamptz,
        deleted_at timestamptz,
        body text,
        raw jsonb NOT NULL,
        raw_text text,
        parse_problems text[],
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_changed_at timestamptz NOT NULL DEFAULT now()
    )""",
    """COMMENT ON TABLE twilio.comms_messages IS
    'One row per message from the newer Communications (bulk messaging) API, GET /v1/Messages. Twilio keeps these for only 7 days, so this table is often the only long-term copy.'""",
    """COMMENT ON COLUMN twilio.comms_messages.id IS
    'Twilio''s unique id of the message (payload field id, starts with comms_message_).'""",
    """COMMENT ON COLUMN twilio.comms_messages.account_sid IS
    'The Twilio account the message was copied from. The v1 payload does not carry it, so the archive records the account it was reading.'""",
    """COMMENT ON COLUMN twilio.comms_messages.status IS
    'Status as Twilio last reported it, in upper case (payload field status): SCHEDULED, QUEUED, SENT, DELIVERED, READ, UNDELIVERED, FAILED, CANCELED, GROUP (per-recipient status lives in Twilio receipts) or INBOUND (a received message).'""",
    """COMMENT ON COLUMN twilio.comms_messages.from_address IS
    'Sender address, such as a phone number in E.164 form (payload field from.address).'""",
    """COMMENT ON COLUMN twilio.comms_messages.from_channel IS
    'Channel the message went over, in upper case: SMS, RCS or WHATSAPP (payload field from.channel).'""",
    """COMMENT ON COLUMN twilio.comms_messages.from_sender_id IS
    'The Twilio Sender used (payload field from.senderId, starts with comms_sender_).'""",
    """COMMENT ON COLUMN twilio.comms_messages.to_address IS
    'Address of the first recipient (payload field to[0].address); group messages have more, see recipient_count and raw.'""",
    """COMMENT ON COLUMN twilio.comms_messages.to_channel IS
    'Address type of the first recipient, such as PHONE (payload field to[0].channel).'""",
    """COMMENT ON COLUMN twilio.comms_messages.recipient_count IS
    'Number of recipients (length of the payload list to): 1 except for group messages.'""",
    """COMMENT ON COLUMN twilio.comms_messages.operation_id IS
    'The send request (Operation) that created the message, joinable to twilio.comms_operations.id (payload: the related entry named OPERATION); null for messages not created by an operation, such as inbound ones.'""",
    """COMMENT ON COLUMN twilio.comms_messages.tags IS
    'Key-value tags given when the message was sent (payload field tags, a JSON object of strings).'""",
    """COMMENT ON COLUMN twilio.comms_messages.scheduled_for IS
    'When the message was scheduled to be sent (payload field scheduledFor, RFC 3339); null unless it was created with a schedule.'""",
    """COMMENT ON COLUMN twilio.comms_messages.created_at IS
    'When Twilio created the message (payload field createdAt, RFC 3339, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.comms_messages.updated_at IS
    'When Twilio last changed the message, for example a status change (payload field updatedAt, RFC 3339, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.comms_messages.deleted_at IS
    'When the message was deleted at Twilio (payload field deletedAt, RFC 3339, as timestamptz); the row itself is never removed. Null while it exists.'""",
    """COMMENT ON COLUMN twilio.comms_messages.body IS
    'Message text, which the list omits: filled from GET /v1/Messages/{id}. Null until the archive has fetched it.'""",
    """COMMENT ON COLUMN twilio.comms_messages.raw IS
    'The message exactly as the v1 Messages list returned it, as JSON. Postgres cannot store the NUL character (U+0000) in jsonb, so any NUL is replaced here by U+FFFD and the untouched text is kept in raw_text.'""",
    """COMMENT ON COLUMN twilio.comms_messages.raw_text IS
    'The exact JSON text Twilio sent, kept only when raw had to be altered (it contained a NUL character); otherwise null.'""",
    """COMMENT ON COLUMN twilio.comms_messages.parse_problems IS
    'What could not be turned into the typed columns, one entry per problem, for example createdAt: unparseable ''xx'' or nul_replaced; the affected column is null and the original value is in raw. Null when the record was clean.'""",
    """COMMENT ON COLUMN twilio.comms_messages.first_seen_at IS
    'When the archive first stored this message.'""",
    """COMMENT ON COLUMN twilio.comms_messages.last_changed_at IS
    'When the archive last stored a changed payload for this message (such as a status change); equal to first_seen_at if it never changed.'""",
]

# The twelve counters of a v1 Operation's stats object, in the order Twilio documents them.
OPERATION_STATS = {
    "total": "Number of messages the operation created",
    "recipients": "Number of recipients the operation targeted",
    "attempts": "Number of sending attempts Twilio made, retries included",
    "scheduled": "Number of its messages scheduled to be sent later",
    "queued": "Number of its messages queued at Twilio for sending",
    "sent": "Number of its messages Twilio has sent",
    "delivered": "Number of its messages delivered to the recipient",
    "read": "Number of its messages the recipient has read (channels with read receipts)",
    "undelivered": "Number of its messages sent by Twilio but not delivered",
    "unaddressable": "Number of recipients never attempted because no sender matched any of their addresses",
    "failed": "Number of its messages that failed inside Twilio",
    "canceled": "Number of its messages canceled by an API request",
}

COMMS_OPERATIONS = [
    """CREATE TABLE twilio.comms_operations (
        id text PRIMARY KEY,
        account_sid text NOT NULL,
        status text,
        stats_total integer,
        stats_recipients integer,
        stats_attempts integer,
        stats_scheduled integer,
        stats_queued integer,
        stats_sent integer,
        stats_delivered integer,
        stats_read integer,
        stats_undelivered integer,
        stats_unaddressable integer,
        stats_failed integer,
        stats_canceled integer,
        created_at timestamptz,
        updated_at timestamptz,
        raw jsonb NOT NULL,
        raw_text text,
        parse_problems text[],
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_changed_at timestamptz NOT NULL DEFAULT now()
    )""",
    """COMMENT ON TABLE twilio.comms_operations IS
    'One row per send request (Operation) in the Communications API, GET /v1/Messages/Operations: one API call that created one or many messages, with Twilio''s running counts of what became of them. Join to twilio.comms_messages on operation_id.'""",
    """COMMENT ON COLUMN twilio.comms_operations.id IS
    'Twilio''s unique id of the operation (payload field id, starts with comms_operation_).'""",
    """COMMENT ON COLUMN twilio.comms_operations.account_sid IS
    'The Twilio account the operation was copied from. The v1 payload does not carry it, so the archive records the account it was reading.'""",
    """COMMENT ON COLUMN twilio.comms_operations.status IS
    'Progress of the operation as Twilio last reported it, in upper case (payload field status): SCHEDULED, PROCESSING, COMPLETED or CANCELED.'""",
    *(
        f"""COMMENT ON COLUMN twilio.comms_operations.stats_{name} IS
    '{text}, as of updated_at (payload field stats.{name}).'"""
        for name, text in OPERATION_STATS.items()
    ),
    """COMMENT ON COLUMN twilio.comms_operations.created_at IS
    'When the operation was requested (payload field createdAt, RFC 3339, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.comms_operations.updated_at IS
    'When Twilio last changed the operation or its counts (payload field updatedAt, RFC 3339, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.comms_operations.raw IS
    'The operation exactly as the v1 Operations list returned it, as JSON. Postgres cannot store the NUL character (U+0000) in jsonb, so any NUL is replaced here by U+FFFD and the untouched text is kept in raw_text.'""",
    """COMMENT ON COLUMN twilio.comms_operations.raw_text IS
    'The exact JSON text Twilio sent, kept only when raw had to be altered (it contained a NUL character); otherwise null.'""",
    """COMMENT ON COLUMN twilio.comms_operations.parse_problems IS
    'What could not be turned into the typed columns, one entry per problem, for example stats: not an object; the affected columns are null and the original value is in raw. Null when the record was clean.'""",
    """COMMENT ON COLUMN twilio.comms_operations.first_seen_at IS
    'When the archive first stored this operation.'""",
    """COMMENT ON COLUMN twilio.comms_operations.last_changed_at IS
    'When the archive last stored a changed payload for this operation (its counts move as messages progress); equal to first_seen_at if it never changed.'""",
]

SCANS = [
    """CREATE TABLE twilio.scans (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_sid text NOT NULL,
        stream text NOT NULL
            CONSTRAINT scans_stream_check CHECK (stream IN ('comms_messages', 'comms_operations', 'legacy_messages')),
        kind text NOT NULL,
        window_start timestamptz NOT NULL,
        window_end timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'running'
            CONSTRAINT scans_status_check CHECK (status IN ('running', 'complete', 'abandoned', 'failed')),
        cursor text,
        pages integer NOT NULL DEFAULT 0,
        records_seen bigint NOT NULL DEFAULT 0,
        rows_inserted bigint NOT NULL DEFAULT 0,
        rows_updated bigint NOT NULL DEFAULT 0,
        problems bigint NOT NULL DEFAULT 0,
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        error text
    )""",
    """COMMENT ON TABLE twilio.scans IS
    'The archive''s own log: one row per pass over one Twilio list (stream) for one account. The row of a running pass is also its checkpoint, so an interrupted copy resumes where it stopped. Use it to see how fresh and how complete the archive is.'""",
    """COMMENT ON COLUMN twilio.scans.id IS
    'Number of the pass, increasing in the order passes started.'""",
    """COMMENT ON COLUMN twilio.scans.account_sid IS
    'The Twilio account that was read (starts with AC).'""",
    """COMMENT ON COLUMN twilio.scans.stream IS
    'Which Twilio list was read, named after the table it fills: legacy_messages, comms_messages or comms_operations.'""",
    """COMMENT ON COLUMN twilio.scans.kind IS
    'Why the pass ran, such as backfill (copying history) or a later refresh of recent records.'""",
    """COMMENT ON COLUMN twilio.scans.window_start IS
    'Start of the time range of records the pass asked Twilio for.'""",
    """COMMENT ON COLUMN twilio.scans.window_end IS
    'End of the time range of records the pass asked Twilio for.'""",
    """COMMENT ON COLUMN twilio.scans.status IS
    'running (in progress, or interrupted and waiting to resume), complete (every page was read), abandoned (given up and superseded) or failed (stopped by an error, see error).'""",
    """COMMENT ON COLUMN twilio.scans.cursor IS
    'Relative URL of the next page to fetch from Twilio, as Twilio handed it out; where a resumed pass continues. Null once complete.'""",
    """COMMENT ON COLUMN twilio.scans.pages IS
    'Number of pages read so far.'""",
    """COMMENT ON COLUMN twilio.scans.records_seen IS
    'Number of records Twilio returned so far, changed or not.'""",
    """COMMENT ON COLUMN twilio.scans.rows_inserted IS
    'Number of records the archive had not seen before.'""",
    """COMMENT ON COLUMN twilio.scans.rows_updated IS
    'Number of already archived records whose payload had changed.'""",
    """COMMENT ON COLUMN twilio.scans.problems IS
    'Number of records stored with parse_problems (fields that could not be typed).'""",
    """COMMENT ON COLUMN twilio.scans.started_at IS
    'When the pass started.'""",
    """COMMENT ON COLUMN twilio.scans.updated_at IS
    'When the pass last saved progress; a running pass whose updated_at is old has probably been interrupted.'""",
    """COMMENT ON COLUMN twilio.scans.finished_at IS
    'When the pass ended (complete, abandoned or failed); null while running.'""",
    """COMMENT ON COLUMN twilio.scans.error IS
    'Why the pass failed, in one line; null unless status is failed.'""",
]

# Named so that the questions in docs/schema-contract.md ("by day", "by status", "by number",
# "which errors") each have an index; the partial one skips the many rows without an error.
INDEXES = [
    "CREATE UNIQUE INDEX scans_one_running_idx ON twilio.scans (account_sid, stream, kind) WHERE status = 'running'",
    "CREATE INDEX scans_account_stream_started_idx ON twilio.scans (account_sid, stream, started_at DESC)",
    "CREATE INDEX legacy_messages_date_created_idx ON twilio.legacy_messages (date_created)",
    "CREATE INDEX legacy_messages_date_sent_idx ON twilio.legacy_messages (date_sent)",
    "CREATE INDEX legacy_messages_status_date_created_idx ON twilio.legacy_messages (status, date_created)",
    "CREATE INDEX legacy_messages_from_date_created_idx ON twilio.legacy_messages (from_address, date_created)",
    "CREATE INDEX legacy_messages_to_date_created_idx ON twilio.legacy_messages (to_address, date_created)",
    "CREATE INDEX legacy_messages_error_code_idx ON twilio.legacy_messages (error_code) WHERE error_code IS NOT NULL",
    "CREATE INDEX comms_messages_created_at_idx ON twilio.comms_messages (created_at)",
    "CREATE INDEX comms_messages_status_created_at_idx ON twilio.comms_messages (status, created_at)",
    "CREATE INDEX comms_messages_from_created_at_idx ON twilio.comms_messages (from_address, created_at)",
    "CREATE INDEX comms_messages_to_created_at_idx ON twilio.comms_messages (to_address, created_at)",
    "CREATE INDEX comms_messages_operation_id_idx ON twilio.comms_messages (operation_id)",
    "CREATE INDEX comms_operations_created_at_idx ON twilio.comms_operations (created_at)",
    "CREATE INDEX comms_operations_status_idx ON twilio.comms_operations (status)",
]

# Every expression passes values it does not recognise through (lower-cased) rather than
# mapping them to null: a status or channel Twilio adds later must still show up here.
MESSAGES_VIEW = [
    """CREATE VIEW twilio.messages AS
    SELECT
        'comms'::text AS source,
        m.id,
        m.account_sid,
        lower(m.from_channel) AS channel,
        CASE WHEN upper(m.status) = 'INBOUND' THEN 'inbound' ELSE 'outbound' END AS direction,
        m.from_address,
        m.to_address,
        CASE WHEN upper(m.status) = 'INBOUND' THEN 'received' ELSE lower(m.status) END AS status,
        m.body,
        m.created_at,
        NULL::timestamptz AS sent_at,
        m.updated_at,
        m.deleted_at,
        NULL::numeric AS price,
        NULL::text AS price_unit,
        NULL::integer AS error_code,
        NULL::integer AS num_segments,
        NULL::integer AS num_media,
        m.tags
    FROM twilio.comms_messages AS m
    UNION ALL
    SELECT
        'legacy'::text,
        l.sid,
        l.account_sid,
        CASE
            WHEN lower(l.from_address) LIKE 'whatsapp:%' OR lower(l.to_address) LIKE 'whatsapp:%' THEN 'whatsapp'
            WHEN lower(l.from_address) LIKE 'rcs:%' OR lower(l.to_address) LIKE 'rcs:%' THEN 'rcs'
            WHEN lower(l.from_address) LIKE 'messenger:%' OR lower(l.to_address) LIKE 'messenger:%' THEN 'messenger'
            ELSE 'sms'
        END,
        CASE WHEN lower(l.direction) = 'inbound' THEN 'inbound' ELSE 'outbound' END,
        l.from_address,
        l.to_address,
        lower(l.status),
        l.body,
        l.date_created,
        l.date_sent,
        l.date_updated,
        l.deleted_at,
        l.price,
        l.price_unit,
        l.error_code,
        l.num_segments,
        l.num_media,
        l.tags
    FROM twilio.legacy_messages AS l""",
    """COMMENT ON VIEW twilio.messages IS
    'Every archived message from both Twilio APIs in one shape, one row per message: the place to start. Statuses use one lower-case vocabulary for both APIs; columns one API lacks are null for its rows. Deleted messages stay, with deleted_at set.'""",
    """COMMENT ON COLUMN twilio.messages.source IS
    'Which API the row came from: legacy (2010-04-01 Messages, table legacy_messages) or comms (v1 Communications API, table comms_messages).'""",
    """COMMENT ON COLUMN twilio.messages.id IS
    'Twilio''s id of the message: sid (SM...) for legacy rows, id (comms_message_...) for comms rows.'""",
    """COMMENT ON COLUMN twilio.messages.account_sid IS
    'The Twilio account the message belongs to (starts with AC).'""",
    """COMMENT ON COLUMN twilio.messages.channel IS
    'sms, whatsapp, rcs or messenger. Comms rows: from.channel lower-cased. Legacy rows: whatsapp, rcs or messenger when either address has that prefix (whatsapp:+1...), otherwise sms (which includes MMS).'""",
    """COMMENT ON COLUMN twilio.messages.direction IS
    'inbound (received by the account) or outbound (sent by it). Comms rows are inbound when Twilio''s status is INBOUND; legacy rows when Twilio''s direction is inbound.'""",
    """COMMENT ON COLUMN twilio.messages.from_address IS
    'Sender address, such as +14155550100 or whatsapp:+14155550100.'""",
    """COMMENT ON COLUMN twilio.messages.to_address IS
    'Recipient address (for comms group messages, the first recipient).'""",
    """COMMENT ON COLUMN twilio.messages.status IS
    'Delivery status in the legacy API''s lower-case words (queued, sent, delivered, read, undelivered, failed, canceled, scheduled, received, ...). Comms statuses are lower-cased, and INBOUND becomes received; values Twilio adds later pass through lower-cased.'""",
    """COMMENT ON COLUMN twilio.messages.body IS
    'Message text; null for comms messages whose text the archive has not fetched yet.'""",
    """COMMENT ON COLUMN twilio.messages.created_at IS
    'When Twilio created the message (legacy date_created, comms createdAt).'""",
    """COMMENT ON COLUMN twilio.messages.sent_at IS
    'When Twilio sent or received the message (legacy date_sent); null for comms rows, whose list does not report it, and for legacy messages not yet sent.'""",
    """COMMENT ON COLUMN twilio.messages.updated_at IS
    'When Twilio last changed the message (legacy date_updated, comms updatedAt).'""",
    """COMMENT ON COLUMN twilio.messages.deleted_at IS
    'When the message was deleted at Twilio: comms deletedAt, or for legacy rows when a complete scan no longer found it. Null while it exists; the row stays either way.'""",
    """COMMENT ON COLUMN twilio.messages.price IS
    'What Twilio charged, in price_unit, as Twilio reports it (charges are negative, such as -0.00750); legacy rows only.'""",
    """COMMENT ON COLUMN twilio.messages.price_unit IS
    'Currency of price, such as USD; legacy rows only.'""",
    """COMMENT ON COLUMN twilio.messages.error_code IS
    'Twilio error code of a failed or undelivered message (see twilio.com/docs/api/errors); legacy rows only.'""",
    """COMMENT ON COLUMN twilio.messages.num_segments IS
    'Number of billed SMS segments; legacy rows only.'""",
    """COMMENT ON COLUMN twilio.messages.num_media IS
    'Number of media attachments; legacy rows only.'""",
    """COMMENT ON COLUMN twilio.messages.tags IS
    'Key-value tags attached to the message, as a JSON object.'""",
]

# Managed Postgres hands out a database owner without CREATEROLE, and such a user must still be
# able to migrate: the role is created only by one allowed to, granted to if an administrator
# made it already, and otherwise the administrator is told, by NOTICE, exactly what to run.
# Default privileges make tables of later revisions readable without a new grant.
GRANT_READER = """DO $grant$
DECLARE
    may_create_roles boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'twilio_archive_reader') THEN
        SELECT rolsuper OR rolcreaterole INTO may_create_roles FROM pg_roles WHERE rolname = current_user;
        IF NOT coalesce(may_create_roles, false) THEN
            RAISE NOTICE '%', format(
                'role twilio_archive_reader not created: %I may not create roles. '
                'For read-only access, an administrator can run in database %I: '
                'CREATE ROLE twilio_archive_reader NOLOGIN; '
                'GRANT USAGE ON SCHEMA twilio TO twilio_archive_reader; '
                'GRANT SELECT ON ALL TABLES IN SCHEMA twilio TO twilio_archive_reader; '
                'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA twilio GRANT SELECT ON TABLES TO twilio_archive_reader; '
                'then GRANT twilio_archive_reader TO each analyst login.',
                current_user, current_database(), current_user);
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE twilio_archive_reader NOLOGIN;
            COMMENT ON ROLE twilio_archive_reader IS
                'Read-only access to the twilio-archive schema twilio; grant it to analyst logins.';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database of this cluster was migrated at the same moment and made it
        END;
    END IF;
    GRANT USAGE ON SCHEMA twilio TO twilio_archive_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA twilio TO twilio_archive_reader;
    ALTER DEFAULT PRIVILEGES IN SCHEMA twilio GRANT SELECT ON TABLES TO twilio_archive_reader;
END
$grant$"""

REVOKE_READER = """DO $revoke$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'twilio_archive_reader') THEN
        -- Dropping the schema below would take these along; they are revoked anyway so that
        -- the downgrade reads as the mirror of the upgrade.
        ALTER DEFAULT PRIVILEGES IN SCHEMA twilio REVOKE SELECT ON TABLES FROM twilio_archive_reader;
        REVOKE SELECT ON ALL TABLES IN SCHEMA twilio FROM twilio_archive_reader;
        REVOKE USAGE ON SCHEMA twilio FROM twilio_archive_reader;
    END IF;
END
$revoke$"""

# The role is cluster-wide while this revision is per database: other databases (clones of a
# migrated template, say) may still hold grants to it, and the migrating user may not be
# allowed to drop roles at all. Either way the role stays and the downgrade still succeeds.
# A role someone has been granted is kept too: dropping it would silently take access away.
DROP_READER = """DO $drop$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'twilio_archive_reader')
       AND NOT EXISTS (
           SELECT FROM pg_auth_members AS am JOIN pg_roles AS r ON r.oid = am.roleid
           WHERE r.rolname = 'twilio_archive_reader') THEN
        DROP ROLE twilio_archive_reader;
    END IF;
EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege THEN
    RAISE NOTICE 'role twilio_archive_reader kept: %', SQLERRM;
END
$drop$"""


def upgrade() -> None:
    for statement in (
        *SCHEMA,
        *LEGACY_MESSAGES,
        *COMMS_MESSAGES,
        *COMMS_OPERATIONS,
        *SCANS,
        *INDEXES,
        *MESSAGES_VIEW,
        GRANT_READER,
    ):
        op.execute(statement)


def downgrade() -> None:
    # Objects are dropped one by one, not with DROP SCHEMA ... CASCADE, so that anything
    # someone else put in schema twilio makes the downgrade fail instead of vanishing.
    for statement in (
        REVOKE_READER,
        "DROP VIEW twilio.messages",
        "DROP TABLE twilio.scans",
        "DROP TABLE twilio.comms_operations",
        "DROP TABLE twilio.comms_messages",
        "DROP TABLE twilio.legacy_messages",
        "DROP SCHEMA twilio",
        DROP_READER,
    ):
        op.execute(statement)
