"""The media of legacy messages (MMS, WhatsApp): what a message carried, and which lists were read.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

twilio.legacy_media holds one row per media item of a legacy message, as its message's media
list (`.../Messages/{MessageSid}/Media.json`) served it; an item that list no longer serves is
kept and marked deleted_at. twilio.legacy_media_lists is the work queue's memory: which
message's list was read at which num_media. A message whose num_media is above 0 and whose list
was not read at that num_media is owed (sync/media.py), so a killed process finds its backlog
again in the database; the partial index keeps finding it cheap on an archive whose messages
are mostly plain SMS.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STREAMS_BEFORE = "('comms_messages', 'comms_operations', 'legacy_messages')"
STREAMS = "('comms_messages', 'comms_operations', 'legacy_messages', 'legacy_media')"

UPGRADE = [
    """CREATE TABLE twilio.legacy_media (
        sid text PRIMARY KEY,
        account_sid text NOT NULL,
        message_sid text NOT NULL,
        content_type text,
        date_created timestamptz,
        date_updated timestamptz,
        uri text,
        raw jsonb NOT NULL,
        parse_problems text[],
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_changed_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    )""",
    "CREATE INDEX legacy_media_message_idx ON twilio.legacy_media (message_sid)",
    "CREATE INDEX legacy_media_date_created_idx ON twilio.legacy_media (date_created)",
    """COMMENT ON TABLE twilio.legacy_media IS
    'One row per media item (picture, video, PDF, vCard...) of a legacy message, as the message''s media list (/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json) served it. Join to twilio.legacy_messages on message_sid = sid. The files themselves are not archived: see uri. Rows are kept after Twilio deletes the media (deleted_at).'""",
    "COMMENT ON COLUMN twilio.legacy_media.sid IS 'Twilio''s unique id of the media item (payload field sid, starts with ME).'",
    """COMMENT ON COLUMN twilio.legacy_media.account_sid IS
    'The Twilio account (or subaccount) that owns the message and its media (payload field account_sid, starts with AC).'""",
    """COMMENT ON COLUMN twilio.legacy_media.message_sid IS
    'The message the media belongs to (payload field parent_sid; twilio.legacy_messages.sid).'""",
    """COMMENT ON COLUMN twilio.legacy_media.content_type IS
    'MIME type of the media (payload field content_type), for example image/jpeg, video/mp4, application/pdf, text/vcard.'""",
    """COMMENT ON COLUMN twilio.legacy_media.date_created IS
    'When Twilio created the media item (RFC 2822 date_created, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.legacy_media.date_updated IS
    'When Twilio last changed the media item (RFC 2822 date_updated, as timestamptz).'""",
    """COMMENT ON COLUMN twilio.legacy_media.uri IS
    'Path of the media item''s metadata, relative to https://api.twilio.com (payload field uri); the same path without .json serves the file itself, with the account''s credentials.'""",
    """COMMENT ON COLUMN twilio.legacy_media.raw IS
    'The media item exactly as the list returned it, as JSON (a NUL character replaced by U+FFFD).'""",
    """COMMENT ON COLUMN twilio.legacy_media.parse_problems IS
    'What could not be turned into the typed columns, one entry per problem, for example date_created: not an RFC 2822 date; the affected column is null and the original value is in raw. Null when the item was clean.'""",
    "COMMENT ON COLUMN twilio.legacy_media.first_seen_at IS 'When the archive first stored this media item.'",
    """COMMENT ON COLUMN twilio.legacy_media.last_changed_at IS
    'When the archive last stored a changed payload for this media item; equal to first_seen_at if it never changed.'""",
    """COMMENT ON COLUMN twilio.legacy_media.deleted_at IS
    'When the archive found the media item gone: a later read of its message''s media list no longer served it (run --media-interval). The row itself is never removed. Null while Twilio still serves it.'""",
    """CREATE TABLE twilio.legacy_media_lists (
        message_sid text PRIMARY KEY,
        account_sid text NOT NULL,
        num_media integer NOT NULL,
        outcome text NOT NULL CONSTRAINT legacy_media_lists_outcome_check CHECK (outcome IN ('read', 'gone')),
        items integer NOT NULL DEFAULT 0,
        read_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX legacy_media_lists_read_at_idx ON twilio.legacy_media_lists (read_at) WHERE outcome = 'read'",
    """COMMENT ON TABLE twilio.legacy_media_lists IS
    'The last read of each legacy message''s media list. A message with num_media above 0 and no row here at that num_media still owes its media (twilio-archive status shows how many).'""",
    "COMMENT ON COLUMN twilio.legacy_media_lists.message_sid IS 'The message whose media list was read (twilio.legacy_messages.sid).'",
    "COMMENT ON COLUMN twilio.legacy_media_lists.account_sid IS 'The account the list was read as (starts with AC).'",
    """COMMENT ON COLUMN twilio.legacy_media_lists.num_media IS
    'The message''s num_media when its list was read: the list is read again when num_media changes.'""",
    """COMMENT ON COLUMN twilio.legacy_media_lists.outcome IS
    'read: the list was served; gone: Twilio answered 404 (the message was deleted or aged out), a fact rather than an error.'""",
    "COMMENT ON COLUMN twilio.legacy_media_lists.items IS 'How many media items the list served at that read.'",
    "COMMENT ON COLUMN twilio.legacy_media_lists.read_at IS 'When the list was last read.'",
    # What is owed: messages with media, oldest first, per account. Plain SMS never enter it,
    # so it stays a small part of the table however large the archive grows.
    """CREATE INDEX legacy_messages_media_idx ON twilio.legacy_messages (account_sid, date_created)
        WHERE num_media > 0""",
    "ALTER TABLE twilio.rejected_records DROP CONSTRAINT rejected_records_stream_check",
    f"ALTER TABLE twilio.rejected_records ADD CONSTRAINT rejected_records_stream_check CHECK (stream IN {STREAMS})",
    """COMMENT ON COLUMN twilio.rejected_records.stream IS
    'Which Twilio list served it, named after the table it was meant for: legacy_messages, comms_messages, comms_operations or legacy_media.'""",
]

DOWNGRADE = [
    "DELETE FROM twilio.rejected_records WHERE stream = 'legacy_media'",
    "ALTER TABLE twilio.rejected_records DROP CONSTRAINT rejected_records_stream_check",
    f"ALTER TABLE twilio.rejected_records ADD CONSTRAINT rejected_records_stream_check CHECK (stream IN {STREAMS_BEFORE})",
    """COMMENT ON COLUMN twilio.rejected_records.stream IS
    'Which Twilio list served it, named after the table it was meant for: legacy_messages, comms_messages or comms_operations.'""",
    "DROP INDEX twilio.legacy_messages_media_idx",
    "DROP TABLE twilio.legacy_media_lists",
    "DROP TABLE twilio.legacy_media",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
