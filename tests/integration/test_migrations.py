"""The migrations against a real Postgres: they apply, undo, build exactly the contracted schema
(docs/schema-contract.md), document it, grant the reader role, and work for a database owner
who is not a superuser.

pg_server_dsn and empty_database_dsn come from tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.config import Config

from sync import errors, migrate, sources
from tests import pg

REPO = Path(__file__).resolve().parents[2]
READER = "twilio_archive_reader"


# --- helpers ----------------------------------------------------------------------------------


async def upgrade(dsn: str, revision: str = "head") -> None:
    # alembic runs its own event loop (env.py), so it must not share the test's.
    await asyncio.to_thread(migrate.upgrade, dsn, revision)


async def downgrade(dsn: str, revision: str) -> None:
    await asyncio.to_thread(migrate.downgrade, dsn, revision)


async def current(dsn: str) -> str | None:
    return await asyncio.to_thread(migrate.current, dsn)


async def fetch(dsn: str, query: str, *args) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


@pytest.fixture
async def migrated_dsn(empty_database_dsn):
    """An empty database brought to head as the superuser."""
    await upgrade(empty_database_dsn)
    return empty_database_dsn


# --- the expected schema, written out from docs/schema-contract.md ------------------------------

RECORD_COLUMNS = {
    "raw": "jsonb not null",
    "raw_text": "text",
    "parse_problems": "text[]",
    "raw_digest": "bytea",
    "first_seen_at": "timestamptz not null default now()",
    "last_changed_at": "timestamptz not null default now()",
}

EXPECTED_COLUMNS = {
    "legacy_messages": {
        "sid": "text not null",
        "account_sid": "text",
        "messaging_service_sid": "text",
        "direction": "text",
        "from_address": "text",
        "to_address": "text",
        "body": "text",
        "status": "text",
        "num_segments": "integer",
        "num_media": "integer",
        "price": "numeric",
        "price_unit": "text",
        "error_code": "integer",
        "error_message": "text",
        "api_version": "text",
        "date_created": "timestamptz",
        "date_sent": "timestamptz",
        "date_updated": "timestamptz",
        "tags": "jsonb",
        "uri": "text",
        "deleted_at": "timestamptz",
        **RECORD_COLUMNS,
        # 0011: the number of its first observation (twilio.message_status_history.id).
        "first_observation_id": "bigint default nextval('twilio.message_status_history_id_seq'::regclass)",
    },
    "comms_messages": {
        "id": "text not null",
        "account_sid": "text not null",
        "status": "text",
        "from_address": "text",
        "from_channel": "text",
        "from_sender_id": "text",
        "to_address": "text",
        "to_channel": "text",
        "recipient_count": "integer",
        "operation_id": "text",
        "tags": "jsonb",
        "scheduled_for": "timestamptz",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
        "deleted_at": "timestamptz",
        "body": "text",
        **RECORD_COLUMNS,
        "content": "jsonb",
        "attempts": "jsonb",
        "hydrated_at": "timestamptz",
        # 0011: the number of its first observation (twilio.message_status_history.id).
        "first_observation_id": "bigint default nextval('twilio.message_status_history_id_seq'::regclass)",
    },
    "comms_operations": {
        "id": "text not null",
        "account_sid": "text not null",
        "status": "text",
        "stats_total": "integer",
        "stats_recipients": "integer",
        "stats_attempts": "integer",
        "stats_scheduled": "integer",
        "stats_queued": "integer",
        "stats_sent": "integer",
        "stats_delivered": "integer",
        "stats_read": "integer",
        "stats_undelivered": "integer",
        "stats_unaddressable": "integer",
        "stats_failed": "integer",
        "stats_canceled": "integer",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
        **RECORD_COLUMNS,
    },
    "scans": {
        "id": "bigint not null identity always",
        "account_sid": "text not null",
        "stream": "text not null",
        "kind": "text not null",
        "window_start": "timestamptz not null",
        "window_end": "timestamptz not null",
        "status": "text not null default 'running'::text",
        "cursor": "text",
        "pages": "integer not null default 0",
        "records_seen": "bigint not null default 0",
        "rows_inserted": "bigint not null default 0",
        "rows_updated": "bigint not null default 0",
        "problems": "bigint not null default 0",
        "started_at": "timestamptz not null default now()",
        "updated_at": "timestamptz not null default now()",
        "finished_at": "timestamptz",
        "error": "text",
        "restarts": "integer not null default 0",
        "rejected": "bigint not null default 0",
        "deleted": "integer not null default 0",
        "plan": "jsonb",
        "list_order": "text",
        "outside_window": "bigint not null default 0",
    },
    # 0009: the media of legacy messages, and which message's media list was read at which num_media.
    "legacy_media": {
        "sid": "text not null",
        "account_sid": "text not null",
        "message_sid": "text not null",
        "content_type": "text",
        "date_created": "timestamptz",
        "date_updated": "timestamptz",
        "uri": "text",
        "raw": "jsonb not null",
        "parse_problems": "text[]",
        "first_seen_at": "timestamptz not null default now()",
        "last_changed_at": "timestamptz not null default now()",
        "deleted_at": "timestamptz",
    },
    "legacy_media_lists": {
        "message_sid": "text not null",
        "account_sid": "text not null",
        "num_media": "integer not null",
        "outcome": "text not null",
        "items": "integer not null default 0",
        "read_at": "timestamptz not null default now()",
    },
    "scan_slices": {
        "id": "bigint not null identity always",
        "scan_id": "bigint not null",
        "cursor": "text",
        "plan": "jsonb not null",
        "pages": "integer not null default 0",
        "records_seen": "bigint not null default 0",
        "created_at": "timestamptz not null default now()",
        "finished_at": "timestamptz",
    },
    "rejected_records": {
        "id": "bigint not null identity always",
        "account_sid": "text not null",
        "stream": "text not null",
        "record_key": "text",
        "reason": "text not null",
        "raw_text": "text not null",
        "digest": "bytea not null",
        "scan_id": "bigint",
        "first_seen_at": "timestamptz not null default now()",
    },
    "accounts": {
        "account_sid": "text not null",
        "paused_until": "timestamptz",
        "updated_at": "timestamptz not null default now()",
        "status": "text",
        "friendly_name": "text",
        "owner_account_sid": "text",
        "first_listed_at": "timestamptz",
        "last_listed_at": "timestamptz",
        "last_worked_by": "text",
        "last_worked_at": "timestamptz",
    },
    "scan_seen": {
        "scan_id": "bigint not null",
        "key": "text not null",
    },
    # 0011: the history is a view; the changes, and first rows of changed messages, are kept here.
    "message_status_changes": {
        "id": "bigint not null identity always",
        "source": "text not null",
        "message_id": "text not null",
        "account_sid": "text",
        "status": "text",
        "previous_status": "text",
        "changed_at": "timestamptz",
        "observed_at": "timestamptz not null default now()",
    },
    "message_status_history": {
        "id": "bigint",
        "source": "text",
        "message_id": "text",
        "account_sid": "text",
        "status": "text",
        "previous_status": "text",
        "changed_at": "timestamptz",
        "observed_at": "timestamptz",
    },
    "record_problems": {
        "stream": "text",
        "record_key": "text",
        "account_sid": "text",
        "stored": "boolean",
        "problems": "text[]",
        "first_seen_at": "timestamptz",
    },
    "messages": {
        "source": "text",
        "id": "text",
        "account_sid": "text",
        "channel": "text",
        "direction": "text",
        "from_address": "text",
        "to_address": "text",
        "status": "text",
        "body": "text",
        "created_at": "timestamptz",
        "sent_at": "timestamptz",
        "updated_at": "timestamptz",
        "deleted_at": "timestamptz",
        "price": "numeric",
        "price_unit": "text",
        "error_code": "integer",
        "num_segments": "integer",
        "num_media": "integer",
        "tags": "jsonb",
    },
    # 0005: the analyst views (docs/analysts.md).
    "message_facts": {
        "source": "text",
        "id": "text",
        "account_sid": "text",
        "channel": "text",
        "direction": "text",
        "status": "text",
        "from_address": "text",
        "to_address": "text",
        "own_address": "text",
        "counterpart": "text",
        "created_at": "timestamptz",
        "day": "date",
        "week": "date",
        "month": "date",
        "body_chars": "integer",
        "body_words": "integer",
        "body_redacted": "boolean",
        "segments": "integer",
        "num_media": "integer",
        "price": "numeric",
        "spend": "numeric",
        "price_unit": "text",
        "error_code": "integer",
        "is_final": "boolean",
        "delivered_at": "timestamptz",
        "seconds_to_delivered": "double precision",
        "deleted_at": "timestamptz",
        "deleted": "boolean",
    },
    "daily_account_overview": {
        "account_sid": "text",
        "day": "date",
        "source": "text",
        "price_unit": "text",
        "messages": "bigint",
        "outbound": "bigint",
        "inbound": "bigint",
        "delivered": "bigint",
        "read": "bigint",
        "undelivered": "bigint",
        "failed": "bigint",
        "sent": "bigint",
        "queued": "bigint",
        "scheduled": "bigint",
        "canceled": "bigint",
        "received": "bigint",
        "final": "bigint",
        "segments": "bigint",
        "priced": "bigint",
        "spend": "numeric",
        "median_seconds_to_delivered": "double precision",
        "p95_seconds_to_delivered": "double precision",
        "redacted": "bigint",
        "deleted": "bigint",
    },
    "number_overview": {
        "account_sid": "text",
        "number": "text",
        "messages": "bigint",
        "outbound": "bigint",
        "inbound": "bigint",
        "delivered": "bigint",
        "read": "bigint",
        "undelivered": "bigint",
        "failed": "bigint",
        "sent": "bigint",
        "queued": "bigint",
        "scheduled": "bigint",
        "canceled": "bigint",
        "received": "bigint",
        "segments": "bigint",
        "priced": "bigint",
        "spend": "numeric",
        "price_unit": "text",
        "spend_by_currency": "jsonb",
        "first_seen": "timestamptz",
        "last_seen": "timestamptz",
    },
    # 0012: the (account, day)s the overview owes a recompute (no key: writers never wait).
    "overview_days_owed": {
        "account_sid": "text",
        "day": "date",
    },
    "error_overview": {
        "day": "date",
        "error_code": "integer",
        "messages": "bigint",
        "share_of_outbound": "numeric",
        "outbound": "bigint",
        "example_message_id": "text",
    },
}

EXPECTED_KINDS = {
    "legacy_messages": "BASE TABLE",
    "comms_messages": "BASE TABLE",
    "comms_operations": "BASE TABLE",
    "scans": "BASE TABLE",
    "rejected_records": "BASE TABLE",
    "accounts": "BASE TABLE",
    "scan_seen": "BASE TABLE",
    "scan_slices": "BASE TABLE",
    "legacy_media": "BASE TABLE",
    "legacy_media_lists": "BASE TABLE",
    "message_status_changes": "BASE TABLE",
    "message_status_history": "VIEW",
    "messages": "VIEW",
    "record_problems": "VIEW",
    "message_facts": "VIEW",
    "daily_account_overview": "BASE TABLE",  # 0012; a materialized view from 0005
    "overview_days_owed": "BASE TABLE",
    "number_overview": "VIEW",
    "error_overview": "VIEW",
}

EXPECTED_CONSTRAINTS = {
    ("legacy_messages", "PRIMARY KEY (sid)"),
    ("comms_messages", "PRIMARY KEY (id)"),
    ("comms_operations", "PRIMARY KEY (id)"),
    ("scans", "PRIMARY KEY (id)"),
    (
        "scans",
        "CHECK ((stream = ANY (ARRAY['comms_messages'::text, 'comms_operations'::text, 'legacy_messages'::text])))",
    ),
    (
        "scans",
        "CHECK ((status = ANY (ARRAY['running'::text, 'complete'::text, 'abandoned'::text, 'failed'::text])))",
    ),
    ("rejected_records", "PRIMARY KEY (id)"),
    ("scan_slices", "PRIMARY KEY (id)"),
    ("scan_slices", "FOREIGN KEY (scan_id) REFERENCES twilio.scans(id) ON DELETE CASCADE"),
    ("accounts", "PRIMARY KEY (account_sid)"),
    ("accounts", "CHECK ((status = ANY (ARRAY['active'::text, 'suspended'::text, 'closed'::text])))"),
    ("message_status_changes", "PRIMARY KEY (id)"),
    ("message_status_changes", "CHECK ((source = ANY (ARRAY['comms'::text, 'legacy'::text])))"),
    ("rejected_records", "UNIQUE (account_sid, stream, digest)"),
    ("rejected_records", "FOREIGN KEY (scan_id) REFERENCES twilio.scans(id) ON DELETE SET NULL"),
    (
        "rejected_records",
        "CHECK ((stream = ANY (ARRAY['comms_messages'::text, 'comms_operations'::text, 'legacy_messages'::text, "
        "'legacy_media'::text])))",
    ),
    ("legacy_media", "PRIMARY KEY (sid)"),
    ("legacy_media_lists", "PRIMARY KEY (message_sid)"),
    ("legacy_media_lists", "CHECK ((outcome = ANY (ARRAY['read'::text, 'gone'::text])))"),
}

# Index definitions without their names: a rename is harmless, a changed key is not.
EXPECTED_INDEXES = {
    # 0005: one row per key (price_unit is null on comms rows); 0012 keeps it on the table.
    ("daily_account_overview", "UNIQUE btree (account_sid, day, source, price_unit) NULLS NOT DISTINCT"),
    ("legacy_messages", "UNIQUE btree (sid)"),
    ("legacy_messages", "btree (date_created)"),
    ("legacy_messages", "btree (date_sent)"),
    ("legacy_messages", "btree (status, date_created)"),
    ("legacy_messages", "btree (from_address, date_created)"),
    ("legacy_messages", "btree (to_address, date_created)"),
    ("legacy_messages", "btree (error_code) WHERE (error_code IS NOT NULL)"),
    ("comms_messages", "UNIQUE btree (id)"),
    ("comms_messages", "btree (created_at)"),
    ("comms_messages", "btree (status, created_at)"),
    ("comms_messages", "btree (from_address, created_at)"),
    ("comms_messages", "btree (to_address, created_at)"),
    ("comms_messages", "btree (operation_id)"),
    ("comms_operations", "UNIQUE btree (id)"),
    ("comms_operations", "btree (created_at)"),
    ("comms_operations", "btree (status)"),
    ("scans", "UNIQUE btree (id)"),
    ("scans", "UNIQUE btree (account_sid, stream, kind) WHERE (status = 'running'::text)"),
    ("scans", "btree (account_sid, stream, started_at DESC)"),
    ("legacy_messages", "btree (first_seen_at) WHERE (parse_problems IS NOT NULL)"),
    ("comms_messages", "btree (first_seen_at) WHERE (parse_problems IS NOT NULL)"),
    ("comms_operations", "btree (first_seen_at) WHERE (parse_problems IS NOT NULL)"),
    ("rejected_records", "UNIQUE btree (id)"),
    ("accounts", "UNIQUE btree (account_sid)"),
    ("scan_seen", "btree (scan_id, key)"),
    ("scan_slices", "UNIQUE btree (id)"),
    ("scan_slices", "btree (scan_id)"),
    ("message_status_changes", "UNIQUE btree (id)"),
    ("message_status_changes", "btree (message_id, observed_at)"),
    ("comms_messages", "btree (account_sid, created_at DESC) WHERE (hydrated_at IS NULL)"),
    ("rejected_records", "UNIQUE btree (account_sid, stream, digest)"),
    # 0009: media by message, by day; the lists due for a re-check; the messages that may owe media.
    ("legacy_media", "UNIQUE btree (sid)"),
    ("legacy_media", "btree (message_sid)"),
    ("legacy_media", "btree (date_created)"),
    ("legacy_media_lists", "UNIQUE btree (message_sid)"),
    ("legacy_media_lists", "btree (read_at) WHERE (outcome = 'read'::text)"),
    ("legacy_messages", "btree (account_sid, date_created) WHERE (num_media > 0)"),
}


def index_shape(indexdef: str) -> str:
    """'CREATE UNIQUE INDEX x ON t USING btree (a) WHERE ...' -> 'UNIQUE btree (a) WHERE ...'."""
    unique = "UNIQUE " if indexdef.startswith("CREATE UNIQUE ") else ""
    return unique + indexdef.split(" USING ", 1)[1]


async def actual_columns(dsn: str) -> dict[str, dict[str, str]]:
    rows = await fetch(
        dsn,
        """
        SELECT table_name, column_name,
               concat_ws(' ',
                   CASE
                       WHEN data_type = 'ARRAY' THEN substr(udt_name, 2) || '[]'
                       WHEN data_type = 'timestamp with time zone' THEN 'timestamptz'
                       ELSE data_type
                   END,
                   CASE WHEN is_nullable = 'NO' THEN 'not null' END,
                   'default ' || column_default,
                   CASE WHEN is_identity = 'YES' THEN 'identity ' || lower(identity_generation) END
               ) AS declaration
        FROM information_schema.columns
        WHERE table_schema = 'twilio'
        UNION ALL
        -- information_schema leaves materialized views out.
        SELECT c.relname::text, a.attname::text,
               concat_ws(' ',
                   replace(format_type(a.atttypid, a.atttypmod), 'timestamp with time zone', 'timestamptz'),
                   CASE WHEN a.attnotnull THEN 'not null' END)
        FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid
        WHERE c.relnamespace = 'twilio'::regnamespace AND c.relkind = 'm' AND a.attnum > 0 AND NOT a.attisdropped
        """,
    )
    columns: dict[str, dict[str, str]] = {}
    for row in rows:
        columns.setdefault(row["table_name"], {})[row["column_name"]] = row["declaration"]
    return columns


# --- tests ---------------------------------------------------------------------------------------


async def test_upgrade_downgrade_upgrade_round_trip(empty_database_dsn):
    """Upgrade to head, downgrade to base and upgrade again all succeed, and base leaves no trace."""
    dsn = empty_database_dsn
    assert await current(dsn) is None

    await upgrade(dsn)
    assert await current(dsn) == migrate.head()

    await downgrade(dsn, "base")
    assert await current(dsn) is None
    assert await fetch(dsn, "SELECT 1 FROM pg_namespace WHERE nspname = 'twilio'") == []
    # A default-privilege entry left behind would keep the reader role from being dropped.
    assert await fetch(dsn, "SELECT 1 FROM pg_default_acl") == []

    await upgrade(dsn)
    assert await current(dsn) == migrate.head()


async def test_schema_matches_the_contract(migrated_dsn):
    """Columns, types, nullability, defaults, constraints and indexes of schema twilio are exactly the contract's."""
    assert await actual_columns(migrated_dsn) == EXPECTED_COLUMNS

    kinds = await fetch(
        migrated_dsn,
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'twilio'"
        " UNION ALL SELECT relname, 'MATERIALIZED VIEW' FROM pg_class"
        " WHERE relnamespace = 'twilio'::regnamespace AND relkind = 'm'",
    )
    assert {row["table_name"]: row["table_type"] for row in kinds} == EXPECTED_KINDS

    constraints = await fetch(
        migrated_dsn,
        """
        SELECT c.conrelid::regclass::text AS table_name, pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint AS c
        WHERE c.connamespace = 'twilio'::regnamespace AND c.contype IN ('p', 'u', 'c', 'f', 'x')
        """,
    )
    assert {(row["table_name"].removeprefix("twilio."), row["definition"]) for row in constraints} == (
        EXPECTED_CONSTRAINTS
    )

    indexes = await fetch(migrated_dsn, "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'twilio'")
    assert {(row["tablename"], index_shape(row["indexdef"])) for row in indexes} == EXPECTED_INDEXES


