"""The daily overview is a table kept by the (account, day)s written since its last refresh.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Since 0005, twilio.daily_account_overview was a materialized view, and a refresh recomputed all of
it: about 9 us of Postgres CPU per archived message, whatever had changed. The archive keeps
everything, so a 7-day backfill into a year-long archive, or an hourly quiet cycle of `run`, paid
for the whole year. Now:

- twilio.daily_account_overview is a plain table with the same columns, types, order, comments
  and unique key; readers see no difference. It is only written by the refresh function below.
- twilio.overview_days_owed holds a mark per (account, UTC day of creation) whose message rows
  changed since the last refresh. Every statement of the archiver that inserts or changes a row of
  legacy_messages or comms_messages writes the marks in its own transaction (sync/sql/pages.py,
  hydration.py, deletions.py), so a mark commits exactly when its rows do: a rolled-back page
  leaves none, and a crash between a page's commit and the refresh loses none.
- twilio.refresh_daily_account_overview() takes the marks and recomputes only those (account,
  day)s from twilio.message_facts, with the definition's aggregates, reading only those days
  (created-time index ranges into both branches of twilio.messages); it returns how many it
  recomputed. One refresh owing nothing costs a lock and an empty DELETE.

The marks have no unique key, on purpose. With one, a page that finds its day already marked
(ON CONFLICT DO NOTHING) relies on a mark that a refresh running meanwhile may take and consume
without seeing the page's rows, which commit later: the day would stay stale with no mark left.
Updating the existing mark instead (DO UPDATE) keeps it, but makes concurrent pages of the same day
wait for each other's commit, and the refresh wait for them. Plain inserts never wait: each writer
owns its marks, a refresh deletes only the marks committed before its snapshot, and the recompute
that follows reads a later snapshot, which holds every row those marks stand for. A page writes
one mark per distinct (account, day) it touched, and each refresh empties the table, so the
duplicates stay a few rows per page between refreshes.

Upgrade: the table takes the materialized view's rows (when it was populated) so readers keep
what they had, and every (account, day) present in the message tables is marked, so the first
refresh makes the table exact whatever state the view was in. Downgrade restores 0008's
materialized view (refreshed) and drops the new objects.
"""

import textwrap

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The status counts of 0005's definition, in its column order.
COUNTED = ("delivered", "read", "undelivered", "failed", "sent", "queued", "scheduled", "canceled", "received")

COLUMNS = (
    ("account_sid", "text"), ("day", "date"), ("source", "text"), ("price_unit", "text"),
    ("messages", "bigint"), ("outbound", "bigint"), ("inbound", "bigint"),
    *((status, "bigint") for status in COUNTED),
    ("final", "bigint"), ("segments", "bigint"), ("priced", "bigint"), ("spend", "numeric"),
    ("median_seconds_to_delivered", "double precision"), ("p95_seconds_to_delivered", "double precision"),
    ("redacted", "bigint"), ("deleted", "bigint"),
)

# 0005's definition (pg_get_viewdef of the materialized view), over twilio.message_facts AS f.
AGGREGATES = ",\n        ".join((
    "f.account_sid", "f.day", "f.source", "f.price_unit",
    "count(*) AS messages",
    "count(*) FILTER (WHERE f.direction = 'outbound') AS outbound",
    "count(*) FILTER (WHERE f.direction = 'inbound') AS inbound",
    *(f"count(*) FILTER (WHERE f.status = '{s}') AS {s}" for s in COUNTED),
    "count(*) FILTER (WHERE f.is_final) AS final",
    "sum(f.segments) AS segments",
    "count(f.price) AS priced",
    "sum(f.spend) AS spend",
    "percentile_cont(0.5) WITHIN GROUP (ORDER BY f.seconds_to_delivered) AS median_seconds_to_delivered",
    "percentile_cont(0.95) WITHIN GROUP (ORDER BY f.seconds_to_delivered) AS p95_seconds_to_delivered",
    "count(*) FILTER (WHERE f.body_redacted) AS redacted",
    "count(*) FILTER (WHERE f.deleted) AS deleted",
))
GROUPS = "GROUP BY f.account_sid, f.day, f.source, f.price_unit"


def _recompute(where: str, indent: str) -> str:
    """The INSERT of the definition's rows for the messages `where` says, for the function body."""
    text = (f"INSERT INTO twilio.daily_account_overview\nSELECT\n    {AGGREGATES.replace(chr(10) + '    ', chr(10))}\n"
            f"FROM twilio.message_facts AS f\nWHERE {where}\n{GROUPS};")
    return textwrap.indent(text, indent).lstrip()



def _copy_comments(renamed: str) -> str:
    """The DO block that gives twilio.daily_account_overview the column comments of `renamed` (the
    object it replaces), word for word. A DO block, so `migrate --sql` prints it too."""
    return f"""DO $copy$
    DECLARE
        c record;
    BEGIN
        FOR c IN SELECT a.attname, col_description(a.attrelid, a.attnum) AS text FROM pg_attribute AS a
                 WHERE a.attrelid = 'twilio.{renamed}'::regclass AND a.attnum > 0 LOOP
            EXECUTE format('COMMENT ON COLUMN twilio.daily_account_overview.%I IS %L', c.attname, c.text);
        END LOOP;
    END $copy$"""

