"""What analysts get: one row per message with its derived facts, and three overviews.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

message_facts, number_overview and error_overview are plain views over twilio.messages and
twilio.message_status_history, never stale. daily_account_overview is a materialized view: read
over the whole history it costs about 10 s at 1M messages per API (bench/analytics.py, figures in
docs/analysts.md), so it is computed once per full cycle instead: `backfill` refreshes it at its
end and `run` after each full cycle (sync/analytics.py), CONCURRENTLY, which its unique index
allows. It is created WITH DATA, so it is always populated and readable. The reader role reads
all four through the default privileges granted in 0001.

Vocabulary (that of twilio.messages): a status is final when Twilio will not change it again.
delivered is final only on SMS: WhatsApp, RCS and Messenger report read after delivered.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FINAL = "('read', 'undelivered', 'failed', 'canceled', 'received', 'partially_delivered')"
HASHED = "'hmac-sha256:%'"  # how sync/privacy.py marks a hashed body

MESSAGE_FACTS = [
    f"""CREATE VIEW twilio.message_facts AS
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
        SELECT min(h.changed_at) AS delivered_at
        FROM twilio.message_status_history AS h
        WHERE h.message_id = m.id AND h.source = m.source AND h.status = 'delivered'
    ) AS d ON true""",
    """COMMENT ON VIEW twilio.message_facts IS
    'One row per message of twilio.messages (same source and id), with what analysts derive from it: the other party, UTC day/week/month, body length, spend, whether the status is final, and how long delivery took (from twilio.message_status_history). A plain view, always current.'""",
]

FACT_COLUMNS = {
    "source": "Which API the row came from: legacy or comms (as in twilio.messages).",
    "id": "Twilio''s id of the message (as in twilio.messages).",
    "account_sid": "The Twilio account the message belongs to (starts with AC).",
    "channel": "sms, whatsapp, rcs or messenger (as in twilio.messages).",
    "direction": "inbound (received by the account) or outbound (sent by it).",
    "status": "Current status in the vocabulary of twilio.messages (delivered, failed, received, ...).",
    "from_address": "Sender address.",
    "to_address": "Recipient address (for comms group messages, the first recipient).",
    "own_address": "The account''s side of the conversation: from_address of an outbound message, to_address of an inbound one (a phone number, short code, sender id or channel address). The key of twilio.number_overview.",
    "counterpart": "The other party: to_address of an outbound message, from_address of an inbound one.",
    "created_at": "When Twilio created the message.",
    "day": "UTC date of created_at.",
    "week": "Monday (UTC) of the ISO week of created_at.",
    "month": "First day (UTC) of the month of created_at.",
    "body_chars": "Length of the body in characters (Unicode code points; an emoji with modifiers counts each). Null when the body is unknown: hashed (--bodies hash) or dropped (--bodies drop), or a comms body not yet fetched. 0 for an empty (redacted) body.",
    "body_words": "Number of words in the body (runs of non-whitespace). Null exactly when body_chars is.",
    "body_redacted": "True when the body is empty and the message has no media: how Twilio shows a body redacted after sending (an empty body stays empty under --bodies hash). Null when the archive has no body: dropped (--bodies drop), or a comms body not yet fetched.",
    "segments": "Number of billed SMS segments (legacy num_segments); null for comms rows.",
    "num_media": "Number of media attachments; null for comms rows.",
    "price": "What Twilio charged as Twilio writes it (negative, such as -0.00790); null until priced, and for comms rows.",
    "spend": "What the message cost, as a positive amount in price_unit (-price); null when unpriced.",
    "price_unit": "Currency of price and spend, such as USD; legacy rows only.",
    "error_code": "Twilio error code of a failed or undelivered message (twilio.com/docs/api/errors); legacy rows only.",
    "is_final": "True when the status can no longer change: read, undelivered, failed, canceled, received or partially_delivered, and delivered on SMS (WhatsApp, RCS and Messenger may still report read after delivered).",
    "delivered_at": "When Twilio reported the message delivered: the changed_at of the first delivered row of twilio.message_status_history. Null when the archive never saw it delivered (including messages first archived already read).",
    "seconds_to_delivered": "Seconds from created_at to delivered_at; null when never seen delivered.",
    "deleted_at": "When the message was deleted at Twilio (see twilio.messages.deleted_at); null while it exists.",
    "deleted": "True when the message is deleted at Twilio (deleted_at is set); the archive keeps it.",
}

# The status counts both overviews share: each counts messages whose current status is exactly that one.
COUNTED = ("delivered", "read", "undelivered", "failed", "sent", "queued", "scheduled", "canceled", "received")
COUNTS = ",\n        ".join(f"count(*) FILTER (WHERE f.status = '{s}') AS {s}" for s in COUNTED)
COUNT_COMMENTS = {
    s: f"Messages whose current status (twilio.messages.status) is exactly {s}." for s in COUNTED
}

DAILY = [
    f"""CREATE MATERIALIZED VIEW twilio.daily_account_overview AS
    SELECT
        f.account_sid,
        f.day,
        f.source,
        f.price_unit,
        count(*) AS messages,
        count(*) FILTER (WHERE f.direction = 'outbound') AS outbound,
        count(*) FILTER (WHERE f.direction = 'inbound') AS inbound,
        {COUNTS},
        count(*) FILTER (WHERE f.is_final) AS final,
        sum(f.segments) AS segments,
        count(f.price) AS priced,
        sum(f.spend) AS spend,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY f.seconds_to_delivered) AS median_seconds_to_delivered,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY f.seconds_to_delivered) AS p95_seconds_to_delivered,
        count(*) FILTER (WHERE f.body_redacted) AS redacted,
        count(*) FILTER (WHERE f.deleted) AS deleted
    FROM twilio.message_facts AS f
    GROUP BY f.account_sid, f.day, f.source, f.price_unit
    WITH DATA""",
    # One row per grouping key; day and price_unit may be null (comms rows have no currency),
    # so nulls must count as equal for the index to be unique over every row, which REFRESH
    # MATERIALIZED VIEW CONCURRENTLY requires (plain columns, no WHERE).
    """CREATE UNIQUE INDEX daily_account_overview_key ON twilio.daily_account_overview
    (account_sid, day, source, price_unit) NULLS NOT DISTINCT""",
    """COMMENT ON MATERIALIZED VIEW twilio.daily_account_overview IS
    'One row per account, UTC day of creation, API (source) and currency (price_unit): message counts by direction and by current status, segments, exact spend and time to delivered. A day whose messages carry several currencies has a row per currency, so spend is never summed across currencies; summed over all rows, messages equals count(*) of twilio.messages. A materialized view over twilio.message_facts, so as current as its last refresh: `backfill` refreshes it at its end and `run` after each full cycle (every stream it holds fully scanned, about once per --full-interval). By hand: REFRESH MATERIALIZED VIEW CONCURRENTLY twilio.daily_account_overview (as its owner, the user that migrates; readers keep reading meanwhile).'""",
]

DAILY_COLUMNS = {
    "account_sid": "The Twilio account.",
    "day": "UTC date the messages were created (twilio.message_facts.day); null for messages whose creation time could not be parsed.",
    "source": "Which API: legacy or comms.",
    "price_unit": "Currency of the messages of this row (legacy price_unit, such as USD); null for comms rows, whose API reports no price.",
    "messages": "Messages created that day.",
    "outbound": "Of them, sent by the account.",
    "inbound": "Of them, received by the account.",
    **COUNT_COMMENTS,
    "final": "Messages whose status can no longer change (twilio.message_facts.is_final).",
    "segments": "Sum of billed SMS segments; null for comms rows.",
    "priced": "Messages Twilio has put a price on.",
    "spend": "Exact cost of the row''s messages in price_unit, as a positive amount (sum of -price over each message once); null when no message has a price.",
    "median_seconds_to_delivered": "Median of twilio.message_facts.seconds_to_delivered over the messages seen delivered; null when none was.",
    "p95_seconds_to_delivered": "95th percentile (interpolated) of seconds_to_delivered over the messages seen delivered; null when none was.",
    "redacted": "Messages whose body is empty without media (twilio.message_facts.body_redacted).",
    "deleted": "Messages since deleted at Twilio (the archive keeps them).",
}

NUMBER = [
    f"""CREATE VIEW twilio.number_overview AS
    WITH per_currency AS (
        SELECT account_sid, own_address, price_unit, sum(spend) AS spend
        FROM twilio.message_facts
        WHERE price IS NOT NULL
        GROUP BY account_sid, own_address, price_unit
    ), spend AS (
        SELECT account_sid, own_address,
               jsonb_object_agg(coalesce(price_unit, 'unknown'), spend) AS spend_by_currency,
               CASE WHEN count(*) = 1 THEN min(spend) END AS spend,
               CASE WHEN count(*) = 1 THEN min(price_unit) END AS price_unit
        FROM per_currency
        GROUP BY account_sid, own_address
    ), counts AS (
        SELECT
            f.account_sid,
            f.own_address,
            count(*) AS messages,
            count(*) FILTER (WHERE f.direction = 'outbound') AS outbound,
            count(*) FILTER (WHERE f.direction = 'inbound') AS inbound,
            {COUNTS},
            sum(f.segments) AS segments,
            count(f.price) AS priced,
            min(f.created_at) AS first_seen,
            max(f.created_at) AS last_seen
        FROM twilio.message_facts AS f
        GROUP BY f.account_sid, f.own_address
    )
    SELECT c.account_sid, c.own_address AS number, c.messages, c.outbound, c.inbound,
           {", ".join(f"c.{s}" for s in COUNTED)},
           c.segments, c.priced, s.spend, s.price_unit, s.spend_by_currency,
           c.first_seen, c.last_seen
    FROM counts AS c
    LEFT JOIN spend AS s ON s.account_sid = c.account_sid AND s.own_address IS NOT DISTINCT FROM c.own_address""",
    """COMMENT ON VIEW twilio.number_overview IS
    'One row per account and number of the account''s own: the sender of what it sent, the recipient of what it received (twilio.message_facts.own_address). Message counts by direction and current status, exact spend, first and last message. Who it talked to: group twilio.message_facts by own_address and counterpart. A plain view over twilio.message_facts.'""",
]

NUMBER_COLUMNS = {
    "account_sid": "The Twilio account.",
    "number": "The account''s own address: a phone number in E.164 form, a short code, an alphanumeric sender id or a channel address such as whatsapp:+14155550100. Null for messages whose sender a Messaging Service has not picked yet.",
    "messages": "Messages sent from or received at this number.",
    "outbound": "Of them, sent from it.",
    "inbound": "Of them, received at it.",
    **COUNT_COMMENTS,
    "segments": "Sum of billed SMS segments; null when only comms messages used the number.",
    "priced": "Messages Twilio has put a price on.",
    "spend": "Exact cost of the number''s messages as a positive amount, when all its priced messages share one currency (price_unit); null when none is priced or currencies mix (see spend_by_currency).",
    "price_unit": "The one currency of spend; null when spend is.",
    "spend_by_currency": "Exact cost per currency as a JSON object such as {\"USD\": 1.234, \"EUR\": 0.5}; null when no message is priced.",
    "first_seen": "Creation time of the number''s earliest archived message.",
    "last_seen": "Creation time of its latest archived message.",
}

ERRORS = [
    """CREATE VIEW twilio.error_overview AS
    WITH outbound AS (
        SELECT day, count(*) AS outbound
        FROM twilio.message_facts
        WHERE direction = 'outbound' AND source = 'legacy'
        GROUP BY day
    )
    SELECT e.day, e.error_code, e.messages,
           round(e.messages::numeric / nullif(o.outbound, 0), 6) AS share_of_outbound,
           o.outbound,
           e.example_message_id
    FROM (
        SELECT day, error_code, count(*) AS messages, min(id) AS example_message_id
        FROM twilio.message_facts
        WHERE error_code IS NOT NULL
        GROUP BY day, error_code
    ) AS e
    LEFT JOIN outbound AS o ON o.day IS NOT DISTINCT FROM e.day""",
    """COMMENT ON VIEW twilio.error_overview IS
    'One row per UTC day and Twilio error code: how many messages created that day carry the code, and their share of that day''s outbound messages. Only the legacy API reports error codes in its list (comms errors are in twilio.comms_messages.attempts), so the share is of legacy outbound messages. All accounts together. A plain view over twilio.message_facts.'""",
]

ERROR_COLUMNS = {
    "day": "UTC date the messages were created.",
    "error_code": "Twilio error code, such as 30007 (carrier filtering); look codes up at twilio.com/docs/api/errors.",
    "messages": "Messages created that day with this error code.",
    "share_of_outbound": "messages divided by outbound (0 to 1, six decimals); null when the day has no outbound legacy message.",
    "outbound": "Outbound legacy messages created that day, the denominator of share_of_outbound.",
    "example_message_id": "One message with this code that day (the smallest id), to look up in twilio.messages.",
}


def _comments(view: str, columns: dict[str, str]) -> list[str]:
    return [f"COMMENT ON COLUMN twilio.{view}.{name} IS '{text}'" for name, text in columns.items()]


def upgrade() -> None:
    for statement in (
        *MESSAGE_FACTS, *_comments("message_facts", FACT_COLUMNS),
        *DAILY, *_comments("daily_account_overview", DAILY_COLUMNS),
        *NUMBER, *_comments("number_overview", NUMBER_COLUMNS),
        *ERRORS, *_comments("error_overview", ERROR_COLUMNS),
    ):
        op.execute(statement)


def downgrade() -> None:
    for view in ("error_overview", "number_overview"):
        op.execute(f"DROP VIEW twilio.{view}")
    op.execute("DROP MATERIALIZED VIEW twilio.daily_account_overview")
    op.execute("DROP VIEW twilio.message_facts")