@pytest.mark.parametrize("stream", sorted(sources.BY_STREAM))
def test_each_streams_declared_columns_are_in_the_contract(stream):
    """The columns a stream's declaration writes (sync/sources) are its table's, with their types, by the contract."""
    contract = EXPECTED_COLUMNS[stream]
    declared = sources.BY_STREAM[stream].all_columns
    assert [(name, contract.get(name, "missing").split(" ")[0]) for name, _ in declared] == list(declared)


async def test_every_table_view_and_column_is_commented(migrated_dsn):
    """Every table, view and column in schema twilio (and the schema itself) has a non-empty comment."""
    missing = await fetch(
        migrated_dsn,
        """
        SELECT c.relname AS relation, NULL AS column_name
        FROM pg_class AS c
        WHERE c.relnamespace = 'twilio'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
          AND coalesce(btrim(obj_description(c.oid, 'pg_class')), '') = ''
        UNION ALL
        SELECT c.relname, a.attname
        FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid
        WHERE c.relnamespace = 'twilio'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped
          AND coalesce(btrim(col_description(c.oid, a.attnum)), '') = ''
        UNION ALL
        SELECT 'schema twilio', NULL
        WHERE coalesce(btrim(obj_description('twilio'::regnamespace, 'pg_namespace')), '') = ''
        """,
    )
    assert [tuple(row) for row in missing] == []
    # Guard against the query above silently matching nothing.
    counted = await fetch(
        migrated_dsn,
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'twilio'::regnamespace AND relkind IN ('r', 'v', 'm')",
    )
    assert counted[0][0] == len(EXPECTED_COLUMNS)