OVERVIEW_COMMENT = (
    "One row per account, UTC day of creation, API (source) and currency (price_unit): message counts by "
    "direction and by current status, segments, exact spend and time to delivered. A day whose messages carry "
    "several currencies has a row per currency, so spend is never summed across currencies; summed over all "
    "rows, messages equals count(*) of twilio.messages. A table kept from twilio.message_facts, as current as "
    "its last refresh, which recomputes only the (account, day)s whose messages were written since the one "
    "before (twilio.overview_days_owed): `backfill` refreshes it at its end, and `run` after "
    "each full cycle (every stream it holds fully scanned, about once "
    "per --full-interval). By hand: SELECT "
    "twilio.refresh_daily_account_overview() (readers keep reading meanwhile)."
)

OWED = [
    """CREATE TABLE twilio.overview_days_owed (
        account_sid text,
        day date
    )""",
    """COMMENT ON TABLE twilio.overview_days_owed IS
    'The (account, UTC day of creation)s of twilio.daily_account_overview to recompute: written with the message rows they stand for, in the same transaction, by every statement of the archiver that inserts or changes a row of legacy_messages or comms_messages; taken by twilio.refresh_daily_account_overview(). A pair may be listed more than once (no unique key: writers never wait for each other). Not for analysts.'""",
    "COMMENT ON COLUMN twilio.overview_days_owed.account_sid IS 'The account of the messages written (twilio.messages.account_sid).'",
    """COMMENT ON COLUMN twilio.overview_days_owed.day IS
    'UTC date of their creation (twilio.message_facts.day); null for messages whose creation time could not be parsed.'""",
    # Every day the archive holds, so the first refresh recomputes the whole table from the messages.
    """INSERT INTO twilio.overview_days_owed (account_sid, day)
    SELECT account_sid, (date_created AT TIME ZONE 'UTC')::date FROM twilio.legacy_messages
    UNION
    SELECT account_sid, (created_at AT TIME ZONE 'UTC')::date FROM twilio.comms_messages""",
]

TABLE = [
    "ALTER MATERIALIZED VIEW twilio.daily_account_overview RENAME TO daily_account_overview_0011",
    "ALTER INDEX twilio.daily_account_overview_key RENAME TO daily_account_overview_0011_key",
    "CREATE TABLE twilio.daily_account_overview (\n    "
    + ",\n    ".join(f"{name} {kind}" for name, kind in COLUMNS) + "\n)",
    # One row per grouping key; day and price_unit may be null (comms rows have no currency), so
    # nulls count as equal: the refresh's insert fails rather than write a key twice.
    """CREATE UNIQUE INDEX daily_account_overview_key ON twilio.daily_account_overview
    (account_sid, day, source, price_unit) NULLS NOT DISTINCT""",
    # The view's rows, when it held any (a view never refreshed cannot be read), and its column
    # comments word for word. A DO block, so `migrate --sql` prints it too.
    """DO $copy$
    BEGIN
        IF (SELECT relispopulated FROM pg_class WHERE oid = 'twilio.daily_account_overview_0011'::regclass) THEN
            INSERT INTO twilio.daily_account_overview SELECT * FROM twilio.daily_account_overview_0011;
        END IF;
    END $copy$""",
    _copy_comments("daily_account_overview_0011"),
    "DROP MATERIALIZED VIEW twilio.daily_account_overview_0011",
    "COMMENT ON TABLE twilio.daily_account_overview IS '" + OVERVIEW_COMMENT.replace("'", "''") + "'",
]