async def test_0008_says_a_backfill_that_wrote_nothing_leaves_the_overview(empty_database_dsn):
    """0008: the overview's comment says when a backfill refreshes it (not when it wrote nothing);
    downgrading to 0007 gives back 0005's comment."""
    dsn = empty_database_dsn

    async def comment() -> str:
        rows = await fetch(dsn, "SELECT obj_description('twilio.daily_account_overview'::regclass, 'pg_class')")
        return rows[0][0]

    await upgrade(dsn, "0011")  # 0012 made it a table, with a comment of its own
    assert "`backfill` refreshes it at its end when it wrote rows or followed an interrupted backfill (one that " \
           "wrote nothing leaves it as it was), and `run` after each full cycle" in await comment()
    await downgrade(dsn, "0007")
    assert "`backfill` refreshes it at its end and `run` after each full cycle" in await comment()


# The functions of schema twilio and what they return: 0011's status triggers, 0012's refresh.
EXPECTED_FUNCTIONS = {
    ("comms_messages_status_updated", "trigger"),
    ("legacy_messages_status_updated", "trigger"),
    ("refresh_daily_account_overview", "integer"),
}


async def test_0012_the_overview_is_a_table_its_function_refreshes(migrated_dsn):
    """0012: the functions of schema twilio are the contract's, the refresh among them with its
    comment; the overview's comment tells how it is kept and how to refresh it by hand, which
    works on an empty archive (0 days)."""
    functions = await fetch(migrated_dsn, "SELECT proname, pg_get_function_result(oid) AS result,"
                                          " obj_description(oid, 'pg_proc') AS comment FROM pg_proc"
                                          " WHERE pronamespace = 'twilio'::regnamespace")
    assert {(r["proname"], r["result"]) for r in functions} == EXPECTED_FUNCTIONS
    assert all(r["comment"] for r in functions if r["proname"] == "refresh_daily_account_overview")
    comment = (await fetch(migrated_dsn, "SELECT obj_description('twilio.daily_account_overview'::regclass)"))[0][0]
    assert "SELECT twilio.refresh_daily_account_overview()" in comment and "MATERIALIZED" not in comment
    assert (await fetch(migrated_dsn, "SELECT twilio.refresh_daily_account_overview()"))[0][0] == 0


async def test_reader_role_may_select_everything_and_insert_nothing(migrated_dsn):
    """twilio_archive_reader exists, reads every table and the view (and tables added later), and may not write."""
    role = await fetch(migrated_dsn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", READER)
    assert [tuple(r) for r in role] == [(False,)]

    connection = await asyncpg.connect(migrated_dsn)
    try:
        # The server quotes the names, so no identifier is pasted into SQL by hand.
        selects = await connection.fetch(
            """
            SELECT format('SELECT count(*) FROM %I.%I', n.nspname, c.relname) AS sql
            FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = 'twilio' AND c.relkind IN ('r', 'v', 'm')
            """
        )
        assert len(selects) == len(EXPECTED_COLUMNS)
        transaction = connection.transaction()
        await transaction.start()
        try:
            # Made before SET ROLE, as the migrating user would in a later revision: the
            # default privileges must make it readable without a grant of its own.
            await connection.execute("CREATE TABLE twilio.added_by_a_later_revision (x integer)")
            await connection.execute(f"SET LOCAL ROLE {READER}")
            for row in selects:
                await connection.fetchval(row["sql"])
            await connection.fetchval("SELECT count(*) FROM twilio.added_by_a_later_revision")
        finally:
            await transaction.rollback()

        for statement in (
            "INSERT INTO twilio.scans (account_sid, stream, kind, window_start, window_end)"
            " VALUES ('AC1', 'legacy_messages', 'backfill', now(), now())",
            "UPDATE twilio.legacy_messages SET body = NULL",
            "DELETE FROM twilio.comms_messages",
        ):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                async with connection.transaction():
                    await connection.execute(f"SET LOCAL ROLE {READER}")
                    await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
async def private_pg_server_dsn():
    """A server of its own, for a test that needs a cluster where the reader role was never made."""
    with tempfile.TemporaryDirectory(prefix="twa-") as tmp:
        server = await asyncio.to_thread(pg.start_server, tmp)
        try:
            yield server.get_uri()
        finally:
            await asyncio.to_thread(server.cleanup)


async def migrate_as_database_owner(server_dsn: str, caplog) -> tuple[str, str, str]:
    """Create a plain login role and a database it owns, and migrate it as that role.

    Returns the database's name, the role, and the DSN that logs in as the role.
    """
    role, password = pg.random_name("owner"), pg.random_name("pw")
    name = pg.random_name("managed")
    await pg.create_login_role(server_dsn, role, password)
    await pg.create_database(server_dsn, name, owner=role)
    owner_dsn = pg.dsn_with_user(pg.dsn_with_database(server_dsn, name), role, password)
    with caplog.at_level(logging.INFO, logger="alembic.env"):
        await upgrade(owner_dsn)
    return name, role, owner_dsn


async def test_non_superuser_owner_migrates_where_reader_role_exists(pg_server_dsn, caplog):
    """A NOSUPERUSER NOCREATEROLE owner of its database migrates it, granting to a reader role an admin made."""
    await fetch(
        pg_server_dsn,
        f"DO $$ BEGIN CREATE ROLE {READER} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    name, role, _ = await migrate_as_database_owner(pg_server_dsn, caplog)
    try:
        dsn = pg.dsn_with_database(pg_server_dsn, name)
        owners = await fetch(
            dsn, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'twilio'"
        )
        assert [r[0] for r in owners] == [role]
        tables = await fetch(
            dsn,
            "SELECT c.relname, has_table_privilege($1, c.oid, 'SELECT') FROM pg_class AS c"
            " WHERE c.relnamespace = 'twilio'::regnamespace AND c.relkind IN ('r', 'v', 'm')",
            READER,
        )
        assert {r[0]: r[1] for r in tables} == {table: True for table in EXPECTED_COLUMNS}
        assert await current(dsn) == migrate.head()
        assert not [r for r in caplog.records if "not created" in r.getMessage()]
    finally:
        await pg.drop_database(pg_server_dsn, name)
        await pg.drop_role(pg_server_dsn, role)


async def test_non_superuser_owner_migrates_without_reader_role(private_pg_server_dsn, caplog):
    """Where no reader role exists and the owner may not create one, migrating succeeds and the notice says what an admin must run."""
    server_dsn = private_pg_server_dsn
    name, role, owner_dsn = await migrate_as_database_owner(server_dsn, caplog)
    dsn = pg.dsn_with_database(server_dsn, name)
    tables = await fetch(dsn, "SELECT relname FROM pg_class WHERE relnamespace = 'twilio'::regnamespace"
                              " AND relkind IN ('r', 'v', 'm')")
    assert {r[0] for r in tables} == set(EXPECTED_COLUMNS)
    assert await fetch(server_dsn, "SELECT 1 FROM pg_roles WHERE rolname = $1", READER) == []

    notices = [r.getMessage() for r in caplog.records if "not created" in r.getMessage()]
    assert len(notices) == 1
    assert f"CREATE ROLE {READER} NOLOGIN" in notices[0]
    assert f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA twilio" in notices[0]

    # Downgrading as that owner must not trip over the role it never had.
    await downgrade(owner_dsn, "base")
    assert await fetch(dsn, "SELECT 1 FROM pg_namespace WHERE nspname = 'twilio'") == []


async def test_messages_view_unifies_both_sources(migrated_dsn):
    """twilio.messages shows rows of both APIs with one channel, direction and status vocabulary."""
    connection = await asyncpg.connect(migrated_dsn)
    try:
        legacy = [
            # sid, direction, from, to, status, date_sent
            ("SM1", "outbound-api", "+14155550100", "+14155550101", "delivered", "2024-05-01T10:00:05Z"),
            ("SM2", "inbound", "whatsapp:+14155550102", "whatsapp:+14155550100", "received", "2024-05-01T11:00:00Z"),
            ("SM3", "outbound-api", "+14155550100", "rcs:+14155550103", "Scheduled", None),
        ]
        await connection.executemany(
            """
            INSERT INTO twilio.legacy_messages
                (sid, account_sid, direction, from_address, to_address, status, date_created, date_sent, price, raw)
            VALUES ($1, 'AC1', $2, $3, $4, $5, '2024-05-01T10:00:00Z', $6::text::timestamptz, -0.0079, $7::jsonb)
            """,
            [(*row, json.dumps({"sid": row[0]})) for row in legacy],
        )
        comms = [
            # id, status, from_channel
            ("comms_message_1", "DELIVERED", "SMS"),
            ("comms_message_2", "INBOUND", "WHATSAPP"),
            ("comms_message_3", "TELEPORTED", "CARRIER_PIGEON"),
        ]
        await connection.executemany(
            """
            INSERT INTO twilio.comms_messages (id, account_sid, status, from_channel, from_address, to_address, raw)
            VALUES ($1, 'AC1', $2, $3, '+14155550100', '+14155550101', $4::jsonb)
            """,
            [(*row, json.dumps({"id": row[0]})) for row in comms],
        )
        rows = await connection.fetch(
            "SELECT source, id, channel, direction, status, sent_at IS NOT NULL AS sent, price"
            " FROM twilio.messages ORDER BY id"
        )
    finally:
        await connection.close()

    assert [tuple(r) for r in rows] == [
        ("legacy", "SM1", "sms", "outbound", "delivered", True, Decimal("-0.0079")),
        ("legacy", "SM2", "whatsapp", "inbound", "received", True, Decimal("-0.0079")),
        ("legacy", "SM3", "rcs", "outbound", "scheduled", False, Decimal("-0.0079")),
        ("comms", "comms_message_1", "sms", "outbound", "delivered", False, None),
        ("comms", "comms_message_2", "whatsapp", "inbound", "received", False, None),
        # A status and channel Twilio might add tomorrow pass through, lower-cased.
        ("comms", "comms_message_3", "carrier_pigeon", "outbound", "teleported", False, None),
    ]


async def test_unreachable_database_is_one_store_error(tmp_path):
    """Migrating a database that cannot be reached raises StoreError, not a driver traceback."""
    dsn = f"postgresql://postgres:@/postgres?host={tmp_path}"
    with pytest.raises(errors.StoreError, match="cannot migrate.*cannot connect"):
        await upgrade(dsn)


async def test_alembic_cli_from_the_repository(empty_database_dsn):
    """`alembic upgrade head` run in the repository migrates the database named by DATABASE_URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alembic", "upgrade", "head",
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": empty_database_dsn},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    assert await current(empty_database_dsn) == migrate.head()


async def test_downgrade_keeps_reader_role_another_database_still_uses(empty_database_dsn, pg_server_dsn):
    """Downgrading one database succeeds while another database still grants to the reader role, which stays."""
    other = pg.random_name("other")
    other_dsn = await pg.create_database(pg_server_dsn, other)
    try:
        await upgrade(empty_database_dsn)
        await upgrade(other_dsn)

        await downgrade(empty_database_dsn, "base")

        assert await fetch(pg_server_dsn, "SELECT 1 FROM pg_roles WHERE rolname = $1", READER) != []
        granted = await fetch(
            other_dsn, "SELECT has_table_privilege($1, 'twilio.messages', 'SELECT')", READER
        )
        assert granted[0][0] is True
    finally:
        await pg.drop_database(pg_server_dsn, other)


async def test_offline_sql_builds_the_same_schema(empty_database_dsn):
    """The SQL `alembic upgrade head --sql` prints for a DBA builds exactly the contracted schema."""
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", str(migrate.script_location()))
    await asyncio.to_thread(command.upgrade, config, "head", sql=True)

    connection = await asyncpg.connect(empty_database_dsn)
    try:
        await connection.execute(buffer.getvalue())  # no arguments: the simple protocol runs a script
    finally:
        await connection.close()
    assert await actual_columns(empty_database_dsn) == EXPECTED_COLUMNS
    assert await current(empty_database_dsn) == migrate.head()