# The refresh. Each statement of a plpgsql function takes its own snapshot under READ COMMITTED:
# the DELETE of the marks takes those committed before it began, and the recompute, which starts
# later, sees every row they stand for (a mark commits with its rows). A mark committed after the
# DELETE began stays for the next refresh, even if its rows are seen now: a day recomputed twice
# is exact, a day skipped would not be. Custom plans (plan_cache_mode): the days' bounds are known
# when each statement is planned, so Postgres reads those days through the created-time indexes
# of both message tables instead of a generic plan's guess.
FUNCTION = [
    f"""CREATE FUNCTION twilio.refresh_daily_account_overview() RETURNS integer
    LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $refresh$
    DECLARE
        accounts text[];
        days date[];
        span record;
        low timestamptz;
        high timestamptz;
    BEGIN
        -- Refreshers one at a time (this mode conflicts with itself); readers are not blocked, nor
        -- are the writers of the marks, which lock only twilio.overview_days_owed.
        LOCK TABLE twilio.daily_account_overview IN SHARE ROW EXCLUSIVE MODE;
        WITH taken AS (DELETE FROM twilio.overview_days_owed RETURNING account_sid, day)
        SELECT coalesce(array_agg(o.account_sid ORDER BY o.day, o.account_sid), '{{}}'),
               coalesce(array_agg(o.day ORDER BY o.day, o.account_sid), '{{}}')
        INTO accounts, days
        FROM (SELECT DISTINCT account_sid, day FROM taken) AS o;
        IF cardinality(days) = 0 THEN
            RETURN 0;
        END IF;

        DELETE FROM twilio.daily_account_overview AS o
        USING unnest(accounts, days) AS w(account_sid, day)
        WHERE o.account_sid = w.account_sid AND o.day = w.day;
        -- Each run of consecutive owed days is one range of created times, read by index. Where
        -- every account owed in it owes every day of it (one account, a backfill), its accounts
        -- say which messages count; else each message's (account, day) is looked up as well.
        FOR span IN
            SELECT min(w.day) AS first, max(w.day) AS last, array_agg(DISTINCT w.account_sid) AS accounts,
                   count(*) = count(DISTINCT w.account_sid) * count(DISTINCT w.day) AS whole
            FROM (SELECT account_sid, day, day - (dense_rank() OVER (ORDER BY day))::integer AS island
                  FROM unnest(accounts, days) AS u(account_sid, day)
                  WHERE account_sid IS NOT NULL AND day IS NOT NULL) AS w
            GROUP BY w.island
        LOOP
            low := span.first::timestamp AT TIME ZONE 'UTC';
            high := (span.last + 1)::timestamp AT TIME ZONE 'UTC';
            {_recompute('''f.created_at >= low AND f.created_at < high AND f.account_sid = ANY (span.accounts)
  AND (span.whole OR (f.account_sid, f.day) IN (SELECT w.account_sid, w.day FROM unnest(accounts, days) AS w(account_sid, day)))''', ' ' * 12)}
        END LOOP;

        -- Messages whose creation time could not be parsed are grouped under day null; the
        -- archiver always sets account_sid, but a row without one is counted too (exact, not fast).
        IF array_position(days, NULL) IS NOT NULL OR array_position(accounts, NULL) IS NOT NULL THEN
            DELETE FROM twilio.daily_account_overview AS o
            USING unnest(accounts, days) AS w(account_sid, day)
            WHERE (w.account_sid IS NULL OR w.day IS NULL)
              AND o.account_sid IS NOT DISTINCT FROM w.account_sid AND o.day IS NOT DISTINCT FROM w.day;
            {_recompute('''f.created_at IS NULL AND f.account_sid IN (
    SELECT w.account_sid FROM unnest(accounts, days) AS w(account_sid, day) WHERE w.day IS NULL)''', ' ' * 12)}
            {_recompute('''f.account_sid IS NULL AND EXISTS (SELECT FROM unnest(accounts, days) AS w(account_sid, day)
                                           WHERE w.account_sid IS NULL AND w.day IS NOT DISTINCT FROM f.day)''', ' ' * 12)}
        END IF;
        RETURN cardinality(days);
    END $refresh$""",
    """COMMENT ON FUNCTION twilio.refresh_daily_account_overview() IS
    'Recomputes the rows of twilio.daily_account_overview of every (account, day) marked in twilio.overview_days_owed, from twilio.message_facts, and takes those marks, in the caller''s transaction; returns how many (account, day)s it recomputed (0: nothing was owed, nothing read). One refresher at a time; readers keep reading.'""",
]

UPGRADE = [*TABLE, *OWED, *FUNCTION]


# --- downgrade: 0008's materialized view --------------------------------------------------------

OVERVIEW_COMMENT_0008 = (
    "One row per account, UTC day of creation, API (source) and currency (price_unit): message counts by "
    "direction and by current status, segments, exact spend and time to delivered. A day whose messages carry "
    "several currencies has a row per currency, so spend is never summed across currencies; summed over all "
    "rows, messages equals count(*) of twilio.messages. A materialized view over twilio.message_facts, so as "
    "current as its last refresh: `backfill` refreshes it at its end when it wrote rows or followed an "
    "interrupted backfill (one that wrote nothing leaves it as it was), and `run` after each full cycle "
    "(every stream it holds fully scanned, about once per --full-interval). By hand: REFRESH MATERIALIZED VIEW "
    "CONCURRENTLY twilio.daily_account_overview (as its owner, the user that migrates; readers keep reading "
    "meanwhile)."
)

DOWNGRADE = [
    "DROP FUNCTION twilio.refresh_daily_account_overview()",
    "DROP TABLE twilio.overview_days_owed",
    "ALTER TABLE twilio.daily_account_overview RENAME TO daily_account_overview_0012",
    "ALTER INDEX twilio.daily_account_overview_key RENAME TO daily_account_overview_0012_key",
    f"""CREATE MATERIALIZED VIEW twilio.daily_account_overview AS
    SELECT
        {AGGREGATES}
    FROM twilio.message_facts AS f
    {GROUPS}
    WITH DATA""",
    """CREATE UNIQUE INDEX daily_account_overview_key ON twilio.daily_account_overview
    (account_sid, day, source, price_unit) NULLS NOT DISTINCT""",
    _copy_comments("daily_account_overview_0012"),
    "DROP TABLE twilio.daily_account_overview_0012",
    "COMMENT ON MATERIALIZED VIEW twilio.daily_account_overview IS '" + OVERVIEW_COMMENT_0008.replace("'", "''") + "'",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
